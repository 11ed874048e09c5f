/*
 * delivery.c - delivery workers (see delivery.h).
 *
 * Exactly-once where it can be had, at-least-once where it cannot:
 * a row is claimed in PostgreSQL (scheduled -> sending) before its mail is
 * sent, so two workers (or two daemons) never send one notification.
 *
 * A mail is built once (migrations/0009_mails.sql): the claim that first
 * takes a notification also fixes its mail, with its members (a digest
 * takes every other scheduled notification of the same account and kind
 * that falls due within the digest window), its random ref (Message-ID,
 * VERP address, envelope id), its recipient and its date. Whatever is sent
 * again of it (a retry after a 4xx, a resend after a crash) is that same
 * mail, rendered from the same rows, and its rows are never regrouped.
 *
 * What the relay accepted is recorded, whatever it takes: the worker keeps
 * the outcome and retries the record with backoff across reconnects. Only
 * a process that dies between the relay's 250 and the record loses it; the
 * reconciler then returns the stale 'sending' rows after the visibility
 * timeout and the same mail goes again, with the same Message-ID.
 *
 * Who gets mail is decided at claim time (an account can change its mind
 * between scheduling and sending). A new mail's rows are checked one by
 * one: an active account, a verified address that did not hard-bounce,
 * notifications on, the agency not turned off (unless mandatory), the
 * message not deleted; reminders also need the message unopened and
 * reminders on. A mail built before is checked as a whole: it goes again
 * unchanged while the account may still get mail at the address it was
 * built for and at least one of its messages still wants it, else all of
 * it is cancelled. Anything not eligible is cancelled.
 *
 * The rate limits are applied before the claim: a worker takes from Redis
 * only as many ids as the global bucket has tokens (a mail takes at least
 * one id), and a mail whose recipient domain has no token left is put back
 * unsent, so no claimed row waits for a token.
 */
#include "notify/delivery.h"

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
#include "common/mailref.h"
#include "common/mime.h"
#include "common/quiet.h"
#include "common/template.h"
#include "common/timefmt.h"
#include "core/pgpool.h" /* struct pgpool_stmt only: workers use blocking libpq */
#include "core/queue.h"
#include "notify/smtp.h"

#define PATH_MAX_LEN 1024
#define ADDR_MAX 320
#define AGENCY_MAX 256
#define SENDERS_MAX 1024
#define CODE_MAX 16
#define REQUEUE_EVERY_MS 1000
#define RECONNECT_PAUSE_MS 1000
#define DOMAIN_SLOTS 256
#define MS_PER_S 1000
/* retrying the record of a batch's outcome */
#define RECORD_RETRY_MIN_MS 50
#define RECORD_RETRY_MAX_MS 1000
/* once the daemon stops, how long a worker still tries to record */
#define RECORD_STOP_GRACE_MS 5000

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
	enum mail_lang lang;
	char agency[AGENCY_MAX];
	char code[CODE_MAX];
	int attempts;
	int64_t created_ms;
	int64_t due_ms;
	/* the mail this row belongs to (the same for every row of it) */
	int64_t mail_id;
	char ref[MAILREF_REF_LEN];
	char rcpt[ADDR_MAX];       /* the address the mail was built for */
	int64_t mail_created_ms;   /* its Date header */
};

/* One mail: the run of claimed rows with the same mail id. */
struct group {
	int first, count;          /* indexes into the claimed array */
};

/* What became of one row, to be recorded. */
struct row_outcome {
	int64_t id;
	int64_t lane;
	const char *state;         /* "scheduled" (retry, or deferred unsent) or "failed" */
	int64_t due_ms;
	bool unsent;               /* deferred before sending: the attempt does not count */
	char reason[160];
};

