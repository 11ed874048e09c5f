/*
 * reconcile.c - see reconcile.h.
 *
 * Paging by id (keyset, not OFFSET) keeps each query short and index-only,
 * so a pass over millions of scheduled rows never holds a long snapshot.
 */
#include "notify/reconcile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/pgpool.h"
#include "core/queue.h"
#include "notify/delivery.h"

#define PAGE_SIZE 5000
#define PAGE_SIZE_STR "5000"
#define IDS_PER_LINE 50

/*
 * After PostgreSQL was unreachable, stale 'sending' rows are left alone
 * this long: the workers of every instance hold the outcomes of what they
 * sent during the outage and record them within a second or two of its
 * end (delivery.c, record_outcome). Resetting those rows first would send
 * accepted mails again.
 */
#define STALE_GRACE_MS 10000

/*
 * Orphaned claims (migration 0015, lifeline.c): once a second the claims
 * in 'sending' are checked for instances whose lifeline lock is free; an
 * instance seen free for ORPHAN_GRACE_MS (longer than lifeline.c's lease,
 * after which it sends nothing more) has its claims returned. The grace
 * lets a live instance that lost its session (a PostgreSQL restart) take
 * its lock again first.
 */
#define ORPHAN_CHECK_MS 1000
#define ORPHAN_GRACE_MS 5000
#define ORPHANS_MAX 64    /* instances tracked at once; more wait a round */
#define LOST_PER_CHECK 64 /* claims of unknown result returned per check */

/*
 * The rows a returning UPDATE (as s) gave back, as schedule_rows wants them:
 * id, due ms, lane.
 */
#define RETURNED_ROWS                                                                              \
	" SELECT s.id, (extract(epoch FROM s.due_at) * 1000)::bigint,"                             \
	" coalesce(m.agency_id, 0) FROM s LEFT JOIN messages m ON m.id = s.message_id"             \
	" ORDER BY s.id"

struct orphan {
	int instance;
	int64_t free_since_ms; /* monotonic: first seen with its lock free */
};

struct reconcile {
	struct app *app;
	struct event *timer;
	int64_t last_id;
	long long readded;
	bool failed;            /* the last statement failed: PostgreSQL unreachable */
	int64_t stale_after_ms; /* monotonic: no stale reset before this */
	struct event *orphan_timer;
	struct orphan orphans[ORPHANS_MAX]; /* seen free at the last check */
	int norphans;
	int64_t lost[LOST_PER_CHECK]; /* our claims of unknown result being returned */
	int nlost;
};

/* Notes whether a statement reached PostgreSQL; the first success after a failure starts the grace. */
static void note_result(struct reconcile *rc, bool ok)
{
	if (!ok)
		rc->failed = true;
	else if (rc->failed) {
		rc->failed = false;
		rc->stale_after_ms = clock_mono_ms() + STALE_GRACE_MS;
	}
}

/* Puts (id, due ms, lane) rows into the Redis schedule; returns the last id, 0 if none. */
static int64_t schedule_rows(struct reconcile *rc, const PGresult *res)
{
	int64_t last = 0;
	int n = PQntuples(res);
	int64_t *ids = calloc((size_t)n + 1, sizeof(*ids));
	int64_t *due = calloc((size_t)n + 1, sizeof(*due));
	int64_t *lanes = calloc((size_t)n + 1, sizeof(*lanes));
	if (ids && due && lanes) {
		for (int i = 0; i < n; i++) {
			ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
			due[i] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
			lanes[i] = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		}
		queue_loop_schedule_lanes(rc->app->queue, ids, lanes, due, (size_t)n);
		if (n > 0)
			last = ids[n - 1];
	}
	free(ids);
	free(due);
	free(lanes);
	return last;
}

