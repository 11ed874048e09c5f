/*
 * verify.c - e-mail verification codes (see verify.h).
 *
 * Why attempts are counted before the code is compared: every guess first
 * takes one attempt in PostgreSQL (an atomic UPDATE that also sets `locked`
 * on the last allowed one), and only a guess that got an attempt is
 * compared. So even a hundred concurrent guesses are at most
 * verify_attempts comparisons. The comparison is constant-time on the
 * keyed hashes (crypto_ct_equal).
 */
#include "portal/verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portal/portal.h"
#include "common/log.h"
#include "core/pgpool.h"
#include "core/queue.h"
#include "core/pgval.h"

#define CODE_SPACE 1000000u /* 10^VERIFY_CODE_DIGITS */
#define INT_TEXT_MAX 24
#define HASH_INPUT_MAX 128

static bool code_hash(const struct config *cfg, const char *account_id, const char *code,
		      char hash[CRYPTO_HEX256_LEN])
{
	char input[HASH_INPUT_MAX];
	int n = snprintf(input, sizeof(input), "emailverificatie:%s:%s", account_id, code);
	return n > 0 && (size_t)n < sizeof(input) &&
	       crypto_hmac_sha256_hex(cfg->bsn_key, cfg->bsn_key_len, input, (size_t)n, hash);
}

bool verify_new_code(const struct config *cfg, const char *account_id, char code[VERIFY_CODE_LEN],
		     char hash[CRYPTO_HEX256_LEN])
{
	/* rejection sampling: every code equally likely */
	const uint32_t limit = UINT32_MAX - UINT32_MAX % CODE_SPACE;
	uint32_t x;
	do {
		if (!crypto_random_bytes(&x, sizeof(x)))
			return false;
	} while (x >= limit);
	snprintf(code, VERIFY_CODE_LEN, "%06u", x % CODE_SPACE);
	return code_hash(cfg, account_id, code, hash);
}

void verify_schedule(struct app *app, const PGresult *res, int row, int id_col, int due_col)
{
	if (PQgetisnull(res, row, id_col))
		return;
	int64_t id = pg_bigint(res, row, id_col);
	int64_t due = pg_bigint(res, row, due_col);
	atomic_fetch_add(&app->metrics.notifications_scheduled, 1);
	queue_loop_schedule(app->queue, &id, &due, 1);
}

/* ---------------------------------------------------------------- resend */

static const char RESEND_SQL[] =
	"WITH v AS (UPDATE email_verifications e SET code_hash = $2,"
	"   expires_at = now() + $3::bigint * interval '1 millisecond', attempts = 0,"
	"   locked = false, created_at = now()"
	"   FROM accounts a WHERE e.account_id = $1 AND a.id = e.account_id AND a.active"
	"   RETURNING e.account_id, e.address, e.expires_at),"
	" cancel AS (UPDATE notifications SET state = 'cancelled'"
	"   WHERE account_id IN (SELECT account_id FROM v) AND kind = 'verify'"
	"     AND state = 'scheduled'),"
	" mail AS (INSERT INTO notifications (account_id, kind, recipient, payload, due_at)"
	"   SELECT account_id, 'verify', address, jsonb_build_object('code', $4::text), now()"
	"   FROM v RETURNING id, (extract(epoch FROM due_at) * 1000)::bigint AS due) "
	"SELECT (SELECT count(*) FROM accounts WHERE id = $1), mail.id, mail.due,"
	"  to_char(v.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), v.address "
	"FROM (SELECT 1) one LEFT JOIN v ON true LEFT JOIN mail ON true";

