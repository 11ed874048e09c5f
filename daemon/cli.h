/*
 * cli.h - operator subcommands that talk to the database directly
 * (blocking libpq; never part of the running daemon's event loop).
 */
#ifndef BERICHTD_CLI_H
#define BERICHTD_CLI_H

#include "common/config.h"

/*
 * `berichtd token create --role ROLE [--oin OIN --name NAME]`: creates the
 * agency when needed, prints a fresh token once on stdout (only its SHA-256
 * is stored). Returns the exit code.
 */
int cli_token_create(const struct config *cfg, const char *role, const char *oin,
		     const char *name);

#endif
