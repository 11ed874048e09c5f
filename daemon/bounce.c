/*
 * bounce.c - DSN intake (see bounce.h). Parsing is common/dsn.c; this file
 * applies the verdict, with the same statement for HTTP (async) and CLI.
 */
#include "bounce.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "common/dsn.h"
#include "common/log.h"
#include "pgpool.h"

#define DSN_MAX_BYTES (1024 * 1024)

/*
 * $1 notification id, $2 reason. The account is marked only when the
 * bounced mail went to its current address (not a verification mail to an
 * address it never confirmed), and only once.
 */
static const char BOUNCE_SQL[] =
	"WITH n AS ("
	"  UPDATE notifications SET state = 'bounced', last_error = $2"
	"  WHERE id = $1 AND state IN ('sent', 'sending', 'scheduled')"
	"  RETURNING id, account_id, kind"
	"), a AS ("
	"  UPDATE accounts SET email_bounced_at = now() FROM n"
	"  WHERE accounts.id = n.account_id AND n.kind <> 'verify'"
	"    AND accounts.email IS NOT NULL AND accounts.email_bounced_at IS NULL"
	"  RETURNING accounts.id"
	") SELECT (SELECT count(*) FROM n), (SELECT count(*) FROM a)";

static void reason_of(const struct dsn_report *d, char *out, size_t cap)
{
	snprintf(out, cap, "DSN %s", d->status[0] ? d->status : "(no status)");
}

struct bounce_req {
	struct http_req *r;
	struct dsn_report dsn;
};

static void on_bounce(const PGresult *res, const char *err, void *arg)
{
	struct bounce_req *b = arg;
	struct http_req *r = b->r;
	int64_t id = b->dsn.notification_id;
	free(b);

	if (err) {
		log_warn("bounce %s: %.200s", r->id, err);
		http_problem_unavailable(r, "De database is niet bereikbaar.");
		return;
	}
	bool found = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
	bool marked = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
	log_info("bounce %s: notification %" PRId64 " hard bounce%s%s", r->id, id,
		 found ? "" : " (unknown or already final)", marked ? ", address marked" : "");
	http_reply_json(r, 202, json_pack("{s:s, s:b}", "status", found ? "verwerkt" : "onbekend",
					  "adresGemarkeerd", marked));
}

static void bounce_http_post(struct http_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
	size_t len = evbuffer_get_length(in);
	const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	struct bounce_req *b = calloc(1, sizeof(*b));

	if (!b) {
		http_problem(r, 500, "interne-fout", "Interne fout", NULL);
		return;
	}
	if (!data || !dsn_parse(data, len, r->app->cfg->smtp_bounce_domain, &b->dsn)) {
		free(b);
		http_problem(r, 400, "geen-dsn", "Geen afleverrapport",
			     "De body is geen delivery status notification (RFC 3464).");
		return;
	}
	if (!dsn_is_hard(&b->dsn) || b->dsn.notification_id == 0) {
		bool unknown = b->dsn.notification_id == 0;
		free(b);
		/* delayed or temporary reports change nothing: SMTP-time retries cover them */
		http_reply_json(r, 202, json_pack("{s:s, s:b}", "status",
						  unknown ? "onbekend" : "genegeerd",
						  "adresGemarkeerd", false));
		return;
	}
	char id[24], reason[64];
	snprintf(id, sizeof(id), "%" PRId64, b->dsn.notification_id);
	reason_of(&b->dsn, reason, sizeof(reason));
	b->r = r;
	const char *params[] = {id, reason};
	if (!pgpool_query(r->app->pg, BOUNCE_SQL, 2, params, on_bounce, b)) {
		free(b);
		http_problem(r, 500, "interne-fout", "Interne fout", NULL);
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
	int rc = 1;

	if (!buf)
		return 1;
	if (!dsn_parse(buf, len, cfg->smtp_bounce_domain, &dsn)) {
		fprintf(stderr, "berichtd: not a delivery status notification\n");
		goto out;
	}
	if (!dsn_is_hard(&dsn) || dsn.notification_id == 0) {
		printf("%s\n", dsn.notification_id ? "ignored: not a hard bounce"
						   : "ignored: not one of ours");
		rc = 0;
		goto out;
	}
	PGconn *c = PQconnectdb(cfg->pg_conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		PQfinish(c);
		goto out;
	}
	char id[24], reason[64];
	snprintf(id, sizeof(id), "%" PRId64, dsn.notification_id);
	reason_of(&dsn, reason, sizeof(reason));
	const char *params[] = {id, reason};
	PGresult *res = PQexecParams(c, BOUNCE_SQL, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		printf("notification %s: hard bounce recorded%s\n", id,
		       strcmp(PQgetvalue(res, 0, 1), "0") ? ", address marked" : "");
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
