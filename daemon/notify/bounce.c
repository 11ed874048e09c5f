/*
 * bounce.c - DSN intake (see bounce.h). Parsing is common/dsn.c; this file
 * applies the verdict, with the same statement for HTTP (async) and CLI.
 */
#include "notify/bounce.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "common/dsn.h"
#include "common/log.h"
#include "core/pgpool.h"
#include "core/pgval.h"

#define DSN_MAX_BYTES (1024 * 1024)
#define MAX_AGE_TEXT 48

/*
 * $1 the mail's ref (tag verified), $2 Final-Recipient, $3 [bounce]
 * max_age, $4 reason. What a hard bounce means is migrations/0009's
 * mail_hard_bounce, shared with the SMTP-time bounce of delivery.
 */
static const char BOUNCE_SQL[] =
	"SELECT verdict, notifications, address_marked FROM dsn_hard_bounce($1, $2, $3::interval, $4)";

static const char *const refusal_labels[DSN_REFUSALS] = DSN_REFUSAL_LABELS;

static void reason_of(const struct dsn_report *d, char *out, size_t cap)
{
	snprintf(out, cap, "DSN %s", d->status[0] ? d->status : "(no status)");
}

/*
 * What can be said of a DSN before PostgreSQL is asked: refused (*refusal
 * set), ignored (not a hard bounce: SMTP-time retries cover temporary
 * trouble), or to be applied. A made-up DSN is refused before anything is
 * looked up.
 */
enum precheck { PRE_REFUSED, PRE_IGNORED, PRE_APPLY };

static enum precheck precheck(const struct dsn_report *d, enum dsn_refusal *refusal)
{
	if (d->attribution == DSN_UNATTRIBUTED) {
		*refusal = DSN_REFUSED_UNATTRIBUTED;
		return PRE_REFUSED;
	}
	if (d->attribution == DSN_BAD_TAG) {
		*refusal = DSN_REFUSED_FORGED_TAG;
		return PRE_REFUSED;
	}
	return dsn_is_hard(d) ? PRE_APPLY : PRE_IGNORED;
}

/* The database's verdict as a refusal; false for "applied". */
static bool refusal_of(const char *verdict, enum dsn_refusal *refusal)
{
	if (strcmp(verdict, "applied") == 0)
		return false;
	*refusal = strcmp(verdict, "too_old") == 0              ? DSN_REFUSED_TOO_OLD
		   : strcmp(verdict, "recipient_mismatch") == 0 ? DSN_REFUSED_RECIPIENT
								: DSN_REFUSED_UNKNOWN;
	return true;
}

static void params_of(const struct config *cfg, const struct dsn_report *d, char *age, char *reason,
		      const char **params)
{
	snprintf(age, MAX_AGE_TEXT, "%" PRId64 " milliseconds", cfg->bounce_max_age_ms);
	reason_of(d, reason, 64);
	params[0] = d->ref;
	params[1] = d->final_recipient;
	params[2] = age;
	params[3] = reason;
}

struct bounce_req {
	struct http_req *r;
	struct dsn_report dsn;
};

static void reply_refused(struct http_req *r, enum dsn_refusal why)
{
	atomic_fetch_add(&r->app->metrics.dsn_refused[why], 1);
	log_info("bounce %s: DSN refused: %s", r->id, refusal_labels[why]);
	http_reply_json(r, 202,
			json_pack("{s:s, s:s, s:b}", "status", "geweigerd", "reden",
				  refusal_labels[why], "adresGemarkeerd", false));
}

