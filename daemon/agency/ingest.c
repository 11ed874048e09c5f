/*
 * ingest.c - group commit of messages and their notifications (ingest.h).
 *
 * Why one statement: the CTE below inserts messages (only for BSNs with an
 * active box), inserts a notification for each one whose account has an
 * address, and reports per item what happened, all in one round trip and
 * one implicit transaction. The items travel as one JSON parameter, so a
 * group of a thousand costs about as much planning as a group of one.
 *
 * Concurrency: (agency_id, referentie) is unique; ON CONFLICT DO NOTHING
 * means a racing duplicate is neither inserted nor (in this statement's
 * snapshot) found as existing. Such an item goes round once more and then
 * sees the committed row: 200 with the same id, or 409.
 *
 * Deadlines (ingest.h): the queue is kept in deadline order, so one timer at
 * its head drops what has waited too long, and a group (taken from the head)
 * is in deadline order too: its timer answers its items one deadline at a
 * time. Nothing is sent whose deadline has passed. Items that go round once
 * more keep their deadline and are put back in order.
 */
#include "agency/ingest.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "agency/ingest_group.h"
#include "core/pgpool.h"
#include "core/pgval.h"
#include "core/queue.h"

#define GROUP_MAX 1000
#define ATTEMPTS_MAX 3
#define MS_PER_S 1000.0
#define US_PER_S 1000000

static const char INGEST_SQL[] =
	"WITH input AS ("
	"  SELECT * FROM json_to_recordset($1::json) AS t("
	"    i int, id uuid, agency_id bigint, bsn_hash text, berichttype text, referentie text,"
	"    content_hash text, aanmaak timestamptz, publicatie timestamptz, eind date, papier boolean,"
	"    zaak text)"
	"), box AS ("
	/* an active account that did not turn this agency off (migration 0011's rules) */
	"  SELECT i.i, a.id AS account_id, may_get_mail(a) AS mail,"
	/* nothing that could stop the holder's mail: no death, no representation
	 * that could say so; then holder_notified (0012) is true without asking
	 * it, and a function call per message is saved */
	"    a.overleden_at IS NULL AND NOT EXISTS (SELECT 1 FROM representations r"
	"      WHERE r.account_id = a.id AND NOT r.betrokkene_ook_notificeren) AS plain"
	"  FROM input i"
	"  JOIN accounts a ON a.bsn_hash = i.bsn_hash AND a.active"
	"  WHERE NOT EXISTS (SELECT 1 FROM agencies_turned_off o"
	"    WHERE o.account_id = a.id AND o.agency_id = i.agency_id)"
	"), typ AS ("
	"  SELECT i.i FROM input i JOIN berichttypes t"
	"    ON t.agency_id = i.agency_id AND t.code = i.berichttype"
	"), ins AS ("
	"  INSERT INTO messages (id, agency_id, account_id, berichttype, referentie, content_hash,"
	"    aanmaak_tijdstip, publicatie_tijdstip, eind_datum_handelingstermijn, papieren_kopie,"
	"    zaakkenmerk)"
	"  SELECT i.id, i.agency_id, b.account_id, i.berichttype, i.referentie, i.content_hash,"
	"    i.aanmaak, coalesce(i.publicatie, now()), i.eind, i.papier, i.zaak"
	"  FROM input i JOIN box b ON b.i = i.i JOIN typ ON typ.i = i.i ORDER BY i.i"
	"  ON CONFLICT (agency_id, referentie) DO NOTHING"
	"  RETURNING id, agency_id, account_id, publicatie_tijdstip, zaakkenmerk"
	"), notif AS ("
	"  INSERT INTO notifications (message_id, account_id, due_at, representation_id)"
	/* due after publication plus the digest window, so messages arriving
	 * together for one account make one mail (delivery.c claims siblings) */
	"  SELECT ins.id, ins.account_id, greatest(ins.publicatie_tijdstip, now()) + $2::interval,"
	"    NULL::bigint"
	"  FROM ins JOIN input i ON i.id = ins.id JOIN box b ON b.i = i.i WHERE b.mail"
	/* the holder, unless a representation or a death says not (0012) */
	"    AND (b.plain OR holder_notified(ins.account_id, ins.agency_id, ins.zaakkenmerk,"
	"      ins.publicatie_tijdstip))"
	/* each representation in force at publication: its own row, to the
	 * representative, due at the same time (issue 11, migration 0012) */
	"  UNION ALL"
	"  SELECT ins.id, r.rep_account_id, greatest(ins.publicatie_tijdstip, now()) + $2::interval,"
	"    r.id"
	"  FROM ins CROSS JOIN LATERAL representations_notified(ins.account_id, ins.agency_id,"
	"    ins.zaakkenmerk, ins.publicatie_tijdstip) r"
	"  JOIN accounts ra ON ra.id = r.rep_account_id AND may_get_mail(ra)"
	"  RETURNING id, message_id, due_at, representation_id"
	"), rn AS ("
	"  SELECT message_id, array_agg(id) AS ids, min(due_at) AS due_at FROM notif"
	"  WHERE representation_id IS NOT NULL GROUP BY message_id"
	"), old AS ("
	/* a semi-join: a referentie twice in one group must not double its rows */
	"  SELECT m.agency_id, m.referentie, m.id, m.content_hash, m.publicatie_tijdstip"
	"  FROM messages m WHERE (m.agency_id, m.referentie) IN"
	"    (SELECT i.agency_id, i.referentie FROM input i WHERE i.id NOT IN (SELECT id FROM ins))"
	") "
	"SELECT i.i, ins.id IS NOT NULL, old.id, old.content_hash = i.content_hash,"
	"  b.account_id IS NOT NULL, n.id,"
	"  (extract(epoch FROM coalesce(n.due_at, rn.due_at)) * 1000)::bigint,"
	"  (extract(epoch FROM coalesce(ins.publicatie_tijdstip, old.publicatie_tijdstip)) * 1000)::bigint,"
	"  typ.i IS NOT NULL, i.agency_id, rn.ids "
	"FROM input i"
	" LEFT JOIN box b ON b.i = i.i"
	" LEFT JOIN typ ON typ.i = i.i"
	" LEFT JOIN ins ON ins.id = i.id"
	" LEFT JOIN notif n ON n.message_id = i.id AND n.representation_id IS NULL"
	" LEFT JOIN rn ON rn.message_id = i.id"
	" LEFT JOIN old ON old.agency_id = i.agency_id AND old.referentie = i.referentie "
	"ORDER BY i.i";

