/*
 * test_report.c - specification of daemon/report: rounding of percentages
 * and the agency view's suppression, checked against the attack it must
 * stop: an agency that kept every monthly snapshot of its figures and
 * subtracts them from each other.
 *
 * needs: daemon/report.c (linked into the unit tests by the Makefile)
 */
#include <criterion/criterion.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/stats/report.h"

#define K 10
#define NTYPES 4
#define MONTHS 12
#define NCOLS 9
#define CELLS (1 + 2 + NTYPES) /* total, paper split, types */

/* ---- rounding -------------------------------------------------------- */

Test(report, tenths_round_half_away_from_zero)
{
	cr_assert_eq(report_tenths(1, 3), 333);   /* 33.3 */
	cr_assert_eq(report_tenths(2, 3), 667);   /* 66.7 */
	cr_assert_eq(report_tenths(1, 8), 125);   /* 12.5 exactly */
	cr_assert_eq(report_tenths(1, 16), 63);   /* 6.25 -> 6.3 */
	cr_assert_eq(report_tenths(-1, 16), -63); /* -6.25 -> -6.3 */
	cr_assert_eq(report_tenths(5, 5), 1000);
	cr_assert_eq(report_tenths(0, 7), 0);
	cr_assert_eq(report_tenths(3, 0), -1);
}

/* ---- the agency view ------------------------------------------------- */

struct data {
	long long n[MONTHS + 1][NTYPES][2]; /* messages per month, type, paper */
	long long o[MONTHS + 1][NTYPES][2]; /* of which opened */
};

/* A PGresult shaped like REPORT_AGENCY_SQL's, closed through month `last`. */
static PGresult *agency_result(const struct data *d, int year, int last)
{
	static const char *const names[NCOLS] = {"oin", "name", "tot", "month", "type",
						 "paper", "n", "g3", "g6"};
	PGresAttDesc attrs[NCOLS];
	memset(attrs, 0, sizeof(attrs));
	for (int i = 0; i < NCOLS; i++) {
		attrs[i].name = (char *)names[i];
		attrs[i].format = 0;
	}
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	cr_assert(res && PQsetResultAttrs(res, NCOLS, attrs));
	int row = 0;
	char tot[24], buf[32];
	snprintf(tot, sizeof(tot), "%04d-%02d-01", year, last);
	for (int m = 1; m <= last; m++)
		for (int t = 0; t < NTYPES; t++)
			for (int p = 0; p < 2; p++) {
				if (d->n[m][t][p] == 0)
					continue;
				char type[8];
				snprintf(type, sizeof(type), "T%d", t);
				PQsetvalue(res, row, 0, "00000001003214345000", 20);
				PQsetvalue(res, row, 1, "Test", 4);
				PQsetvalue(res, row, 2, tot, (int)strlen(tot));
				snprintf(buf, sizeof(buf), "%d", m);
				PQsetvalue(res, row, 3, buf, (int)strlen(buf));
				PQsetvalue(res, row, 4, type, (int)strlen(type));
				PQsetvalue(res, row, 5, p ? "t" : "f", 1);
				snprintf(buf, sizeof(buf), "%lld", d->n[m][t][p]);
				PQsetvalue(res, row, 6, buf, (int)strlen(buf));
				snprintf(buf, sizeof(buf), "%lld", d->o[m][t][p]);
				PQsetvalue(res, row, 7, buf, (int)strlen(buf));
				PQsetvalue(res, row, 8, buf, (int)strlen(buf));
				row++;
			}
	if (row == 0) { /* the LEFT JOIN's row without data */
		PQsetvalue(res, 0, 0, "00000001003214345000", 20);
		PQsetvalue(res, 0, 1, "Test", 4);
		PQsetvalue(res, 0, 2, tot, (int)strlen(tot));
		for (int c = 3; c < NCOLS; c++)
			PQsetvalue(res, 0, c, NULL, -1);
	}
	return res;
}

/* cell index: 0 total, 1-2 paper false/true, 3.. types */
static const json_t *cell_of(const json_t *rep, int idx)
{
	if (idx == 0)
		return json_object_get(rep, "totaal");
	const char *arr = idx <= 2 ? "papierenKopie" : "berichttypes";
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(rep, arr), i, c) {
		if (idx <= 2 && json_is_true(json_object_get(c, "papierenKopie")) == (idx == 2))
			return c;
		if (idx > 2) {
			char type[8];
			snprintf(type, sizeof(type), "T%d", idx - 3);
			if (strcmp(json_string_value(json_object_get(c, "berichttype")), type) == 0)
				return c;
		}
	}
	return NULL;
}

static long long n_of(const json_t *c)
{
	return c ? json_integer_value(json_object_get(c, "aantalBerichten")) : 0;
}

