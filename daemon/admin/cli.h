/*
 * cli.h - operator subcommands that talk to the database directly
 * (blocking libpq; never part of the running daemon's event loop).
 */
#ifndef BERICHTD_CLI_H
#define BERICHTD_CLI_H

#include <libpq-fe.h>

#include "common/config.h"

/*
 * Runs one statement on a blocking connection (CLI only); prints the
 * error and returns NULL when it did not succeed. The caller PQclear()s.
 */
PGresult *cli_run(PGconn *c, const char *sql, int n, const char *const *params);

/*
 * `berichtd token create --role ROLE [--oin OIN --name NAME]`: creates the
 * agency when needed, prints a fresh token once on stdout (only its SHA-256
 * is stored). Returns the exit code.
 */
int cli_token_create(const struct config *cfg, const char *role, const char *oin, const char *name);

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

#endif