/* A batch's outcome, kept until PostgreSQL has it. */
struct outcome {
	int64_t *sent;             /* rows of mails the relay accepted */
	int nsent;
	int64_t *bounced;          /* mails the relay refused for good (5xx) */
	char (*bounce_reason)[160];
	int nbounced;
	struct row_outcome *rows;
	int nrows;
	/* progress, so that a retry does not run a step twice */
	bool sent_done;
	int bounced_done, rows_done;
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
 * The global bucket: blocks until it has a token (or the daemon stops),
 * then takes up to want tokens and returns how many (0 when stopping).
 * Without a global limit, want. Tokens not used go back with rate_refund.
 */
static int rate_reserve(struct delivery *d, int want)
{
	int64_t rate = d->app->cfg->delivery_rate_limit;
	if (rate <= 0)
		return want;
	for (;;) {
		pthread_mutex_lock(&d->lock);
		bucket_refill(&d->bucket, &d->bucket_ms, rate, mono_ms());
		int got = d->bucket >= 1.0 ? (int)d->bucket : 0;
		if (got > want)
			got = want;
		d->bucket -= got;
		pthread_mutex_unlock(&d->lock);
		if (got > 0)
			return got;
		if (atomic_load(&d->stop))
			return 0;
		pause_ms(d, MS_PER_S / rate + 1);
	}
}

static void rate_refund(struct delivery *d, int n)
{
	if (n <= 0 || d->app->cfg->delivery_rate_limit <= 0)
		return;
	pthread_mutex_lock(&d->lock);
	d->bucket += n;
	pthread_mutex_unlock(&d->lock);
}

/*
 * The per-domain bucket, without waiting: true if a mail to rcpt may go
 * now, else false with *wait_ms until it may. A domain shares its slot
 * with colliding domains, which can only slow sending down.
 */
static bool domain_try(struct delivery *d, const char *rcpt, int64_t *wait_ms)
{
	int64_t drate = d->app->cfg->delivery_domain_rate_limit;
	if (drate <= 0)
		return true;
	uint64_t h = domain_hash(rcpt);
	pthread_mutex_lock(&d->lock);
	int64_t now = mono_ms();
	struct domain_bucket *b = &d->domains[h % DOMAIN_SLOTS];
	if (b->hash != h) {
		b->hash = h;
		b->tokens = (double)drate;
		b->ms = now;
	}
	bucket_refill(&b->tokens, &b->ms, drate, now);
	bool ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		*wait_ms = (int64_t)((1.0 - b->tokens) * MS_PER_S / (double)drate) + 1;
	pthread_mutex_unlock(&d->lock);
	return ok;
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
enum { WS_CLAIM, WS_SENT, WS_ROW };

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
 * verdict and its mail; eligible rows are now 'sending', the others
 * 'cancelled'.
 *
 *   c      the handed-out ids that are due (not locked yet)
 *   bm/bn  mails built before, and all their rows: the mail row is locked
 *          first (SKIP LOCKED: another worker has it), then its rows
 *          (waiting: only a short statement can hold one), so a mail is
 *          always claimed whole, by one worker
 *   p/s    rows without a mail, and the digest partners of new/repeat rows
 *   v      the rules: a row of a new mail on its own, a mail built before
 *          as a whole
 *   newm   one new mail per account and kind (one per verification row)
 */
static const char CLAIM_SQL[] =
	"WITH c AS ("
	"  SELECT id, mail_id FROM notifications"
	"  WHERE id = ANY($1::bigint[]) AND state = 'scheduled'"
	"    AND due_at <= now() + interval '1 second' AND (NOT $3::boolean OR kind = 'verify')"
	"), bm AS ("
	"  SELECT m.id, m.ref, m.recipient, (extract(epoch FROM m.created_at) * 1000)::bigint AS ms"
	"  FROM mails m WHERE m.id IN (SELECT mail_id FROM c WHERE mail_id IS NOT NULL)"
	"  FOR UPDATE OF m SKIP LOCKED"
	"), bn AS ("
	"  SELECT n.id, n.mail_id FROM notifications n"
	"  WHERE n.mail_id IN (SELECT id FROM bm) AND n.state = 'scheduled'"
	"  FOR UPDATE OF n"
	"), p AS ("
	"  SELECT n.id, n.account_id, n.kind FROM notifications n"
	"  WHERE n.id IN (SELECT id FROM c WHERE mail_id IS NULL)"
	"    AND n.state = 'scheduled' AND n.mail_id IS NULL"
	"  FOR UPDATE OF n SKIP LOCKED"
	"), s AS ("
	"  SELECT n.id FROM notifications n"
	"  WHERE n.state = 'scheduled' AND n.kind IN ('new', 'repeat') AND n.mail_id IS NULL"
	"    AND (n.account_id, n.kind) IN (SELECT account_id, kind FROM p WHERE kind <> 'verify')"
	"    AND n.id <> ALL($1::bigint[]) AND n.due_at <= now() + $2::interval"
	"  FOR UPDATE OF n SKIP LOCKED"
	"), r AS (SELECT id, NULL::bigint AS mail_id FROM p UNION ALL SELECT id, NULL FROM s"
	"  UNION ALL SELECT id, mail_id FROM bn"
	"), info AS ("
	"  SELECT n.id, n.kind, n.account_id, r.mail_id, coalesce(m.agency_id, 0) AS lane,"
	"    CASE WHEN n.kind = 'verify' THEN n.recipient ELSE a.email END AS addr,"
	"    a.language, coalesce(ag.name, '') AS agency, coalesce(n.payload->>'code', '') AS code,"
	"    n.attempts + 1 AS attempts,"
	"    (extract(epoch FROM n.created_at) * 1000)::bigint AS created_ms,"
	"    (extract(epoch FROM n.due_at) * 1000)::bigint AS due_ms,"
	/* the account may get this kind of mail at all */
	"    a.active AND (n.kind = 'verify' OR (a.email IS NOT NULL AND a.email_notifications"
	"      AND a.email_bounced_at IS NULL)) AS account_ok,"
	/* the message still wants it */
	"    n.kind = 'verify' OR (m.id IS NOT NULL AND m.deleted_at IS NULL"
	"      AND NOT (n.kind = 'repeat' AND (m.opened_at IS NOT NULL OR NOT a.repeat_notifications))"
	"      AND NOT (NOT ag.mandatory AND EXISTS (SELECT 1 FROM subscriptions sub"
	"        WHERE sub.account_id = a.id AND sub.agency_id = m.agency_id AND NOT sub.active)))"
	"      AS message_ok"
	"  FROM r JOIN notifications n ON n.id = r.id JOIN accounts a ON a.id = n.account_id"
	"  LEFT JOIN messages m ON m.id = n.message_id LEFT JOIN agencies ag ON ag.id = m.agency_id"
	"), v AS ("
	"  SELECT i.*, CASE WHEN i.mail_id IS NULL"
	"    THEN i.account_ok AND i.message_ok AND i.addr IS NOT NULL"
	"    ELSE bool_and(i.account_ok) OVER w AND bool_or(i.message_ok) OVER w"
	"      AND i.addr IS NOT DISTINCT FROM (SELECT recipient FROM bm WHERE bm.id = i.mail_id)"
	"    END AS ok"
	"  FROM info i WINDOW w AS (PARTITION BY i.mail_id)"
	"), g AS ("
	"  SELECT v.*, CASE WHEN v.mail_id IS NULL AND v.ok THEN CASE WHEN v.kind = 'verify' THEN v.id"
	"    ELSE min(v.id) FILTER (WHERE v.mail_id IS NULL AND v.ok)"
	"      OVER (PARTITION BY v.account_id, v.kind) END END AS lead"
	"  FROM v"
	"), newm AS ("
	"  INSERT INTO mails (ref, account_id, kind, recipient, first_notification)"
	"  SELECT DISTINCT ON (lead) replace(gen_random_uuid()::text, '-', ''), account_id, kind, addr,"
	"    lead FROM g WHERE lead IS NOT NULL ORDER BY lead"
	"  RETURNING id, ref, recipient, first_notification,"
	"    (extract(epoch FROM created_at) * 1000)::bigint AS ms"
	"), upd AS ("
	"  UPDATE notifications n SET"
	"    state = CASE WHEN g.ok THEN 'sending' ELSE 'cancelled' END,"
	"    claimed_at = CASE WHEN g.ok THEN now() END,"
	"    attempts = CASE WHEN g.ok THEN g.attempts ELSE n.attempts END,"
	"    mail_id = coalesce(g.mail_id, nm.id)"
	"  FROM g LEFT JOIN newm nm ON nm.first_notification = g.lead"
	"  WHERE n.id = g.id RETURNING n.id"
	") "
	"SELECT g.id, g.kind, g.account_id, g.lane, g.language, g.agency, g.code, g.attempts,"
	"  g.created_ms, g.due_ms, g.ok, coalesce(g.mail_id, nm.id, 0), coalesce(bm.ref, nm.ref, ''),"
	"  coalesce(bm.recipient, nm.recipient, ''), coalesce(bm.ms, nm.ms, 0)"
	" FROM g LEFT JOIN newm nm ON nm.first_notification = g.lead LEFT JOIN bm ON bm.id = g.mail_id"
	" ORDER BY 12, 1";

enum claim_col {
	CC_ID, CC_KIND, CC_ACCOUNT, CC_LANE, CC_LANG, CC_AGENCY, CC_CODE, CC_ATTEMPTS, CC_CREATED,
	CC_DUE, CC_OK, CC_MAIL, CC_REF, CC_RCPT, CC_MAIL_MS
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
		c->lang = strcmp(PQgetvalue(res, i, CC_LANG), "en") == 0 ? LANG_EN : LANG_NL;
		snprintf(c->agency, sizeof(c->agency), "%s", PQgetvalue(res, i, CC_AGENCY));
		snprintf(c->code, sizeof(c->code), "%s", PQgetvalue(res, i, CC_CODE));
		c->attempts = atoi(PQgetvalue(res, i, CC_ATTEMPTS));
		c->created_ms = strtoll(PQgetvalue(res, i, CC_CREATED), NULL, 10);
		c->due_ms = strtoll(PQgetvalue(res, i, CC_DUE), NULL, 10);
		c->mail_id = strtoll(PQgetvalue(res, i, CC_MAIL), NULL, 10);
		snprintf(c->ref, sizeof(c->ref), "%s", PQgetvalue(res, i, CC_REF));
		snprintf(c->rcpt, sizeof(c->rcpt), "%s", PQgetvalue(res, i, CC_RCPT));
		c->mail_created_ms = strtoll(PQgetvalue(res, i, CC_MAIL_MS), NULL, 10);
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

/* Renders the mail of the n rows at c; returns the message text or NULL. */
static char *render(struct delivery *d, const struct claimed *c, int n)
{
	const struct config *cfg = d->app->cfg;
	enum mail_kind kind = strcmp(c->kind, "verify") == 0 ? MAIL_VERIFY
			      : strcmp(c->kind, "repeat") == 0 ? MAIL_REPEAT
			      : n > 1				  ? MAIL_DIGEST
								  : MAIL_NEW;
	const struct template *t = &d->tmpl[kind][c->lang];
	char senders[SENDERS_MAX], count[16], msgid[MAILREF_NAME_MAX];
	int distinct = 0;

	join_senders(c, n, c->lang, senders, sizeof(senders), &distinct);
	snprintf(count, sizeof(count), "%d", n);
	const struct template_var vars[] = {
		{"afzenders", senders}, {"aantal", count}, {"code", c->code},
	};
	if (!mailref_message_id(c->ref, cfg->smtp_bounce_domain, msgid, sizeof(msgid)))
		return NULL;

	char *subject = template_render(t->subject, vars, sizeof(vars) / sizeof(vars[0]));
	char *body = template_render(t->body, vars, sizeof(vars) / sizeof(vars[0]));
	struct mime_mail m = {
		.from_name = d->from_name[0] ? d->from_name : NULL,
		.from_addr = d->from_addr,
		.to_addr = c->rcpt,
		.subject = subject,
		.body = body,
		.message_id = msgid,
		/* the mail's own date: a resend is the same mail */
		.date_unix = c->mail_created_ms / MS_PER_S,
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
	/* a verification code is kept only until its mail is accepted */
	"  UPDATE notifications n SET state = 'sent', sent_at = now(), last_error = NULL,"
	"    payload = CASE WHEN n.kind = 'verify' THEN NULL ELSE n.payload END"
	/* 'scheduled' too: the relay has the mail, even if a reconciler gave
	 * up on the row while this worker could not reach PostgreSQL; marking
	 * it sent keeps it from going again */
	"  FROM unnest($1::bigint[]) AS u(id) WHERE n.id = u.id"
	"    AND n.state IN ('sending', 'scheduled')"
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

/* Marks ids sent; queues the reminders that follow. False if PostgreSQL failed. */
static bool record_sent(struct worker *w, const int64_t *ids, int n)
{
	const struct config *cfg = w->d->app->cfg;
	char after[48], before[48], maxrep[16];
	if (n == 0)
		return true;
	char *arr = id_array(ids, n);
	snprintf(after, sizeof(after), "%" PRId64 " milliseconds", cfg->notify_repeat_after_ms);
	snprintf(before, sizeof(before), "%" PRId64 " milliseconds",
		 cfg->notify_repeat_before_deadline_ms);
	snprintf(maxrep, sizeof(maxrep), "%" PRId64, cfg->notify_max_repeats);
	const char *params[] = {arr, after, before, maxrep, cfg->notify_timezone};
	PGresult *res = arr ? exec_stmt(w, WS_SENT, &SENT_STMT, params) : NULL;
	free(arr);
	if (!res)
		return false;
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
	return true;
}

/* $1 id, $2 state, $3 due, $4 reason, $5 unsent (the claim's attempt is taken back) */
static const char ROW_SQL[] =
	"UPDATE notifications SET state = $2, last_error = $4,"
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
	PGresult *res = exec_stmt(w, WS_ROW, &ROW_STMT, params);
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
	PGresult *res = exec(w, "SELECT notifications FROM mail_hard_bounce($1, $2)", 2, params);
	if (!res)
		return false;
	PQclear(res);
	return true;
}

/* Writes what is not yet written of o; false at the first failure. */
static bool apply_outcome(struct worker *w, struct outcome *o)
{
	if (!o->sent_done) {
		if (!record_sent(w, o->sent, o->nsent))
			return false;
		o->sent_done = true;
	}
	for (; o->bounced_done < o->nbounced; o->bounced_done++)
		if (!record_bounce(w, o->bounced[o->bounced_done], o->bounce_reason[o->bounced_done]))
			return false;
	for (; o->rows_done < o->nrows; o->rows_done++)
		if (!record_row(w, &o->rows[o->rows_done]))
			return false;
	return true;
}

/*
 * Records the outcome until PostgreSQL has it: with backoff, across
 * reconnects, for as long as the daemon runs (and RECORD_STOP_GRACE_MS
 * after it was asked to stop). Leaving it to the visibility timeout
 * would send accepted mails again.
 */
static bool record_outcome(struct worker *w, struct outcome *o)
{
	struct delivery *d = w->d;
	int64_t backoff = RECORD_RETRY_MIN_MS, give_up = 0;
	bool warned = false;

	while (!apply_outcome(w, o)) {
		if (!warned) {
			log_warn("delivery[%d]: cannot record the outcome of %d accepted mails' rows "
				 "and %d others; retrying",
				 w->index, o->sent_done ? 0 : o->nsent,
				 (o->nbounced - o->bounced_done) + (o->nrows - o->rows_done));
			warned = true;
		}
		if (atomic_load(&d->stop)) {
			if (!give_up)
				give_up = mono_ms() + RECORD_STOP_GRACE_MS;
			if (mono_ms() >= give_up) {
				log_error("delivery[%d]: stopping with an unrecorded outcome; "
					  "its rows return after the visibility timeout",
					  w->index);
				return false;
			}
			struct timespec ts = {0, backoff * 1000000};
			nanosleep(&ts, NULL);
		} else {
			pause_ms(d, backoff);
		}
		backoff = backoff * 2 > RECORD_RETRY_MAX_MS ? RECORD_RETRY_MAX_MS : backoff * 2;
		if (PQstatus(w->pg) != CONNECTION_OK)
			worker_connect(w);
	}
	if (warned)
		log_info("delivery[%d]: outcome recorded after all", w->index);
	return true;
}

/* Groups claimed rows (sorted by mail, id) into mails. */
static int make_groups(const struct claimed *cl, int n, struct group *g)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (k > 0 && cl[i].mail_id == cl[g[k - 1].first].mail_id) {
			g[k - 1].count++;
		} else {
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

/* Rows of group g: retried later (4xx, connection trouble) or given up after the retry span. */
static void add_retry(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		      const char *reason, int64_t now)
{
	const struct config *cfg = w->d->app->cfg;
	struct app *app = w->d->app;
	/* one due time for the whole mail: its rows stay together */
	int64_t due = now + retry_delay_ms(cfg, c->attempts);
	for (int k = 0; k < n; k++) {
		struct row_outcome *r = &o->rows[o->nrows++];
		r->id = c[k].id;
		r->lane = c[k].lane;
		r->due_ms = due;
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
		if (due > c[k].created_ms + cfg->delivery_retry_span_ms) {
			log_warn("delivery[%d]: notification %" PRId64 " given up after %d attempts: %s",
				 w->index, c[k].id, c[k].attempts, reason);
			r->state = "failed";
			atomic_fetch_add(&app->metrics.notifications_failed, 1);
		} else {
			log_info("delivery[%d]: notification %" PRId64 " retry %d in %" PRId64 " ms: %s",
				 w->index, c[k].id, c[k].attempts, due - now, reason);
			r->state = "scheduled";
			atomic_fetch_add(&app->metrics.notifications_retried, 1);
		}
	}
}

/* Rows of a mail that was not sent (its domain's bucket was empty): back, unsent. */
static void add_deferred(struct outcome *o, const struct claimed *c, int n, int64_t due)
{
	for (int k = 0; k < n; k++) {
		struct row_outcome *r = &o->rows[o->nrows++];
		r->id = c[k].id;
		r->lane = c[k].lane;
		r->state = "scheduled";
		r->due_ms = due;
		r->unsent = true;
	}
}

/* Puts the rows that go back to 'scheduled' into the Redis schedule again. */
static void queue_retries(struct worker *w, const struct outcome *o)
{
	const struct config *cfg = w->d->app->cfg;
	for (int i = 0; i < o->nrows; i++) {
		if (strcmp(o->rows[i].state, "scheduled") != 0)
			continue;
		struct queue_item it = {o->rows[i].id, o->rows[i].lane};
		if (!queue_sync_retry(w->rc, cfg->redis_key_prefix, &it, o->rows[i].due_ms))
			log_warn("delivery[%d]: retry not queued; the reconciler will", w->index);
	}
}

static void outcome_free(struct outcome *o)
{
	free(o->sent);
	free(o->bounced);
	free(o->bounce_reason);
	free(o->rows);
}

/* The claimed rows that are not verification mails go back to the end of quiet hours. */
static void defer_unclaimed(struct worker *w, const struct queue_item *items, int n,
			    const struct claimed *cl, int nc, int64_t end_ms)
{
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
		defer_quiet(w, later, nl, end_ms);
	free(later);
}

/*
 * Sends the mails of the claimed rows and fills in o. Returns how many
 * mails went to the relay (the global rate limit's tokens they used).
 */
static int send_mails(struct worker *w, const struct claimed *cl, const struct group *groups,
		      int ng, struct outcome *o)
{
	struct delivery *d = w->d;
	struct app *app = d->app;
	const struct config *cfg = app->cfg;
	struct smtp_mail *mails = calloc((size_t)ng + 1, sizeof(*mails));
	char (*envfrom)[MAILREF_NAME_MAX] = calloc((size_t)ng + 1, sizeof(*envfrom));
	char (*envid)[MAILREF_NAME_MAX] = calloc((size_t)ng + 1, sizeof(*envid));
	int *gidx = calloc((size_t)ng + 1, sizeof(*gidx));
	int nm = 0;
	int64_t now = timefmt_now_ms();

	if (!mails || !envfrom || !envid || !gidx) {
		/* out of memory: every mail is a temporary failure */
		for (int g = 0; g < ng; g++)
			add_retry(w, o, &cl[groups[g].first], groups[g].count, "out of memory", now);
		goto out;
	}
	for (int g = 0; g < ng; g++) {
		const struct claimed *c = &cl[groups[g].first];
		int64_t wait = 0;
		if (!domain_try(d, c->rcpt, &wait)) {
			add_deferred(o, c, groups[g].count, now + wait);
			continue;
		}
		char *text = render(d, c, groups[g].count);
		if (!text || !mailref_verp(cfg->bounce_key, cfg->bounce_key_len, c->ref,
					   cfg->smtp_bounce_domain, envfrom[nm], sizeof(envfrom[nm])) ||
		    !mailref_envid(cfg->bounce_key, cfg->bounce_key_len, c->ref, envid[nm],
				   sizeof(envid[nm]))) {
			free(text);
			log_error("delivery[%d]: mail %" PRId64 " cannot be rendered", w->index,
				  c->mail_id);
			for (int k = 0; k < groups[g].count; k++) {
				struct row_outcome *r = &o->rows[o->nrows++];
				r->id = c[k].id;
				r->lane = c[k].lane;
				r->state = "failed";
				snprintf(r->reason, sizeof(r->reason), "cannot render mail");
			}
			atomic_fetch_add(&app->metrics.notifications_failed, groups[g].count);
			continue;
		}
		mails[nm].envelope_from = envfrom[nm];
		mails[nm].envid = envid[nm];
		mails[nm].rcpt = c->rcpt;
		mails[nm].text = text;
		gidx[nm++] = g;
	}
	if (nm > 0) {
		struct smtp_relay relay = {cfg->smtp_host, (int)cfg->smtp_port, cfg->smtp_helo,
					   (long)(cfg->smtp_timeout_ms / MS_PER_S)};
		smtp_send_batch(&relay, mails, (size_t)nm);
	}
	now = timefmt_now_ms();
	for (int i = 0; i < nm; i++) {
		const struct group *g = &groups[gidx[i]];
		const struct claimed *c = &cl[g->first];
		switch (mails[i].result) {
		case SMTP_SENT:
			for (int k = 0; k < g->count; k++) {
				o->sent[o->nsent++] = c[k].id;
				observe_lag(&app->metrics, now - c[k].due_ms);
			}
			atomic_fetch_add(&app->metrics.mails_sent, 1);
			break;
		case SMTP_PERMFAIL:
			log_info("delivery[%d]: mail %" PRId64 " bounced: %s", w->index, c->mail_id,
				 mails[i].reason);
			o->bounced[o->nbounced] = c->mail_id;
			snprintf(o->bounce_reason[o->nbounced], sizeof(o->bounce_reason[0]), "%s",
				 mails[i].reason);
			o->nbounced++;
			atomic_fetch_add(&app->metrics.notifications_bounced, g->count);
			break;
		case SMTP_TEMPFAIL:
			add_retry(w, o, c, g->count, mails[i].reason, now);
			break;
		}
	}
out:
	for (int i = 0; mails && i < nm; i++)
		free((void *)mails[i].text);
	free(mails);
	free(envfrom);
	free(envid);
	free(gidx);
	return nm;
}

/* Claims, sends and records one batch of n ids; reserved is its global rate-limit tokens. */
static void process_batch(struct worker *w, const struct queue_item *items, int n, int reserved)
{
	struct delivery *d = w->d;
	const struct config *cfg = d->app->cfg;
	struct claimed *cl = NULL;
	struct group *groups = NULL;
	struct outcome o = {0};
	int64_t *ids = calloc((size_t)n, sizeof(*ids));
	int used = 0;
	time_t quiet_end = 0;
	bool quiet = d->quiet_enabled &&
		     quiet_contains(time(NULL), d->quiet_start, d->quiet_end, &quiet_end);

	if (!ids) {
		rate_refund(d, reserved);
		return;
	}
	for (int i = 0; i < n; i++)
		ids[i] = items[i].id;
	int nc = claim(w, ids, n, quiet, &cl);
	free(ids);
	if (nc < 0) {
		/* PostgreSQL failed: leave the ids in flight, so they come back
		 * after the visibility timeout instead of waiting for the reconciler */
		rate_refund(d, reserved);
		return;
	}
	if (quiet) /* whatever was not a verification mail waits for the end of the window */
		defer_unclaimed(w, items, n, cl, nc, (int64_t)quiet_end * MS_PER_S);

	groups = calloc((size_t)nc + 1, sizeof(*groups));
	o.sent = calloc((size_t)nc + 1, sizeof(*o.sent));
	o.bounced = calloc((size_t)nc + 1, sizeof(*o.bounced));
	o.bounce_reason = calloc((size_t)nc + 1, sizeof(*o.bounce_reason));
	o.rows = calloc((size_t)nc + 1, sizeof(*o.rows));
	if (groups && o.sent && o.bounced && o.bounce_reason && o.rows) {
		int ng = make_groups(cl, nc, groups);
		used = send_mails(w, cl, groups, ng, &o);
		if (record_outcome(w, &o)) {
			queue_retries(w, &o);
			atomic_fetch_add(&d->app->metrics.notifications_sent, o.nsent);
			if (o.nsent)
				log_debug("delivery[%d]: %d notifications sent", w->index, o.nsent);
		}
	}
	/* else out of memory: the claimed rows return after the visibility timeout */
	rate_refund(d, reserved - used);

	/* ack everything taken: sent, finished, retried (already moved) or not ours */
	if (!queue_sync_ack(w->rc, cfg->redis_key_prefix, items, (size_t)n))
		log_warn("delivery[%d]: ack failed; ids come back after the visibility timeout",
			 w->index);
	outcome_free(&o);
	free(cl);
	free(groups);
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
		/* take only what the global rate limit lets go now: a mail takes at least one id */
		int want = rate_reserve(d, max);
		if (want == 0)
			continue;
		int n = queue_sync_take(w->rc, cfg->redis_key_prefix, timefmt_now_ms(),
					cfg->delivery_visibility_ms, items, want);
		if (n < 0) {
			rate_refund(d, want);
			log_warn("delivery[%d]: Redis failed; reconnecting", w->index);
			redisFree(w->rc);
			w->rc = NULL;
			pause_ms(d, RECONNECT_PAUSE_MS);
			continue;
		}
		if (n == 0) {
			rate_refund(d, want);
			pause_ms(d, cfg->delivery_poll_ms);
			continue;
		}
		rate_refund(d, want - n);
		process_batch(w, items, n, n);
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