static bool shown(const json_t *c)
{
	return c && !json_is_true(json_object_get(c, "onderdrukt"));
}

/*
 * Replays the twelve snapshots an agency could have taken and checks what
 * it can compute from them: every shown cell has at least K messages, grew
 * by 0 or at least K since it was last shown, and "total minus the shown
 * parts minus what earlier snapshots showed of the hidden parts" covers 0
 * or at least K messages, in both partitions.
 */
static void check_snapshots(const struct data *d)
{
	long long last_n[CELLS] = {0};
	for (int last = 1; last <= MONTHS; last++) {
		PGresult *res = agency_result(d, 2024, last);
		json_t *rep = report_agency_build(res, 2024, K);
		cr_assert_not_null(rep);
		long long n[CELLS];
		bool show[CELLS];
		for (int c = 0; c < CELLS; c++) {
			const json_t *cell = cell_of(rep, c);
			n[c] = n_of(cell);
			show[c] = shown(cell);
			if (show[c]) {
				cr_assert_geq(n[c], K, "month %d cell %d shown with %lld", last, c, n[c]);
				long long inc = n[c] - last_n[c];
				cr_assert(inc == 0 || inc >= K, "month %d cell %d grew by %lld", last, c,
					  inc);
				cr_assert_not(json_is_null(json_object_get(cell, "percentage3Weken")));
			} else if (cell) {
				cr_assert(json_is_null(json_object_get(cell, "geopendBinnen3Weken")));
				cr_assert(json_is_null(json_object_get(cell, "percentage6Weken")));
			}
		}
		if (show[0]) {
			const int parts[2][2] = {{1, 3}, {3, 3 + NTYPES}};
			for (int p = 0; p < 2; p++) {
				long long unseen = 0;
				for (int c = parts[p][0]; c < parts[p][1]; c++)
					if (!show[c])
						unseen += n[c] - last_n[c];
				cr_assert(unseen == 0 || unseen >= K,
					  "month %d partition %d: hidden parts reveal %lld new", last, p,
					  unseen);
			}
		}
		for (int c = 0; c < CELLS; c++)
			if (show[c])
				last_n[c] = n[c];
		json_decref(rep);
		PQclear(res);
	}
}

Test(report, agency_snapshots_never_reveal_a_small_group_random)
{
	unsigned seed = 6;
	for (int round = 0; round < 400; round++) {
		struct data d;
		memset(&d, 0, sizeof(d));
		for (int m = 1; m <= MONTHS; m++)
			for (int t = 0; t < NTYPES; t++)
				for (int p = 0; p < 2; p++) {
					int r = rand_r(&seed) % 10;
					/* mostly empty or small cells: the hard cases */
					long long n = r < 5 ? 0 : r < 8 ? rand_r(&seed) % 6 : rand_r(&seed) % 40;
					d.n[m][t][p] = n;
					d.o[m][t][p] = n ? rand_r(&seed) % (n + 1) : 0;
				}
		check_snapshots(&d);
	}
}

Test(report, agency_small_type_is_hidden_with_a_complement)
{
	struct data d;
	memset(&d, 0, sizeof(d));
	d.n[1][0][0] = 40, d.o[1][0][0] = 20;
	d.n[1][1][0] = 30, d.o[1][1][0] = 10;
	d.n[1][2][0] = 3, d.o[1][2][0] = 3;
	PGresult *res = agency_result(&d, 2024, 1);
	json_t *rep = report_agency_build(res, 2024, K);
	cr_assert(shown(cell_of(rep, 0)));
	cr_assert_not(shown(cell_of(rep, 3 + 2)));
	cr_assert_not(shown(cell_of(rep, 3 + 1))); /* the complement: the smaller one */
	cr_assert(shown(cell_of(rep, 3 + 0)));
	json_decref(rep);
	PQclear(res);
	check_snapshots(&d);
}

Test(report, agency_with_nothing_closed_shows_nothing)
{
	struct data d;
	memset(&d, 0, sizeof(d));
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attrs[NCOLS];
	memset(attrs, 0, sizeof(attrs));
	for (int i = 0; i < NCOLS; i++)
		attrs[i].name = (char *)"c";
	cr_assert(PQsetResultAttrs(res, NCOLS, attrs));
	PQsetvalue(res, 0, 0, "00000001003214345000", 20);
	PQsetvalue(res, 0, 1, "Test", 4);
	for (int c = 2; c < NCOLS; c++)
		PQsetvalue(res, 0, c, NULL, -1);
	json_t *rep = report_agency_build(res, 2026, K);
	cr_assert(json_is_null(json_object_get(rep, "afgeslotenTotEnMet")));
	cr_assert_not(shown(cell_of(rep, 0)));
	cr_assert_eq(json_array_size(json_object_get(rep, "berichttypes")), 0);
	json_decref(rep);
	PQclear(res);
}
