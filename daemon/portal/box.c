/*
 * box.c - messages in the citizen's box (see box.h).
 *
 * Opening is race-free without locks held across round trips: the UPDATE
 * only sets opened_at where it is NULL, so of many concurrent opens exactly
 * one changes the row (201); the others re-read the committed time (200).
 */
#include "portal/box.h"

#include <errno.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portal/portal.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "common/uuid7.h"
#include "core/pgpool.h"
#include "core/pgval.h"

#define PAGE_DEFAULT 1
#define PAGE_SIZE_DEFAULT 20
#define PAGE_SIZE_MAX 100
#define PAGE_MAX 1000000
#define INT_TEXT_MAX 24
#define HREF_MAX 160

/*
 * The citizen's copy of a message is in the box while box_holds() says so
 * (migrations/0010): published, not deleted, younger than the account's
 * retention. The row itself is the agency's record and stays longer
 * (janitor.c). IN_BOX takes the SQL names of the message and account rows
 * and the parameters holding [retention] default_days, min_days, max_days.
 */
#define IN_BOX(m, a, def, min, max)                                                                \
	"box_holds(" m ".publicatie_tijdstip, " m ".deleted_at, " a ".retention_days, " def        \
	"::integer, " min "::integer, " max "::integer)"

struct retention_text {
	char def[INT_TEXT_MAX], min[INT_TEXT_MAX], max[INT_TEXT_MAX];
};

static void retention_text(const struct config *cfg, struct retention_text *t)
{
	snprintf(t->def, sizeof(t->def), "%" PRId64, cfg->retention_default_days);
	snprintf(t->min, sizeof(t->min), "%" PRId64, cfg->retention_min_days);
	snprintf(t->max, sizeof(t->max), "%" PRId64, cfg->retention_max_days);
}

/* $1 message id, $2..$4 the retention bounds, for the three statements below. */
static void query_message(struct http_req *r, const char *sql, pgpool_cb cb)
{
	struct retention_text rt = {0};
	retention_text(r->app->cfg, &rt);
	const char *params[] = {r->params[0], rt.def, rt.min, rt.max};
	if (!pgpool_query(r->app->pg, sql, 4, params, cb, r))
		http_problem_internal(r);
}

/*
 * The first open sets opened_at and cancels the reminders not yet in a
 * mail. $5 is who opens (NULL: the holder), $6 [stats]
 * count_representative_opens. A representative may open only while a
 * representation is in force for the message (its agency, case and
 * publication, migration 0012's rule) and now (one that ended or was
 * deleted gives no access any more); else nothing is recorded (403). An
 * open that does not count for the statistics is kept in rep_opened_at
 * (migration 0016): the message is opened all the same (reminders stop,
 * the portal shows it), and the holder's own later open still counts.
 */
static const char OPEN_SQL[] =
	"WITH m0 AS (SELECT m.id, m.account_id, m.agency_id, m.zaakkenmerk, m.publicatie_tijdstip"
	"   FROM messages m JOIN accounts a ON a.id = m.account_id"
	"   WHERE m.id = $1 AND " IN_BOX(
		"m", "a", "$2", "$3",
		"$4") "),"
		      " who AS (SELECT m0.id, ($5::uuid IS NULL OR $5::uuid = m0.account_id) AS holder,"
		      "   EXISTS (SELECT 1 FROM representations r JOIN accounts ra ON ra.id = r.rep_account_id"
		      "     WHERE r.account_id = m0.account_id AND r.rep_account_id = $5::uuid"
		      "       AND ra.active AND ra.overleden_at IS NULL"
		      "       AND representation_in_force(r.id, m0.agency_id, m0.zaakkenmerk,"
		      "         m0.publicatie_tijdstip)"
		      "       AND representation_in_force(r.id, m0.agency_id, m0.zaakkenmerk, now())) AS rep"
		      "   FROM m0),"
		      " u AS (UPDATE messages m SET"
		      "     opened_at = CASE WHEN w.holder OR $6::boolean THEN now() ELSE m.opened_at END,"
		      "     rep_opened_at = CASE WHEN w.holder OR $6::boolean THEN m.rep_opened_at ELSE now() END"
		      "   FROM who w WHERE m.id = w.id AND (w.holder OR w.rep) AND m.opened_at IS NULL"
		      "     AND (w.holder OR $6::boolean OR m.rep_opened_at IS NULL)"
		      /* first: no open before this one, counted or not */
		      "   RETURNING NOT (w.holder OR $6::boolean) OR m.rep_opened_at IS NULL AS first,"
		      "     least(m.opened_at, m.rep_opened_at) AS t),"
		      " c AS (UPDATE notifications SET state = 'cancelled'"
		      "   WHERE message_id = $1 AND kind = 'repeat' AND state = 'scheduled'"
		      "     AND mail_id IS NULL AND EXISTS (SELECT 1 FROM u)) "
		      "SELECT (extract(epoch FROM u.t) * 1000)::bigint, (SELECT count(*) FROM m0),"
		      "  (SELECT holder OR rep FROM who), u.first "
		      "FROM (SELECT 1) one LEFT JOIN u ON true";