static const struct pgpool_stmt INGEST_STMT = {"ingest", INGEST_SQL, 2};

enum col {
	C_I,
	C_CREATED,
	C_OLD_ID,
	C_SAME,
	C_HAS_BOX,
	C_NOTIF,
	C_DUE,
	C_PUBL,
	C_TYPE_OK,
	C_AGENCY,
	C_REP_NOTIFS /* the representatives' notification ids, "{1,2}", or NULL */
};

struct ingest {
	struct app *app;
	struct ingest_queue q; /* queued, in deadline order */
	int inflight;          /* statements running */
	int inflight_items;
	int max_inflight;
	int64_t timeout_us;   /* [postgres] ingest_timeout */
	struct event *expiry; /* at the deadline of the queue's head */
	int64_t expiry_at;    /* the deadline it is armed for; 0 when not armed */
	/* answered at their deadline since the last log line (one a second at most) */
	int late_dropped, late_unconfirmed;
	int64_t late_logged_us;
};

struct group {
	struct ingest *in;
	struct ingest_item **items; /* in deadline order; NULL once answered */
	int n;
	int expired;         /* items[0 .. expired) were answered at their deadline */
	struct event *timer; /* at the deadline of items[expired] */
};

static void try_flush(struct ingest *in);
static void finish(struct ingest *in, struct ingest_item *it, enum ingest_outcome outcome);

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}

/*
 * During a stall items reach their deadline one by one, each with a timer
 * of its own; a line for each would flood the log. So: a line at the first,
 * then at most one a second with the counts since, and one when a statement
 * ends (force).
 */
