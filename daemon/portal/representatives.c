/*
 * representatives.c - the portal's representation calls (see
 * representatives.h; the rules of who is notified are in migration 0012,
 * those of the chain in 0016).
 *
 * The PUT is one statement: it checks what only the database knows (both
 * accounts, the OINs, the source of a representation passed on and every
 * rule against it) and inserts or replaces the row only when all of that
 * and the body's own validation (representation.c) hold. It answers the
 * problems it found either way, so every invalid field comes at once.
 */
#include "portal/representatives.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "core/pgpool.h"
#include "core/pgval.h"
#include "portal/portal.h"
#include "portal/representation.h"

#define INT_TEXT_MAX 24

/*
 *  $1 account  $2 representative  $3 soort  $4 geldigVanaf  $5 geldigTot
 *  $6 organisaties (OINs)  $7 zaakkenmerk  $8 weergavenaam
 *  $9 betrokkeneOokNotificeren  $10 doorgegevenDoor (the source's
 *  representative)  $11 [representatives] max_depth  $12 the body is valid
 */
static const char PUT_SQL[] =
	"WITH org AS ("
	"  SELECT o.i, ag.id FROM unnest($6::text[]) WITH ORDINALITY AS o(oin, i)"
	"  LEFT JOIN agencies ag ON ag.oin = o.oin"
	"), orgs AS ("
	"  SELECT CASE WHEN $6::text[] IS NULL THEN NULL"
	"    ELSE array_agg(DISTINCT org.id) FILTER (WHERE org.id IS NOT NULL) END AS ids,"
	"    array_agg(org.i - 1 ORDER BY org.i) FILTER (WHERE org.id IS NULL) AS unknown FROM org"
	"), cur AS ("
	"  SELECT id, doorgegeven_door, deleted_at FROM representations"
	"  WHERE account_id = $1::uuid AND rep_account_id = $2::uuid"
	"), src AS ("
	"  SELECT s.* FROM representations s"
	"  WHERE s.account_id = $1::uuid AND s.rep_account_id = $10::uuid"
	"), chk AS ("
	"  SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1::uuid) AS holder_ok,"
	"    EXISTS (SELECT 1 FROM accounts WHERE id = $2::uuid) AS rep_ok,"
	"    (SELECT array_to_string(unknown, ',') FROM orgs) AS unknown_orgs,"
	"    src.id AS src_id,"
	/* the source and everything it was passed on from is not deleted */
	"    NOT EXISTS (SELECT 1 FROM representation_chain(src.id) c"
	"      JOIN representations x ON x.id = c.id WHERE x.deleted_at IS NOT NULL) AS src_live,"
	/* and does not derive from the representation being replaced */
	"    NOT EXISTS (SELECT 1 FROM representation_chain(src.id) c"
	"      WHERE c.id = (SELECT id FROM cur)) AS no_circle,"
	/* never wider than the source: agencies, case, time */
	"    src.organisaties IS NULL OR coalesce((SELECT ids FROM orgs) <@ src.organisaties, false)"
	"      AS orgs_ok,"
	"    src.zaakkenmerk IS NULL OR src.zaakkenmerk IS NOT DISTINCT FROM $7::text AS zaak_ok,"
	"    src.geldig_vanaf <= $4::timestamptz AS vanaf_ok,"
	"    src.geldig_tot IS NULL OR coalesce($5::timestamptz <= src.geldig_tot, false) AS tot_ok,"
	"    coalesce(src.depth, 0) + 1 AS depth,"
	/* a representation passed on further keeps its source (the depths below it hold) */
	"    NOT (EXISTS (SELECT 1 FROM representations d JOIN cur ON d.doorgegeven_door = cur.id"
	"           WHERE d.deleted_at IS NULL)"
	"         AND (SELECT doorgegeven_door FROM cur) IS DISTINCT FROM src.id) AS keeps_source"
	"  FROM (SELECT 1) one LEFT JOIN src ON true"
	"), up AS ("
	"  INSERT INTO representations (account_id, rep_account_id, soort, geldig_vanaf, geldig_tot,"
	"    organisaties, zaakkenmerk, weergavenaam, betrokkene_ook_notificeren, doorgegeven_door,"
	"    depth)"
	"  SELECT $1::uuid, $2::uuid, $3::text, $4::timestamptz, $5::timestamptz,"
	"    (SELECT ids FROM orgs), $7::text, $8::text, $9::boolean, chk.src_id, chk.depth FROM chk"
	"  WHERE $12::boolean AND chk.holder_ok AND chk.rep_ok AND chk.unknown_orgs IS NULL"
	"    AND chk.depth <= $11::int AND chk.keeps_source"
	"    AND ($10::uuid IS NULL OR (chk.src_id IS NOT NULL AND chk.src_live AND chk.no_circle"
	"      AND chk.orgs_ok AND chk.zaak_ok AND chk.vanaf_ok AND chk.tot_ok))"
	"  ON CONFLICT (account_id, rep_account_id) DO UPDATE SET soort = EXCLUDED.soort,"
	"    geldig_vanaf = EXCLUDED.geldig_vanaf, geldig_tot = EXCLUDED.geldig_tot,"
	"    organisaties = EXCLUDED.organisaties, zaakkenmerk = EXCLUDED.zaakkenmerk,"
	"    weergavenaam = EXCLUDED.weergavenaam,"
	"    betrokkene_ook_notificeren = EXCLUDED.betrokkene_ook_notificeren,"
	"    doorgegeven_door = EXCLUDED.doorgegeven_door, depth = EXCLUDED.depth,"
	"    updated_at = now(), deleted_at = NULL"
	"  RETURNING id"
	") "
	"SELECT chk.holder_ok, chk.rep_ok, chk.unknown_orgs, chk.src_id IS NOT NULL, chk.src_live,"
	"  chk.no_circle, chk.orgs_ok, chk.zaak_ok, chk.vanaf_ok, chk.tot_ok, chk.depth,"
	"  chk.keeps_source, up.id IS NOT NULL,"
	"  NOT EXISTS (SELECT 1 FROM cur WHERE cur.deleted_at IS NULL) "
	"FROM chk LEFT JOIN up ON true";

