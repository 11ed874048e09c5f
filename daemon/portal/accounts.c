/*
 * accounts.c - portal account calls (see accounts.h).
 */
#include "portal/accounts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bsn.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/mime.h"
#include "common/uuid7.h"
#include "core/pgpool.h"
#include "core/pgval.h"
#include "core/queue.h"
#include "portal/portal.h"
#include "portal/verify.h"

#define EMAIL_MAX 254
#define INT_TEXT_MAX 24

static void on_create(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err))
		return;
	bool inserted = pg_bool(res, 0, 1);
	char id[UUID_STR_LEN];
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	if (inserted) {
		char location[80];
		snprintf(location, sizeof(location), "/v1/accounts/%s", id);
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Location", location);
		log_info("accounts %s: account %s created", r->id, id);
	}
	portal_reply_account(r, id, inserted ? 201 : 200);
}

void accounts_http_create(struct http_req *r)
{
	const struct config *cfg = r->app->cfg;
	json_t *invalid = json_array();
	const char *key;
	json_t *val;
	json_object_foreach(r->body, key, val)
	{
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
		http_problem_internal(r);
		return;
	}
	uuid_format(&u, id);
	const char *params[] = {id, hash};
	/* xmax = 0 tells a fresh insert from an update of an existing row */
	if (!pgpool_query(r->app->pg,
			  "INSERT INTO accounts (id, bsn_hash) VALUES ($1, $2) "
			  "ON CONFLICT (bsn_hash) DO UPDATE SET active = true, updated_at = now() "
			  "RETURNING id, xmax = 0",
			  2, params, on_create, r))
		http_problem_internal(r);
}

void accounts_http_get(struct http_req *r)
{
	if (!portal_account_id_ok(r, r->params[0]))
		return;
	portal_reply_account(r, r->params[0], 200);
}

/*
 * One statement for every PATCH: the account row is locked first (a0), the
 * preferences are updated, a new address starts a verification (replacing
 * any earlier one) with its 'verify' mail, going back to the verified
 * address or to none drops the pending one, and turning notifications off
 * cancels what is scheduled.
 *
 * A death (overleden: true, issue 11) sets overleden_at once; from then the
 * holder gets no mail (0012's holder_notified and may_get_mail: the claim
 * cancels what is pending) and the nabestaande representatives take over
 * the messages in the box (0017's nabestaande_takes_over), in the same
 * transaction. It is not undone here: overleden: false on a dead account
 * is 409 and changes nothing (a registration made in error is corrected by
 * the operator, like the register it comes from); on a living one it is a
 * no-op.
 *   $1 id  $2 emailadres given  $3 address or NULL  $4 code hash  $5 ttl ms
 *   $6 emailNotificaties  $7 herhaalNotificaties  $8 bewaartermijnDagen
 *   $9 taal  $10 code (travels in the mail's payload only)
 *   $11 overleden  $12 digest window  $13..$15 [retention] default, min, max days
 */
static const char PATCH_SQL[] =
	"WITH a0 AS (SELECT id, email, overleden_at IS NOT NULL AS dead,"
	"   active AND NOT ($11::boolean IS FALSE AND overleden_at IS NOT NULL) AS active"
	"   FROM accounts WHERE id = $1 FOR UPDATE),"
	" upd AS (UPDATE accounts a SET"
	"   email = CASE WHEN $2::boolean AND $3::text IS NULL THEN NULL ELSE a.email END,"
	"   email_confirmed_at = CASE WHEN $2::boolean AND $3::text IS NULL THEN NULL"
	"     ELSE a.email_confirmed_at END,"
	"   email_notifications = coalesce($6::boolean, a.email_notifications),"
	"   repeat_notifications = coalesce($7::boolean, a.repeat_notifications),"
	"   retention_days = coalesce($8::integer, a.retention_days),"
	"   language = coalesce($9::text, a.language), updated_at = now(),"
	"   overleden_at = CASE WHEN $11::boolean THEN coalesce(a.overleden_at, now())"
	"     ELSE a.overleden_at END"
	"   FROM a0 WHERE a.id = a0.id AND a0.active RETURNING a.id),"
	" dead AS (SELECT t.* FROM a0 CROSS JOIN LATERAL nabestaande_takes_over(a0.id,"
	"     $12::interval, $13::integer, $14::integer, $15::integer) t"
	"   WHERE $11::boolean AND a0.active AND NOT a0.dead),"
	" ver AS (INSERT INTO email_verifications (account_id, address, code_hash, expires_at)"
	"   SELECT id, $3::text, $4::text, now() + $5::bigint * interval '1 millisecond' FROM a0"
	"   WHERE a0.active AND $2::boolean AND $3::text IS NOT NULL"
	"     AND a0.email IS DISTINCT FROM $3::text"
	"   ON CONFLICT (account_id) DO UPDATE SET address = EXCLUDED.address,"
	"     code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, attempts = 0,"
	"     locked = false, created_at = now()"
	"   RETURNING account_id, address),"
	" forget AS (DELETE FROM email_verifications v USING a0"
	"   WHERE v.account_id = a0.id AND a0.active AND $2::boolean"
	"     AND ($3::text IS NULL OR a0.email = $3::text)),"
	" cancel AS (UPDATE notifications n SET state = 'cancelled' FROM a0"
	"   WHERE n.account_id = a0.id AND a0.active AND n.state = 'scheduled' AND ("
	"     (n.kind = 'verify' AND $2::boolean)"
	"     OR (n.kind = 'repeat' AND $7::boolean IS FALSE)"
	"     OR (n.kind IN ('new', 'repeat') AND $6::boolean IS FALSE))),"
	" mail AS (INSERT INTO notifications (account_id, kind, recipient, payload, due_at)"
	"   SELECT account_id, 'verify', address, jsonb_build_object('code', $10::text), now()"
	"   FROM ver RETURNING id, (extract(epoch FROM due_at) * 1000)::bigint AS due) "
	"SELECT (SELECT active FROM a0), mail.id, mail.due,"
	"  (SELECT dead FROM a0) AND $11::boolean IS FALSE,"
	"  (SELECT json_agg(json_build_array(id, due_ms, lane)) FROM dead) "
	"FROM (SELECT 1) one LEFT JOIN mail ON true";

