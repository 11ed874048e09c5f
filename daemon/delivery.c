/*
 * delivery.c - delivery workers (see delivery.h).
 *
 * Exactly-once where it can be had, at-least-once where it cannot:
 * a row is claimed in PostgreSQL (scheduled -> sending) before its mail is
 * sent, so two workers (or two daemons) never send one notification. The
 * only window for a resend is "the relay said 250, the row is not yet marked
 * sent" (a crash right there); the reconciler then returns the stale
 * 'sending' row to 'scheduled' and the mail goes again with the same
 * Message-ID, derived from the notification id.
 *
 * Digest: a claim takes, besides the ids Redis handed out, every other
 * scheduled notification of the same account and kind that falls due within
 * the digest window, and one mail covers them all, naming each sender once.
 * Their Redis entries come up later, find nothing to claim, and are acked.
 *
 * Who gets mail is decided at claim time (an account can change its mind
 * between scheduling and sending): an active account, a verified address
 * that did not hard-bounce, notifications on, the agency not turned off
 * (unless mandatory), the message not deleted; reminders also need the
 * message unopened and reminders on. Anything else is cancelled.
 */
#include "delivery.h"

#include <ctype.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mime.h"
#include "common/quiet.h"
#include "common/template.h"
#include "common/timefmt.h"
#include "pgpool.h" /* struct pgpool_stmt only: workers use blocking libpq */
#include "queue.h"
#include "smtp.h"

#define PATH_MAX_LEN 1024
#define ADDR_MAX 320
#define AGENCY_MAX 256
#define SENDERS_MAX 1024
#define CODE_MAX 16
#define REQUEUE_EVERY_MS 1000
#define RECONNECT_PAUSE_MS 1000
#define DOMAIN_SLOTS 256
#define MS_PER_S 1000

/* Mail kinds and languages, indexes into the template table. */
enum mail_kind { MAIL_NEW, MAIL_DIGEST, MAIL_REPEAT, MAIL_VERIFY, MAIL_KINDS };
enum mail_lang { LANG_NL, LANG_EN, LANGS };

static const char *const template_names[MAIL_KINDS] = {
	"nieuw-bericht", "nieuwe-berichten", "herinnering", "verificatie",
};
static const char *const lang_names[LANGS] = {"nl", "en"};

struct domain_bucket {
	uint64_t hash;
	double tokens;
	int64_t ms;
};

struct delivery {
	struct app *app;
	struct template tmpl[MAIL_KINDS][LANGS];
	char from_name[ADDR_MAX];
	char from_addr[ADDR_MAX];
	bool quiet_enabled;
	int quiet_start, quiet_end;
	pthread_t *threads;
	int nthreads;
	atomic_bool stop;
	pthread_mutex_t lock;      /* guards the condvar and the rate buckets */
	pthread_cond_t wake;
	double bucket;             /* global rate limit tokens */
	int64_t bucket_ms;
	struct domain_bucket domains[DOMAIN_SLOTS];
};

struct worker {
	struct delivery *d;
	int index;
	PGconn *pg;
	unsigned prepared; /* bit per WS_*: prepared on this pg connection */
	redisContext *rc;
	int64_t last_requeue_ms;
};

/* One claimed notification row. */
struct claimed {
	int64_t id;
	int64_t lane;              /* agency id; 0 for verification mails */
	char kind[8];
	char account[40];
	char rcpt[ADDR_MAX];
	enum mail_lang lang;
	char agency[AGENCY_MAX];
	char code[CODE_MAX];
	int attempts;
	int64_t created_ms;
	int64_t due_ms;
};

/* One mail: a run of claimed rows of the same account and kind. */
struct group {
	int first, count;          /* indexes into the claimed array */
	struct smtp_mail mail;
	char envfrom[ADDR_MAX];
	char envid[32];
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, waking at once when the daemon stops. */
static void pause_ms(struct delivery *d, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / MS_PER_S;
	ts.tv_nsec += (ms % MS_PER_S) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&d->lock);
	if (!atomic_load(&d->stop))
		pthread_cond_timedwait(&d->wake, &d->lock, &ts);
	pthread_mutex_unlock(&d->lock);
}