enum put_col {
	P_HOLDER,
	P_REP,
	P_UNKNOWN_ORGS,
	P_SRC,
	P_SRC_LIVE,
	P_NO_CIRCLE,
	P_ORGS,
	P_ZAAK,
	P_VANAF,
	P_TOT,
	P_DEPTH,
	P_KEEPS_SOURCE,
	P_STORED,
	P_CREATED
};

/* One representation as every GET shows it; WHERE and ORDER follow. */
#define REP_SELECT                                                                                 \
	"SELECT r.account_id, r.rep_account_id, r.soort,"                                          \
	"  (extract(epoch FROM r.geldig_vanaf) * 1000)::bigint,"                                   \
	"  (extract(epoch FROM r.geldig_tot) * 1000)::bigint,"                                     \
	"  (SELECT json_agg(ag.oin ORDER BY ag.oin) FROM agencies ag"                              \
	"    WHERE ag.id = ANY (r.organisaties))::text,"                                           \
	"  r.zaakkenmerk, r.weergavenaam, r.betrokkene_ook_notificeren,"                           \
	"  (SELECT s.rep_account_id FROM representations s WHERE s.id = r.doorgegeven_door),"      \
	"  r.depth, representation_current(r.id, now()) "                                          \
	"FROM representations r "

enum rep_col {
	R_ACCOUNT,
	R_REP,
	R_SOORT,
	R_VANAF,
	R_TOT,
	R_ORGS,
	R_ZAAK,
	R_NAAM,
	R_BETROKKENE,
	R_SOURCE,
	R_DEPTH,
	R_CURRENT
};

static const char GET_SQL[] =
	REP_SELECT "WHERE r.account_id = $1 AND r.rep_account_id = $2 AND r.deleted_at IS NULL";

/* Also says whether the account exists: a row with NULLs for none. */
#define LIST_SQL(col)                                                                              \
	"SELECT x.*, (SELECT count(*) FROM accounts WHERE id = $1) FROM (SELECT 1) one "           \
	"LEFT JOIN (" REP_SELECT "WHERE r." col " = $1 AND r.deleted_at IS NULL"                   \
	"  ORDER BY r.created_at, r.id) x ON true"

#define R_ACCOUNT_EXISTS (R_CURRENT + 1)

