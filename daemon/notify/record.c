/*
 * record.c - what became of a batch, and its record in PostgreSQL (see
 * delivery_impl.h).
 *
 * Like OpenSMTPD's scheduler, each outcome of a send has its own short
 * handler that notes it in the batch's struct outcome and counts it:
 *
 *   sent          the relay accepted the mail (250)
 *   permfail      the relay refused the recipient for good (5xx): a hard bounce
 *   tempfail      4xx or connection trouble: retried with backoff, or
 *                 failed after the retry span
 *   deferred      not sent: the recipient domain's bucket was empty
 *   unrenderable  the mail cannot be built: failed
 *
 * What the relay accepted is recorded, whatever it takes: record_outcome
 * keeps the outcome and retries the record with backoff across reconnects.
 * Only a process that dies between the relay's 250 and the record loses
 * it; the reconciler then returns the stale 'sending' rows after the
 * visibility timeout and the same mail goes again, with the same
 * Message-ID.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "notify/delivery_impl.h"
#include "notify/retry.h"

/* retrying the record of a batch's outcome */
#define RECORD_RETRY_MIN_MS 50
#define RECORD_RETRY_MAX_MS 1000
/* once the daemon stops, how long a worker still tries to record */
#define RECORD_STOP_GRACE_MS 5000

void outcome_sent(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		  int64_t now_ms)
{
	(void)w;
	/* counted once PostgreSQL has it as sent (record_sent) */
	for (int k = 0; k < n; k++) {
		o->sent_lag_ms[o->nsent] = now_ms - c[k].due_ms; /* the first due time (0018) */
		o->sent[o->nsent++] = c[k].id;
	}
	o->nmails_sent++;
}

void outcome_permfail(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		      const char *reason)
{
	log_info("delivery[%d]: mail %" PRId64 " bounced: %s", w->index, c->mail_id, reason);
	o->bounced[o->nbounced] = c->mail_id;
	snprintf(o->bounce_reason[o->nbounced], sizeof(o->bounce_reason[0]), "%s", reason);
	o->nbounced++;
	atomic_fetch_add(&w->d->app->metrics.notifications_bounced, n);
	atomic_fetch_add(&w->d->app->metrics.mails[MAIL_BOUNCED], 1);
}

/* Rows of a mail retried later (4xx, connection trouble) or given up after the retry span. */
void outcome_tempfail(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		      const char *reason, enum retry_reason why, int64_t now_ms)
{
	const struct config *cfg = delivery_cfg(w->d);
	struct metrics *m = &w->d->app->metrics;
	const struct retry_policy p = {cfg->delivery_retry_base_ms, cfg->delivery_retry_max_ms,
				       cfg->delivery_retry_span_ms};
	/* one due time for the whole mail: its rows stay together */
	int64_t due = now_ms + retry_delay_ms(&p, c->attempts, (uint64_t)random());
	bool failed = false;
	for (int k = 0; k < n; k++) {
		struct row_outcome *r = &o->rows[o->nrows++];
		r->id = c[k].id;
		r->lane = c[k].lane;
		r->due_ms = due;
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
		if (retry_expired(&p, c[k].created_ms, due)) {
			log_warn("delivery[%d]: notification %" PRId64
				 " given up after %d attempts: %s",
				 w->index, c[k].id, c[k].attempts, reason);
			r->state = "failed";
			failed = true;
			atomic_fetch_add(&m->notifications_failed, 1);
		} else {
			/* while the relay is down the outage's lines say it (outage.h) */
			log_msg(o->relay_down ? LOG_DEBUG : LOG_INFO,
				"delivery[%d]: notification %" PRId64 " retry %d in %" PRId64
				" ms: %s",
				w->index, c[k].id, c[k].attempts, due - now_ms, reason);
			r->state = "scheduled";
			atomic_fetch_add(&m->notifications_retried, 1);
			atomic_fetch_add(&m->retries[why], 1);
		}
	}
	atomic_fetch_add(&m->mails[failed ? MAIL_FAILED : MAIL_RETRIED], 1);
}

/* Rows of a mail that was not sent (its domain's bucket was empty): back, unsent. */
void outcome_deferred(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		      int64_t due_ms, enum retry_reason why)
{
	struct metrics *m = &w->d->app->metrics;
	atomic_fetch_add(&m->retries[why], n);
	atomic_fetch_add(&m->mails[MAIL_DEFERRED], 1);
	for (int k = 0; k < n; k++) {
		struct row_outcome *r = &o->rows[o->nrows++];
		r->id = c[k].id;
		r->lane = c[k].lane;
		r->state = "scheduled";
		r->due_ms = due_ms;
		r->unsent = true;
	}
}

