/*
 * report_impl.h - what the parts of the report share (report.c: SQL, ministry
 * and notificaties reports; report_agency.c: the agency view and its
 * suppression; report_csv.c, report_html.c: the renderings). Not for
 * use outside daemon/stats/report*.c.
 */
#ifndef BERICHTD_REPORT_IMPL_H
#define BERICHTD_REPORT_IMPL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>

#define MONTHS 12
#define TENTHS_PER_UNIT 10
#define DATE_LEN 11
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static inline json_t *tenths_json(long long tenths)
{
	return json_real((double)tenths / TENTHS_PER_UNIT);
}

/* 100 * part / whole as tenths (report.c; declared in report.h too) */
long long report_tenths(long long part, long long whole);

static inline json_t *pct_json(long long part, long long whole)
{
	return whole > 0 ? tenths_json(report_tenths(part, whole)) : json_null();
}

static inline long long ll(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static inline bool flag(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* counts and rates of one cell */
static inline json_t *cell_json(long long n, long long g3, long long g6, bool voorlopig)
{
	json_t *c = json_object();
	json_object_set_new(c, "aantalBerichten", json_integer(n));
	json_object_set_new(c, "geopendBinnen3Weken", json_integer(g3));
	json_object_set_new(c, "geopendBinnen6Weken", json_integer(g6));
	json_object_set_new(c, "percentage3Weken", pct_json(g3, n));
	json_object_set_new(c, "percentage6Weken", pct_json(g6, n));
	json_object_set_new(c, "voorlopig", json_boolean(voorlopig));
	return c;
}

/* the number columns of a cell, in the order CSV and HTML show them */
#define REPORT_CELL_NNUMS 5
extern const char *const REPORT_CELL_NUMS[REPORT_CELL_NNUMS];

/* a JSON number or null as text: "" for null, one decimal for reals (report_csv.c) */
void report_num_text(char *buf, size_t len, const json_t *v);

#endif