static const char LIST_REPS_SQL[] = LIST_SQL("account_id");
static const char LIST_REPRESENTED_SQL[] = LIST_SQL("rep_account_id");

static const char DELETE_SQL[] =
	"UPDATE representations SET deleted_at = coalesce(deleted_at, now()),"
	"  updated_at = CASE WHEN deleted_at IS NULL THEN now() ELSE updated_at END "
	"WHERE account_id = $1 AND rep_account_id = $2 RETURNING id";

static json_t *time_or_null(const PGresult *res, int row, int col)
{
	char ts[TIMEFMT_RFC3339_LEN];
	if (PQgetisnull(res, row, col))
		return json_null();
	timefmt_format_rfc3339(pg_bigint(res, row, col), ts);
	return json_string(ts);
}

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *rep_json(const PGresult *res, int row)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:b}", "accountId",
			      PQgetvalue(res, row, R_ACCOUNT), "vertegenwoordigerAccountId",
			      PQgetvalue(res, row, R_REP), "soort", PQgetvalue(res, row, R_SOORT),
			      "weergavenaam", PQgetvalue(res, row, R_NAAM),
			      "betrokkeneOokNotificeren", pg_bool(res, row, R_BETROKKENE), "diepte",
			      (json_int_t)pg_bigint(res, row, R_DEPTH), "inWerking",
			      pg_bool(res, row, R_CURRENT));
	if (!o)
		return NULL;
	json_object_set_new(o, "geldigVanaf", time_or_null(res, row, R_VANAF));
	json_object_set_new(o, "geldigTot", time_or_null(res, row, R_TOT));
	json_t *orgs = PQgetisnull(res, row, R_ORGS)
			       ? NULL
			       : json_loads(PQgetvalue(res, row, R_ORGS), 0, NULL);
	json_object_set_new(o, "organisaties", orgs ? orgs : json_null());
	json_object_set_new(o, "zaakkenmerk", text_or_null(res, row, R_ZAAK));
	json_object_set_new(o, "doorgegevenDoor", text_or_null(res, row, R_SOURCE));
	return o;
}

/* ------------------------------------------------------------- one of them */

struct one {
	struct http_req *r;
	int status;
};

static void on_one(const PGresult *res, const char *err, void *arg)
{
	struct one *c = arg;
	struct http_req *r = c->r;
	int status = c->status;
	free(c);

	if (!portal_found(r, res, err, "Onbekende vertegenwoordiging."))
		return;
	http_reply_json(r, status, rep_json(res, 0));
}

static void reply_one(struct http_req *r, int status)
{
	struct one *c = malloc(sizeof(*c));
	const char *params[] = {r->params[0], r->params[1]};
	if (!c) {
		http_problem_internal(r);
		return;
	}
	*c = (struct one){r, status};
	if (!pgpool_query(r->app->pg, GET_SQL, 2, params, on_one, c)) {
		free(c);
		http_problem_internal(r);
	}
}

static bool ids_ok(struct http_req *r)
{
	return portal_account_id_ok(r, r->params[0]) && portal_account_id_ok(r, r->params[1]);
}

static void rep_http_get(struct http_req *r)
{
	if (ids_ok(r))
		reply_one(r, 200);
}

/* ------------------------------------------------------------------- PUT */

/* "f" from the check: that rule does not hold (NULL: not checked). */
static bool refused(const PGresult *res, int col)
{
	return !PQgetisnull(res, 0, col) && !pg_bool(res, 0, col);
}

struct put {
	struct http_req *r;
	json_t *invalid; /* the body's own problems, to which the store's are added */
	bool derived;
	int64_t max_depth;
};

static void add_unknown_orgs(json_t *invalid, const char *list)
{
	char name[32];
	const char *p = list;
	while (*p) {
		char *end;
		long i = strtol(p, &end, 10);
		if (end == p)
			break;
		snprintf(name, sizeof(name), "organisaties[%ld]", i);
		http_invalid_add(invalid, name, "unknownOrganisation",
				 "Geen organisatie die berichtd kent.");
		p = *end == ',' ? end + 1 : end;
	}
}

