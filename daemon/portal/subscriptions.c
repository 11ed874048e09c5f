/*
 * subscriptions.c - per-agency on/off switches of a citizen (see subscriptions.h).
 */
#include "portal/subscriptions.h"

#include <string.h>

#include "portal/portal.h"
#include "common/bsn.h"
#include "common/log.h"
#include "core/pgpool.h"
#include "core/pgval.h"

/* $1 account, $2 OIN or NULL for all; the first column tells whether the account exists */
static const char LIST_SQL[] =
	"SELECT (SELECT count(*) FROM accounts WHERE id = $1), x.oin, x.name,"
	"  x.actief, x.mandatory "
	"FROM (SELECT 1) one LEFT JOIN ("
	"  SELECT ag.oin, ag.name, o.agency_id IS NULL AS actief, ag.mandatory"
	"  FROM agencies ag LEFT JOIN agencies_turned_off o"
	"    ON o.agency_id = ag.id AND o.account_id = $1"
	"  WHERE $2::text IS NULL OR ag.oin = $2"
	") x ON true ORDER BY x.name, x.oin";

enum list_col { L_ACCOUNT, L_OIN, L_NAME, L_ACTIVE, L_MANDATORY };

static json_t *subscription_json(const PGresult *res, int row)
{
	return json_pack("{s:s, s:s, s:b, s:b}", "oin", PQgetvalue(res, row, L_OIN), "naam",
			 PQgetvalue(res, row, L_NAME), "actief", pg_bool(res, row, L_ACTIVE),
			 "verplicht", pg_bool(res, row, L_MANDATORY));
}

static bool account_known(struct http_req *r, const PGresult *res)
{
	if (strcmp(PQgetvalue(res, 0, L_ACCOUNT), "0") != 0)
		return true;
	http_problem_not_found(r, "Onbekend account.");
	return false;
}

static void agency_unknown(struct http_req *r)
{
	http_problem_not_found(r, "Onbekende afzender (OIN).");
}

static void on_list(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err) || !account_known(r, res))
		return;
	json_t *list = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, L_OIN))
			json_array_append_new(list, subscription_json(res, i));
	http_reply_json(r, 200, json_pack("{s:o}", "abonnementen", list));
}

static void on_one(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err) || !account_known(r, res))
		return;
	if (PQgetisnull(res, 0, L_OIN)) {
		agency_unknown(r);
		return;
	}
	http_reply_json(r, 200, subscription_json(res, 0));
}

void subscriptions_http_list(struct http_req *r)
{
	if (!portal_account_id_ok(r, r->params[0]))
		return;
	const char *params[] = {r->params[0], NULL};
	if (!pgpool_query(r->app->pg, LIST_SQL, 2, params, on_list, r))
		http_problem_internal(r);
}

void subscriptions_http_get(struct http_req *r)
{
	if (!portal_account_id_ok(r, r->params[0]))
		return;
	if (!oin_valid(r->params[1])) {
		agency_unknown(r);
		return;
	}
	const char *params[] = {r->params[0], r->params[1]};
	if (!pgpool_query(r->app->pg, LIST_SQL, 2, params, on_one, r))
		http_problem_internal(r);
}

/*
 * $1 account, $2 OIN, $3 actief. A mandatory agency is never stored as off;
 * turning one off cancels scheduled mail about that agency's messages.
 */
static const char PUT_SQL[] =
	"WITH acc AS (SELECT id FROM accounts WHERE id = $1),"
	" ag AS (SELECT id, oin, name, mandatory FROM agencies WHERE oin = $2),"
	" up AS (INSERT INTO subscriptions (account_id, agency_id, active)"
	"   SELECT acc.id, ag.id, $3::boolean FROM acc, ag WHERE $3::boolean OR NOT ag.mandatory"
	"   ON CONFLICT (account_id, agency_id)"
	"   DO UPDATE SET active = EXCLUDED.active, updated_at = now()"
	"   RETURNING active),"
	" cancel AS (UPDATE notifications n SET state = 'cancelled'"
	"   FROM messages m, ag WHERE NOT $3::boolean AND NOT ag.mandatory"
	"     AND n.account_id = $1 AND n.state = 'scheduled' AND n.mail_id IS NULL"
	"     AND n.message_id = m.id"
	"     AND m.agency_id = ag.id) "
	"SELECT (SELECT count(*) FROM acc), ag.oin, ag.name,"
	"  ag.mandatory OR coalesce((SELECT active FROM up), true), ag.mandatory "
	"FROM (SELECT 1) one LEFT JOIN ag ON true";

static void on_put(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err) || !account_known(r, res))
		return;
	if (PQgetisnull(res, 0, L_OIN)) {
		agency_unknown(r);
		return;
	}
	bool want = json_is_true(json_object_get(r->body, "actief"));
	if (!want && pg_bool(res, 0, L_MANDATORY)) {
		http_problem(r, 409, "verplichte-afzender", "Verplichte afzender",
			     "Berichten van deze afzender komen altijd in de Berichtenbox; "
			     "deze afzender kan niet worden uitgezet.");
		return;
	}
	log_info("subscriptions %s: account %s turned agency %s %s", r->id, r->params[0],
		 r->params[1], want ? "on" : "off");
	http_reply_json(r, 200, subscription_json(res, 0));
}

void subscriptions_http_put(struct http_req *r)
{
	if (!portal_account_id_ok(r, r->params[0]))
		return;
	if (!oin_valid(r->params[1])) {
		agency_unknown(r);
		return;
	}
	json_t *invalid = json_array();
	const char *key;
	json_t *val;
	json_object_foreach(r->body, key, val)
	{
		if (strcmp(key, "actief") != 0)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	const json_t *ja = json_object_get(r->body, "actief");
	if (!ja)
		http_invalid_add(invalid, "actief", "required", "Dit veld is verplicht.");
	else if (!json_is_boolean(ja))
		http_invalid_add(invalid, "actief", "boolean", "Dit veld is true of false.");
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);
	const char *params[] = {r->params[0], r->params[1], json_is_true(ja) ? "t" : "f"};
	if (!pgpool_query(r->app->pg, PUT_SQL, 3, params, on_put, r))
		http_problem_internal(r);
}

const struct http_route subscriptions_routes[] = {
	{EVHTTP_REQ_GET, "/v1/accounts/{}/abonnementen", ROLE_PORTAL, false,
	 subscriptions_http_list},
	{EVHTTP_REQ_GET, "/v1/accounts/{}/abonnementen/{}", ROLE_PORTAL, false,
	 subscriptions_http_get},
	{EVHTTP_REQ_PUT, "/v1/accounts/{}/abonnementen/{}", ROLE_PORTAL, true,
	 subscriptions_http_put},
	{0, NULL, 0, false, NULL},
};