static void on_resent(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err))
		return;
	if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
		http_problem_not_found(r, "Onbekend account.");
		return;
	}
	if (PQgetisnull(res, 0, 1)) {
		http_problem(r, 409, "geen-verificatie", "Geen e-mailadres te verifiëren",
			     "Dit account heeft geen nieuw e-mailadres dat op bevestiging wacht.");
		return;
	}
	log_info("verify %s: new verification mail %s for account %s", r->id, PQgetvalue(res, 0, 1),
		 r->params[0]);
	verify_schedule(r->app, res, 0, 1, 2);
	char location[96];
	snprintf(location, sizeof(location), "/v1/accounts/%s/emailverificaties", r->params[0]);
	http_reply_created(r, location,
			   json_pack("{s:s, s:s}", "emailadres", PQgetvalue(res, 0, 4),
				     "verlooptOp", PQgetvalue(res, 0, 3)));
}

void verify_http_resend(struct http_req *r)
{
	const struct config *cfg = r->app->cfg;
	char code[VERIFY_CODE_LEN], hash[CRYPTO_HEX256_LEN], ttl[INT_TEXT_MAX];

	if (!portal_account_id_ok(r, r->params[0]))
		return;
	if (!verify_new_code(cfg, r->params[0], code, hash)) {
		http_problem_internal(r);
		return;
	}
	snprintf(ttl, sizeof(ttl), "%" PRId64, cfg->portal_verify_ttl_ms);
	const char *params[] = {r->params[0], hash, ttl, code};
	if (!pgpool_query(r->app->pg, RESEND_SQL, 4, params, on_resent, r))
		http_problem_internal(r);
}

/* --------------------------------------------------------------- confirm */

/* Takes one attempt (if any is left) and returns the stored hash with it. */
static const char ATTEMPT_SQL[] =
	"WITH v AS (SELECT locked, expires_at > now() AS fresh FROM email_verifications"
	"   WHERE account_id = $1),"
	" u AS (UPDATE email_verifications e SET attempts = e.attempts + 1,"
	"   locked = e.attempts + 1 >= $2::integer"
	"   WHERE e.account_id = $1 AND NOT e.locked AND e.expires_at > now()"
	"   RETURNING e.address, e.code_hash, e.attempts) "
	"SELECT (SELECT count(*) FROM accounts WHERE id = $1), v.locked, v.fresh,"
	"  u.address, u.code_hash, u.attempts "
	"FROM (SELECT 1) one LEFT JOIN v ON true LEFT JOIN u ON true";

enum attempt_col { T_ACCOUNT, T_LOCKED, T_FRESH, T_ADDRESS, T_HASH, T_ATTEMPTS };

/*
 * The address becomes the verified one; a hard bounce is thereby fixed.
 * A verify mail still scheduled (never sent) is cancelled, and the codes
 * kept in the payloads of earlier verify mails are erased.
 */
static const char CONFIRM_SQL[] =
	"WITH d AS (DELETE FROM email_verifications WHERE account_id = $1 AND address = $2"
	"   RETURNING address),"
	/* a verification mail not yet sent has no use any more, nor do old codes */
	" c AS (UPDATE notifications SET payload = NULL,"
	"   state = CASE WHEN state = 'scheduled' THEN 'cancelled' ELSE state END"
	"   WHERE account_id = $1 AND kind = 'verify'"
	"     AND EXISTS (SELECT 1 FROM d)) "
	"UPDATE accounts a SET email = d.address, email_confirmed_at = now(),"
	"  email_bounced_at = NULL, bounce_ack_at = NULL, updated_at = now() "
	"FROM d WHERE a.id = $1 RETURNING a.id";

struct confirm {
	struct http_req *r;
	char code[VERIFY_CODE_LEN];
};

static void on_confirmed(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (portal_store_failed(r, err))
		return;
	if (PQntuples(res) != 1) {
		http_problem(r, 409, "geen-verificatie", "Geen e-mailadres te verifiëren",
			     "Er is intussen een ander e-mailadres opgegeven.");
		return;
	}
	log_info("verify %s: address of account %s verified", r->id, r->params[0]);
	portal_reply_account(r, r->params[0], 200);
}

