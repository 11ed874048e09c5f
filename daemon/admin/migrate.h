/*
 * migrate.h - `berichtd migrate`: applies migrations/NNNN_name.sql in order,
 * each in its own transaction, recorded in schema_migrations. Running it
 * twice changes nothing; two instances running it at once serialise on an
 * advisory lock. Blocking libpq: CLI only, never on the event loop.
 */
#ifndef BERICHTD_MIGRATE_H
#define BERICHTD_MIGRATE_H

#include "common/config.h"

/* Returns the process exit code. dir: the migrations directory. */
int migrate_run(const struct config *cfg, const char *dir);

/* The default migrations directory: next to the binary, else the installed one. */
const char *migrate_default_dir(void);

#endif
