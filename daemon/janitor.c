/*
 * janitor.c - retention purge (see janitor.h).
 */
#include "janitor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "pgpool.h"

#define INT_TEXT_MAX 24

#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * $1 time zone, $2 default days, $3 min days, $4 max days, $5 batch.
 * The first condition is the index-friendly bound; the second is exact:
 * the cohort day (local) + 1 + 42 days must have begun.
 */
static const char PURGE_SQL[] =
	"WITH gone AS (DELETE FROM messages WHERE id IN ("
	"  SELECT m.id FROM messages m JOIN accounts a ON a.id = m.account_id"
	"  WHERE m.publicatie_tijdstip < now() - interval '" STR(JANITOR_STATS_WINDOW_DAYS) " days'"
	"    AND (((m.publicatie_tijdstip AT TIME ZONE $1)::date"
	"         + (" STR(JANITOR_STATS_WINDOW_DAYS) " + 1))::timestamp AT TIME ZONE $1) <= now()"
	"    AND (m.deleted_at IS NOT NULL"
	"         OR m.publicatie_tijdstip + make_interval(days => least(greatest("
	"              coalesce(a.retention_days, $2::integer), $3::integer), $4::integer))"
	"            <= now())"
	"  LIMIT $5::integer FOR UPDATE OF m SKIP LOCKED) RETURNING id"
	/* notifications go with their message (no cascading key since 0008) */
	"), n AS (DELETE FROM notifications WHERE message_id IN (SELECT id FROM gone)) "
	"SELECT count(*) FROM gone";

struct janitor {
	struct app *app;
	struct event *timer;
	long long purged; /* this pass */
};

static void arm(struct janitor *j, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (!j->app->shutting_down)
		evtimer_add(j->timer, &tv);
}

static void on_purged(const PGresult *res, const char *err, void *arg)
{
	struct janitor *j = arg;
	const struct config *cfg = j->app->cfg;

	if (err) {
		log_warn("janitor: purge failed: %.200s", err);
		arm(j, cfg->retention_interval_ms);
		return;
	}
	long long n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	j->purged += n;
	if (n >= cfg->retention_batch) {
		arm(j, 0); /* more to do: next batch, after whatever else is waiting */
		return;
	}
	if (j->purged > 0)
		log_info("janitor: %lld messages past retention purged", j->purged);
	j->purged = 0;
	arm(j, cfg->retention_interval_ms);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct janitor *j = arg;
	const struct config *cfg = j->app->cfg;
	char def[INT_TEXT_MAX], min[INT_TEXT_MAX], max[INT_TEXT_MAX], batch[INT_TEXT_MAX];
	(void)fd;
	(void)what;

	snprintf(def, sizeof(def), "%" PRId64, cfg->retention_default_days);
	snprintf(min, sizeof(min), "%" PRId64, cfg->retention_min_days);
	snprintf(max, sizeof(max), "%" PRId64, cfg->retention_max_days);
	snprintf(batch, sizeof(batch), "%" PRId64, cfg->retention_batch);
	const char *params[] = {cfg->notify_timezone, def, min, max, batch};
	if (!pgpool_query(j->app->pg, PURGE_SQL, 5, params, on_purged, j))
		arm(j, cfg->retention_interval_ms);
}

struct janitor *janitor_start(struct app *app)
{
	struct janitor *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->app = app;
	j->timer = evtimer_new(app->base, on_timer, j);
	if (!j->timer) {
		free(j);
		return NULL;
	}
	/* the first pass waits a whole interval: a restart loop must not turn
	 * into a purge loop, and a test database with old data stays intact
	 * unless the test asks for a short interval */
	arm(j, app->cfg->retention_interval_ms);
	return j;
}

void janitor_free(struct janitor *j)
{
	if (!j)
		return;
	event_free(j->timer);
	free(j);
}
