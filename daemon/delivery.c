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
 */
#include "delivery.h"

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
#include "common/template.h"
#include "common/timefmt.h"
#include "queue.h"
#include "smtp.h"

#define TEMPLATE_NEW "nieuw-bericht.nl.txt"
#define TEMPLATE_VERIFY_NL "verificatie.nl.txt"
#define TEMPLATE_VERIFY_EN "verificatie.en.txt"
#define VERIFY_CODE_MAX 16
#define PATH_MAX_LEN 1024
#define ADDR_MAX 320
#define ID_LIST_MAX 16
#define REQUEUE_EVERY_MS 1000
#define RECONNECT_PAUSE_MS 1000
#define RETRY_BASE_MS 5000
#define RETRY_MAX_MS (30LL * 60 * 1000)
#define REASON_MAX 160

struct delivery {
	struct app *app;
	struct template tmpl_new;
	struct template tmpl_verify_nl; /* kind 'verify' (portal, issue 5) */
	struct template tmpl_verify_en;
	char from_name[ADDR_MAX];
	char from_addr[ADDR_MAX];
	pthread_t *threads;
	int nthreads;
	atomic_bool stop;
	pthread_mutex_t lock;      /* guards the condvar and the rate bucket */
	pthread_cond_t wake;
	double bucket;             /* rate limit tokens */
	int64_t bucket_ms;
};

struct worker {
	struct delivery *d;
	int index;
	PGconn *pg;
	redisContext *rc;
	int64_t last_requeue_ms;
};

/* A claimed notification, ready to render. */
struct claimed {
	int64_t id;
	char email[ADDR_MAX];
	char agency[256];
	int attempts;
	int64_t created_ms;
	bool verify;                 /* kind 'verify': code to recipient, no message */
	char code[VERIFY_CODE_MAX];
	bool english;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, waking at once when the daemon stops. */
static void pause_ms(struct delivery *d, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&d->lock);
	if (!atomic_load(&d->stop))
		pthread_cond_timedwait(&d->wake, &d->lock, &ts);
	pthread_mutex_unlock(&d->lock);
}