/* The nabestaanden's notifications of a death, [[id, due ms, lane], ...], for Redis. */
static void schedule_takeover(struct http_req *r, const char *text)
{
	json_t *a = json_loads(text, 0, NULL);
	size_t n = json_array_size(a), k = 0;
	int64_t *ids = calloc(n + 1, sizeof(int64_t)), *dues = calloc(n + 1, sizeof(int64_t)),
		*lanes = calloc(n + 1, sizeof(int64_t));
	for (size_t i = 0; ids && dues && lanes && i < n; i++) {
		const json_t *row = json_array_get(a, i);
		ids[k] = (int64_t)json_integer_value(json_array_get(row, 0));
		dues[k] = (int64_t)json_integer_value(json_array_get(row, 1));
		lanes[k] = (int64_t)json_integer_value(json_array_get(row, 2));
		k++;
	}
	if (k < n)
		log_warn("accounts %s: out of memory; the reconciler queues the nabestaanden's "
			 "notifications",
			 r->id);
	log_info("accounts %s: account %s died; %zu notifications for its nabestaanden", r->id,
		 r->params[0], k);
	atomic_fetch_add(&r->app->metrics.notifications_scheduled, (long long)k);
	if (k)
		queue_loop_schedule_lanes(r->app->queue, ids, lanes, dues, k);
	free(ids);
	free(dues);
	free(lanes);
	json_decref(a);
}

static void on_patched(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err))
		return;
	if (PQgetisnull(res, 0, 0)) {
		http_problem_not_found(r, "Onbekend account.");
		return;
	}
	if (!pg_bool(res, 0, 0) && pg_bool(res, 0, 3)) {
		http_problem(
			r, 409, "overlijden-onherroepelijk", "Overlijden is vastgelegd",
			"Een vastgelegd overlijden wordt niet teruggedraaid (overleden: false).");
		return;
	}
	if (!pg_bool(res, 0, 0)) {
		http_problem(r, 409, "account-niet-actief", "Account niet actief",
			     "Activeer het account eerst (POST /v1/accounts).");
		return;
	}
	if (!PQgetisnull(res, 0, 4))
		schedule_takeover(r, PQgetvalue(res, 0, 4));
	if (!PQgetisnull(res, 0, 1)) {
		log_info("accounts %s: verification mail %s scheduled for account %s", r->id,
			 PQgetvalue(res, 0, 1), r->params[0]);
		verify_schedule(r->app, res, 0, 1, 2);
	}
	portal_reply_account(r, r->params[0], 200);
}

/* A JSON boolean as "t"/"f" for a ::boolean parameter; NULL when absent. */
static const char *opt_bool(json_t *invalid, const json_t *body, const char *name)
{
	const json_t *v = json_object_get(body, name);
	if (!v)
		return NULL;
	if (!json_is_boolean(v)) {
		http_invalid_add(invalid, name, "boolean", "Dit veld is true of false.");
		return NULL;
	}
	return json_is_true(v) ? "t" : "f";
}