static void on_bounce(const PGresult *res, const char *err, void *arg)
{
	struct bounce_req *b = arg;
	struct http_req *r = b->r;
	free(b);

	if (err) {
		log_warn("bounce %s: %.200s", r->id, err);
		http_problem_unavailable(r, "De database is niet bereikbaar.");
		return;
	}
	enum dsn_refusal why;
	if (refusal_of(PQgetvalue(res, 0, 0), &why)) {
		reply_refused(r, why);
		return;
	}
	bool marked = pg_bool(res, 0, 2);
	atomic_fetch_add(&r->app->metrics.dsn_applied, 1);
	log_info("bounce %s: hard bounce of %s notifications%s", r->id, PQgetvalue(res, 0, 1),
		 marked ? ", address marked" : "");
	http_reply_json(r, 202,
			json_pack("{s:s, s:b}", "status", "verwerkt", "adresGemarkeerd", marked));
}

static void bounce_http_post(struct http_req *r)
{
	const struct config *cfg = r->app->cfg;
	struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
	size_t len = evbuffer_get_length(in);
	const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	struct bounce_req *b = calloc(1, sizeof(*b));

	if (!b) {
		http_problem_internal(r);
		return;
	}
	if (!data || !dsn_parse(data, len, cfg->smtp_bounce_domain, cfg->bounce_key,
				cfg->bounce_key_len, &b->dsn)) {
		free(b);
		http_problem(r, 400, "geen-dsn", "Geen afleverrapport",
			     "De body is geen delivery status notification (RFC 3464).");
		return;
	}
	enum dsn_refusal why;
	switch (precheck(&b->dsn, &why)) {
	case PRE_REFUSED:
		free(b);
		reply_refused(r, why);
		return;
	case PRE_IGNORED:
		free(b);
		http_reply_json(
			r, 202,
			json_pack("{s:s, s:b}", "status", "genegeerd", "adresGemarkeerd", false));
		return;
	case PRE_APPLY: break;
	}
	char age[MAX_AGE_TEXT], reason[64];
	const char *params[4];
	params_of(cfg, &b->dsn, age, reason, params);
	b->r = r;
	if (!pgpool_query(r->app->pg, BOUNCE_SQL, 4, params, on_bounce, b)) {
		free(b);
		http_problem_internal(r);
	}
}

const struct http_route bounce_routes[] = {
	{EVHTTP_REQ_POST, "/v1/bounces", ROLE_RELAY, false, bounce_http_post},
	{0, NULL, 0, false, NULL},
};

int bounce_cli(const struct config *cfg, FILE *in)
{
	char *buf = malloc(DSN_MAX_BYTES);
	size_t len = buf ? fread(buf, 1, DSN_MAX_BYTES, in) : 0;
	struct dsn_report dsn;
	enum dsn_refusal why;
	int rc = 1;

	if (!buf)
		return 1;
	if (!dsn_parse(buf, len, cfg->smtp_bounce_domain, cfg->bounce_key, cfg->bounce_key_len,
		       &dsn)) {
		fprintf(stderr, "berichtd: not a delivery status notification\n");
		goto out;
	}
	rc = 0; /* a refused or ignored report is handled: the relay must not bounce it */
	switch (precheck(&dsn, &why)) {
	case PRE_REFUSED: printf("refused: %s\n", refusal_labels[why]); goto out;
	case PRE_IGNORED: printf("ignored: not a hard bounce\n"); goto out;
	case PRE_APPLY: break;
	}
	rc = 1;
	PGconn *c = pgconn_open(cfg->pg_conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		PQfinish(c);
		goto out;
	}
	char age[MAX_AGE_TEXT], reason[64];
	const char *params[4];
	params_of(cfg, &dsn, age, reason, params);
	PGresult *res = PQexecParams(c, BOUNCE_SQL, 4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		if (refusal_of(PQgetvalue(res, 0, 0), &why))
			printf("refused: %s\n", refusal_labels[why]);
		else
			printf("hard bounce recorded for %s notifications%s\n",
			       PQgetvalue(res, 0, 1), pg_bool(res, 0, 2) ? ", address marked" : "");
		rc = 0;
	} else {
		fprintf(stderr, "berichtd: %s", PQresultErrorMessage(res));
	}
	PQclear(res);
	PQfinish(c);
out:
	free(buf);
	return rc;
}