void outcome_unrenderable(struct worker *w, struct outcome *o, const struct claimed *c, int n)
{
	log_error("delivery[%d]: mail %" PRId64 " cannot be rendered", w->index, c->mail_id);
	for (int k = 0; k < n; k++) {
		struct row_outcome *r = &o->rows[o->nrows++];
		r->id = c[k].id;
		r->lane = c[k].lane;
		r->state = "failed";
		snprintf(r->reason, sizeof(r->reason), "cannot render mail");
	}
	atomic_fetch_add(&w->d->app->metrics.notifications_failed, n);
	atomic_fetch_add(&w->d->app->metrics.mails[MAIL_FAILED], 1);
}

bool outcome_alloc(struct outcome *o, int n)
{
	memset(o, 0, sizeof(*o));
	o->sent = calloc((size_t)n + 1, sizeof(*o->sent));
	o->sent_lag_ms = calloc((size_t)n + 1, sizeof(*o->sent_lag_ms));
	o->bounced = calloc((size_t)n + 1, sizeof(*o->bounced));
	o->bounce_reason = calloc((size_t)n + 1, sizeof(*o->bounce_reason));
	o->rows = calloc((size_t)n + 1, sizeof(*o->rows));
	return o->sent && o->sent_lag_ms && o->bounced && o->bounce_reason && o->rows;
}

void outcome_free(struct outcome *o)
{
	free(o->sent);
	free(o->sent_lag_ms);
	free(o->bounced);
	free(o->bounce_reason);
	free(o->rows);
}

/*
 * Marks ids sent and schedules what follows from them: the first reminder
 * after a 'new' mail, the next one after a reminder while fewer than
 * max_repeats were sent. A reminder is due repeat_after (per type override)
 * after publication, or repeat_before_deadline before the end of the
 * handling period when the agency gave one and that is still ahead.
 * Reminders are counted per recipient: the holder's and each
 * representative's (issue 11) on their own.
 */
static const char SENT_SQL[] =
	"WITH s AS ("
	/* joined to the ids: WHERE id = ANY(...) AND state = 'sending' was
	 * planned as a bitmap scan of the sending index, which keeps the entries
	 * of every row that has left 'sending' until the next vacuum (a bitmap
	 * scan never marks them dead), so each record read the whole backlog;
	 * the join is planned as a plain index scan, which does */
	/* a verification code is kept only until its mail is accepted */
	"  UPDATE notifications n SET state = 'sent', sent_at = now(), last_error = NULL,"
	"    payload = CASE WHEN n.kind = 'verify' THEN NULL ELSE n.payload END"
	/* 'scheduled' too: the relay has the mail, even if a reconciler gave
	 * up on the row while this worker could not reach PostgreSQL; marking
	 * it sent keeps it from going again */
	"  FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, i) WHERE n.id = u.id"
	"    AND n.state IN ('sending', 'scheduled')"
	"  RETURNING n.id, n.message_id, n.account_id, n.kind, n.representation_id, u.i"
	"), rep AS ("
	"  INSERT INTO notifications (message_id, account_id, kind, due_at, representation_id)"
	/* a representative's reminder is theirs too: same account, same representation */
	"  SELECT s.message_id, s.account_id, 'repeat', greatest(now(), CASE"
	"    WHEN s.kind = 'new' AND m.eind_datum_handelingstermijn IS NOT NULL"
	"      AND (m.eind_datum_handelingstermijn::timestamp AT TIME ZONE $5) - $3::interval > now()"
	"      THEN (m.eind_datum_handelingstermijn::timestamp AT TIME ZONE $5) - $3::interval"
	"    WHEN s.kind = 'new' THEN m.publicatie_tijdstip + coalesce(t.repeat_after, $2::interval)"
	"    ELSE now() + coalesce(t.repeat_after, $2::interval) END), s.representation_id"
	"  FROM s JOIN messages m ON m.id = s.message_id"
	"  LEFT JOIN berichttypes t ON t.agency_id = m.agency_id AND t.code = m.berichttype"
	"  WHERE s.kind IN ('new', 'repeat') AND message_unread(m) AND m.deleted_at IS NULL"
	"    AND (SELECT count(*) FROM notifications x WHERE x.message_id = s.message_id"
	"         AND x.kind = 'repeat' AND x.state <> 'cancelled' AND x.account_id = s.account_id"
	"         AND x.representation_id IS NOT DISTINCT FROM s.representation_id) < $4::int"
	"  RETURNING id, (extract(epoch FROM due_at) * 1000)::bigint AS due_ms, message_id"
	") "
	"SELECT rep.id, rep.due_ms, m.agency_id, NULL::bigint FROM rep"
	"  JOIN messages m ON m.id = rep.message_id"
	/* and which of $1 were recorded as sent (1-based), for /metrics */
	" UNION ALL SELECT NULL, NULL, NULL, s.i FROM s";

