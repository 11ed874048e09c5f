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
#include <stdint.h>

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
 * Agency view (issue 10, differentially private; docs/statistics.md).
 * REPORT_AGENCY_SQL: $1 = agency id, $2 = year, $3 = max_per_citizen. Only
 * whole months whose every cohort window has closed, per month, berichttype
 * and papierenKopie: all messages, the counted ones (sequence number <= m)
 * and their c1/c2.
 */
extern const char REPORT_AGENCY_SQL[];
/*
 * REPORT_AGENCY_NOISE_SQL: $1 agency, $2 year, $3 report_agency_draw()'s
 * JSON, $4/$5 the scale t/s: stores the nodes not stored yet, returns all.
 */
extern const char REPORT_AGENCY_NOISE_SQL[];

struct agency_view;
struct report_agency_opts {
	long long min_cell;      /* presentation: fewer counted messages show null */
	long long epsilon_milli; /* shown in `privacy` */
	long long max_per_citizen;
	int upto_month; /* totEnMetMaand, 0 = every closed month */
};

/*
 * Takes REPORT_AGENCY_SQL's result (owned by the view from then on; freed
 * with it, also when NULL is returned for an unknown agency or no memory).
 * upto_month limits the view to months 1..upto_month (0: all closed).
 */
struct agency_view *report_agency_view(PGresult *res, long long agency_id, int jaar,
				       int upto_month);
void report_agency_view_free(struct agency_view *v);
size_t report_agency_leaves(const struct agency_view *v);
/*
 * Draws the noise of every node of every leaf (discrete Laplace, scale t/s;
 * dp_scale()) as JSON for REPORT_AGENCY_NOISE_SQL. seed NULL or empty:
 * OpenSSL's CSPRNG; else the test-only seeded stream, one per node label
 * "agency/year/type/paper(0|1)/component(1|2)/level/index". NULL on failure.
 */
json_t *report_agency_draw(const struct agency_view *v, const char *seed, uint64_t t, uint64_t s);
/* reads the stored noise; false when a node of a leaf is missing */
bool report_agency_noise(struct agency_view *v, const PGresult *noise);
/* the view's JSON (post-processed leaves and their sums). Caller owns it. */
json_t *report_agency_json(struct agency_view *v, const struct report_agency_opts *o);

/* Notificaties report: $1 = year, $2 = dormant look-back in weeks. One row. */
extern const char REPORT_NOTIF_SQL[];
/* the soorten of representation, in the order of the report (0012's CHECK) */
#define REPORT_NSOORTEN 6
extern const char *const REPORT_SOORTEN[REPORT_NSOORTEN];
json_t *report_notif_build(const PGresult *res, int jaar, long long dormant_weeks);

/* 100 * part / whole rounded half up to one decimal, as tenths; -1 when whole is 0. */
long long report_tenths(long long part, long long whole);

#endif
