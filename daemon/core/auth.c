/*
 * auth.c - token lookup with a small TTL cache (see auth.h).
 *
 * The cache is a fixed-size direct-mapped table keyed by the token hash. An
 * entry lives [security] token_cache_ttl (default and most 30 s), never past
 * the token's expires_at: a revoked token stops working within the TTL, an
 * expired one at its expiry. Only a lookup that (re)fills an entry asks
 * PostgreSQL, and it records last_used_at when the stored one is over a
 * minute old: no write per request (migration 0014).
 */
#include "core/auth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/crypto.h"
#include "common/log.h"
#include "core/roles.h"
#include "core/pgpool.h"

#define AUTH_CACHE_SLOTS 1024
#define TOKEN_MAX_LEN 256

/*
 * The token if it is neither revoked nor expired, with the milliseconds it
 * has left (NULL: no expiry); last_used_at is written at most once a minute.
 */
#define TOKEN_LOOKUP_SQL                                                                           \
	"WITH t AS (SELECT id, role, agency_id, last_used_at, "                                    \
	"floor(extract(epoch FROM expires_at - now()) * 1000)::bigint AS left_ms "                 \
	"FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL "                            \
	"AND (expires_at IS NULL OR expires_at > now())), "                                        \
	"used AS (UPDATE api_tokens u SET last_used_at = now() FROM t WHERE u.id = t.id "          \
	"AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')) "           \
	"SELECT t.role, t.agency_id, t.left_ms, coalesce(ag.oin, '') "                             \
	"FROM t LEFT JOIN agencies ag ON ag.id = t.agency_id"

struct auth_entry {
	char hash[CRYPTO_HEX256_LEN];
	int64_t expires_ms;
	unsigned role;
	int64_t agency_id;
	char oin[24];
};

struct auth {
	struct app *app;
	struct auth_entry cache[AUTH_CACHE_SLOTS];
};

struct lookup {
	struct auth *a;
	char hash[CRYPTO_HEX256_LEN];
	auth_cb cb;
	void *arg;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned slot_of(const char *hash)
{
	/* the hash is uniformly random hex: its first digits are a fine index */
	return (unsigned)strtoul((char[]){hash[0], hash[1], hash[2], hash[3], 0}, NULL, 16) %
	       AUTH_CACHE_SLOTS;
}

unsigned auth_role_parse(const char *name)
{
	if (strcmp(name, "agency") == 0)
		return ROLE_AGENCY;
	if (strcmp(name, "portal") == 0)
		return ROLE_PORTAL;
	if (strcmp(name, "ministry") == 0)
		return ROLE_MINISTRY;
	if (strcmp(name, "relay") == 0)
		return ROLE_RELAY;
	return 0;
}

const char *auth_role_name(unsigned role)
{
	switch (role) {
	case ROLE_AGENCY: return "agency";
	case ROLE_PORTAL: return "portal";
	case ROLE_MINISTRY: return "ministry";
	case ROLE_RELAY: return "relay";
	default: return "none";
	}
}

struct auth *auth_new(struct app *app)
{
	struct auth *a = calloc(1, sizeof(*a));
	if (a)
		a->app = app;
	return a;
}

void auth_free(struct auth *a)
{
	free(a);
}

static void on_token_row(const PGresult *res, const char *err, void *arg)
{
	struct lookup *l = arg;
	struct auth_result r = {0};

	if (err) {
		log_warn("auth: lookup failed: %s", err);
		r.unavailable = true;
	} else if (PQntuples(res) == 1) {
		r.ok = true;
		r.role = auth_role_parse(PQgetvalue(res, 0, 0));
		r.agency_id = PQgetisnull(res, 0, 1) ? 0 : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		int64_t ttl = l->a->app->cfg->security_token_cache_ttl_ms;
		if (!PQgetisnull(res, 0, 2)) {
			int64_t left = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
			if (left < ttl)
				ttl = left; /* never trusted past its expiry */
		}
		snprintf(r.oin, sizeof(r.oin), "%s", PQgetvalue(res, 0, 3));
		struct auth_entry *e = &l->a->cache[slot_of(l->hash)];
		memcpy(e->hash, l->hash, sizeof(e->hash));
		e->expires_ms = now_ms() + ttl;
		e->role = r.role;
		e->agency_id = r.agency_id;
		memcpy(e->oin, r.oin, sizeof(e->oin));
	}
	l->cb(&r, l->arg);
	free(l);
}

void auth_lookup(struct auth *a, const char *token, auth_cb cb, void *arg)
{
	struct auth_result none = {0};
	size_t len = strlen(token);

	if (len == 0 || len > TOKEN_MAX_LEN) {
		cb(&none, arg);
		return;
	}
	struct lookup *l = calloc(1, sizeof(*l));
	if (!l) {
		none.unavailable = true;
		cb(&none, arg);
		return;
	}
	crypto_sha256_hex(token, len, l->hash);

	const struct auth_entry *e = &a->cache[slot_of(l->hash)];
	if (e->expires_ms > now_ms() && crypto_ct_equal(e->hash, l->hash, sizeof(l->hash))) {
		struct auth_result r = {.ok = true, .role = e->role, .agency_id = e->agency_id};
		memcpy(r.oin, e->oin, sizeof(r.oin));
		free(l);
		cb(&r, arg);
		return;
	}
	l->a = a;
	l->cb = cb;
	l->arg = arg;
	const char *params[] = {l->hash};
	if (!pgpool_query(a->app->pg, TOKEN_LOOKUP_SQL, 1, params, on_token_row, l)) {
		free(l);
		none.unavailable = true;
		cb(&none, arg);
	}
}