static const struct pgpool_stmt SENT_STMT = {"sent", SENT_SQL, 5};

/*
 * The rows PostgreSQL recorded as sent are what "sent" counts, with their
 * lag; a row that was cancelled or taken over meanwhile is not sent.
 */
static void count_recorded(struct metrics *m, const struct outcome *o, const PGresult *res)
{
	long long recorded = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, 3))
			continue;
		long long k = strtoll(PQgetvalue(res, i, 3), NULL, 10) - 1;
		if (k < 0 || k >= o->nsent)
			continue;
		hist_observe(&m->lag, &HIST_LAG, o->sent_lag_ms[k]);
		recorded++;
	}
	atomic_fetch_add(&m->notifications_sent, recorded);
	atomic_fetch_add(&m->mails_sent, o->nmails_sent);
	atomic_fetch_add(&m->mails[MAIL_SENT], o->nmails_sent);
}

/* Marks o's sent rows sent; queues the reminders that follow. False if PostgreSQL failed. */
static bool record_sent(struct worker *w, const struct outcome *o)
{
	const struct config *cfg = delivery_cfg(w->d);
	char after[48], before[48], maxrep[16];
	const int64_t *ids = o->sent;
	int n = o->nsent;
	if (n == 0)
		return true;
	char *arr = conn_id_array(ids, n);
	snprintf(after, sizeof(after), "%" PRId64 " milliseconds", cfg->notify_repeat_after_ms);
	snprintf(before, sizeof(before), "%" PRId64 " milliseconds",
		 cfg->notify_repeat_before_deadline_ms);
	snprintf(maxrep, sizeof(maxrep), "%" PRId64, cfg->notify_max_repeats);
	const char *params[] = {arr, after, before, maxrep, cfg->notify_timezone};
	PGresult *res = arr ? conn_exec_stmt(w, WS_SENT, &SENT_STMT, params) : NULL;
	free(arr);
	if (!res)
		return false;
	count_recorded(&w->d->app->metrics, o, res);
	int rows = PQntuples(res), nrep = 0;
	struct queue_item *its = calloc((size_t)rows + 1, sizeof(*its));
	int64_t *dues = calloc((size_t)rows + 1, sizeof(*dues));
	for (int i = 0; its && dues && i < rows; i++) {
		if (PQgetisnull(res, i, 0)) /* a sent row's line (count_recorded) */
			continue;
		its[nrep].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		its[nrep].lane = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		dues[nrep++] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
	}
	if (nrep > 0 &&
	    (!its || !dues ||
	     !queue_sync_schedule(w->rc, cfg->redis_key_prefix, its, dues, (size_t)nrep)))
		log_warn("delivery[%d]: reminders not queued; the reconciler will", w->index);
	atomic_fetch_add(&w->d->app->metrics.notifications_scheduled, nrep);
	free(its);
	free(dues);
	PQclear(res);
	return true;
}

/* $1 id, $2 state, $3 due, $4 reason, $5 unsent (the claim's attempt is taken back) */
static const char ROW_SQL[] =
	"UPDATE notifications SET state = $2, last_error = $4,"
	/* the due time the first retry moves away from stays (migration 0018) */
	"  first_due_at = coalesce(first_due_at, due_at),"
	"  due_at = CASE WHEN $2 = 'scheduled' THEN $3::timestamptz ELSE due_at END,"
	"  attempts = attempts - CASE WHEN $5::boolean THEN 1 ELSE 0 END,"
	"  claimed_at = NULL WHERE id = $1 AND state = 'sending'";

