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
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/pgpool.h"
#include "core/queue.h"

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

struct reconcile {
	struct app *app;
	struct event *timer;
	int64_t last_id;
	long long readded;
	bool failed;            /* the last statement failed: PostgreSQL unreachable */
	int64_t stale_after_ms; /* monotonic: no stale reset before this */
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

static void schedule_rows(struct reconcile *rc, const PGresult *res)
{
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
			rc->last_id = ids[n - 1];
	}
	free(ids);
	free(due);
	free(lanes);
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
	schedule_rows(rc, res);
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
		for (int i = 0; i < PQntuples(res); i += IDS_PER_LINE) {
			char list[IDS_PER_LINE * 21 + 1];
			size_t len = 0;
			for (int k = i; k < PQntuples(res) && k < i + IDS_PER_LINE; k++)
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
							k > i ? "," : "", PQgetvalue(res, k, 0));
			log_kv(LOG_WARN, "reconcile: crash window ids", LOG_STR("ids", list));
		}
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
		    "  RETURNING id, due_at, message_id) "
		    "SELECT s.id, (extract(epoch FROM s.due_at) * 1000)::bigint,"
		    " coalesce(m.agency_id, 0) FROM s LEFT JOIN messages m ON m.id = s.message_id",
		    1, params, on_stale, rc))
		arm(rc);
}

struct reconcile *reconcile_start(struct app *app)
{
	struct reconcile *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return NULL;
	rc->app = app;
	rc->timer = evtimer_new(app->base, on_timer, rc);
	if (!rc->timer) {
		free(rc);
		return NULL;
	}
	/* first pass soon after start, once the connections are up */
	struct timeval tv = {0, 200 * 1000};
	evtimer_add(rc->timer, &tv);
	return rc;
}

void reconcile_free(struct reconcile *rc)
{
	if (!rc)
		return;
	event_free(rc->timer);
	free(rc);
}