static void on_attempt(const PGresult *res, const char *err, void *arg)
{
	struct confirm *c = arg;
	struct http_req *r = c->r;
	const struct config *cfg = r->app->cfg;
	char want[CRYPTO_HEX256_LEN];
	char code[VERIFY_CODE_LEN];

	memcpy(code, c->code, sizeof(code));
	free(c);
	if (portal_store_failed(r, err))
		return;
	if (strcmp(PQgetvalue(res, 0, T_ACCOUNT), "0") == 0) {
		http_problem_not_found(r, "Onbekend account.");
		return;
	}
	if (PQgetisnull(res, 0, T_LOCKED)) {
		http_problem(r, 409, "geen-verificatie", "Geen e-mailadres te verifiëren",
			     "Dit account heeft geen nieuw e-mailadres dat op bevestiging wacht.");
		return;
	}
	if (PQgetisnull(res, 0, T_HASH)) {
		if (!pg_bool(res, 0, T_FRESH))
			http_problem(r, 409, "code-verlopen", "Code verlopen",
				     "Deze code is verlopen; vraag een nieuwe code aan.");
		else
			http_problem(r, 409, "verificatie-geblokkeerd", "Verificatie geblokkeerd",
				     "Te vaak een onjuiste code; vraag een nieuwe code aan.");
		return;
	}
	const char *stored = PQgetvalue(res, 0, T_HASH);
	if (!code_hash(cfg, r->params[0], code, want) || strlen(stored) != strlen(want) ||
	    !crypto_ct_equal(want, stored, strlen(want))) {
		int64_t left = cfg->portal_verify_attempts - pg_bigint(res, 0, T_ATTEMPTS);
		log_info("verify %s: wrong code for account %s, %" PRId64 " attempts left", r->id,
			 r->params[0], left);
		char detail[160];
		snprintf(detail, sizeof(detail),
			 left > 0 ? "Deze code is onjuist; nog %" PRId64 " pogingen."
				  : "Deze code is onjuist; de verificatie is nu geblokkeerd "
				    "(%" PRId64 " pogingen over). Vraag een nieuwe code aan.",
			 left > 0 ? left : 0);
		http_problem(r, 422, "onjuiste-code", "Onjuiste code", detail);
		return;
	}
	const char *params[] = {r->params[0], PQgetvalue(res, 0, T_ADDRESS)};
	if (!pgpool_query(r->app->pg, CONFIRM_SQL, 2, params, on_confirmed, r))
		http_problem_internal(r);
}

static bool code_format_ok(const char *s)
{
	if (!s || strlen(s) != VERIFY_CODE_DIGITS)
		return false;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

void verify_http_confirm(struct http_req *r)
{
	char attempts[INT_TEXT_MAX];
	json_t *invalid = json_array();
	const char *key;
	json_t *val;

	if (!portal_account_id_ok(r, r->params[0])) {
		json_decref(invalid);
		return;
	}
	json_object_foreach(r->body, key, val)
	{
		if (strcmp(key, "code") != 0)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	const char *code = json_string_value(json_object_get(r->body, "code"));
	if (!code_format_ok(code))
		http_invalid_add(invalid, "code", "pattern", "De code bestaat uit 6 cijfers.");
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);
	struct confirm *c = malloc(sizeof(*c));
	if (!c) {
		http_problem_internal(r);
		return;
	}
	c->r = r;
	snprintf(c->code, sizeof(c->code), "%s", code);
	snprintf(attempts, sizeof(attempts), "%" PRId64, r->app->cfg->portal_verify_attempts);
	const char *params[] = {r->params[0], attempts};
	if (!pgpool_query(r->app->pg, ATTEMPT_SQL, 2, params, on_attempt, c)) {
		free(c);
		http_problem_internal(r);
	}
}

const struct http_route verify_routes[] = {
	{EVHTTP_REQ_POST, "/v1/accounts/{}/emailverificaties", ROLE_PORTAL, false,
	 verify_http_resend},
	{EVHTTP_REQ_POST, "/v1/accounts/{}/emailverificaties/_bevestig", ROLE_PORTAL, true,
	 verify_http_confirm},
	{0, NULL, 0, false, NULL},
};
