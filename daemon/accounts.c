/*
 * accounts.c - portal account calls (see accounts.h).
 */
#include "accounts.h"

#include <string.h>

#include "common/bsn.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/mime.h"
#include "common/uuid7.h"
#include "pgpool.h"

#define EMAIL_MAX 254

static const char ACCOUNT_COLUMNS[] = "id, active, email";

static json_t *account_json(const PGresult *res, int row)
{
	json_t *o = json_pack("{s:s, s:b}", "accountId", PQgetvalue(res, row, 0), "actief",
			      PQgetvalue(res, row, 1)[0] == 't');
	if (o)
		json_object_set_new(o, "emailadres",
				    PQgetisnull(res, row, 2) ? json_null()
							     : json_string(PQgetvalue(res, row, 2)));
	return o;
}

static bool account_id_ok(struct http_req *r, const char *id)
{
	uuid_t7 u;
	if (uuid_parse(id, &u))
		return true;
	http_problem(r, 404, "niet-gevonden", "Niet gevonden", "Onbekend account.");
	return false;
}

static bool store_failed(struct http_req *r, const char *err)
{
	if (!err)
		return false;
	log_warn("accounts %s: %.200s", r->id, err);
	http_problem_unavailable(r, "De database is niet bereikbaar.");
	return true;
}

static void on_create(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (store_failed(r, err))
		return;
	bool inserted = PQgetvalue(res, 0, 3)[0] == 't';
	json_t *body = account_json(res, 0);
	if (inserted) {
		char location[80];
		snprintf(location, sizeof(location), "/v1/accounts/%s", PQgetvalue(res, 0, 0));
		log_info("accounts %s: account %s created", r->id, PQgetvalue(res, 0, 0));
		http_reply_created(r, location, body);
	} else {
		http_reply_json(r, 200, body);
	}
}

void accounts_http_create(struct http_req *r)
{
	const struct config *cfg = r->app->cfg;
	json_t *invalid = json_array();
	const char *key;
	json_t *val;
	json_object_foreach(r->body, key, val) {
		if (strcmp(key, "bsn") != 0)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	const json_t *jb = json_object_get(r->body, "bsn");
	const char *bsn = json_string_value(jb);
	if (!jb)
		http_invalid_add(invalid, "bsn", "required", "Dit veld is verplicht.");
	else if (!bsn || !bsn_valid(bsn))
		http_invalid_add(invalid, "bsn", "invalidBsn",
				 "Een BSN bestaat uit 9 cijfers en voldoet aan de elfproef.");
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);

	char hash[CRYPTO_HEX256_LEN], id[UUID_STR_LEN];
	uuid_t7 u;
	if (!crypto_hmac_sha256_hex(cfg->bsn_key, cfg->bsn_key_len, bsn, strlen(bsn), hash) ||
	    !uuid7_generate(&u)) {
		http_problem(r, 500, "interne-fout", "Interne fout", NULL);
		return;
	}
	uuid_format(&u, id);
	const char *params[] = {id, hash};
	/* xmax = 0 tells a fresh insert from an update of an existing row */
	if (!pgpool_query(r->app->pg,
			  "INSERT INTO accounts (id, bsn_hash) VALUES ($1, $2) "
			  "ON CONFLICT (bsn_hash) DO UPDATE SET active = true, updated_at = now() "
			  "RETURNING id, active, email, xmax = 0",
			  2, params, on_create, r))
		http_problem(r, 500, "interne-fout", "Interne fout", NULL);
}

static void on_account_row(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (store_failed(r, err))
		return;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "niet-gevonden", "Niet gevonden", "Onbekend account.");
		return;
	}
	http_reply_json(r, 200, account_json(res, 0));
}

void accounts_http_get(struct http_req *r)
{
	if (!account_id_ok(r, r->params[0]))
		return;
	const char *params[] = {r->params[0]};
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT %s FROM accounts WHERE id = $1", ACCOUNT_COLUMNS);
	if (!pgpool_query(r->app->pg, sql, 1, params, on_account_row, r))
		http_problem(r, 500, "interne-fout", "Interne fout", NULL);
}

void accounts_http_patch(struct http_req *r)
{
	if (!account_id_ok(r, r->params[0]))
		return;
	json_t *invalid = json_array();
	const char *key;
	json_t *val;
	json_object_foreach(r->body, key, val) {
		if (strcmp(key, "emailadres") != 0)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	const json_t *je = json_object_get(r->body, "emailadres");
	const char *email = NULL;
	bool set_email = je != NULL;
	if (je && !json_is_null(je)) {
		email = json_string_value(je);
		if (!email || strlen(email) > EMAIL_MAX || !mime_addr_valid(email))
			http_invalid_add(invalid, "emailadres", "email", "Geen geldig e-mailadres.");
	}
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);

	const char *params[] = {r->params[0], set_email ? "t" : "f", email};
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "UPDATE accounts SET email = CASE WHEN $2::boolean THEN $3 ELSE email END, "
		 "updated_at = now() WHERE id = $1 RETURNING %s",
		 ACCOUNT_COLUMNS);
	if (!pgpool_query(r->app->pg, sql, 3, params, on_account_row, r))
		http_problem(r, 500, "interne-fout", "Interne fout", NULL);
}

static void on_delete(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (store_failed(r, err))
		return;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "niet-gevonden", "Niet gevonden", "Onbekend account.");
		return;
	}
	log_info("accounts %s: account %s deactivated", r->id, PQgetvalue(res, 0, 0));
	http_reply_json(r, 204, NULL);
}

void accounts_http_delete(struct http_req *r)
{
	if (!account_id_ok(r, r->params[0]))
		return;
	const char *params[] = {r->params[0]};
	/* deactivation stops all pending mail at once */
	if (!pgpool_query(r->app->pg,
			  "WITH a AS (UPDATE accounts SET active = false, updated_at = now() "
			  "  WHERE id = $1 RETURNING id), "
			  "c AS (UPDATE notifications SET state = 'cancelled' "
			  "  WHERE account_id IN (SELECT id FROM a) AND state = 'scheduled') "
			  "SELECT id FROM a",
			  1, params, on_delete, r))
		http_problem(r, 500, "interne-fout", "Interne fout", NULL);
}

const struct http_route accounts_routes[] = {
	{EVHTTP_REQ_POST, "/v1/accounts", ROLE_PORTAL, true, accounts_http_create},
	{EVHTTP_REQ_GET, "/v1/accounts/{}", ROLE_PORTAL, false, accounts_http_get},
	{EVHTTP_REQ_PATCH, "/v1/accounts/{}", ROLE_PORTAL, true, accounts_http_patch},
	{EVHTTP_REQ_DELETE, "/v1/accounts/{}", ROLE_PORTAL, false, accounts_http_delete},
	{0, NULL, 0, false, NULL},
};