/* The ids of returned rows: they are the only ones whose mails may arrive twice. */
static void log_crash_window(const PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i += IDS_PER_LINE) {
		char list[IDS_PER_LINE * 21 + 1];
		size_t len = 0;
		for (int k = i; k < PQntuples(res) && k < i + IDS_PER_LINE; k++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						k > i ? "," : "", PQgetvalue(res, k, 0));
		log_kv(LOG_WARN, "reconcile: crash window ids", LOG_STR("ids", list));
	}
}

static void arm(struct reconcile *rc)
{
	int64_t ms = rc->app->cfg->delivery_reconcile_ms;
	struct timeval tv = {ms / MS_PER_S, (ms % MS_PER_S) * 1000};
	if (!rc->app->shutting_down)
		evtimer_add(rc->timer, &tv);
}

static void next_page(struct reconcile *rc);

static void on_page(const PGresult *res, const char *err, void *arg)
{
	struct reconcile *rc = arg;

	note_result(rc, !err);
	if (err) {
		log_warn("reconcile: page failed: %.200s", err);
		arm(rc);
		return;
	}
	int64_t last = schedule_rows(rc, res);
	if (last)
		rc->last_id = last;
	rc->readded += PQntuples(res);
	if (PQntuples(res) < PAGE_SIZE || rc->app->shutting_down) {
		log_debug("reconcile: %lld scheduled notifications checked", rc->readded);
		arm(rc);
		return;
	}
	next_page(rc);
}

static void next_page(struct reconcile *rc)
{
	char after[24];
	snprintf(after, sizeof(after), "%" PRId64, rc->last_id);
	const char *params[] = {after};
	if (!pgpool_query(
		    rc->app->pg,
		    /* the lane as a scalar subquery: one index probe per row of
			   * the page, whatever the (often stale) statistics of a table
			   * that was just bulk-loaded say; with a join, a page took
			   * 3x as long during the delivery bench */
		    "SELECT n.id, (extract(epoch FROM n.due_at) * 1000)::bigint,"
		    " coalesce((SELECT m.agency_id FROM messages m WHERE m.id = n.message_id), 0)"
		    " FROM notifications n "
		    "WHERE n.state = 'scheduled' AND n.id > $1 ORDER BY n.id LIMIT " PAGE_SIZE_STR,
		    1, params, on_page, rc))
		arm(rc);
}

/* A pass over every scheduled row, putting each back into the Redis schedule. */
static void start_pass(struct reconcile *rc)
{
	if (!queue_loop_connected(rc->app->queue)) {
		arm(rc); /* nothing to repair into; try again next interval */
		return;
	}
	rc->last_id = 0;
	rc->readded = 0;
	next_page(rc);
}

static void on_stale(const PGresult *res, const char *err, void *arg)
{
	struct reconcile *rc = arg;

	note_result(rc, !err);
	if (err) {
		log_warn("reconcile: failed: %.200s", err);
		arm(rc);
		return;
	}
	if (PQntuples(res) > 0) {
		/* the ids are logged: they are the only ones that may arrive twice */
		log_warn("reconcile: %d notifications stuck in 'sending' for longer than the "
			 "visibility timeout rescheduled (the process that claimed them stopped "
			 "before recording them; their mails may arrive twice, the same mails "
			 "with the same Message-IDs)",
			 PQntuples(res));
		log_crash_window(res);
		schedule_rows(rc, res);
	}
	start_pass(rc);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct reconcile *rc = arg;
	char vis[32];
	(void)fd;
	(void)what;

	if (rc->failed || clock_mono_ms() < rc->stale_after_ms) {
		/* PostgreSQL was (or is) away: repair Redis only, reset nothing */
		start_pass(rc);
		return;
	}
	snprintf(vis, sizeof(vis), "%" PRId64 " milliseconds",
		 rc->app->cfg->delivery_visibility_ms);
	const char *params[] = {vis};
	if (!pgpool_query(
		    rc->app->pg,
		    "WITH s AS (UPDATE notifications SET state = 'scheduled', claimed_at = NULL "
		    "  WHERE state = 'sending' AND claimed_at < now() - $1::interval "
		    "  RETURNING id, due_at, message_id)" RETURNED_ROWS,
		    1, params, on_stale, rc))
		arm(rc);
}