static uint64_t domain_hash(const char *addr)
{
	const char *at = strrchr(addr, '@');
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const char *p = at ? at + 1 : addr; *p; p++) {
		h ^= (uint64_t)tolower((unsigned char)*p);
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

/* Refills a bucket at rate tokens/s, at most one second's worth; caller holds d->lock. */
static void bucket_refill(double *tokens, int64_t *last_ms, int64_t rate, int64_t now)
{
	*tokens += (double)(now - *last_ms) * (double)rate / MS_PER_S;
	if (*tokens > (double)rate)
		*tokens = (double)rate;
	*last_ms = now;
}

/*
 * Global and per-domain token buckets over all workers of this instance: a
 * mail goes when both have a token. A domain shares its slot with colliding
 * domains, which can only slow sending down, never speed it up.
 */
static void rate_wait(struct delivery *d, const char *rcpt)
{
	const struct config *cfg = d->app->cfg;
	int64_t rate = cfg->delivery_rate_limit, drate = cfg->delivery_domain_rate_limit;
	if (rate <= 0 && drate <= 0)
		return;
	uint64_t h = domain_hash(rcpt);
	for (;;) {
		pthread_mutex_lock(&d->lock);
		int64_t now = mono_ms();
		struct domain_bucket *b = &d->domains[h % DOMAIN_SLOTS];
		if (b->hash != h) {
			b->hash = h;
			b->tokens = drate > 0 ? (double)drate : 0;
			b->ms = now;
		}
		if (rate > 0)
			bucket_refill(&d->bucket, &d->bucket_ms, rate, now);
		if (drate > 0)
			bucket_refill(&b->tokens, &b->ms, drate, now);
		bool ok = (rate <= 0 || d->bucket >= 1.0) && (drate <= 0 || b->tokens >= 1.0);
		if (ok) {
			if (rate > 0)
				d->bucket -= 1.0;
			if (drate > 0)
				b->tokens -= 1.0;
		}
		pthread_mutex_unlock(&d->lock);
		if (ok || atomic_load(&d->stop))
			return;
		int64_t slowest = rate > 0 && (drate <= 0 || rate < drate) ? rate : drate;
		pause_ms(d, MS_PER_S / slowest + 1);
	}
}

static bool split_from(const char *from, char *name, char *addr)
{
	const char *lt = strchr(from, '<');
	name[0] = '\0';
	if (!lt) {
		snprintf(addr, ADDR_MAX, "%s", from);
	} else {
		const char *gt = strchr(lt, '>');
		if (!gt || gt[1] != '\0')
			return false;
		size_t nl = (size_t)(lt - from);
		while (nl > 0 && from[nl - 1] == ' ')
			nl--;
		snprintf(name, ADDR_MAX, "%.*s", (int)nl, from);
		snprintf(addr, ADDR_MAX, "%.*s", (int)(gt - lt - 1), lt + 1);
	}
	return mime_addr_valid(addr) && mime_header_safe(name);
}

static bool worker_connect(struct worker *w)
{
	const struct config *cfg = w->d->app->cfg;

	if (!w->pg || PQstatus(w->pg) != CONNECTION_OK) {
		if (w->pg)
			PQfinish(w->pg);
		w->pg = PQconnectdb(cfg->pg_conninfo);
		w->prepared = 0;
		if (PQstatus(w->pg) != CONNECTION_OK) {
			log_warn("delivery[%d]: PostgreSQL: %.*s", w->index,
				 (int)strcspn(PQerrorMessage(w->pg), "\n"), PQerrorMessage(w->pg));
			return false;
		}
	}
	if (!w->rc || w->rc->err) {
		if (w->rc)
			redisFree(w->rc);
		w->rc = queue_sync_connect(cfg->redis_host, (int)cfg->redis_port);
		if (!w->rc)
			return false;
	}
	return true;
}

/* Formats ids as a PostgreSQL array literal "{1,2,3}"; caller frees. */
static char *id_array(const int64_t *ids, int n)
{
	size_t cap = (size_t)n * 21 + 3;
	char *s = malloc(cap);
	size_t len = 0;
	if (!s)
		return NULL;
	s[len++] = '{';
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

/*
 * A statement that failed because the connection had gone (PostgreSQL was
 * restarted while this worker was idle or sending) runs once more on a new
 * connection. Without that, the first claim after a restart left its batch
 * in flight until the visibility timeout, and a lost record of mails the
 * relay had accepted made the reconciler send them again. Both statements
 * may run twice: a claim finds its rows no longer 'scheduled', a record
 * finds them no longer 'sending'.
 */
static bool reconnected(struct worker *w)
{
	if (PQstatus(w->pg) != CONNECTION_BAD)
		return false;
	log_info("delivery[%d]: PostgreSQL connection lost; reconnecting", w->index);
	return worker_connect(w);
}

/*
 * The two statements every batch runs (claim and record) are prepared once
 * per connection: their planning (several CTEs and joins) cost as much as
 * their execution for a batch of 100. st == NULL runs sql unprepared.
 */
enum { WS_CLAIM, WS_SENT };

static PGresult *run_once(struct worker *w, int which, const struct pgpool_stmt *st,
			  const char *sql, int n, const char *const *params)
{
	if (st && !(w->prepared & (1u << which))) {
		PGresult *res = PQprepare(w->pg, st->name, st->sql, st->nparams, NULL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			log_warn("delivery[%d]: prepare %s failed: %.*s", w->index, st->name,
				 (int)strcspn(PQresultErrorMessage(res), "\n"),
				 PQresultErrorMessage(res));
		PQclear(res);
		if (!ok)
			return NULL;
		w->prepared |= 1u << which;
	}
	PGresult *res = st ? PQexecPrepared(w->pg, st->name, n, params, NULL, NULL, 0)
			   : PQexecParams(w->pg, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType status = PQresultStatus(res);
	if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
		log_warn("delivery[%d]: %s failed: %.*s", w->index, st ? st->name : "query",
			 (int)strcspn(PQresultErrorMessage(res), "\n"), PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

static PGresult *run(struct worker *w, int which, const struct pgpool_stmt *st, const char *sql,
		     int n, const char *const *params)
{
	PGresult *res = run_once(w, which, st, sql, n, params);
	if (!res && reconnected(w))
		res = run_once(w, which, st, sql, n, params);
	return res;
}

static PGresult *exec(struct worker *w, const char *sql, int n, const char *const *params)
{
	return run(w, -1, NULL, sql, n, params);
}

static PGresult *exec_stmt(struct worker *w, int which, const struct pgpool_stmt *st,
			   const char *const *params)
{
	return run(w, which, st, NULL, st->nparams, params);
}

static void exec_discard(struct worker *w, const char *sql, int n, const char *const *params)
{
	PGresult *res = exec(w, sql, n, params);
	if (res)
		PQclear(res);
}

/*
 * $1 ids Redis handed out, $2 digest window, $3 quiet hours now (only
 * verification mails go out then). Returns every examined row with its
 * verdict; eligible rows are now 'sending', the others 'cancelled'.
 */
static const char CLAIM_SQL[] =
	"WITH p AS ("
	"  SELECT id, account_id, kind FROM notifications"
	"  WHERE id = ANY($1::bigint[]) AND state = 'scheduled'"
	"    AND due_at <= now() + interval '1 second' AND (NOT $3::boolean OR kind = 'verify')"
	"  FOR UPDATE SKIP LOCKED"
	"), s AS ("
	"  SELECT n.id, n.account_id, n.kind FROM notifications n"
	"  WHERE n.state = 'scheduled' AND n.kind IN ('new', 'repeat')"
	"    AND (n.account_id, n.kind) IN (SELECT account_id, kind FROM p WHERE kind <> 'verify')"
	"    AND n.id <> ALL($1::bigint[]) AND n.due_at <= now() + $2::interval"
	"  FOR UPDATE OF n SKIP LOCKED"
	"), r AS (SELECT * FROM p UNION ALL SELECT * FROM s"
	"), info AS ("
	"  SELECT n.id, n.kind, n.account_id, coalesce(m.agency_id, 0) AS lane,"
	"    CASE WHEN n.kind = 'verify' THEN n.recipient ELSE a.email END AS rcpt,"
	"    a.language, coalesce(ag.name, '') AS agency, coalesce(n.payload->>'code', '') AS code,"
	"    n.attempts + 1 AS attempts,"
	"    (extract(epoch FROM n.created_at) * 1000)::bigint AS created_ms,"
	"    (extract(epoch FROM n.due_at) * 1000)::bigint AS due_ms,"
	"    CASE"
	"      WHEN NOT a.active THEN false"
	"      WHEN n.kind = 'verify' THEN n.recipient IS NOT NULL"
	"      WHEN a.email IS NULL OR NOT a.email_notifications OR a.email_bounced_at IS NOT NULL"
	"        THEN false"
	"      WHEN m.id IS NULL OR m.deleted_at IS NOT NULL THEN false"
	"      WHEN n.kind = 'repeat' AND (m.opened_at IS NOT NULL OR NOT a.repeat_notifications)"
	"        THEN false"
	"      WHEN NOT ag.mandatory AND EXISTS (SELECT 1 FROM subscriptions sub"
	"        WHERE sub.account_id = a.id AND sub.agency_id = m.agency_id AND NOT sub.active)"
	"        THEN false"
	"      ELSE true END AS ok"
	"  FROM r JOIN notifications n ON n.id = r.id JOIN accounts a ON a.id = n.account_id"
	"  LEFT JOIN messages m ON m.id = n.message_id LEFT JOIN agencies ag ON ag.id = m.agency_id"
	"), upd AS ("
	"  UPDATE notifications n SET"
	"    state = CASE WHEN info.ok THEN 'sending' ELSE 'cancelled' END,"
	"    claimed_at = CASE WHEN info.ok THEN now() END,"
	"    attempts = CASE WHEN info.ok THEN info.attempts ELSE n.attempts END"
	"  FROM info WHERE n.id = info.id RETURNING n.id"
	") "
	"SELECT id, kind, account_id, lane, coalesce(rcpt, ''), language, agency, code, attempts,"
	"  created_ms, due_ms, ok FROM info ORDER BY account_id, kind, id";

enum claim_col {
	CC_ID, CC_KIND, CC_ACCOUNT, CC_LANE, CC_RCPT, CC_LANG, CC_AGENCY, CC_CODE, CC_ATTEMPTS,
	CC_CREATED, CC_DUE, CC_OK
};

static const struct pgpool_stmt CLAIM_STMT = {"claim", CLAIM_SQL, 3};

/* Claims; fills out[] with the eligible rows. Returns their number, -1 on error. */
static int claim(struct worker *w, const int64_t *ids, int n, bool quiet, struct claimed **out)
{
	struct app *app = w->d->app;
	char digest[48];
	char *arr = id_array(ids, n);
	snprintf(digest, sizeof(digest), "%" PRId64 " milliseconds",
		 app->cfg->notify_digest_window_ms);
	const char *params[] = {arr, digest, quiet ? "t" : "f"};
	PGresult *res = arr ? exec_stmt(w, WS_CLAIM, &CLAIM_STMT, params) : NULL;
	free(arr);
	if (!res)
		return -1;
	int rows = PQntuples(res), k = 0;
	*out = calloc((size_t)rows + 1, sizeof(**out));
	if (!*out) {
		PQclear(res);
		return -1;
	}
	long long cancelled = 0;
	for (int i = 0; i < rows; i++) {
		if (PQgetvalue(res, i, CC_OK)[0] != 't') {
			cancelled++;
			continue;
		}
		struct claimed *c = &(*out)[k++];
		c->id = strtoll(PQgetvalue(res, i, CC_ID), NULL, 10);
		snprintf(c->kind, sizeof(c->kind), "%s", PQgetvalue(res, i, CC_KIND));
		snprintf(c->account, sizeof(c->account), "%s", PQgetvalue(res, i, CC_ACCOUNT));
		c->lane = strtoll(PQgetvalue(res, i, CC_LANE), NULL, 10);
		snprintf(c->rcpt, sizeof(c->rcpt), "%s", PQgetvalue(res, i, CC_RCPT));
		c->lang = strcmp(PQgetvalue(res, i, CC_LANG), "en") == 0 ? LANG_EN : LANG_NL;
		snprintf(c->agency, sizeof(c->agency), "%s", PQgetvalue(res, i, CC_AGENCY));
		snprintf(c->code, sizeof(c->code), "%s", PQgetvalue(res, i, CC_CODE));
		c->attempts = atoi(PQgetvalue(res, i, CC_ATTEMPTS));
		c->created_ms = strtoll(PQgetvalue(res, i, CC_CREATED), NULL, 10);
		c->due_ms = strtoll(PQgetvalue(res, i, CC_DUE), NULL, 10);
	}
	PQclear(res);
	if (cancelled) {
		atomic_fetch_add(&app->metrics.notifications_cancelled, cancelled);
		log_debug("delivery[%d]: %lld notifications cancelled at claim", w->index, cancelled);
	}
	return k;
}

/* Copies s into out, control characters turned into spaces (no header injection). */
static void clean_text(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	for (; *s && n + 1 < cap; s++)
		out[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
	out[n] = '\0';
}

/* "A", "A en B", "A, B en C" (or "and" in English), each sender once. */
static void join_senders(const struct claimed *c, int n, enum mail_lang lang, char *out,
			 size_t cap, int *distinct)
{
	const char *names[SENDERS_MAX / 8];
	int k = 0;
	for (int i = 0; i < n && k < (int)(sizeof(names) / sizeof(names[0])); i++) {
		bool seen = false;
		for (int j = 0; j < k && !seen; j++)
			seen = strcmp(names[j], c[i].agency) == 0;
		if (!seen)
			names[k++] = c[i].agency;
	}
	size_t len = 0;
	out[0] = '\0';
	for (int i = 0; i < k && len < cap; i++) {
		char clean[AGENCY_MAX];
		clean_text(names[i], clean, sizeof(clean));
		const char *sep = i == 0 ? "" : i == k - 1 ? (lang == LANG_EN ? " and " : " en ") : ", ";
		len += (size_t)snprintf(out + len, cap - len, "%s%s", sep, clean);
	}
	*distinct = k;
}

/* Renders the mail for group g; returns the message text or NULL. */
static char *render(struct delivery *d, const struct claimed *c, int n)
{
	const struct config *cfg = d->app->cfg;
	enum mail_kind kind = strcmp(c->kind, "verify") == 0 ? MAIL_VERIFY
			      : strcmp(c->kind, "repeat") == 0 ? MAIL_REPEAT
			      : n > 1				  ? MAIL_DIGEST
								  : MAIL_NEW;
	const struct template *t = &d->tmpl[kind][c->lang];
	char senders[SENDERS_MAX], count[16], msgid[128];
	int distinct = 0;

	join_senders(c, n, c->lang, senders, sizeof(senders), &distinct);
	snprintf(count, sizeof(count), "%d", n);
	const struct template_var vars[] = {
		{"afzenders", senders}, {"aantal", count}, {"code", c->code},
	};
	/* the Message-ID derives from the group's first (lowest) notification id */
	snprintf(msgid, sizeof(msgid), "<notificatie.%" PRId64 "@%s>", c->id,
		 cfg->smtp_bounce_domain);

	char *subject = template_render(t->subject, vars, sizeof(vars) / sizeof(vars[0]));
	char *body = template_render(t->body, vars, sizeof(vars) / sizeof(vars[0]));
	struct mime_mail m = {
		.from_name = d->from_name[0] ? d->from_name : NULL,
		.from_addr = d->from_addr,
		.to_addr = c->rcpt,
		.subject = subject,
		.body = body,
		.message_id = msgid,
		.date_unix = timefmt_now_ms() / MS_PER_S,
		.language = lang_names[c->lang],
	};
	char *text = (subject && body) ? mime_build(&m, NULL) : NULL;
	free(subject);
	free(body);
	return text;
}

static int64_t retry_delay_ms(const struct config *cfg, int attempts)
{
	int64_t delay = cfg->delivery_retry_base_ms;
	for (int i = 1; i < attempts && delay < cfg->delivery_retry_max_ms; i++)
		delay *= 2;
	if (delay > cfg->delivery_retry_max_ms)
		delay = cfg->delivery_retry_max_ms;
	/* jitter: 50..100% so a relay outage does not end in a thundering herd */
	return delay / 2 + random() % (delay / 2 + 1);
}

static void observe_lag(struct metrics *m, int64_t lag_ms)
{
	static const int64_t bounds[METRICS_LAG_BUCKETS] = METRICS_LAG_BOUNDS;
	if (lag_ms < 0)
		lag_ms = 0;
	for (int i = 0; i < METRICS_LAG_BUCKETS; i++)
		if (bounds[i] < 0 || lag_ms <= bounds[i])
			atomic_fetch_add(&m->lag_bucket[i], 1);
	atomic_fetch_add(&m->lag_count, 1);
	atomic_fetch_add(&m->lag_sum_ms, lag_ms);
}

/*
 * Marks ids sent and schedules what follows from them: the first reminder
 * after a 'new' mail, the next one after a reminder while fewer than
 * max_repeats were sent. A reminder is due repeat_after (per type override)
 * after publication, or repeat_before_deadline before the end of the
 * handling period when the agency gave one and that is still ahead.
 */
static const char SENT_SQL[] =
	"WITH s AS ("
	/* joined to the ids: WHERE id = ANY(...) AND state = 'sending' was
	 * planned as a bitmap scan of the sending index, which keeps the entries
	 * of every row that has left 'sending' until the next vacuum (a bitmap
	 * scan never marks them dead), so each record read the whole backlog;
	 * the join is planned as a plain index scan, which does */
	"  UPDATE notifications n SET state = 'sent', sent_at = now(), last_error = NULL"
	"  FROM unnest($1::bigint[]) AS u(id) WHERE n.id = u.id AND n.state = 'sending'"
	"  RETURNING n.id, n.message_id, n.account_id, n.kind"
	"), rep AS ("
	"  INSERT INTO notifications (message_id, account_id, kind, due_at)"
	"  SELECT s.message_id, s.account_id, 'repeat', greatest(now(), CASE"
	"    WHEN s.kind = 'new' AND m.eind_datum_handelingstermijn IS NOT NULL"
	"      AND (m.eind_datum_handelingstermijn::timestamp AT TIME ZONE $5) - $3::interval > now()"
	"      THEN (m.eind_datum_handelingstermijn::timestamp AT TIME ZONE $5) - $3::interval"
	"    WHEN s.kind = 'new' THEN m.publicatie_tijdstip + coalesce(t.repeat_after, $2::interval)"
	"    ELSE now() + coalesce(t.repeat_after, $2::interval) END)"
	"  FROM s JOIN messages m ON m.id = s.message_id"
	"  LEFT JOIN berichttypes t ON t.agency_id = m.agency_id AND t.code = m.berichttype"
	"  WHERE s.kind IN ('new', 'repeat') AND m.opened_at IS NULL AND m.deleted_at IS NULL"
	"    AND (SELECT count(*) FROM notifications x WHERE x.message_id = s.message_id"
	"         AND x.kind = 'repeat' AND x.state <> 'cancelled') < $4::int"
	"  RETURNING id, (extract(epoch FROM due_at) * 1000)::bigint AS due_ms, message_id"
	") "
	"SELECT rep.id, rep.due_ms, m.agency_id FROM rep JOIN messages m ON m.id = rep.message_id";

static const struct pgpool_stmt SENT_STMT = {"sent", SENT_SQL, 5};

static void record_sent(struct worker *w, const int64_t *ids, int n)
{
	const struct config *cfg = w->d->app->cfg;
	char after[48], before[48], maxrep[16];
	if (n == 0)
		return;
	char *arr = id_array(ids, n);
	snprintf(after, sizeof(after), "%" PRId64 " milliseconds", cfg->notify_repeat_after_ms);
	snprintf(before, sizeof(before), "%" PRId64 " milliseconds",
		 cfg->notify_repeat_before_deadline_ms);
	snprintf(maxrep, sizeof(maxrep), "%" PRId64, cfg->notify_max_repeats);
	const char *params[] = {arr, after, before, maxrep, cfg->notify_timezone};
	PGresult *res = arr ? exec_stmt(w, WS_SENT, &SENT_STMT, params) : NULL;
	free(arr);
	/* if this failed the rows stay 'sending'; the reconciler resends after the
	 * visibility timeout: the documented at-least-once window */
	if (!res)
		return;
	int nrep = PQntuples(res);
	struct queue_item *its = calloc((size_t)nrep + 1, sizeof(*its));
	int64_t *dues = calloc((size_t)nrep + 1, sizeof(*dues));
	for (int i = 0; its && dues && i < nrep; i++) {
		its[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		its[i].lane = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		dues[i] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
	}
	if (nrep > 0 && (!its || !dues ||
			 !queue_sync_schedule(w->rc, cfg->redis_key_prefix, its, dues, (size_t)nrep)))
		log_warn("delivery[%d]: reminders not queued; the reconciler will", w->index);
	atomic_fetch_add(&w->d->app->metrics.notifications_scheduled, nrep);
	free(its);
	free(dues);
	PQclear(res);
}

static void record_one(struct worker *w, int64_t id, const char *state, int64_t due_ms,
		       const char *reason)
{
	char idbuf[24], due[TIMEFMT_RFC3339_LEN];
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	timefmt_format_rfc3339(due_ms, due);
	const char *params[] = {idbuf, state, due, reason};
	exec_discard(w,
		     "UPDATE notifications SET state = $2, last_error = $4, "
		     "due_at = CASE WHEN $2 = 'scheduled' THEN $3::timestamptz ELSE due_at END, "
		     "claimed_at = NULL WHERE id = $1 AND state = 'sending'",
		     4, params);
}

/* A hard bounce stops mail to the address until the citizen fixes it (portal prompt). */
static void record_bounce(struct worker *w, const struct claimed *c, const char *reason)
{
	record_one(w, c->id, "bounced", 0, reason);
	if (strcmp(c->kind, "verify") == 0)
		return; /* an unverified address was never the account's */
	const char *params[] = {c->account, c->rcpt};
	exec_discard(w,
		     "UPDATE accounts SET email_bounced_at = now() "
		     "WHERE id = $1 AND email = $2 AND email_bounced_at IS NULL",
		     2, params);
}

/* Groups claimed rows (sorted by account, kind, id) into mails. */
static int make_groups(const struct claimed *cl, int n, struct group *g)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		bool join = k > 0 && strcmp(cl[i].kind, "verify") != 0 &&
			    strcmp(cl[i].account, cl[g[k - 1].first].account) == 0 &&
			    strcmp(cl[i].kind, cl[g[k - 1].first].kind) == 0;
		if (join) {
			g[k - 1].count++;
		} else {
			memset(&g[k], 0, sizeof(g[k]));
			g[k].first = i;
			g[k].count = 1;
			k++;
		}
	}
	return k;
}

/*
 * Quiet hours: nothing but verification mails is claimed. The taken ids go
 * back to Redis due at the window's end, and their rows are moved there too
 * so the reconciler does not put them back early.
 */
static void defer_quiet(struct worker *w, const struct queue_item *items, int n, int64_t end_ms)
{
	const struct config *cfg = w->d->app->cfg;
	int64_t *ids = calloc((size_t)n + 1, sizeof(*ids));
	char due[TIMEFMT_RFC3339_LEN];
	if (!ids)
		return;
	for (int i = 0; i < n; i++) {
		ids[i] = items[i].id;
		queue_sync_retry(w->rc, cfg->redis_key_prefix, &items[i], end_ms);
	}
	char *arr = id_array(ids, n);
	timefmt_format_rfc3339(end_ms, due);
	const char *params[] = {arr, due};
	if (arr)
		exec_discard(w,
			     "UPDATE notifications SET due_at = greatest(due_at, $2::timestamptz) "
			     "WHERE id = ANY($1::bigint[]) AND state = 'scheduled' AND kind <> 'verify'",
			     2, params);
	free(arr);
	free(ids);
}

static void process_batch(struct worker *w, const struct queue_item *items, int n)
{
	struct delivery *d = w->d;
	struct app *app = d->app;
	const struct config *cfg = app->cfg;
	struct claimed *cl = NULL;
	struct group *groups = NULL;
	int64_t *sent = NULL, *ids = calloc((size_t)n, sizeof(*ids));
	int nsent = 0, ng = 0;
	time_t quiet_end = 0;
	bool quiet = d->quiet_enabled &&
		     quiet_contains(time(NULL), d->quiet_start, d->quiet_end, &quiet_end);

	if (!ids)
		return;
	for (int i = 0; i < n; i++)
		ids[i] = items[i].id;
	int nc = claim(w, ids, n, quiet, &cl);
	if (nc < 0) {
		/* PostgreSQL failed: leave the ids in flight, so they come back
		 * after the visibility timeout instead of waiting for the reconciler */
		free(ids);
		return;
	}
	if (quiet) {
		/* whatever was not a verification mail waits for the end of the window */
		struct queue_item *later = calloc((size_t)n, sizeof(*later));
		int nl = 0;
		for (int i = 0; later && i < n; i++) {
			bool claimed = false;
			for (int j = 0; j < nc && !claimed; j++)
				claimed = cl[j].id == items[i].id;
			if (!claimed)
				later[nl++] = items[i];
		}
		if (nl)
			defer_quiet(w, later, nl, (int64_t)quiet_end * MS_PER_S);
		free(later);
	}

	groups = calloc((size_t)nc + 1, sizeof(*groups));
	sent = calloc((size_t)nc + 1, sizeof(*sent));
	if (!groups || !sent)
		goto out;
	ng = make_groups(cl, nc, groups);

	/* render; a group that cannot be rendered fails for good */
	struct smtp_mail *mails = calloc((size_t)ng + 1, sizeof(*mails));
	int *gidx = calloc((size_t)ng + 1, sizeof(*gidx));
	int nm = 0;
	for (int g = 0; mails && gidx && g < ng; g++) {
		const struct claimed *c = &cl[groups[g].first];
		char *text = render(d, c, groups[g].count);
		if (!text) {
			log_error("delivery[%d]: notification %" PRId64 " cannot be rendered",
				  w->index, c->id);
			for (int k = 0; k < groups[g].count; k++)
				record_one(w, c[k].id, "failed", 0, "cannot render mail");
			atomic_fetch_add(&app->metrics.notifications_failed, groups[g].count);
			continue;
		}
		snprintf(groups[g].envfrom, sizeof(groups[g].envfrom), "bounce+%" PRId64 "@%s",
			 c->id, cfg->smtp_bounce_domain);
		snprintf(groups[g].envid, sizeof(groups[g].envid), "berichtd-%" PRId64, c->id);
		mails[nm].envelope_from = groups[g].envfrom;
		mails[nm].envid = groups[g].envid;
		mails[nm].rcpt = c->rcpt;
		mails[nm].text = text;
		gidx[nm++] = g;
		rate_wait(d, c->rcpt);
	}

	if (nm > 0) {
		struct smtp_relay relay = {cfg->smtp_host, (int)cfg->smtp_port, cfg->smtp_helo,
					   (long)(cfg->smtp_timeout_ms / MS_PER_S)};
		smtp_send_batch(&relay, mails, (size_t)nm);
	}

	int64_t now = timefmt_now_ms();
	for (int i = 0; i < nm; i++) {
		const struct group *g = &groups[gidx[i]];
		const struct claimed *c = &cl[g->first];
		switch (mails[i].result) {
		case SMTP_SENT:
			for (int k = 0; k < g->count; k++) {
				sent[nsent++] = c[k].id;
				observe_lag(&app->metrics, now - c[k].due_ms);
			}
			atomic_fetch_add(&app->metrics.mails_sent, 1);
			break;
		case SMTP_PERMFAIL:
			log_info("delivery[%d]: notification %" PRId64 " bounced: %s", w->index,
				 c->id, mails[i].reason);
			for (int k = 0; k < g->count; k++)
				record_bounce(w, &c[k], mails[i].reason);
			atomic_fetch_add(&app->metrics.notifications_bounced, g->count);
			break;
		case SMTP_TEMPFAIL:
			for (int k = 0; k < g->count; k++) {
				const struct claimed *x = &c[k];
				int64_t due = now + retry_delay_ms(cfg, x->attempts);
				if (due > x->created_ms + cfg->delivery_retry_span_ms) {
					log_warn("delivery[%d]: notification %" PRId64
						 " given up after %d attempts: %s",
						 w->index, x->id, x->attempts, mails[i].reason);
					record_one(w, x->id, "failed", 0, mails[i].reason);
					atomic_fetch_add(&app->metrics.notifications_failed, 1);
					continue;
				}
				log_info("delivery[%d]: notification %" PRId64 " retry %d in %" PRId64
					 " ms: %s",
					 w->index, x->id, x->attempts, due - now, mails[i].reason);
				record_one(w, x->id, "scheduled", due, mails[i].reason);
				struct queue_item it = {x->id, x->lane};
				if (!queue_sync_retry(w->rc, cfg->redis_key_prefix, &it, due))
					log_warn("delivery[%d]: retry not queued; reconciler will",
						 w->index);
				atomic_fetch_add(&app->metrics.notifications_retried, 1);
			}
			break;
		}
	}
	record_sent(w, sent, nsent);
	atomic_fetch_add(&app->metrics.notifications_sent, nsent);
	if (nsent)
		log_debug("delivery[%d]: %d notifications sent", w->index, nsent);
	for (int i = 0; mails && i < nm; i++)
		free((void *)mails[i].text);
	free(mails);
	free(gidx);
out:
	/* ack everything taken: sent, finished, retried (already moved) or not ours */
	if (!queue_sync_ack(w->rc, cfg->redis_key_prefix, items, (size_t)n))
		log_warn("delivery[%d]: ack failed; ids come back after the visibility timeout",
			 w->index);
	free(ids);
	free(cl);
	free(groups);
	free(sent);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct delivery *d = w->d;
	const struct config *cfg = d->app->cfg;
	int max = (int)cfg->delivery_batch;
	struct queue_item *items = calloc((size_t)max, sizeof(*items));

	while (items && !atomic_load(&d->stop)) {
		if (!worker_connect(w)) {
			pause_ms(d, RECONNECT_PAUSE_MS);
			continue;
		}
		int64_t now = timefmt_now_ms();
		if (w->index == 0 && mono_ms() - w->last_requeue_ms >= REQUEUE_EVERY_MS) {
			w->last_requeue_ms = mono_ms();
			int back = queue_sync_requeue_expired(w->rc, cfg->redis_key_prefix, now);
			if (back > 0)
				log_info("delivery: %d expired in-flight ids back in the schedule",
					 back);
		}
		int n = queue_sync_take(w->rc, cfg->redis_key_prefix, now,
					cfg->delivery_visibility_ms, items, max);
		if (n < 0) {
			log_warn("delivery[%d]: Redis failed; reconnecting", w->index);
			redisFree(w->rc);
			w->rc = NULL;
			pause_ms(d, RECONNECT_PAUSE_MS);
			continue;
		}
		if (n == 0) {
			pause_ms(d, cfg->delivery_poll_ms);
			continue;
		}
		process_batch(w, items, n);
	}
	free(items);
	if (w->pg)
		PQfinish(w->pg);
	if (w->rc)
		redisFree(w->rc);
	free(w);
	return NULL;
}

static bool load_templates(struct delivery *d, char *err, size_t errlen)
{
	char path[PATH_MAX_LEN];
	for (int k = 0; k < MAIL_KINDS; k++) {
		for (int l = 0; l < LANGS; l++) {
			snprintf(path, sizeof(path), "%s/%s.%s.txt", d->app->cfg->templates_dir,
				 template_names[k], lang_names[l]);
			if (!template_load(path, &d->tmpl[k][l], err, errlen))
				return false;
		}
	}
	return true;
}

struct delivery *delivery_start(struct app *app, char *err, size_t errlen)
{
	const struct config *cfg = app->cfg;
	struct delivery *d = calloc(1, sizeof(*d));

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->app = app;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	d->bucket_ms = mono_ms();
	if (!load_templates(d, err, errlen)) {
		delivery_stop(d);
		return NULL;
	}
	if (!split_from(cfg->smtp_from, d->from_name, d->from_addr)) {
		snprintf(err, errlen, "smtp.from is not \"Name <address>\" or an address");
		delivery_stop(d);
		return NULL;
	}
	if (!config_parse_quiet_hours(cfg->notify_quiet_hours, &d->quiet_enabled, &d->quiet_start,
				      &d->quiet_end)) {
		snprintf(err, errlen, "notify.quiet_hours is invalid");
		delivery_stop(d);
		return NULL;
	}
	d->threads = calloc((size_t)cfg->delivery_workers + 1, sizeof(*d->threads));
	if (!d->threads) {
		delivery_stop(d);
		return NULL;
	}
	for (int i = 0; i < cfg->delivery_workers; i++) {
		struct worker *w = calloc(1, sizeof(*w));
		if (w) {
			w->d = d; /* before the thread starts: it reads them at once */
			w->index = i;
		}
		if (!w || pthread_create(&d->threads[i], NULL, worker_main, w) != 0) {
			free(w);
			snprintf(err, errlen, "cannot start delivery thread");
			delivery_stop(d);
			return NULL;
		}
		d->nthreads++;
	}
	log_info("delivery: %d workers", d->nthreads);
	return d;
}

void delivery_stop(struct delivery *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	atomic_store(&d->stop, true);
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	free(d->threads);
	for (int k = 0; k < MAIL_KINDS; k++)
		for (int l = 0; l < LANGS; l++)
			template_free(&d->tmpl[k][l]);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
