/*
 * janitor.c - retention purge (see janitor.h).
 */
#include "core/janitor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/pgpool.h"

#define INT_TEXT_MAX 24

#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * The agency's record: $1 time zone, $2 [retention] agency_record_days,
 * $3 batch. The same period for every message, whatever the citizen did
 * with it (deleted, opened, chose a short retention): the agency's GET and
 * idempotent replay must not tell. The window condition is exact: the
 * cohort day (local) + 1 + 42 days must have begun.
 */
static const char PURGE_SQL[] =
	"WITH gone AS (DELETE FROM messages WHERE id IN ("
	"  SELECT m.id FROM messages m"
	"  WHERE m.publicatie_tijdstip + make_interval(days => $2::integer) <= now()"
	"    AND (((m.publicatie_tijdstip AT TIME ZONE $1)::date"
	"         + (" STR(
		JANITOR_STATS_WINDOW_DAYS) " + 1))::timestamp AT TIME ZONE $1) <= now()"
					   "  LIMIT $3::integer FOR UPDATE OF m SKIP LOCKED) RETURNING id"
					   /* notifications go with their message (no cascading key since 0008) */
					   "), n AS (DELETE FROM notifications WHERE message_id IN (SELECT id FROM gone)) "
					   "SELECT count(*) FROM gone";

/*
 * Verification mails once their code has expired ($1 [portal] verify_ttl
 * in ms): they name an address the citizen may never have confirmed, and
 * have no message for the purge above to take them with.
 */
static const char VERIFY_SQL[] =
	"WITH gone AS (DELETE FROM notifications WHERE id IN ("
	"  SELECT id FROM notifications WHERE kind = 'verify'"
	"    AND created_at < now() - $1::bigint * interval '1 millisecond'"
	"  LIMIT $2::integer FOR UPDATE SKIP LOCKED) RETURNING id) "
	"SELECT count(*) FROM gone";

/*
 * Mails ($1 ms to keep them: the longer of [bounce] max_age and [delivery]
 * retry_span) once none of their rows can still go out: after that no DSN
 * is taken for them, and the recipient address they hold goes with them.
 */
static const char MAILS_SQL[] =
	"WITH gone AS (DELETE FROM mails WHERE id IN ("
	"  SELECT m.id FROM mails m WHERE m.created_at < now() - $1::bigint * interval '1 millisecond'"
	"    AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.mail_id = m.id"
	"      AND n.state IN ('scheduled', 'sending'))"
	"  LIMIT $2::integer FOR UPDATE OF m SKIP LOCKED) RETURNING id) "
	"SELECT count(*) FROM gone";

/*
 * Rows of instances that are gone (0015: their lifeline lock is free) and
 * started over $1 ms ago ([retention] interval, at least a day), once no
 * claim names them any more: every start adds a row, so a daemon under a
 * restart loop must not grow the table without end. A live instance holds
 * its lock, so instance_gone() is false for it; the claim test comes first
 * so that the lock is only tried for rows that can go.
 */
static const char INSTANCES_SQL[] =
	"WITH gone AS (DELETE FROM instances WHERE id IN ("
	"  SELECT i.id FROM instances i"
	"  WHERE i.started_at < now() - greatest($1::bigint, 86400000) * interval '1 millisecond'"
	"    AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.state = 'sending'"
	"      AND n.claimed_by = i.id)"
	"    AND instance_gone(i.id)"
	"  LIMIT $2::integer) RETURNING id) "
	"SELECT count(*) FROM gone";

enum step { STEP_MESSAGES, STEP_VERIFY, STEP_MAILS, STEP_INSTANCES, STEPS };

static const char *const step_names[STEPS] = {"messages", "verification mails", "mails",
					      "instance rows"};

struct janitor {
	struct app *app;
	struct event *timer;
	enum step step;
	long long purged[STEPS]; /* this pass */
};

static void arm(struct janitor *j, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (!j->app->shutting_down)
		evtimer_add(j->timer, &tv);
}

static void end_pass(struct janitor *j)
{
	long long total = 0;
	for (int i = 0; i < STEPS; i++)
		total += j->purged[i];
	if (total > 0)
		log_info("janitor: purged %lld %s, %lld %s, %lld %s, %lld %s", j->purged[0],
			 step_names[0], j->purged[1], step_names[1], j->purged[2], step_names[2],
			 j->purged[3], step_names[3]);
	log_debug("janitor: pass done");
	memset(j->purged, 0, sizeof(j->purged));
	j->step = STEP_MESSAGES;
	arm(j, j->app->cfg->retention_interval_ms);
}

static void on_purged(const PGresult *res, const char *err, void *arg)
{
	struct janitor *j = arg;
	const struct config *cfg = j->app->cfg;

	if (err) {
		log_warn("janitor: purge of %s failed: %.200s", step_names[j->step], err);
		end_pass(j);
		return;
	}
	long long n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	j->purged[j->step] += n;
	if (n < cfg->retention_batch)
		j->step++;
	if (j->step == STEPS) {
		end_pass(j);
		return;
	}
	arm(j, 0); /* more to do: next batch, after whatever else is waiting */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct janitor *j = arg;
	const struct config *cfg = j->app->cfg;
	char days[INT_TEXT_MAX], batch[INT_TEXT_MAX], ms[INT_TEXT_MAX];
	(void)fd;
	(void)what;

	snprintf(batch, sizeof(batch), "%" PRId64, cfg->retention_batch);
	bool queued = false;
	switch (j->step) {
	case STEP_MESSAGES: {
		snprintf(days, sizeof(days), "%" PRId64, cfg->retention_agency_record_days);
		const char *params[] = {cfg->notify_timezone, days, batch};
		queued = pgpool_query(j->app->pg, PURGE_SQL, 3, params, on_purged, j);
		break;
	}
	case STEP_VERIFY: {
		snprintf(ms, sizeof(ms), "%" PRId64, cfg->portal_verify_ttl_ms);
		const char *params[] = {ms, batch};
		queued = pgpool_query(j->app->pg, VERIFY_SQL, 2, params, on_purged, j);
		break;
	}
	case STEP_INSTANCES: {
		snprintf(ms, sizeof(ms), "%" PRId64, cfg->retention_interval_ms);
		const char *params[] = {ms, batch};
		queued = pgpool_query(j->app->pg, INSTANCES_SQL, 2, params, on_purged, j);
		break;
	}
	case STEP_MAILS:
	case STEPS: {
		int64_t keep = cfg->bounce_max_age_ms > cfg->delivery_retry_span_ms
				       ? cfg->bounce_max_age_ms
				       : cfg->delivery_retry_span_ms;
		snprintf(ms, sizeof(ms), "%" PRId64, keep);
		const char *params[] = {ms, batch};
		queued = pgpool_query(j->app->pg, MAILS_SQL, 2, params, on_purged, j);
		break;
	}
	}
	if (!queued)
		end_pass(j);
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
