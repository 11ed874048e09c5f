/*
 * cli.c - operator subcommands (see cli.h).
 */
#include "cli.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "common/bsn.h"
#include "common/crypto.h"

#define NAME_MAX_LEN 200

static PGresult *run(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "berichtd: %s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

int cli_token_create(const struct config *cfg, const char *role, const char *oin,
		     const char *name)
{
	char token[CRYPTO_TOKEN_LEN], hash[CRYPTO_HEX256_LEN];
	char agency_id[24] = "";
	int rc = 1;

	if (!role || !auth_role_parse(role)) {
		fprintf(stderr, "berichtd: --role must be agency, portal, ministry or relay\n");
		return 2;
	}
	bool agency = strcmp(role, "agency") == 0;
	if (agency && (!oin || !oin_valid(oin))) {
		fprintf(stderr, "berichtd: role agency needs --oin with 20 digits\n");
		return 2;
	}
	if (!agency && oin) {
		fprintf(stderr, "berichtd: --oin only goes with --role agency\n");
		return 2;
	}
	if (name && (strlen(name) == 0 || strlen(name) > NAME_MAX_LEN)) {
		fprintf(stderr, "berichtd: --name must be 1 to 200 characters\n");
		return 2;
	}
	if (!crypto_random_token(token)) {
		fprintf(stderr, "berichtd: no randomness\n");
		return 1;
	}
	crypto_sha256_hex(token, strlen(token), hash);

	PGconn *c = PQconnectdb(cfg->pg_conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		goto out;
	}
	PGresult *r;
	if (!(r = run(c, "BEGIN", 0, NULL)))
		goto out;
	PQclear(r);
	if (agency) {
		/* the name is kept unless a new one is given */
		const char *params[] = {oin, name};
		r = run(c,
			"INSERT INTO agencies (oin, name) VALUES ($1, coalesce($2, 'Organisatie ' || $1)) "
			"ON CONFLICT (oin) DO UPDATE SET name = coalesce($2, agencies.name) "
			"RETURNING id",
			2, params);
		if (!r)
			goto out;
		snprintf(agency_id, sizeof(agency_id), "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	const char *params[] = {hash, role, agency ? agency_id : NULL, name};
	if (!(r = run(c,
		      "INSERT INTO api_tokens (token_hash, role, agency_id, name) "
		      "VALUES ($1, $2, $3::bigint, $4)",
		      4, params)))
		goto out;
	PQclear(r);
	if (!(r = run(c, "COMMIT", 0, NULL)))
		goto out;
	PQclear(r);
	printf("%s\n", token);
	fprintf(stderr, "token for role %s created; it is shown only this once\n", role);
	rc = 0;
out:
	PQfinish(c);
	return rc;
}