static const struct pgpool_stmt ROW_STMT = {"row", ROW_SQL, 5};

static bool record_row(struct worker *w, const struct row_outcome *o)
{
	char idbuf[24], due[TIMEFMT_RFC3339_LEN];
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, o->id);
	timefmt_format_rfc3339(o->due_ms, due);
	const char *params[] = {idbuf, o->state, due, o->unsent ? NULL : o->reason,
				o->unsent ? "t" : "f"};
	PGresult *res = conn_exec_stmt(w, WS_ROW, &ROW_STMT, params);
	if (!res)
		return false;
	PQclear(res);
	return true;
}

/* A 5xx from the relay: what a hard bounce means is migrations/0009's mail_hard_bounce. */
static bool record_bounce(struct worker *w, int64_t mail_id, const char *reason)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, mail_id);
	const char *params[] = {idbuf, reason};
	PGresult *res =
		conn_exec(w, "SELECT notifications FROM mail_hard_bounce($1, $2)", 2, params);
	if (!res)
		return false;
	PQclear(res);
	return true;
}

/* Writes what is not yet written of o; false at the first failure. */
static bool apply_outcome(struct worker *w, struct outcome *o)
{
	if (!o->sent_done) {
		if (!record_sent(w, o))
			return false;
		o->sent_done = true;
	}
	for (; o->bounced_done < o->nbounced; o->bounced_done++)
		if (!record_bounce(w, o->bounced[o->bounced_done],
				   o->bounce_reason[o->bounced_done]))
			return false;
	for (; o->rows_done < o->nrows; o->rows_done++)
		if (!record_row(w, &o->rows[o->rows_done]))
			return false;
	return true;
}

/*
 * Waits before the attempt-th retry of a record (jittered backoff); once
 * the daemon stops, a plain sleep (the condvar no longer waits) until the
 * grace is over. False when the grace is over.
 */
static bool record_backoff(struct worker *w, int attempt, int64_t *give_up)
{
	struct delivery *d = w->d;
	int64_t ms = backoff_jitter_ms(RECORD_RETRY_MIN_MS, RECORD_RETRY_MAX_MS, attempt,
				       (uint64_t)random());
	if (!atomic_load(&d->stop)) {
		worker_pause_ms(d, ms);
		return true;
	}
	if (!*give_up)
		*give_up = clock_mono_ms() + RECORD_STOP_GRACE_MS;
	if (clock_mono_ms() >= *give_up)
		return false;
	struct timespec ts = {ms / MS_PER_S, (ms % MS_PER_S) * NS_PER_MS};
	nanosleep(&ts, NULL);
	return true;
}

/*
 * Records the outcome until PostgreSQL has it: with backoff, across
 * reconnects, for as long as the daemon runs (and RECORD_STOP_GRACE_MS
 * after it was asked to stop). Leaving it to the visibility timeout
 * would send accepted mails again.
 */
bool record_outcome(struct worker *w, struct outcome *o)
{
	int64_t give_up = 0;
	int attempt = 0;

	while (!apply_outcome(w, o)) {
		worker_beat(w); /* waiting for PostgreSQL is not being stuck */
		if (attempt++ == 0)
			log_warn(
				"delivery[%d]: cannot record the outcome of %d accepted mails' rows "
				"and %d others; retrying",
				w->index, o->sent_done ? 0 : o->nsent,
				(o->nbounced - o->bounced_done) + (o->nrows - o->rows_done));
		if (!record_backoff(w, attempt, &give_up)) {
			log_error("delivery[%d]: stopping with an unrecorded outcome; "
				  "its rows return after the visibility timeout",
				  w->index);
			return false;
		}
		if (PQstatus(w->pg) != CONNECTION_OK)
			conn_connect(w);
	}
	if (attempt > 0)
		log_info("delivery[%d]: outcome recorded after all", w->index);
	return true;
}

void record_queue_retries(struct worker *w, const struct outcome *o)
{
	const struct config *cfg = delivery_cfg(w->d);
	for (int i = 0; i < o->nrows; i++) {
		if (strcmp(o->rows[i].state, "scheduled") != 0)
			continue;
		struct queue_item it = {o->rows[i].id, o->rows[i].lane};
		if (!queue_sync_retry(w->rc, cfg->redis_key_prefix, &it, o->rows[i].due_ms))
			log_warn("delivery[%d]: retry not queued; the reconciler will", w->index);
	}
}