/* The source's rules, each naming the field that is wider than its source. */
static void add_source_problems(const struct put *p, const PGresult *res)
{
	json_t *inv = p->invalid;
	if (!pg_bool(res, 0, P_SRC)) {
		http_invalid_add(inv, "doorgegevenDoor", "unknownSource",
				 "Deze persoon heeft geen vertegenwoordiging voor dit account.");
		return;
	}
	if (refused(res, P_SRC_LIVE))
		http_invalid_add(inv, "doorgegevenDoor", "sourceDeleted",
				 "De vertegenwoordiging waarvan deze is afgeleid, is verwijderd.");
	if (refused(res, P_NO_CIRCLE))
		http_invalid_add(inv, "doorgegevenDoor", "circular",
				 "Die vertegenwoordiging is zelf van deze afgeleid.");
	if (refused(res, P_ORGS))
		http_invalid_add(inv, "organisaties", "widerThanSource",
				 "Alleen organisaties waartoe de bron beperkt is.");
	if (refused(res, P_ZAAK))
		http_invalid_add(inv, "zaakkenmerk", "widerThanSource",
				 "Hetzelfde zaakkenmerk als de bron.");
	if (refused(res, P_VANAF))
		http_invalid_add(inv, "geldigVanaf", "widerThanSource",
				 "Niet eerder dan geldigVanaf van de bron.");
	if (refused(res, P_TOT))
		http_invalid_add(inv, "geldigTot", "widerThanSource",
				 "Verplicht, en niet later dan geldigTot van de bron.");
}

static void on_put(const PGresult *res, const char *err, void *arg)
{
	struct put *p = arg;
	struct http_req *r = p->r;
	json_t *inv = p->invalid;
	bool derived = p->derived;

	if (portal_store_failed(r, err) || PQntuples(res) != 1) {
		if (!err)
			http_problem_internal(r);
		json_decref(inv);
		free(p);
		return;
	}
	if (!pg_bool(res, 0, P_HOLDER) || !pg_bool(res, 0, P_REP)) {
		json_decref(inv);
		free(p);
		http_problem_not_found(r, "Onbekend account.");
		return;
	}
	if (!PQgetisnull(res, 0, P_UNKNOWN_ORGS))
		add_unknown_orgs(inv, PQgetvalue(res, 0, P_UNKNOWN_ORGS));
	if (derived)
		add_source_problems(p, res);
	if (pg_bigint(res, 0, P_DEPTH) > p->max_depth) {
		char reason[128];
		snprintf(reason, sizeof(reason),
			 "Hoogstens %" PRId64 " schakel(s): deze bron is al doorgegeven.",
			 p->max_depth);
		http_invalid_add(inv, "doorgegevenDoor", "maxDepth", reason);
	}
	if (refused(res, P_KEEPS_SOURCE))
		http_invalid_add(
			inv, "doorgegevenDoor", "passedOn",
			"Deze vertegenwoordiging is verder doorgegeven; haar bron blijft.");
	free(p);
	if (json_array_size(inv) > 0 || !pg_bool(res, 0, P_STORED)) {
		if (json_array_size(inv) == 0)
			http_invalid_add(inv, "body", "invalid", "Ongeldige vertegenwoordiging.");
		http_problem_invalid(r, inv);
		return;
	}
	json_decref(inv);
	bool created = pg_bool(res, 0, P_CREATED);
	log_info("representatives %s: representation %s", r->id, created ? "created" : "replaced");
	reply_one(r, created ? 201 : 200);
}