static void log_late(struct ingest *in, bool force)
{
	int64_t now = mono_us();

	if (!in->late_dropped && !in->late_unconfirmed)
		return;
	if (!force && in->late_logged_us && now - in->late_logged_us < US_PER_S)
		return;
	log_warn("ingest: not committed within the ingest timeout: %d items dropped unsent "
		 "(not stored), %d answered while their statement goes on (outcome unknown)",
		 in->late_dropped, in->late_unconfirmed);
	in->late_dropped = in->late_unconfirmed = 0;
	in->late_logged_us = now;
}

/* Arms a timer to fire at a monotonic time (at once if it has passed). */
static void arm_at(struct event *ev, int64_t at_us)
{
	int64_t left = at_us - mono_us();
	if (left < 0)
		left = 0;
	struct timeval tv = {(time_t)(left / US_PER_S), (suseconds_t)(left % US_PER_S)};
	evtimer_add(ev, &tv);
}

static void on_queue_expiry(evutil_socket_t fd, short what, void *arg)
{
	struct ingest *in = arg;
	(void)fd;
	(void)what;

	in->expiry_at = 0;
	try_flush(in); /* drops what has expired, re-arms for the new head */
}

struct ingest *ingest_new(struct app *app)
{
	struct ingest *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->app = app;
	/* leave connections for auth, reads and readiness checks */
	in->max_inflight = app->cfg->pg_pool_size > 2 ? (int)app->cfg->pg_pool_size / 2 : 1;
	in->timeout_us = app->cfg->pg_ingest_timeout_ms * 1000;
	in->expiry = evtimer_new(app->base, on_queue_expiry, in);
	if (!in->expiry) {
		free(in);
		return NULL;
	}
	return in;
}

void ingest_free(struct ingest *in)
{
	if (!in)
		return;
	/* pgpool_free ran first and failed every statement, so this is empty
	 * unless memory ran out; never leave an owner without its answer */
	while (in->q.head)
		finish(in, ingest_queue_pop(&in->q), INGEST_UNAVAILABLE);
	log_late(in, true);
	event_free(in->expiry);
	free(in);
}

int64_t ingest_deadline(const struct ingest *in)
{
	return mono_us() + in->timeout_us;
}

int ingest_pending(const struct ingest *in)
{
	return in->q.n + in->inflight_items;
}

bool ingest_overloaded(const struct ingest *in, int n)
{
	return ingest_pending(in) + n > INGEST_PENDING_MAX;
}

void ingest_submit(struct ingest *in, struct ingest_item *item)
{
	if (!item->deadline_us)
		item->deadline_us = ingest_deadline(in);
	if (!item->submitted_us) /* a second round after a lost race counts from the first */
		item->submitted_us = mono_us();
	ingest_queue_push(&in->q, item);
	try_flush(in);
}

/* Drops queued items whose deadline has passed: never sent, so not stored. */
static void expire_queue(struct ingest *in)
{
	int64_t now = mono_us();
	int n = 0;

	while (in->q.head && in->q.head->deadline_us <= now) {
		n++;
		finish(in, ingest_queue_pop(&in->q), INGEST_EXPIRED);
	}
	if (n) {
		in->late_dropped += n;
		log_late(in, false);
	}
}

static void arm_expiry(struct ingest *in)
{
	if (!in->q.head) {
		if (in->expiry_at)
			evtimer_del(in->expiry);
		in->expiry_at = 0;
	} else if (in->expiry_at != in->q.head->deadline_us) {
		in->expiry_at = in->q.head->deadline_us;
		arm_at(in->expiry, in->expiry_at);
	}
}

static void finish(struct ingest *in, struct ingest_item *it, enum ingest_outcome outcome)
{
	if (it->submitted_us)
		hist_observe(&in->app->metrics.ingest_duration, &HIST_DURATION,
			     mono_us() - it->submitted_us);
	it->outcome = outcome;
	it->done(it);
}

/*
 * PostgreSQL is slow: the owners of the group's items whose deadline has
 * passed get their answer now (outcome unknown), while the statement goes
 * on. If it commits after all, nothing is lost: its notifications are still
 * scheduled (group_done), and a retry of a message answers 200 with the
 * same id. Never a 201 for a message that was not committed.
 */
