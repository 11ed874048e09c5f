/*
 * cli.c - operator subcommands (see cli.h).
 */
#include "admin/cli.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "agency/message.h"
#include "core/auth.h"
#include "core/pgpool.h"
#include "common/bsn.h"
#include "common/config.h"
#include "common/crypto.h"

#define NAME_MAX_LEN 200

PGresult *cli_run(PGconn *c, const char *sql, int n, const char *const *params)
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

int cli_token_create(const struct config *cfg, const char *role, const char *oin, const char *name)
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

	PGconn *c = pgconn_open(cfg->pg_conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		goto out;
	}
	PGresult *r;
	if (!(r = cli_run(c, "BEGIN", 0, NULL)))
		goto out;
	PQclear(r);
	if (agency) {
		/* the name is kept unless a new one is given */
		const char *params[] = {oin, name};
		r = cli_run(
			c,
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
	if (!(r = cli_run(c,
			  "INSERT INTO api_tokens (token_hash, role, agency_id, name) "
			  "VALUES ($1, $2, $3::bigint, $4)",
			  4, params)))
		goto out;
	PQclear(r);
	if (!(r = cli_run(c, "COMMIT", 0, NULL)))
		goto out;
	PQclear(r);
	printf("%s\n", token);
	fprintf(stderr, "token for role %s created; it is shown only this once\n", role);
	rc = 0;
out:
	PQfinish(c);
	return rc;
}

int cli_berichttype_add(const struct config *cfg, const char *oin, const char *code,
			const char *herinnering)
{
	char interval[48] = "";
	int64_t ms;

	if (!oin || !oin_valid(oin)) {
		fprintf(stderr, "berichtd: --oin must be 20 digits\n");
		return 2;
	}
	if (!message_type_ok(code)) {
		fprintf(stderr, "berichtd: --code must be 1 to 8 of A-Z a-z 0-9 _ -\n");
		return 2;
	}
	if (herinnering) {
		if (!config_parse_duration(herinnering, &ms) || ms <= 0) {
			fprintf(stderr,
				"berichtd: --herinnering must be a duration like 14d or 36h\n");
			return 2;
		}
		snprintf(interval, sizeof(interval), "%lld milliseconds", (long long)ms);
	}
	PGconn *c = pgconn_open(cfg->pg_conninfo);
	int rc = 1;
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		goto out;
	}
	const char *params[] = {oin, code, herinnering ? interval : NULL};
	PGresult *r = cli_run(
		c,
		"INSERT INTO berichttypes (agency_id, code, repeat_after) "
		"SELECT id, $2, justify_hours($3::interval) FROM agencies WHERE oin = $1 "
		"ON CONFLICT (agency_id, code) DO UPDATE SET repeat_after = EXCLUDED.repeat_after "
		"RETURNING code",
		3, params);
	if (!r)
		goto out;
	if (PQntuples(r) == 0) {
		fprintf(stderr, "berichtd: no agency with OIN %s (create its token first)\n", oin);
	} else {
		printf("berichttype %s registered for %s\n", code, oin);
		rc = 0;
	}
	PQclear(r);
out:
	PQfinish(c);
	return rc;
}

int cli_berichttype_list(const struct config *cfg, const char *oin)
{
	PGconn *c = pgconn_open(cfg->pg_conninfo);
	int rc = 1;
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		goto out;
	}
	const char *params[] = {oin};
	PGresult *r = cli_run(c,
			      "SELECT a.oin, a.name, t.code, coalesce(t.repeat_after::text, '-') "
			      "FROM berichttypes t JOIN agencies a ON a.id = t.agency_id "
			      "WHERE $1::text IS NULL OR a.oin = $1 ORDER BY a.oin, t.code",
			      1, params);
	if (!r)
		goto out;
	printf("%-20s  %-8s  %-16s  %s\n", "oin", "code", "herinnering", "agency");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%-20s  %-8s  %-16s  %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 2),
		       PQgetvalue(r, i, 3), PQgetvalue(r, i, 1));
	PQclear(r);
	rc = 0;
out:
	PQfinish(c);
	return rc;
}

int cli_agency_set(const struct config *cfg, const char *oin, const char *mandatory,
		   const char *name)
{
	if (!oin || !oin_valid(oin)) {
		fprintf(stderr, "berichtd: --oin must be 20 digits\n");
		return 2;
	}
	if (mandatory && strcmp(mandatory, "yes") != 0 && strcmp(mandatory, "no") != 0) {
		fprintf(stderr, "berichtd: --mandatory must be yes or no\n");
		return 2;
	}
	if (!mandatory && !name) {
		fprintf(stderr, "berichtd: nothing to set (--mandatory yes|no, --name NAME)\n");
		return 2;
	}
	if (name && (strlen(name) == 0 || strlen(name) > NAME_MAX_LEN)) {
		fprintf(stderr, "berichtd: --name must be 1 to 200 characters\n");
		return 2;
	}
	PGconn *c = pgconn_open(cfg->pg_conninfo);
	int rc = 1;
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		goto out;
	}
	const char *flag = mandatory ? (strcmp(mandatory, "yes") == 0 ? "t" : "f") : NULL;
	const char *params[] = {oin, flag, name};
	PGresult *r = cli_run(c,
			      "UPDATE agencies SET mandatory = coalesce($2::boolean, mandatory), "
			      "name = coalesce($3, name) WHERE oin = $1 RETURNING mandatory, name",
			      3, params);
	if (!r)
		goto out;
	if (PQntuples(r) == 0) {
		fprintf(stderr, "berichtd: no agency with OIN %s (create its token first)\n", oin);
	} else {
		printf("agency %s: %s, name \"%s\"\n", oin,
		       PQgetvalue(r, 0, 0)[0] == 't' ? "mandatory" : "optional",
		       PQgetvalue(r, 0, 1));
		rc = 0;
	}
	PQclear(r);
out:
	PQfinish(c);
	return rc;
}