static void rep_http_put(struct http_req *r)
{
	const struct config *cfg = r->app->cfg;
	if (!ids_ok(r))
		return;
	json_t *invalid = json_array();
	struct rep_in in;
	bool ok = rep_parse(r->body, r->params[1], http_invalid_sink, invalid, &in);
	uuid_t7 a, b;
	if (uuid_parse(r->params[0], &a) && uuid_parse(r->params[1], &b) &&
	    memcmp(&a, &b, sizeof(a)) == 0) {
		http_invalid_add(invalid, "vertegenwoordigerAccountId", "self",
				 "Niemand vertegenwoordigt zichzelf.");
		ok = false;
	}
	struct put *p = malloc(sizeof(*p));
	if (!p) {
		json_decref(invalid);
		http_problem_internal(r);
		return;
	}
	*p = (struct put){r, invalid, in.has_source, cfg->representatives_max_depth};

	char vanaf[TIMEFMT_RFC3339_LEN] = "", tot[TIMEFMT_RFC3339_LEN] = "", depth[INT_TEXT_MAX];
	if (in.vanaf_ms || !in.has_tot)
		timefmt_format_rfc3339(in.vanaf_ms, vanaf);
	if (in.has_tot)
		timefmt_format_rfc3339(in.tot_ms, tot);
	snprintf(depth, sizeof(depth), "%" PRId64, cfg->representatives_max_depth);
	const char *params[] = {r->params[0],
				r->params[1],
				in.soort[0] ? in.soort : NULL,
				vanaf[0] && ok ? vanaf : NULL,
				in.has_tot ? tot : NULL,
				in.has_orgs ? in.orgs : NULL,
				in.has_zaak ? in.zaak : NULL,
				in.naam[0] ? in.naam : NULL,
				in.betrokkene ? "t" : "f",
				in.has_source ? in.source : NULL,
				depth,
				ok ? "t" : "f"};
	if (!pgpool_query(r->app->pg, PUT_SQL, 12, params, on_put, p)) {
		json_decref(invalid);
		free(p);
		http_problem_internal(r);
	}
}

/* ---------------------------------------------------------------- DELETE */

static void on_delete(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (!portal_found(r, res, err, "Onbekende vertegenwoordiging."))
		return;
	log_info("representatives %s: representation deleted", r->id);
	http_reply_json(r, 204, NULL);
}

static void rep_http_delete(struct http_req *r)
{
	const char *params[] = {r->params[0], r->params[1]};
	if (!ids_ok(r))
		return;
	if (!pgpool_query(r->app->pg, DELETE_SQL, 2, params, on_delete, r))
		http_problem_internal(r);
}

/* ----------------------------------------------------------------- lists */

struct list {
	struct http_req *r;
	const char *key; /* vertegenwoordigers or vertegenwoordigingen */
};

static void on_list(const PGresult *res, const char *err, void *arg)
{
	struct list *l = arg;
	struct http_req *r = l->r;
	const char *key = l->key;
	free(l);

	if (portal_store_failed(r, err))
		return;
	if (PQntuples(res) < 1 || pg_bigint(res, 0, R_ACCOUNT_EXISTS) == 0) {
		http_problem_not_found(r, "Onbekend account.");
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, R_ACCOUNT))
			json_array_append_new(arr, rep_json(res, i));
	http_reply_json(r, 200, json_pack("{s:o}", key, arr));
}

static void list(struct http_req *r, const char *sql, const char *key)
{
	const char *params[] = {r->params[0]};
	if (!portal_account_id_ok(r, r->params[0]))
		return;
	struct list *l = malloc(sizeof(*l));
	if (!l) {
		http_problem_internal(r);
		return;
	}
	*l = (struct list){r, key};
	if (!pgpool_query(r->app->pg, sql, 1, params, on_list, l)) {
		free(l);
		http_problem_internal(r);
	}
}

static void rep_http_list_reps(struct http_req *r)
{
	list(r, LIST_REPS_SQL, "vertegenwoordigers");
}

static void rep_http_list_represented(struct http_req *r)
{
	list(r, LIST_REPRESENTED_SQL, "vertegenwoordigingen");
}

const struct http_route representatives_routes[] = {
	{EVHTTP_REQ_PUT, "/v1/accounts/{}/vertegenwoordigers/{}", ROLE_PORTAL, true, rep_http_put},
	{EVHTTP_REQ_GET, "/v1/accounts/{}/vertegenwoordigers/{}", ROLE_PORTAL, false, rep_http_get},
	{EVHTTP_REQ_DELETE, "/v1/accounts/{}/vertegenwoordigers/{}", ROLE_PORTAL, false,
	 rep_http_delete},
	{EVHTTP_REQ_GET, "/v1/accounts/{}/vertegenwoordigers", ROLE_PORTAL, false,
	 rep_http_list_reps},
	{EVHTTP_REQ_GET, "/v1/accounts/{}/vertegenwoordigingen", ROLE_PORTAL, false,
	 rep_http_list_represented},
	{0, NULL, 0, false, NULL},
};