static void on_group_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct group *g = arg;
	int64_t now = mono_us();
	int n = 0;
	(void)fd;
	(void)what;

	while (g->expired < g->n && g->items[g->expired]->deadline_us <= now) {
		struct ingest_item *it = g->items[g->expired];
		g->items[g->expired++] = NULL;
		n++;
		finish(g->in, it, INGEST_UNCONFIRMED);
	}
	if (n) {
		g->in->late_unconfirmed += n;
		log_late(g->in, false);
	}
	if (g->expired < g->n)
		arm_at(g->timer, g->items[g->expired]->deadline_us);
}

/* The notifications a committed group created, for Redis. */
struct sched {
	int64_t *ids, *dues, *lanes;
	size_t n, cap;
	bool failed; /* out of memory: the reconciler puts them in Redis */
};

static void sched_add(struct sched *s, int64_t id, int64_t due, int64_t lane)
{
	if (s->failed)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		int64_t *ids = realloc(s->ids, cap * sizeof(int64_t));
		if (ids)
			s->ids = ids;
		int64_t *dues = realloc(s->dues, cap * sizeof(int64_t));
		if (dues)
			s->dues = dues;
		int64_t *lanes = realloc(s->lanes, cap * sizeof(int64_t));
		if (lanes)
			s->lanes = lanes;
		if (!ids || !dues || !lanes) {
			s->failed = true;
			return;
		}
		s->cap = cap;
	}
	s->ids[s->n] = id;
	s->dues[s->n] = due;
	s->lanes[s->n] = lane;
	s->n++;
}

/* The representatives' notifications of a row: a bigint array literal "{1,2,3}". */
static void sched_add_array(struct sched *s, const char *arr, int64_t due, int64_t lane)
{
	for (const char *p = arr; *p;) {
		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		char *end;
		sched_add(s, strtoll(p, &end, 10), due, lane);
		p = end;
	}
}

/* One result row of a committed statement: its notification and its item's answer. */
static void group_row(struct group *g, const PGresult *res, int row, struct sched *s)
{
	struct ingest *in = g->in;
	int i = (int)pg_bigint(res, row, C_I);
	if (i < 0 || i >= g->n)
		return;
	struct ingest_row flags = {
		.created = pg_bool(res, row, C_CREATED),
		.has_old = !PQgetisnull(res, row, C_OLD_ID),
		.same = pg_bool(res, row, C_SAME),
		.type_ok = pg_bool(res, row, C_TYPE_OK),
		.has_box = pg_bool(res, row, C_HAS_BOX),
	};
	/* scheduled even when the owner was already answered (timeout) */
	if (flags.created && !PQgetisnull(res, row, C_NOTIF))
		sched_add(s, pg_bigint(res, row, C_NOTIF), pg_bigint(res, row, C_DUE),
			  pg_bigint(res, row, C_AGENCY));
	if (flags.created && !PQgetisnull(res, row, C_REP_NOTIFS))
		sched_add_array(s, PQgetvalue(res, row, C_REP_NOTIFS), pg_bigint(res, row, C_DUE),
				pg_bigint(res, row, C_AGENCY));
	if (flags.created)
		atomic_fetch_add(&in->app->metrics.messages_accepted, 1);
	struct ingest_item *it = g->items[i];
	if (!it)
		return; /* answered already (deadline), or reported twice */
	g->items[i] = NULL;
	if (!PQgetisnull(res, row, C_PUBL))
		it->publicatie_ms = pg_bigint(res, row, C_PUBL);
	bool again;
	enum ingest_outcome outcome = ingest_row_outcome(&flags, &again);
	if (outcome == INGEST_CREATED)
		uuid_format(&it->id, it->bericht_id);
	else if (flags.has_old)
		snprintf(it->bericht_id, sizeof(it->bericht_id), "%s",
			 PQgetvalue(res, row, C_OLD_ID));
	if (again && ++it->attempts < ATTEMPTS_MAX)
		ingest_submit(in, it);
	else
		finish(in, it, outcome);
}