void accounts_http_patch(struct http_req *r)
{
	const struct config *cfg = r->app->cfg;
	static const char *const fields[] = {
		"emailadres", "emailNotificaties", "herhaalNotificaties", "bewaartermijnDagen",
		"taal",       "overleden"};
	if (!portal_account_id_ok(r, r->params[0]))
		return;
	json_t *invalid = json_array();
	const char *key;
	json_t *val;
	json_object_foreach(r->body, key, val)
	{
		bool known = false;
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			known = known || strcmp(key, fields[i]) == 0;
		if (!known)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	const json_t *je = json_object_get(r->body, "emailadres");
	const char *email = NULL;
	bool set_email = je != NULL;
	if (je && !json_is_null(je)) {
		email = json_string_value(je);
		if (!email || strlen(email) > EMAIL_MAX || !mime_addr_valid(email))
			http_invalid_add(invalid, "emailadres", "email",
					 "Geen geldig e-mailadres.");
	}
	const char *notify = opt_bool(invalid, r->body, "emailNotificaties");
	const char *repeat = opt_bool(invalid, r->body, "herhaalNotificaties");
	const char *dead = opt_bool(invalid, r->body, "overleden");

	char days[INT_TEXT_MAX];
	const char *retention = NULL;
	const json_t *jd = json_object_get(r->body, "bewaartermijnDagen");
	if (jd) {
		json_int_t d = json_is_integer(jd) ? json_integer_value(jd) : -1;
		if (d < cfg->retention_min_days || d > cfg->retention_max_days) {
			char reason[128];
			snprintf(reason, sizeof(reason),
				 "Een geheel aantal dagen van %" PRId64 " tot en met %" PRId64 ".",
				 cfg->retention_min_days, cfg->retention_max_days);
			http_invalid_add(invalid, "bewaartermijnDagen", "range", reason);
		} else {
			snprintf(days, sizeof(days), "%lld", (long long)d);
			retention = days;
		}
	}
	const json_t *jt = json_object_get(r->body, "taal");
	const char *taal = jt ? json_string_value(jt) : NULL;
	if (jt && (!taal || (strcmp(taal, "nl") != 0 && strcmp(taal, "en") != 0)))
		http_invalid_add(invalid, "taal", "enum", "Kies nl of en.");
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);

	char code[VERIFY_CODE_LEN] = "", hash[CRYPTO_HEX256_LEN] = "", ttl[INT_TEXT_MAX];
	if (email && !verify_new_code(cfg, r->params[0], code, hash)) {
		http_problem_internal(r);
		return;
	}
	snprintf(ttl, sizeof(ttl), "%" PRId64, cfg->portal_verify_ttl_ms);
	char window[48], def[INT_TEXT_MAX], min[INT_TEXT_MAX], max[INT_TEXT_MAX];
	snprintf(window, sizeof(window), "%" PRId64 " milliseconds", cfg->notify_digest_window_ms);
	snprintf(def, sizeof(def), "%" PRId64, cfg->retention_default_days);
	snprintf(min, sizeof(min), "%" PRId64, cfg->retention_min_days);
	snprintf(max, sizeof(max), "%" PRId64, cfg->retention_max_days);
	const char *params[] = {r->params[0], set_email ? "t" : "f",
				email,        email ? hash : NULL,
				ttl,          notify,
				repeat,       retention,
				taal,         email ? code : NULL,
				dead,         window,
				def,          min,
				max};
	if (!pgpool_query(r->app->pg, PATCH_SQL, 15, params, on_patched, r))
		http_problem_internal(r);
}

static void on_delete(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (!portal_found(r, res, err, "Onbekend account."))
		return;
	log_info("accounts %s: account %s deactivated", r->id, PQgetvalue(res, 0, 0));
	http_reply_json(r, 204, NULL);
}

void accounts_http_delete(struct http_req *r)
{
	if (!portal_account_id_ok(r, r->params[0]))
		return;
	const char *params[] = {r->params[0]};
	/* deactivation stops all pending mail at once, verification mail included */
	if (!pgpool_query(
		    r->app->pg,
		    "WITH a AS (UPDATE accounts SET active = false, updated_at = now() "
		    "  WHERE id = $1 RETURNING id), "
		    "c AS (UPDATE notifications SET state = 'cancelled' "
		    "  WHERE account_id IN (SELECT id FROM a) AND state = 'scheduled'), "
		    "v AS (DELETE FROM email_verifications WHERE account_id IN (SELECT id FROM a)) "
		    "SELECT id FROM a",
		    1, params, on_delete, r))
		http_problem_internal(r);
}

const struct http_route accounts_routes[] = {
	{EVHTTP_REQ_POST, "/v1/accounts", ROLE_PORTAL, true, accounts_http_create},
	{EVHTTP_REQ_GET, "/v1/accounts/{}", ROLE_PORTAL, false, accounts_http_get},
	{EVHTTP_REQ_PATCH, "/v1/accounts/{}", ROLE_PORTAL, true, accounts_http_patch},
	{EVHTTP_REQ_DELETE, "/v1/accounts/{}", ROLE_PORTAL, false, accounts_http_delete},
	{0, NULL, 0, false, NULL},
};
