/*
 * watchdog.c - see watchdog.h.
 */
#include "watchdog.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "notify/delivery.h"

struct watchdog {
	struct app *app;
	struct event *tick;
	bool stalled; /* logged once per stall, not once per tick */
};

/*
 * The interval systemd expects pings at, from WATCHDOG_USEC (and
 * WATCHDOG_PID, when it names another process the watchdog is not ours);
 * 0 when there is no watchdog.
 */
static int64_t watchdog_usec(void)
{
	const char *pid = getenv("WATCHDOG_PID");
	const char *usec = getenv("WATCHDOG_USEC");
	if (!usec || !*usec)
		return 0;
	if (pid && *pid && strtoll(pid, NULL, 10) != (long long)getpid())
		return 0;
	char *end;
	long long v = strtoll(usec, &end, 10);
	return (*end == '\0' && v > 0) ? v : 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct watchdog *wd = arg;
	int64_t age = 0;
	(void)fd;
	(void)what;

	/* this callback running at all shows the event loop moves */
	int stuck = delivery_stalled(wd->app->delivery, clock_mono_ms(),
				     wd->app->cfg->delivery_stall_ms, &age);
	if (stuck >= 0) {
		if (!wd->stalled)
			log_error("watchdog: delivery worker %d shows no progress for %" PRId64
				  " s; no more watchdog pings, so systemd restarts the daemon",
				  stuck, age / MS_PER_S);
		wd->stalled = true;
		return;
	}
	if (wd->stalled)
		log_warn("watchdog: every delivery worker moves again; pings resume");
	wd->stalled = false;
	sdnotify("WATCHDOG=1");
}

struct watchdog *watchdog_start(struct app *app)
{
	int64_t usec = watchdog_usec();
	if (usec == 0)
		return NULL;
	struct watchdog *wd = calloc(1, sizeof(*wd));
	if (!wd)
		return NULL;
	wd->app = app;
	wd->tick = event_new(app->base, -1, EV_PERSIST, on_tick, wd);
	/* systemd's advice: ping at half the interval */
	int64_t half = usec / 2;
	struct timeval tv = {(time_t)(half / 1000000), (suseconds_t)(half % 1000000)};
	if (!wd->tick || event_add(wd->tick, &tv) != 0) {
		watchdog_stop(wd);
		return NULL;
	}
	log_info("watchdog: pings every %" PRId64 " ms while the event loop and every "
		 "delivery worker move (stall_timeout %" PRId64 " s)",
		 half / 1000, app->cfg->delivery_stall_ms / MS_PER_S);
	return wd;
}

void watchdog_stop(struct watchdog *wd)
{
	if (!wd)
		return;
	if (wd->tick)
		event_free(wd->tick);
	free(wd);
}
