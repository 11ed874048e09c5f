/*
 * auth.h - bearer-token authentication.
 *
 * Tokens are random 256-bit values shown once by `berichtd token create`;
 * the database keeps only their SHA-256 (DESIGN.md section 7). A lookup
 * hashes the presented token and asks PostgreSQL (asynchronously), with a
 * short in-memory cache so a busy agency does not cost a query per request:
 * [security] token_cache_ttl, at most 30 s, never past the token's expiry.
 *
 * Loop thread only.
 */
#ifndef BERICHTD_AUTH_H
#define BERICHTD_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/app.h"

struct auth;

struct auth_result {
	bool ok;           /* token known, neither revoked nor expired */
	bool unavailable;  /* the database could not be asked: answer 503, not 401 */
	unsigned role;     /* one ROLE_* bit (http.h) */
	int64_t agency_id; /* role agency only */
	char oin[24];      /* role agency: the agency's OIN, checked against a client certificate */
};

typedef void (*auth_cb)(const struct auth_result *res, void *arg);

struct auth *auth_new(struct app *app);
void auth_free(struct auth *a);

/* Looks the token up; cb runs later on the loop (or at once from the cache). */
void auth_lookup(struct auth *a, const char *token, auth_cb cb, void *arg);

/* Role name ("agency", ...) to ROLE_* bit; 0 if unknown. */
unsigned auth_role_parse(const char *name);
/* The inverse, for log lines: "agency", ...; "none" for 0 (not authenticated). */
const char *auth_role_name(unsigned role);

#endif
