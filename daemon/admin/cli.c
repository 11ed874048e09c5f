/*
 * cli.c - operator subcommands (see cli.h).
 */
#include "admin/cli.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "agency/message.h"
#include "core/auth.h"
#include "core/pgpool.h"
#include "common/bsn.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/timefmt.h"

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

PGconn *cli_connect(const struct config *cfg)
{
	PGconn *c = pgconn_open(cfg->pg_conninfo); /* its notices go through the logger */
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* RFC 3339 in UTC, to the second, of a timestamptz column; NULL stays NULL. */
#define UTC_TEXT(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/*
 * --geldig-tot as the two parameters of EXPIRY_SQL: a date means its start
 * (00:00 Europe/Amsterdam: valid *until* that day, like `stats --tot`), a
 * time is that instant. Returns false when it is neither.
 */
static bool parse_geldig_tot(const char *s, char date[11], char time[TIMEFMT_RFC3339_LEN])
{
	int y, m, d;
	int64_t ms;

	date[0] = time[0] = '\0';
	switch (timefmt_parse_date_or_time(s, &y, &m, &d, &ms)) {
	case TIMEFMT_DATE: snprintf(date, 11, "%04d-%02d-%02d", y, m, d); return true;
	case TIMEFMT_TIME: timefmt_format_rfc3339(ms, time); return true;
	default: return false;
	}
}

#define EXPIRY_SQL                                                                                 \
	"SELECT " UTC_TEXT(                                                                        \
		"e") ", e > now() FROM (SELECT coalesce("                                          \
		     "($1::date)::timestamp AT TIME ZONE 'Europe/Amsterdam', $2::timestamptz) AS e) x"

/*
 * The agency of OIN, created with NAME (or a placeholder) when new; an
 * existing agency is never changed here (`agency set --name` renames).
 * Says on stderr what a caller might not expect: a NAME that names only the
 * token, and no registered berichttype. Writes its id; false on failure.
 */
static bool token_agency(PGconn *c, const char *oin, const char *name, char id[24])
{
	const char *params[] = {oin, name};
	PGresult *r = cli_run(c,
			      "INSERT INTO agencies (oin, name) "
			      "VALUES ($1, coalesce($2, 'Organisatie ' || $1)) "
			      "ON CONFLICT (oin) DO NOTHING RETURNING id",
			      2, params);
	if (!r)
		return false;
	bool created = PQntuples(r) == 1;
	PQclear(r);
	r = cli_run(
		c,
		"SELECT id, name, (SELECT count(*) FROM berichttypes b WHERE b.agency_id = a.id) "
		"FROM agencies a WHERE oin = $1",
		1, params);
	if (!r)
		return false;
	if (PQntuples(r) != 1) {
		fprintf(stderr, "berichtd: agency %s vanished; try again\n", oin);
		PQclear(r);
		return false;
	}
	snprintf(id, 24, "%s", PQgetvalue(r, 0, 0));
	if (created)
		fprintf(stderr, "agency %s created, name \"%s\"\n", oin, PQgetvalue(r, 0, 1));
	else if (name && strcmp(name, PQgetvalue(r, 0, 1)) != 0)
		fprintf(stderr,
			"note: agency %s keeps its name \"%s\"; --name names only this token "
			"(rename with: berichtd agency set --oin %s --name NAME)\n",
			oin, PQgetvalue(r, 0, 1), oin);
	if (strcmp(PQgetvalue(r, 0, 2), "0") == 0)
		fprintf(stderr,
			"warning: agency %s has no berichttype yet: every message it posts is "
			"refused until `berichtd berichttype add --oin %s --code CODE`\n",
			oin, oin);
	PQclear(r);
	return true;
}

static int token_check_args(const char *role, const char *oin, const char *name)
{
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
	return 0;
}

/* Checks --geldig-tot against the database clock; writes it as UTC text. */
static int token_expiry(PGconn *c, const char *geldig_tot, char expires[TIMEFMT_RFC3339_LEN])
{
	char date[11], time[TIMEFMT_RFC3339_LEN];
	parse_geldig_tot(geldig_tot, date, time); /* checked before */
	const char *params[] = {date[0] ? date : NULL, time[0] ? time : NULL};
	PGresult *r = cli_run(c, EXPIRY_SQL, 2, params);
	if (!r)
		return 1;
	snprintf(expires, TIMEFMT_RFC3339_LEN, "%s", PQgetvalue(r, 0, 0));
	bool future = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	if (!future) {
		fprintf(stderr, "berichtd: --geldig-tot %s (%s) is not in the future\n", geldig_tot,
			expires);
		return 2;
	}
	return 0;
}

int cli_token_create(const struct config *cfg, const char *role, const char *oin, const char *name,
		     const char *geldig_tot)
{
	char token[CRYPTO_TOKEN_LEN], hash[CRYPTO_HEX256_LEN];
	char agency_id[24] = "", expires[TIMEFMT_RFC3339_LEN] = "";
	char date[11], time[TIMEFMT_RFC3339_LEN];
	int rc = token_check_args(role, oin, name);

	if (rc)
		return rc;
	if (geldig_tot && !parse_geldig_tot(geldig_tot, date, time)) {
		fprintf(stderr, "berichtd: --geldig-tot must be a date (YYYY-MM-DD) or an RFC 3339 "
				"time (2027-01-01T00:00:00+01:00)\n");
		return 2;
	}
	if (!crypto_random_token(token)) {
		fprintf(stderr, "berichtd: no randomness\n");
		return 1;
	}
	crypto_sha256_hex(token, strlen(token), hash);

	PGconn *c = cli_connect(cfg);
	if (!c)
		return 1;
	rc = 1;
	PGresult *r;
	if (!(r = cli_run(c, "BEGIN", 0, NULL)))
		goto out;
	PQclear(r);
	if (geldig_tot && (rc = token_expiry(c, geldig_tot, expires)) != 0)
		goto out;
	rc = 1;
	if (strcmp(role, "agency") == 0 && !token_agency(c, oin, name, agency_id))
		goto out;
	const char *params[] = {hash, role, agency_id[0] ? agency_id : NULL, name,
				expires[0] ? expires : NULL};
	if (!(r = cli_run(c,
			  "INSERT INTO api_tokens (token_hash, role, agency_id, name, expires_at) "
			  "VALUES ($1, $2, $3::bigint, $4, $5::timestamptz) RETURNING id",
			  5, params)))
		goto out;
	char id[24];
	snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (!(r = cli_run(c, "COMMIT", 0, NULL)))
		goto out;
	PQclear(r);
	printf("%s\n", token);
	fprintf(stderr, "token %s for role %s created%s%s; it is shown only this once\n", id, role,
		expires[0] ? ", valid until " : "", expires);
	rc = 0;
out:
	PQfinish(c);
	return rc;
}

/*
 * id, role, oin, status, created, last used, expires, name, revoked: never
 * the secret nor its hash. The table leaves out the last (status says it).
 */
#define TOKEN_ROWS_SQL                                                                                                                                                                        \
	"SELECT t.id, t.role, a.oin, CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked' "                                                                                                      \
	"WHEN t.expires_at <= now() THEN 'expired' ELSE 'active' END AS status, " UTC_TEXT("t.created_at") " AS created, " UTC_TEXT(                                                          \
		"t.last_used_at") " AS last_used, " UTC_TEXT("t.expires_at") " AS expires, t.name, " UTC_TEXT("t.revoked_at") " AS revoked "                                                  \
															      "FROM api_tokens t LEFT JOIN agencies a ON a.id = t.agency_id " \
															      "WHERE $1::text IS NULL OR a.oin = $1"

/*
 * Prints the rows of one SELECT as a table under head, column i padded to
 * width[i] (0: the last, unpadded; NULL prints as -), or with json the
 * JSON array of its rows. Returns the exit code.
 */
static int print_rows(PGconn *c, const char *sql, const char *const *params, int n, bool json,
		      const char *head, const int *width)
{
	char wrapped[2048];
	if (json)
		snprintf(wrapped, sizeof(wrapped),
			 "SELECT coalesce(json_agg(row_to_json(x)), '[]') FROM (%s) x", sql);
	PGresult *r = cli_run(c, json ? wrapped : sql, n, params);
	if (!r)
		return 1;
	if (json) {
		printf("%s\n", PQgetvalue(r, 0, 0));
		PQclear(r);
		return 0;
	}
	fputs(head, stdout);
	for (int i = 0; i < PQntuples(r); i++) {
		for (int f = 0; f < PQnfields(r); f++) {
			const char *v = PQgetisnull(r, i, f) ? "-" : PQgetvalue(r, i, f);
			if (width[f] == 0) {
				fputs(v, stdout);
				break;
			}
			printf("%-*s  ", width[f], v);
		}
		putchar('\n');
	}
	PQclear(r);
	return 0;
}

int cli_token_list(const struct config *cfg, const char *oin, bool json)
{
	if (oin && !oin_valid(oin)) {
		fprintf(stderr, "berichtd: --oin must be 20 digits\n");
		return 2;
	}
	PGconn *c = cli_connect(cfg);
	if (!c)
		return 1;
	const char *params[] = {oin};
	static const int width[] = {6, 8, 20, 7, 20, 20, 20, 0};
	int rc =
		print_rows(c, TOKEN_ROWS_SQL " ORDER BY t.id", params, 1, json,
			   "id      role      oin                   status   created               "
			   "last used             expires               name\n",
			   width);
	PQfinish(c);
	return rc;
}

static bool all_digits(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int cli_token_revoke(const struct config *cfg, const char *id)
{
	if (!id || !all_digits(id, 18)) {
		fprintf(stderr,
			"berichtd: token revoke needs the token's id (berichtd token list)\n");
		return 2;
	}
	PGconn *c = cli_connect(cfg);
	if (!c)
		return 1;
	int rc = 1;
	const char *params[] = {id};
	/* a second revoke keeps the first time */
	PGresult *r = cli_run(c,
			      "WITH u AS (UPDATE api_tokens SET revoked_at = now() "
			      "WHERE id = $1::bigint AND revoked_at IS NULL RETURNING id) "
			      "SELECT (SELECT count(*) FROM u), " UTC_TEXT(
				      "revoked_at") " "
						    "FROM api_tokens WHERE id = $1::bigint",
			      1, params);
	if (!r)
		goto out;
	if (PQntuples(r) == 0) {
		fprintf(stderr, "berichtd: no token with id %s (berichtd token list shows them)\n",
			id);
	} else if (strcmp(PQgetvalue(r, 0, 0), "0") == 0) {
		printf("token %s was already revoked at %s\n", id, PQgetvalue(r, 0, 1));
		rc = 0;
	} else {
		printf("token %s revoked; running daemons refuse it within %llds "
		       "([security] token_cache_ttl)\n",
		       id, (long long)(cfg->security_token_cache_ttl_ms + 999) / 1000);
		rc = 0;
	}
	PQclear(r);
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
	PGconn *c = cli_connect(cfg);
	if (!c)
		return 1;
	int rc = 1;
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
	PGconn *c = cli_connect(cfg);
	if (!c)
		return 1;
	int rc = 1;
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
	PGconn *c = cli_connect(cfg);
	if (!c)
		return 1;
	int rc = 1;
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

int cli_agency_list(const struct config *cfg, bool json)
{
	static const int width[] = {20, 9, 12, 13, 0};
	PGconn *c = cli_connect(cfg);
	if (!c)
		return 1;
	int rc = print_rows(
		c,
		"SELECT a.oin, CASE WHEN a.mandatory THEN 'yes' ELSE 'no' END AS mandatory, "
		"(SELECT count(*) FROM berichttypes b WHERE b.agency_id = a.id) AS berichttypes, "
		"(SELECT count(*) FROM api_tokens t WHERE t.agency_id = a.id AND t.revoked_at IS NULL "
		"AND (t.expires_at IS NULL OR t.expires_at > now())) AS active_tokens, a.name "
		"FROM agencies a ORDER BY a.oin",
		NULL, 0, json,
		"oin                   mandatory  berichttypes  active_tokens  name\n", width);
	PQfinish(c);
	return rc;
}