enum open_col { O_TIME, O_FOUND, O_ALLOWED, O_FIRST };

static const char REREAD_SQL[] =
	"SELECT (extract(epoch FROM least(m.opened_at, m.rep_opened_at)) * 1000)::bigint"
	" FROM messages m "
	"JOIN accounts a ON a.id = m.account_id "
	"WHERE m.id = $1 AND " IN_BOX("m", "a", "$2", "$3", "$4");

/*
 * Deleting again is fine (204), and so is deleting one not yet published;
 * the first deletion time is kept. A copy past the citizen's retention is
 * gone already (404). Only the citizen's copy goes: the row stays the
 * agency's record, the same for a deleted message as for any other
 * (janitor.c).
 */
static const char DELETE_SQL[] =
	"WITH u AS (UPDATE messages m SET deleted_at = coalesce(m.deleted_at, now())"
	"   FROM accounts a WHERE m.id = $1 AND a.id = m.account_id"
	"     AND (m.deleted_at IS NOT NULL OR m.publicatie_tijdstip > now()"
	"       OR " IN_BOX(
		"m", "a", "$2", "$3",
		"$4") ")"
		      "   RETURNING m.id),"
		      " c AS (UPDATE notifications SET state = 'cancelled'"
		      "   WHERE message_id IN (SELECT id FROM u) AND state = 'scheduled'"
		      "     AND mail_id IS NULL) "
		      "SELECT id FROM u";

static const char LIST_SQL[] =
	"SELECT (SELECT count(*) FROM accounts WHERE id = $1), t.total,"
	"  x.id, x.oin, x.name, x.berichttype, x.referentie,"
	"  (extract(epoch FROM x.publicatie_tijdstip) * 1000)::bigint,"
	"  (extract(epoch FROM x.aanmaak_tijdstip) * 1000)::bigint,"
	"  x.eind_datum_handelingstermijn, x.papieren_kopie,"
	"  (extract(epoch FROM least(x.opened_at, x.rep_opened_at)) * 1000)::bigint "
	"FROM (SELECT count(*) AS total FROM messages m JOIN accounts a ON a.id = m.account_id"
	"      WHERE m.account_id = $1 AND " IN_BOX(
		"m", "a", "$4", "$5",
		"$6") ") t "
		      "LEFT JOIN LATERAL ("
		      "  SELECT m.*, ag.oin, ag.name FROM messages m JOIN agencies ag ON ag.id = m.agency_id"
		      "  JOIN accounts a ON a.id = m.account_id"
		      "  WHERE m.account_id = $1 AND " IN_BOX(
			      "m", "a", "$4", "$5",
			      "$6") "  ORDER BY m.publicatie_tijdstip DESC, m.id DESC LIMIT $2::bigint OFFSET $3::bigint"
				    ") x ON true";

enum list_col {
	L_ACCOUNT,
	L_TOTAL,
	L_ID,
	L_OIN,
	L_NAME,
	L_TYPE,
	L_REF,
	L_PUBL,
	L_AANMAAK,
	L_EIND,
	L_PAPER,
	L_OPENED
};

struct page {
	struct http_req *r;
	int64_t page, size;
};

static json_t *time_or_null(const PGresult *res, int row, int col)
{
	char ts[TIMEFMT_RFC3339_LEN];
	if (PQgetisnull(res, row, col))
		return json_null();
	timefmt_format_rfc3339(pg_bigint(res, row, col), ts);
	return json_string(ts);
}

