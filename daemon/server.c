/*
 * server.c - the daemon's lifecycle (see server.h).
 *
 * Signals are handled inside the event loop (evsignal_new), never with work
 * in a signal handler (STYLE.md habit 5):
 *   SIGTERM/SIGINT: stop accepting, let running requests and statements
 *                   finish (at most SHUTDOWN_GRACE_MS), stop the workers,
 *                   free everything (ASan-clean exit).
 *   SIGHUP:         re-read the config file; a bad file is logged and the
 *                   old config stays. Reopens the log file (log rotation).
 */
#include "server.h"

#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/app.h"
#include "core/auth.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "notify/delivery.h"
#include "core/http.h"
#include "core/sentinel.h"
#include "agency/ingest.h"
#include "core/janitor.h"
#include "core/ratelimit.h"
#include "core/pgpool.h"
#include "core/queue.h"
#include "notify/reconcile.h"
#include "routes.h"
#include "watchdog.h"

#define SHUTDOWN_GRACE_MS 10000
#define SHUTDOWN_POLL_MS 20

struct server {
	struct app app;
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *drain_timer;
	int drain_waited_ms;
	struct watchdog *watchdog;
};

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct app *app = &s->app;
	(void)fd;
	(void)what;

	bool idle = ingest_pending(app->ingest) == 0 && pgpool_pending(app->pg) == 0;
	if (idle || s->drain_waited_ms >= SHUTDOWN_GRACE_MS) {
		if (!idle)
			log_warn("shutdown: grace period over, %d queries still pending",
				 pgpool_pending(app->pg));
		event_base_loopexit(app->base, NULL);
		return;
	}
	s->drain_waited_ms += SHUTDOWN_POLL_MS;
	struct timeval tv = {0, SHUTDOWN_POLL_MS * 1000};
	evtimer_add(s->drain_timer, &tv);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	(void)what;

	if (s->app.shutting_down)
		return;
	log_info("signal %d: shutting down", (int)sig);
	sdnotify("STOPPING=1");
	s->app.shutting_down = true;
	http_stop_accepting(&s->app);
	/* workers first: they finish their batch and record its results */
	delivery_stop(s->app.delivery);
	s->app.delivery = NULL;
	drain_check(-1, 0, s);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	struct config fresh;
	char err[CONFIG_ERR_MAX];
	(void)sig;
	(void)what;

	sdnotify("RELOADING=1");
	if (!config_load(s->app.cfg->path, &fresh, err, sizeof(err))) {
		log_error("reload: config has errors, keeping the old one:\n%s", err);
	} else {
		enum log_level lvl = LOG_INFO;
		log_level_parse(fresh.log_level, &lvl);
		if (!log_open(lvl, fresh.log_file))
			log_error("reload: cannot open log file");
		char tlserr[256];
		if (!http_reload_tls(&s->app, &fresh, tlserr, sizeof(tlserr)))
			log_error("reload: TLS: %s; keeping the old certificate", tlserr);
		else if (s->app.cfg->tls_cert_file && *s->app.cfg->tls_cert_file)
			log_info("reload: TLS certificate and key read again");
		log_info("reload: log settings applied; other changes take effect on restart");
		config_free(&fresh);
	}
	sdnotify("READY=1");
}

static bool add_signal(struct server *s, struct event **ev, int sig, event_callback_fn cb)
{
	*ev = evsignal_new(s->app.base, sig, cb, s);
	return *ev && event_add(*ev, NULL) == 0;
}

static void teardown(struct server *s)
{
	struct app *app = &s->app;

	app->shutting_down = true;
	watchdog_stop(s->watchdog);
	delivery_stop(app->delivery);
	queue_loop_free(app->queue); /* pending Redis callbacks get NULL */
	/* pending queries answer "shutting down" here, so everything their
	 * callbacks point at (reconciler, janitor, ingest, auth) is still alive;
	 * the callbacks queue nothing new (the pool refuses while closing) */
	pgpool_free(app->pg);
	reconcile_free(app->reconcile);
	janitor_free(app->janitor);
	ingest_free(app->ingest);
	ratelimit_free(app->ratelimit);
	auth_free(app->auth);
	http_stop(app);
	if (s->drain_timer)
		event_free(s->drain_timer);
	if (s->sig_term)
		event_free(s->sig_term);
	if (s->sig_int)
		event_free(s->sig_int);
	if (s->sig_hup)
		event_free(s->sig_hup);
	if (app->base)
		event_base_free(app->base);
}

/* Every client connection is a descriptor: take all the hard limit allows
 * (LimitNOFILE= under systemd), so [http] max_connections is the limit. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("start: cannot raise the descriptor limit");
	}
}

int server_run(struct config *cfg)
{
	struct server *s = calloc(1, sizeof(*s));
	struct app *app;
	char err[CONFIG_ERR_MAX];
	int rc = 1;

	if (!s)
		return 1;
	app = &s->app;
	app->cfg = cfg;
	signal(SIGPIPE, SIG_IGN); /* a relay or client closing mid-write is an error, not death */
	raise_fd_limit();

	app->base = event_base_new();
	if (!app->base)
		goto out;
	s->drain_timer = evtimer_new(app->base, drain_check, s);
	app->pg = pgpool_new(app->base, cfg->pg_conninfo, (int)cfg->pg_pool_size);
	app->queue =
		cfg->redis_sentinels && *cfg->redis_sentinels
			? sentinel_queue_loop_new(app->base, cfg->redis_sentinels,
						  cfg->redis_master_name, cfg->redis_key_prefix)
			: queue_loop_new(app->base, cfg->redis_host, (int)cfg->redis_port,
					 cfg->redis_key_prefix);
	app->auth = auth_new(app);
	app->ingest = ingest_new(app);
	app->ratelimit = ratelimit_new(app->cfg->ratelimit_rate, app->cfg->ratelimit_burst);
	if (!s->drain_timer || !app->pg || !app->queue || !app->auth || !app->ingest ||
	    !app->ratelimit) {
		log_error("start: out of memory");
		goto out;
	}
	if (!add_signal(s, &s->sig_term, SIGTERM, on_stop_signal) ||
	    !add_signal(s, &s->sig_int, SIGINT, on_stop_signal) ||
	    !add_signal(s, &s->sig_hup, SIGHUP, on_hup)) {
		log_error("start: cannot install signal handlers");
		goto out;
	}
	app->delivery = delivery_start(app, err, sizeof(err));
	if (!app->delivery) {
		log_error("start: delivery: %s", err);
		goto out;
	}
	app->reconcile = reconcile_start(app);
	app->janitor = janitor_start(app);
	if (!app->reconcile || !app->janitor || !http_start(app, &routes_api, &routes_ops))
		goto out;

	s->watchdog = watchdog_start(app);
	sdnotify("READY=1");
	if (cfg->stats_noise_seed && *cfg->stats_noise_seed)
		log_warn("[stats] noise_seed is set: the agency statistics' noise is derived from "
			 "it and NOT private (for tests only)");
	log_info("berichtd running");
	event_base_dispatch(app->base);
	log_info("berichtd stopped");
	rc = 0;
out:
	teardown(s);
	free(s);
	return rc;
}