/* A statement that committed: every row, then Redis for its notifications. */
static void group_committed(struct group *g, const PGresult *res)
{
	struct ingest *in = g->in;
	int rows = PQntuples(res);
	struct sched s = {0};

	if (g->expired)
		log_info("ingest: a group with %d items answered at their deadline has "
			 "committed after all",
			 g->expired);
	for (int row = 0; row < rows; row++)
		group_row(g, res, row, &s);
	/* items the committed statement did not report (cannot happen; never
	 * leave one hanging, and do not claim it was not stored) */
	for (int k = 0; k < g->n; k++)
		if (g->items[k])
			finish(in, g->items[k], INGEST_UNCONFIRMED);

	if (s.failed)
		log_warn("ingest: out of memory for the schedule; the reconciler will queue it");
	atomic_fetch_add(&in->app->metrics.notifications_scheduled, (long long)s.n);
	if (s.n)
		queue_loop_schedule_lanes(in->app->queue, s.ids, s.lanes, s.dues, s.n);
	free(s.ids);
	free(s.dues);
	free(s.lanes);
}

/*
 * The statement's end. On an error without a result the statement may have
 * committed (a connection lost while it ran) unless it never left (the pool
 * says so, or may_have_run is false): only then is it "not stored".
 */
static void group_done(struct group *g, const PGresult *res, const char *err, bool may_have_run)
{
	struct ingest *in = g->in;

	in->inflight--;
	in->inflight_items -= g->n;
	if (g->timer)
		event_free(g->timer);
	log_late(in, true);

	if (err) {
		/* an error result means the transaction rolled back */
		bool unknown = !res && may_have_run && !pgpool_never_sent(err);
		log_warn("ingest: group of %d %s: %.200s", g->n,
			 unknown ? "may or may not be stored" : "not stored", err);
		for (int k = 0; k < g->n; k++)
			if (g->items[k])
				finish(in, g->items[k],
				       unknown ? INGEST_UNCONFIRMED : INGEST_UNAVAILABLE);
	} else {
		group_committed(g, res);
	}
	free(g->items);
	free(g);
	try_flush(in);
}

static void on_group_done(const PGresult *res, const char *err, void *arg)
{
	group_done(arg, res, err, true);
}

/*
 * A second statement runs beside the first only when a big group is
 * waiting (batches): then two backends use two cores. Small groups of
 * single messages wait for the running statement instead and go together
 * in the next one; on a small machine that is faster than two statements
 * with half as many items each (measured with make bench: about 1.5x),
 * because per-statement costs (planning, commit) dominate small groups.
 */
#define GROUP_PARALLEL_MIN 256

static void try_flush(struct ingest *in)
{
	expire_queue(in);
	while (in->q.head && in->inflight < in->max_inflight &&
	       (in->inflight == 0 || in->q.n >= GROUP_PARALLEL_MIN)) {
		struct group *g = calloc(1, sizeof(*g));
		int n = in->q.n < GROUP_MAX ? in->q.n : GROUP_MAX;
		if (!g || !(g->items = calloc((size_t)n, sizeof(*g->items)))) {
			free(g);
			log_error("ingest: out of memory");
			break;
		}
		g->in = in;
		while (g->n < n)
			g->items[g->n++] = ingest_queue_pop(&in->q);
		hist_observe(&in->app->metrics.ingest_group, &HIST_SIZE, g->n);
		char *payload = ingest_group_param(g->items, g->n);
		in->inflight++;
		in->inflight_items += g->n;
		g->timer = evtimer_new(in->app->base, on_group_deadline, g);
		if (g->timer)
			arm_at(g->timer, g->items[0]->deadline_us);
		else
			log_error("ingest: out of memory for a group's timer");
		char digest[48];
		snprintf(digest, sizeof(digest), "%" PRId64 " milliseconds",
			 in->app->cfg->notify_digest_window_ms);
		const char *params[] = {payload, digest};
		/* a group is no one request's: its lines name none (each answer does) */
		char rid[LOG_REQUEST_ID_MAX + 1];
		snprintf(rid, sizeof(rid), "%s", log_request_id());
		log_set_request_id(NULL);
		if (!payload ||
		    !pgpool_query_stmt(in->app->pg, &INGEST_STMT, params, on_group_done, g))
			group_done(g, NULL, "out of memory or shutting down", false);
		log_set_request_id(rid);
		free(payload);
	}
	arm_expiry(in);
}