static void arm_orphans(struct reconcile *rc)
{
	struct timeval tv = {ORPHAN_CHECK_MS / MS_PER_S, (ORPHAN_CHECK_MS % MS_PER_S) * 1000};
	if (!rc->app->shutting_down)
		evtimer_add(rc->orphan_timer, &tv);
}

static void on_orphans_returned(const PGresult *res, const char *err, void *arg)
{
	struct reconcile *rc = arg;

	note_result(rc, !err);
	if (err)
		log_warn("reconcile: returning orphaned claims failed: %.200s", err);
	else if (PQntuples(res) > 0) {
		log_warn("reconcile: %d notifications claimed by an instance whose lifeline lock "
			 "is free (the process is gone) rescheduled (their mails may arrive twice, "
			 "the same mails with the same Message-IDs)",
			 PQntuples(res));
		log_crash_window(res);
		schedule_rows(rc, res);
	}
	arm_orphans(rc);
}

/*
 * Keeps, of the instances now seen free, when each was first seen free;
 * writes those free for the whole grace into ripe as "{1,2}". Their number.
 */
static int note_free(struct reconcile *rc, const PGresult *res, char *ripe, size_t len)
{
	struct orphan seen[ORPHANS_MAX] = {{0}};
	int n = 0, nripe = 0;
	int64_t now = clock_mono_ms();
	size_t used = (size_t)snprintf(ripe, len, "{");

	for (int i = 0; i < PQntuples(res) && n < ORPHANS_MAX; i++) {
		if (PQgetvalue(res, i, 1)[0] != 't')
			continue; /* its lock is held: alive, however slow */
		int id = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
		seen[n] = (struct orphan){id, now};
		for (int k = 0; k < rc->norphans; k++)
			if (rc->orphans[k].instance == id)
				seen[n].free_since_ms = rc->orphans[k].free_since_ms;
		if (now - seen[n].free_since_ms >= ORPHAN_GRACE_MS && used + 16 < len)
			used += (size_t)snprintf(ripe + used, len - used, "%s%d",
						 nripe++ ? "," : "", id);
		n++;
	}
	snprintf(ripe + used, len - used, "}");
	for (int k = 0; k < n; k++)
		rc->orphans[k] = seen[k];
	rc->norphans = n;
	if (PQntuples(res) > 0)
		log_debug("reconcile: orphan check: claims of %d instances, %d of them gone "
			  "(%d for the whole grace)",
			  PQntuples(res), n, nripe);
	return nripe;
}

static void on_orphan_check(const PGresult *res, const char *err, void *arg)
{
	struct reconcile *rc = arg;
	char ripe[ORPHANS_MAX * 12 + 3];

	note_result(rc, !err);
	if (err) {
		log_warn("reconcile: orphan check failed: %.200s", err);
		rc->norphans = 0; /* seen free again from scratch */
		arm_orphans(rc);
		return;
	}
	if (note_free(rc, res, ripe, sizeof(ripe)) == 0 || rc->failed ||
	    clock_mono_ms() < rc->stale_after_ms) {
		/* after an outage the workers record first, as for the stale reset */
		arm_orphans(rc);
		return;
	}
	const char *params[] = {ripe};
	/* each instance is checked again here, and its lock held until the commit:
	 * it cannot take the lock back while its claims are returned */
	if (!pgpool_query(
		    rc->app->pg,
		    "WITH gone AS MATERIALIZED (SELECT u.id FROM unnest($1::integer[]) AS u(id)"
		    "  WHERE instance_gone(u.id)),"
		    " s AS (UPDATE notifications SET state = 'scheduled', claimed_at = NULL"
		    "  WHERE state = 'sending' AND claimed_by IN (SELECT id FROM gone)"
		    "  RETURNING id, due_at, message_id)" RETURNED_ROWS,
		    1, params, on_orphans_returned, rc))
		arm_orphans(rc);
}

