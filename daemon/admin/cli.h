/*
 * cli.h - operator subcommands that talk to the database directly
 * (blocking libpq; never part of the running daemon's event loop).
 */
#ifndef BERICHTD_CLI_H
#define BERICHTD_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/config.h"

/*
 * Runs one statement on a blocking connection (CLI only); prints the
 * error and returns NULL when it did not succeed. The caller PQclear()s.
 */
PGresult *cli_run(PGconn *c, const char *sql, int n, const char *const *params);

/* A blocking connection to [postgres] conninfo; prints why and NULL when not. */
PGconn *cli_connect(const struct config *cfg);

/*
 * `berichtd token create --role ROLE [--oin OIN] [--name NAME]
 * [--geldig-tot DATE|TIME]`: prints a fresh token once on stdout (only its
 * SHA-256 is stored) and its id on stderr. Role agency creates the agency
 * when it is new, named NAME; an existing agency is left as it is (NAME
 * then names only the token), and a warning says when it has no berichttype
 * yet. --geldig-tot: a date means 00:00 Europe/Amsterdam of that day, a time
 * that instant; not in the future is refused. Returns the exit code.
 */
int cli_token_create(const struct config *cfg, const char *role, const char *oin, const char *name,
		     const char *geldig_tot);

/*
 * `berichtd token list [--oin OIN] [--json]`: every token (id, role, OIN,
 * status, created, last used, expires, name), never the secret nor its hash.
 * `berichtd token revoke ID`: sets revoked_at; unknown id exits 1.
 */
int cli_token_list(const struct config *cfg, const char *oin, bool json);
int cli_token_revoke(const struct config *cfg, const char *id);

/*
 * `berichtd berichttype add --oin OIN --code CODE [--herinnering DURATION]`
 * registers (or updates) a message type for an agency; `berichttype list`
 * prints them. The running daemon sees changes at once (it reads the table).
 */
int cli_berichttype_add(const struct config *cfg, const char *oin, const char *code,
			const char *herinnering);
int cli_berichttype_list(const struct config *cfg, const char *oin);

/*
 * `berichtd agency set --oin OIN --mandatory yes|no [--name NAME]`: marks an
 * agency mandatory (citizens cannot turn it off in the portal) or optional,
 * and optionally renames it. The agency must exist (token create makes it).
 */
int cli_agency_set(const struct config *cfg, const char *oin, const char *mandatory,
		   const char *name);

/* `berichtd agency list [--json]`: OIN, mandatory, berichttypes, active tokens, name. */
int cli_agency_list(const struct config *cfg, bool json);

#endif