/* Global token bucket over all workers of this instance. */
static void rate_wait(struct delivery *d)
{
	int64_t rate = d->app->cfg->delivery_rate_limit;
	if (rate <= 0)
		return;
	for (;;) {
		pthread_mutex_lock(&d->lock);
		int64_t now = mono_ms();
		d->bucket += (double)(now - d->bucket_ms) * (double)rate / 1000.0;
		if (d->bucket > (double)rate)
			d->bucket = (double)rate;
		d->bucket_ms = now;
		bool ok = d->bucket >= 1.0;
		if (ok)
			d->bucket -= 1.0;
		pthread_mutex_unlock(&d->lock);
		if (ok || atomic_load(&d->stop))
			return;
		pause_ms(d, 1000 / rate + 1);
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
	return mime_addr_valid(addr);
}

static bool worker_connect(struct worker *w)
{
	const struct config *cfg = w->d->app->cfg;

	if (!w->pg || PQstatus(w->pg) != CONNECTION_OK) {
		if (w->pg)
			PQfinish(w->pg);
		w->pg = PQconnectdb(cfg->pg_conninfo);
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

/* Formats ids as a PostgreSQL array literal "{1,2,3}". */
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

static PGresult *exec(struct worker *w, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(w->pg, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		log_warn("delivery[%d]: query failed: %.*s", w->index,
			 (int)strcspn(PQresultErrorMessage(res), "\n"), PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

static const char CLAIM_SQL[] =
	"WITH cand AS ("
	"  SELECT n.id, (a.active AND (a.email IS NOT NULL OR n.kind = 'verify')) AS ok"
	"  FROM notifications n JOIN accounts a ON a.id = n.account_id"
	"  WHERE n.id = ANY($1::bigint[]) AND n.state = 'scheduled'"
	"    AND n.due_at <= now() + interval '1 second'"
	"  FOR UPDATE OF n SKIP LOCKED"
	"), cancel AS ("
	"  UPDATE notifications SET state = 'cancelled'"
	"  WHERE id IN (SELECT id FROM cand WHERE NOT ok)"
	"), c AS ("
	"  UPDATE notifications n SET state = 'sending', claimed_at = now(),"
	"    attempts = n.attempts + 1"
	"  FROM cand WHERE n.id = cand.id AND cand.ok"
	"  RETURNING n.id, n.message_id, n.account_id, n.attempts, n.created_at,"
	"    n.kind, n.recipient, n.payload"
	") "
	"SELECT c.id, coalesce(c.recipient, a.email), coalesce(ag.name, ''), c.attempts,"
	"  (extract(epoch FROM c.created_at) * 1000)::bigint,"
	"  c.kind = 'verify', coalesce(c.payload->>'code', ''), a.language = 'en' "
	"FROM c JOIN accounts a ON a.id = c.account_id"
	" LEFT JOIN messages m ON m.id = c.message_id LEFT JOIN agencies ag ON ag.id = m.agency_id";

static int claim(struct worker *w, const int64_t *ids, int n, struct claimed *out)
{
	char *arr = id_array(ids, n);
	const char *params[] = {arr};
	PGresult *res = arr ? exec(w, CLAIM_SQL, 1, params) : NULL;
	free(arr);
	if (!res)
		return -1;
	int rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		out[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		snprintf(out[i].email, sizeof(out[i].email), "%s", PQgetvalue(res, i, 1));
		snprintf(out[i].agency, sizeof(out[i].agency), "%s", PQgetvalue(res, i, 2));
		out[i].attempts = atoi(PQgetvalue(res, i, 3));
		out[i].created_ms = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		out[i].verify = PQgetvalue(res, i, 5)[0] == 't';
		snprintf(out[i].code, sizeof(out[i].code), "%s", PQgetvalue(res, i, 6));
		out[i].english = PQgetvalue(res, i, 7)[0] == 't';
	}
	PQclear(res);
	return rows;
}

/*
 * Renders a 'verify' mail: the 6-digit code for an address the citizen is
 * verifying, in the account's language. Added by the portal (issue 5) as
 * the minimal support its tests need; the notification engine may fold it
 * into its own rendering.
 */
static char *render_verify(struct delivery *d, const struct claimed *c)
{
	const struct config *cfg = d->app->cfg;
	const struct template *t = c->english ? &d->tmpl_verify_en : &d->tmpl_verify_nl;
	const struct template_var vars[] = {{"code", c->code}};
	char msgid[128];

	if (!c->code[0])
		return NULL;
	char *subject = template_render(t->subject, vars, 1);
	char *body = template_render(t->body, vars, 1);
	snprintf(msgid, sizeof(msgid), "<notificatie.%" PRId64 "@%s>", c->id,
		 cfg->smtp_bounce_domain);
	struct mime_mail m = {
		.from_name = d->from_name[0] ? d->from_name : NULL,
		.from_addr = d->from_addr,
		.to_addr = c->email,
		.subject = subject,
		.body = body,
		.message_id = msgid,
		.date_unix = timefmt_now_ms() / 1000,
		.language = c->english ? "en" : "nl",
	};
	char *text = (subject && body) ? mime_build(&m, NULL) : NULL;
	free(subject);
	free(body);
	return text;
}

/* Renders the mail for one claimed notification; NULL if it cannot be built. */
static char *render(struct delivery *d, const struct claimed *c)
{
	if (c->verify)
		return render_verify(d, c);

	const struct config *cfg = d->app->cfg;
	char msgid[128];
	const struct template_var vars[] = {{"afzenders", c->agency}};

	char *subject = template_render(d->tmpl_new.subject, vars, 1);
	char *body = template_render(d->tmpl_new.body, vars, 1);
	snprintf(msgid, sizeof(msgid), "<notificatie.%" PRId64 "@%s>", c->id,
		 cfg->smtp_bounce_domain);
	struct mime_mail m = {
		.from_name = d->from_name[0] ? d->from_name : NULL,
		.from_addr = d->from_addr,
		.to_addr = c->email,
		.subject = subject,
		.body = body,
		.message_id = msgid,
		.date_unix = timefmt_now_ms() / 1000,
		.language = "nl",
	};
	char *text = (subject && body) ? mime_build(&m, NULL) : NULL;
	free(subject);
	free(body);
	return text;
}

static int64_t retry_delay_ms(int attempts)
{
	int64_t delay = RETRY_BASE_MS;
	for (int i = 1; i < attempts && delay < RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	/* jitter: 50..100% so a relay outage does not end in a thundering herd */
	return delay / 2 + random() % (delay / 2 + 1);
}

static void record_sent(struct worker *w, const int64_t *ids, int n)
{
	if (n == 0)
		return;
	char *arr = id_array(ids, n);
	const char *params[] = {arr};
	PGresult *res = arr ? exec(w, "UPDATE notifications SET state = 'sent', sent_at = now(), "
				      "last_error = NULL WHERE id = ANY($1::bigint[]) "
				      "AND state = 'sending'",
				   1, params)
			    : NULL;
	free(arr);
	if (res)
		PQclear(res);
	/* if this failed the rows stay 'sending'; the reconciler resends after the
	 * visibility timeout: the documented at-least-once window */
}

static void record_one(struct worker *w, int64_t id, const char *state, int64_t due_ms,
		       const char *reason)
{
	char idbuf[24], due[TIMEFMT_RFC3339_LEN];
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	timefmt_format_rfc3339(due_ms, due);
	const char *params[] = {idbuf, state, due, reason};
	PGresult *res = exec(w,
			     "UPDATE notifications SET state = $2, last_error = $4, "
			     "due_at = CASE WHEN $2 = 'scheduled' THEN $3::timestamptz ELSE due_at END, "
			     "claimed_at = NULL WHERE id = $1 AND state = 'sending'",
			     4, params);
	if (res)
		PQclear(res);
}

static void process_batch(struct worker *w, const int64_t *ids, int n)
{
	struct delivery *d = w->d;
	struct app *app = d->app;
	const struct config *cfg = app->cfg;
	struct claimed *cl = calloc((size_t)n, sizeof(*cl));
	struct smtp_mail *mails = calloc((size_t)n, sizeof(*mails));
	char (*envfrom)[ADDR_MAX] = calloc((size_t)n, ADDR_MAX);
	int64_t *sent = calloc((size_t)n, sizeof(*sent));
	int nsent = 0, nmail = 0;

	if (!cl || !mails || !envfrom || !sent)
		goto out;
	int nc = claim(w, ids, n, cl);
	if (nc < 0)
		goto out; /* left in inflight; comes back after the visibility timeout */

	for (int i = 0; i < nc; i++) {
		char *text = render(d, &cl[i]);
		if (!text) {
			log_error("delivery[%d]: notification %" PRId64 " cannot be rendered",
				  w->index, cl[i].id);
			record_one(w, cl[i].id, "failed", 0, "cannot render mail");
			atomic_fetch_add(&app->metrics.notifications_failed, 1);
			continue;
		}
		snprintf(envfrom[nmail], ADDR_MAX, "bounce+%" PRId64 "@%s", cl[i].id,
			 cfg->smtp_bounce_domain);
		mails[nmail].envelope_from = envfrom[nmail];
		mails[nmail].rcpt = cl[i].email;
		mails[nmail].text = text;
		cl[nmail] = cl[i];
		nmail++;
	}
	for (int i = 0; i < nmail; i++)
		rate_wait(d);

	if (nmail > 0) {
		struct smtp_relay relay = {cfg->smtp_host, (int)cfg->smtp_port, cfg->smtp_helo,
					   (long)(cfg->smtp_timeout_ms / 1000)};
		smtp_send_batch(&relay, mails, (size_t)nmail);
	}

	int64_t now = timefmt_now_ms();
	for (int i = 0; i < nmail; i++) {
		const struct claimed *c = &cl[i];
		switch (mails[i].result) {
		case SMTP_SENT:
			sent[nsent++] = c->id;
			break;
		case SMTP_PERMFAIL:
			log_info("delivery[%d]: notification %" PRId64 " bounced: %s", w->index,
				 c->id, mails[i].reason);
			record_one(w, c->id, "bounced", 0, mails[i].reason);
			atomic_fetch_add(&app->metrics.notifications_bounced, 1);
			break;
		case SMTP_TEMPFAIL: {
			int64_t due = now + retry_delay_ms(c->attempts);
			if (due > c->created_ms + cfg->delivery_retry_span_ms) {
				log_warn("delivery[%d]: notification %" PRId64
					 " given up after %d attempts: %s",
					 w->index, c->id, c->attempts, mails[i].reason);
				record_one(w, c->id, "failed", 0, mails[i].reason);
				atomic_fetch_add(&app->metrics.notifications_failed, 1);
			} else {
				log_info("delivery[%d]: notification %" PRId64
					 " retry %d in %" PRId64 " ms: %s",
					 w->index, c->id, c->attempts, due - now, mails[i].reason);
				record_one(w, c->id, "scheduled", due, mails[i].reason);
				if (!queue_sync_retry(w->rc, cfg->redis_key_prefix, c->id, due))
					log_warn("delivery[%d]: retry not queued; reconciler will",
						 w->index);
				atomic_fetch_add(&app->metrics.notifications_retried, 1);
			}
			break;
		}
		}
	}
	record_sent(w, sent, nsent);
	atomic_fetch_add(&app->metrics.notifications_sent, nsent);
	if (nsent)
		log_debug("delivery[%d]: %d mails sent", w->index, nsent);
	/* ack everything taken: sent, finished, retried (already moved) or not ours */
	if (!queue_sync_ack(w->rc, cfg->redis_key_prefix, ids, (size_t)n))
		log_warn("delivery[%d]: ack failed; ids come back after the visibility timeout",
			 w->index);
out:
	for (int i = 0; mails && i < nmail; i++)
		free((void *)mails[i].text);
	free(cl);
	free(mails);
	free(envfrom);
	free(sent);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct delivery *d = w->d;
	const struct config *cfg = d->app->cfg;
	int max = (int)cfg->delivery_batch;
	int64_t *ids = calloc((size_t)max, sizeof(*ids));

	while (ids && !atomic_load(&d->stop)) {
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
					cfg->delivery_visibility_ms, ids, max);
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
		process_batch(w, ids, n);
	}
	free(ids);
	if (w->pg)
		PQfinish(w->pg);
	if (w->rc)
		redisFree(w->rc);
	free(w);
	return NULL;
}

struct delivery *delivery_start(struct app *app, char *err, size_t errlen)
{
	const struct config *cfg = app->cfg;
	struct delivery *d = calloc(1, sizeof(*d));
	char path[PATH_MAX_LEN];

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->app = app;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	d->bucket_ms = mono_ms();
	snprintf(path, sizeof(path), "%s/%s", cfg->templates_dir, TEMPLATE_NEW);
	if (!template_load(path, &d->tmpl_new, err, errlen)) {
		delivery_stop(d);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", cfg->templates_dir, TEMPLATE_VERIFY_NL);
	if (!template_load(path, &d->tmpl_verify_nl, err, errlen)) {
		delivery_stop(d);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", cfg->templates_dir, TEMPLATE_VERIFY_EN);
	if (!template_load(path, &d->tmpl_verify_en, err, errlen)) {
		delivery_stop(d);
		return NULL;
	}
	if (!split_from(cfg->smtp_from, d->from_name, d->from_addr)) {
		snprintf(err, errlen, "smtp.from is not \"Name <address>\" or an address");
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
	template_free(&d->tmpl_new);
	template_free(&d->tmpl_verify_nl);
	template_free(&d->tmpl_verify_en);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
