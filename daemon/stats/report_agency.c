/*
 * report_agency.c - an agency's own closed-window figures, with small-cell
 * suppression (see report.h and docs/statistics.md).
 */
#include "stats/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/report_impl.h"

#define TYPES_MAX 256

const char REPORT_AGENCY_SQL[] =
	"WITH closed AS ("
	/* the last month of the year whose every cohort window has closed */
	"  SELECT max(d)::date AS tot FROM generate_series(make_date($2::int, 1, 1),"
	"    make_date($2::int, 12, 1), interval '1 month') d"
	"  WHERE (d + interval '1 month' - interval '1 day')::date <= stats_closed_through(now())"
	") "
	"SELECT a.oin, a.name, closed.tot, extract(month FROM m.maand)::int, m.berichttype,"
	"  m.papieren_kopie, m.verstuurd, m.geopend_3w, m.geopend_6w "
	"FROM agencies a CROSS JOIN closed LEFT JOIN stats_maand m ON m.agency_id = a.id"
	"  AND m.maand >= make_date($2::int, 1, 1) AND m.maand <= closed.tot "
	"WHERE a.id = $1::bigint ORDER BY 4, 5, 6";

enum { A_OIN, A_NAME, A_TOT, A_MONTH, A_TYPE, A_PAPIER, A_N, A_G3, A_G6 };

struct counts {
	long long n, g3, g6;
};

/* One displayed cell over the months: what a snapshot at month j shows. */
struct acell {
	const char *label; /* berichttype, or NULL */
	int papier;        /* 0/1 for the split, -1 otherwise */
	struct counts month[MONTHS + 1];
	struct counts ytd;      /* through the month being walked */
	long long last_shown_n; /* ytd n when it last showed open figures; 0 = never */
	bool suppressed;
};

/* messages in the cell that the last snapshot showing it did not cover */
static long long unseen(const struct acell *c)
{
	return c->ytd.n - c->last_shown_n;
}

static bool primary_suppressed(const struct acell *c, long long k)
{
	long long inc = unseen(c);
	/* a cell under k, or one that grew by fewer than k messages since the
	 * last snapshot that showed it (the difference would be a small cell) */
	return c->ytd.n < k || (inc > 0 && inc < k);
}

/*
 * Complementary suppression in one partition of the total: when some parts
 * are hidden and the total is shown, "total minus the shown parts" gives the
 * hidden parts together, and minus what earlier snapshots showed of them,
 * their new messages together. So more parts are hidden (those with new
 * messages, fewest first) until the hidden parts hold at least k messages
 * that no earlier snapshot showed. A part whose figures an earlier snapshot
 * already showed unchanged protects nothing and is not picked. When that
 * cannot be reached, the total is hidden too.
 */
static void complement(struct acell **parts, size_t n, struct acell *total, long long k)
{
	long long hidden_new = 0;
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		if (parts[i]->suppressed && parts[i]->ytd.n > 0) {
			any = true;
			hidden_new += unseen(parts[i]);
		}
	}
	if (!any || total->suppressed)
		return;
	while (hidden_new < k) {
		struct acell *pick = NULL;
		for (size_t i = 0; i < n; i++)
			if (!parts[i]->suppressed && unseen(parts[i]) > 0 &&
			    (!pick || unseen(parts[i]) < unseen(pick)))
				pick = parts[i];
		if (!pick)
			break;
		pick->suppressed = true;
		hidden_new += unseen(pick);
	}
	if (hidden_new < k)
		total->suppressed = true; /* nothing left to hide the small group behind */
}

static json_t *acell_json(const struct acell *c)
{
	json_t *o = json_object();
	json_object_set_new(o, "aantalBerichten", json_integer(c->ytd.n));
	if (c->suppressed) {
		json_object_set_new(o, "geopendBinnen3Weken", json_null());
		json_object_set_new(o, "geopendBinnen6Weken", json_null());
		json_object_set_new(o, "percentage3Weken", json_null());
		json_object_set_new(o, "percentage6Weken", json_null());
	} else {
		json_object_set_new(o, "geopendBinnen3Weken", json_integer(c->ytd.g3));
		json_object_set_new(o, "geopendBinnen6Weken", json_integer(c->ytd.g6));
		json_object_set_new(o, "percentage3Weken", pct_json(c->ytd.g3, c->ytd.n));
		json_object_set_new(o, "percentage6Weken", pct_json(c->ytd.g6, c->ytd.n));
	}
	json_object_set_new(o, "onderdrukt", json_boolean(c->suppressed));
	json_object_set_new(o, "voorlopig", json_false());
	return o;
}

static void add_counts(struct counts *c, long long n, long long g3, long long g6)
{
	c->n += n;
	c->g3 += g3;
	c->g6 += g6;
}

/* The cells of one agency's year: 0 the total, 1-2 the paper split, 3.. the types. */
struct agency_cells {
	struct acell *cells;
	struct acell *types[TYPES_MAX], *papers[2];
	size_t ntypes;
};

