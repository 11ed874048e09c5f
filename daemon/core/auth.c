/*
 * auth.c - token lookup with a small TTL cache (see auth.h).
 *
 * The cache is a fixed-size direct-mapped table keyed by the token hash: a
 * revoked token stops working within AUTH_CACHE_TTL_MS at the latest.
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
#define AUTH_CACHE_TTL_MS 30000
#define TOKEN_MAX_LEN 256

struct auth_entry {
	char hash[CRYPTO_HEX256_LEN];
	int64_t expires_ms;
	unsigned role;
	int64_t agency_id;
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
		struct auth_entry *e = &l->a->cache[slot_of(l->hash)];
		memcpy(e->hash, l->hash, sizeof(e->hash));
		e->expires_ms = now_ms() + AUTH_CACHE_TTL_MS;
		e->role = r.role;
		e->agency_id = r.agency_id;
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
		free(l);
		cb(&r, arg);
		return;
	}
	l->a = a;
	l->cb = cb;
	l->arg = arg;
	const char *params[] = {l->hash};
	if (!pgpool_query(a->app->pg,
			  "SELECT role, agency_id FROM api_tokens "
			  "WHERE token_hash = $1 AND revoked_at IS NULL",
			  1, params, on_token_row, l)) {
		free(l);
		none.unavailable = true;
		cb(&none, arg);
	}
}