/* The instances holding claims, and whether each one's lifeline lock is free (taken, let go). */
static void orphan_check(struct reconcile *rc)
{
	if (!pgpool_query(
		    rc->app->pg,
		    "WITH c AS MATERIALIZED (SELECT DISTINCT claimed_by AS id FROM notifications"
		    "  WHERE state = 'sending' AND claimed_by IS NOT NULL)"
		    " SELECT id, instance_gone(id) FROM c ORDER BY id",
		    0, NULL, on_orphan_check, rc))
		arm_orphans(rc);
}

static void on_lost_returned(const PGresult *res, const char *err, void *arg)
{
	struct reconcile *rc = arg;

	note_result(rc, !err);
	if (err) {
		log_warn("reconcile: returning claims of unknown result failed: %.200s", err);
		delivery_lost_claims_back(rc->app->delivery, rc->lost, rc->nlost);
	} else if (PQntuples(res) > 0) {
		/* never sent: the worker that claimed them never saw the claim */
		log_warn("reconcile: %d notifications of a claim whose reply was lost rescheduled "
			 "(none of them was sent)",
			 PQntuples(res));
		schedule_rows(rc, res);
	}
	rc->nlost = 0;
	if (rc->app->shutting_down)
		return;
	orphan_check(rc);
}

/*
 * First our own claims whose reply a worker never saw (claim.c): exactly
 * the rows still 'sending' under their tokens, at once, with no grace
 * (nobody holds them, and nobody has an outcome of them to record); then
 * the orphans of other instances.
 */
static void on_orphan_timer(evutil_socket_t fd, short what, void *arg)
{
	struct reconcile *rc = arg;
	int instance = 0;
	(void)fd;
	(void)what;

	rc->nlost = delivery_lost_claims(rc->app->delivery, rc->lost, LOST_PER_CHECK, &instance);
	if (rc->nlost == 0) {
		orphan_check(rc);
		return;
	}
	char id[16], tokens[LOST_PER_CHECK * 21 + 3];
	size_t used = (size_t)snprintf(tokens, sizeof(tokens), "{");
	for (int i = 0; i < rc->nlost; i++)
		used += (size_t)snprintf(tokens + used, sizeof(tokens) - used, "%s%" PRId64,
					 i ? "," : "", rc->lost[i]);
	snprintf(tokens + used, sizeof(tokens) - used, "}");
	snprintf(id, sizeof(id), "%d", instance);
	const char *params[] = {id, tokens};
	if (!pgpool_query(
		    rc->app->pg,
		    "WITH s AS (UPDATE notifications SET state = 'scheduled', claimed_at = NULL,"
		    "  attempts = greatest(attempts - 1, 0)" /* unsent: the attempt does not count */
		    "  WHERE state = 'sending' AND claimed_by = $1::integer"
		    "  AND claim_token = ANY($2::bigint[])"
		    "  RETURNING id, due_at, message_id)" RETURNED_ROWS,
		    2, params, on_lost_returned, rc)) {
		delivery_lost_claims_back(rc->app->delivery, rc->lost, rc->nlost);
		rc->nlost = 0;
		arm_orphans(rc);
	}
}

struct reconcile *reconcile_start(struct app *app)
{
	struct reconcile *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return NULL;
	rc->app = app;
	rc->timer = evtimer_new(app->base, on_timer, rc);
	rc->orphan_timer = evtimer_new(app->base, on_orphan_timer, rc);
	if (!rc->timer || !rc->orphan_timer) {
		reconcile_free(rc);
		return NULL;
	}
	/* first pass soon after start, once the connections are up */
	struct timeval tv = {0, 200 * 1000};
	evtimer_add(rc->timer, &tv);
	arm_orphans(rc);
	return rc;
}

void reconcile_free(struct reconcile *rc)
{
	if (!rc)
		return;
	if (rc->timer)
		event_free(rc->timer);
	if (rc->orphan_timer)
		event_free(rc->orphan_timer);
	free(rc);
}