static struct acell *type_cell(struct agency_cells *ac, const char *type)
{
	for (size_t j = 0; j < ac->ntypes; j++)
		if (strcmp(ac->types[j]->label, type) == 0)
			return ac->types[j];
	if (ac->ntypes >= TYPES_MAX)
		return NULL;
	struct acell *t = ac->types[ac->ntypes] = &ac->cells[3 + ac->ntypes];
	t->label = type;
	t->papier = -1;
	ac->ntypes++;
	return t;
}

/* Sums the rows into the cells' months; false when there are too many types. */
static bool gather(struct agency_cells *ac, const PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, A_MONTH))
			continue;
		int m = (int)ll(res, i, A_MONTH);
		if (m < 1 || m > MONTHS)
			continue;
		long long n = ll(res, i, A_N), g3 = ll(res, i, A_G3), g6 = ll(res, i, A_G6);
		struct acell *t = type_cell(ac, PQgetvalue(res, i, A_TYPE));
		if (!t)
			return false;
		add_counts(&t->month[m], n, g3, g6);
		add_counts(&ac->cells[0].month[m], n, g3, g6);
		add_counts(&ac->papers[flag(res, i, A_PAPIER)]->month[m], n, g3, g6);
	}
	return true;
}

/*
 * Walk the snapshots an agency could have taken: after each month closed
 * it saw the year to date. Each snapshot is suppressed as if it were the
 * last, so the difference of two snapshots never shows a small group.
 */
static void walk_snapshots(struct agency_cells *ac, int last_month, long long min_cell)
{
	struct acell *cells = ac->cells;
	size_t ncells = 3 + ac->ntypes;
	for (int j = 1; j <= last_month; j++) {
		for (size_t c = 0; c < ncells; c++) {
			add_counts(&cells[c].ytd, cells[c].month[j].n, cells[c].month[j].g3,
				   cells[c].month[j].g6);
			cells[c].suppressed = primary_suppressed(&cells[c], min_cell);
		}
		complement(ac->types, ac->ntypes, &cells[0], min_cell);
		complement(ac->papers, 2, &cells[0], min_cell);
		for (size_t c = 0; c < ncells; c++)
			if (!cells[c].suppressed)
				cells[c].last_shown_n = cells[c].ytd.n;
	}
	if (last_month == 0)
		cells[0].suppressed = true; /* nothing closed yet: nothing to show */
}

/* the last cohort day included: the end of the last closed month, or null */
static json_t *closed_until(int jaar, int last_month)
{
	if (last_month == 0)
		return json_null();
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int d = mdays[last_month - 1];
	if (last_month == 2 && ((jaar % 4 == 0 && jaar % 100 != 0) || jaar % 400 == 0))
		d++;
	char until[DATE_LEN * 2];
	snprintf(until, sizeof(until), "%04d-%02d-%02d", jaar, last_month, d);
	return json_string(until);
}

static json_t *agency_json(const struct agency_cells *ac, const PGresult *res, int jaar,
			   int last_month, long long min_cell)
{
	json_t *o = json_object();
	json_object_set_new(o, "jaar", json_integer(jaar));
	json_object_set_new(o, "oin", json_string(PQgetvalue(res, 0, A_OIN)));
	json_object_set_new(o, "naam", json_string(PQgetvalue(res, 0, A_NAME)));
	json_object_set_new(o, "afgeslotenTotEnMet", closed_until(jaar, last_month));
	json_object_set_new(o, "minimumAantalBerichten", json_integer(min_cell));
	json_object_set_new(o, "totaal", acell_json(&ac->cells[0]));
	json_t *ta = json_array(), *pa = json_array();
	for (size_t j = 0; j < ac->ntypes; j++) {
		if (ac->types[j]->ytd.n == 0)
			continue;
		json_t *c = acell_json(ac->types[j]);
		json_object_set_new(c, "berichttype", json_string(ac->types[j]->label));
		json_array_append_new(ta, c);
	}
	for (int p = 0; p < 2; p++) {
		if (ac->papers[p]->ytd.n == 0)
			continue;
		json_t *c = acell_json(ac->papers[p]);
		json_object_set_new(c, "papierenKopie", json_boolean(p == 1));
		json_array_append_new(pa, c);
	}
	json_object_set_new(o, "berichttypes", ta);
	json_object_set_new(o, "papierenKopie", pa);
	return o;
}

json_t *report_agency_build(const PGresult *res, int jaar, long long min_cell)
{
	struct agency_cells ac = {0};
	int last_month = 0;

	if (PQntuples(res) == 0)
		return NULL;
	ac.cells = calloc(TYPES_MAX + 3, sizeof(*ac.cells));
	if (!ac.cells)
		return NULL;
	ac.cells[0].papier = -1;
	for (int p = 0; p < 2; p++) {
		ac.cells[1 + p].papier = p;
		ac.papers[p] = &ac.cells[1 + p];
	}
	if (!PQgetisnull(res, 0, A_TOT))
		last_month = atoi(PQgetvalue(res, 0, A_TOT) + 5); /* YYYY-MM-01 */
	if (!gather(&ac, res)) {
		free(ac.cells);
		return NULL;
	}
	walk_snapshots(&ac, last_month, min_cell);
	json_t *o = agency_json(&ac, res, jaar, last_month, min_cell);
	free(ac.cells);
	return o;
}