static json_t *message_json(const PGresult *res, int row)
{
	json_t *o =
		json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:b}", "berichtId",
			  PQgetvalue(res, row, L_ID), "afzender", "oin",
			  PQgetvalue(res, row, L_OIN), "naam", PQgetvalue(res, row, L_NAME),
			  "berichttype", PQgetvalue(res, row, L_TYPE), "referentie",
			  PQgetvalue(res, row, L_REF), "papierenKopie", pg_bool(res, row, L_PAPER));
	if (!o)
		return NULL;
	json_object_set_new(o, "publicatieTijdstip", time_or_null(res, row, L_PUBL));
	json_object_set_new(o, "aanmaakTijdstip", time_or_null(res, row, L_AANMAAK));
	json_object_set_new(o, "eindDatumHandelingstermijn",
			    PQgetisnull(res, row, L_EIND)
				    ? json_null()
				    : json_string(PQgetvalue(res, row, L_EIND)));
	json_object_set_new(o, "geopendOp", time_or_null(res, row, L_OPENED));
	return o;
}

static json_t *link(const char *account, int64_t page, int64_t size)
{
	char href[HREF_MAX];
	snprintf(href, sizeof(href),
		 "/v1/accounts/%s/berichten?pagina=%" PRId64 "&paginaGrootte=%" PRId64, account,
		 page, size);
	return json_pack("{s:s}", "href", href);
}

static void on_list(const PGresult *res, const char *err, void *arg)
{
	struct page *p = arg;
	struct http_req *r = p->r;
	int64_t page = p->page, size = p->size;
	free(p);

	if (portal_store_failed(r, err))
		return;
	if (strcmp(PQgetvalue(res, 0, L_ACCOUNT), "0") == 0) {
		http_problem_not_found(r, "Onbekend account.");
		return;
	}
	int64_t total = pg_bigint(res, 0, L_TOTAL);
	int64_t pages = total > 0 ? (total + size - 1) / size : 1;
	json_t *list = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, L_ID))
			json_array_append_new(list, message_json(res, i));

	const char *acc = r->params[0];
	json_t *links = json_pack("{s:o, s:o, s:o}", "self", link(acc, page, size), "first",
				  link(acc, 1, size), "last", link(acc, pages, size));
	if (page > 1)
		json_object_set_new(links, "prev",
				    link(acc, page - 1 < pages ? page - 1 : pages, size));
	if (page < pages)
		json_object_set_new(links, "next", link(acc, page + 1, size));

	char num[INT_TEXT_MAX];
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	snprintf(num, sizeof(num), "%" PRId64, total);
	evhttp_add_header(h, "X-Total-Count", num);
	snprintf(num, sizeof(num), "%" PRId64, page);
	evhttp_add_header(h, "X-Pagination-Page", num);
	snprintf(num, sizeof(num), "%" PRId64, size);
	evhttp_add_header(h, "X-Pagination-Limit", num);
	http_reply_json(r, 200,
			json_pack("{s:o, s:I, s:I, s:I, s:I, s:o}", "berichten", list, "pagina",
				  (json_int_t)page, "paginaGrootte", (json_int_t)size,
				  "totaalAantal", (json_int_t)total, "aantalPaginas",
				  (json_int_t)pages, "_links", links));
}

/* A positive integer query parameter within [1, max]; def when absent. */
static bool query_int(json_t *invalid, const struct evkeyvalq *q, const char *name, int64_t def,
		      int64_t max, int64_t *out)
{
	const char *s = evhttp_find_header(q, name);
	char reason[96];
	*out = def;
	if (!s)
		return true;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max) {
		snprintf(reason, sizeof(reason), "Een geheel getal van 1 tot en met %" PRId64 ".",
			 max);
		http_invalid_add(invalid, name, "range", reason);
		return false;
	}
	*out = v;
	return true;
}

void box_http_list(struct http_req *r)
{
	struct evkeyvalq q = {0};
	int64_t page, size;
	char limit[INT_TEXT_MAX], offset[INT_TEXT_MAX];

	if (!portal_account_id_ok(r, r->params[0]))
		return;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	json_t *invalid = json_array();
	if (evhttp_parse_query_str(query ? query : "", &q) != 0)
		http_invalid_add(invalid, "query", "syntax", "Ongeldige query-string.");
	query_int(invalid, &q, "pagina", PAGE_DEFAULT, PAGE_MAX, &page);
	query_int(invalid, &q, "paginaGrootte", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, &size);
	evhttp_clear_headers(&q);
	http_query_check(r, invalid);
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);

	struct page *p = malloc(sizeof(*p));
	if (!p) {
		http_problem_internal(r);
		return;
	}
	*p = (struct page){r, page, size};
	snprintf(limit, sizeof(limit), "%" PRId64, size);
	snprintf(offset, sizeof(offset), "%" PRId64, (page - 1) * size);
	struct retention_text rt = {0};
	retention_text(r->app->cfg, &rt);
	const char *params[] = {r->params[0], limit, offset, rt.def, rt.min, rt.max};
	if (!pgpool_query(r->app->pg, LIST_SQL, 6, params, on_list, p)) {
		free(p);
		http_problem_internal(r);
	}
}

