/*
 * stats_cli.h - operator commands of the statistics (blocking libpq; never
 * part of the daemon's event loop):
 *   berichtd stats rebuild -c FILE [--van DATE --tot DATE] [--force]
 *   berichtd report -c FILE --jaar YYYY [--maand M] --format csv|json|html --out FILE
 */
#ifndef BERICHTD_STATS_CLI_H
#define BERICHTD_STATS_CLI_H

#include <stdbool.h>

#include "common/config.h"

/*
 * Recomputes the rollups of the cohorts van <= day < tot (YYYY-MM-DD; NULL:
 * all cohorts 2000-01-01 to 2100-12-31) from the raw message rows, in one
 * transaction that blocks writes to messages meanwhile. Refuses (exit 1)
 * when a cell in the range holds more messages than the raw rows still
 * there (retention purged them), unless force. Prints rows/s. Returns the
 * exit code.
 */
int stats_cli_rebuild(const struct config *cfg, const char *van, const char *tot, bool force);

/* Writes the annual (or monthly) report to out ("-" = stdout). Exit code. */
int stats_cli_report(const struct config *cfg, const char *jaar, const char *maand,
		     const char *format, const char *out);

#endif
