/*
 * report.h - the statistics reports, built from the rollup tables only
 * (migrations/0005_stats.sql; docs/statistics.md).
 *
 * Shared by the HTTP handlers (stats.c, asynchronous libpq on the loop) and
 * the operator CLI (stats_cli.c, blocking libpq): this file holds the SQL
 * and turns its result into JSON, CSV or HTML. It never talks to the
 * database itself and is safe on any thread.
 */
#ifndef BERICHTD_REPORT_H
#define BERICHTD_REPORT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#define REPORT_YEAR_MIN 2000
#define REPORT_YEAR_MAX 2100

/* dumps of report JSON keep one decimal readable ("33.3", not 33.29999...) */
#define REPORT_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

/*
 * The ministry report's query for a year (maand 0: reads stats_jaar) or one
 * month (reads stats_maand), with the same period a year earlier.
 * Parameters: $1 = year, $2 = month 1-12 or NULL.
 */
const char *report_sql(int maand);

/*
 * Builds the ministry report from report_sql()'s result: per agency (with the
 * change against the previous year), per agency x berichttype, the
 * papierenKopie split, and a national total; `voorlopig` on every cell with
 * a cohort whose window is still open. maand 0 = the whole year. Caller
 * owns the result (NULL when out of memory).
 */
json_t *report_build(const PGresult *res, int jaar, int maand);

/* The report as CSV (RFC 4180, header row, one line per cell). Caller frees. */
char *report_csv(const json_t *rep);

/*
 * The report as one self-contained HTML page: table first, then an inline
 * SVG bar chart of both rates per agency with <title>/<desc>, print CSS.
 * Caller frees.
 */
char *report_html(const json_t *rep);

/*
 * Agency view: $1 = agency id, $2 = year. Only whole months whose every
 * cohort window has closed, per month, berichttype and papierenKopie.
 */
extern const char REPORT_AGENCY_SQL[];

/*
 * Builds the agency's own closed-window figures with small-cell
 * suppression (min_cell; complementary and over time, see the .c file).
 * Caller owns the result.
 */
json_t *report_agency_build(const PGresult *res, int jaar, long long min_cell);

/* Notificaties report: $1 = year, $2 = dormant look-back in weeks. One row. */
extern const char REPORT_NOTIF_SQL[];
/* the soorten of representation, in the order of the report (0012's CHECK) */
#define REPORT_NSOORTEN 6
extern const char *const REPORT_SOORTEN[REPORT_NSOORTEN];
json_t *report_notif_build(const PGresult *res, int jaar, long long dormant_weeks);

/* 100 * part / whole rounded half up to one decimal, as tenths; -1 when whole is 0. */
long long report_tenths(long long part, long long whole);

#endif