/* ------------------------------------------------------------------ opens */

static bool message_id_ok(struct http_req *r)
{
	return http_uuid_param(r, 0, NULL, "Onbekend bericht.");
}

static void reply_open(struct http_req *r, int status, const PGresult *res)
{
	json_t *body = json_pack("{s:s}", "berichtId", r->params[0]);
	json_object_set_new(body, "geopendOp", time_or_null(res, 0, 0));
	http_reply_json(r, status, body);
}

static void on_open_reread(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err))
		return;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		/* unknown, or deleted before it was ever opened */
		http_problem_not_found(r, "Onbekend bericht.");
		return;
	}
	reply_open(r, 200, res);
}

static void on_open(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err))
		return;
	if (PQntuples(res) != 1 || pg_bigint(res, 0, O_FOUND) == 0) {
		http_problem_not_found(r, "Onbekend bericht.");
		return;
	}
	if (!pg_bool(res, 0, O_ALLOWED)) {
		/* nothing recorded; the reason is the portal's to tell, never the agency's */
		http_problem(
			r, 403, "geen-vertegenwoordiging", "Geen vertegenwoordiging",
			"Alleen de ontvanger, of wie nu voor dit bericht vertegenwoordiger is, "
			"kan het openen.");
		return;
	}
	if (!PQgetisnull(res, 0, O_FIRST)) {
		/* never the message id: no log line may tie a message to an open (docs/privacy.md) */
		log_debug("box %s: a message opened", r->id);
		reply_open(r, pg_bool(res, 0, O_FIRST) ? 201 : 200, res);
		return;
	}
	/* not the first open: a new statement sees the committed first time */
	query_message(r, REREAD_SQL, on_open_reread);
}

void box_http_open(struct http_req *r)
{
	if (!message_id_ok(r) || !http_read_json_body(r, true))
		return;
	json_t *invalid = json_array();
	const char *key;
	json_t *val;
	json_object_foreach(r->body, key, val)
	{
		if (strcmp(key, "doorAccountId") != 0)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	const json_t *jd = json_object_get(r->body, "doorAccountId");
	const char *door = jd && !json_is_null(jd) ? json_string_value(jd) : NULL;
	uuid_t7 u;
	char id[UUID_STR_LEN];
	if (jd && !json_is_null(jd) && !uuid_parse(door, &u))
		http_invalid_add(invalid, "doorAccountId", "uuid",
				 "Het accountId van wie het bericht opent.");
	else if (door)
		uuid_format(&u, id);
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);

	struct retention_text rt = {0};
	retention_text(r->app->cfg, &rt);
	const char *params[] = {
		r->params[0],     rt.def,
		rt.min,           rt.max,
		door ? id : NULL, r->app->cfg->stats_count_representative_opens ? "t" : "f"};
	if (!pgpool_query(r->app->pg, OPEN_SQL, 6, params, on_open, r))
		http_problem_internal(r);
}

/* ---------------------------------------------------------------- delete */

static void on_delete(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (!portal_found(r, res, err, "Onbekend bericht."))
		return;
	log_debug("box %s: a message deleted by the citizen", r->id);
	http_reply_json(r, 204, NULL);
}

void box_http_delete(struct http_req *r)
{
	if (message_id_ok(r))
		query_message(r, DELETE_SQL, on_delete);
}

const struct http_route box_routes[] = {
	{EVHTTP_REQ_GET, "/v1/accounts/{}/berichten{?pagina,paginaGrootte}", ROLE_PORTAL, false,
	 box_http_list},
	{EVHTTP_REQ_POST, "/v1/berichten/{}/openingen", ROLE_PORTAL, false, box_http_open},
	{EVHTTP_REQ_DELETE, "/v1/berichten/{}", ROLE_PORTAL, false, box_http_delete},
	{0, NULL, 0, false, NULL},
};
