/*
 * report.c - the statistics reports from the rollups (see report.h and
 * docs/statistics.md for the definitions and the suppression rules).
 */
#include "stats/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MONTHS 12
#define TENTHS_PER_UNIT 10
#define PERMILLE 1000
#define TYPES_MAX 256
#define DATE_LEN 11

/* ------------------------------------------------------------ shared bits */

long long report_tenths(long long part, long long whole)
{
	if (whole <= 0)
		return -1;
	long long a = part < 0 ? -part : part;
	long long t = (2 * PERMILLE * a + whole) / (2 * whole); /* half away from zero */
	return part < 0 ? -t : t;
}

static json_t *tenths_json(long long tenths)
{
	return json_real((double)tenths / TENTHS_PER_UNIT);
}

static json_t *pct_json(long long part, long long whole)
{
	return whole > 0 ? tenths_json(report_tenths(part, whole)) : json_null();
}

static long long ll(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool flag(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* counts and rates of one cell */
static json_t *cell_json(long long n, long long g3, long long g6, bool voorlopig)
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

/* ----------------------------------------------------------- ministry view */

/*
 * The same query over the yearly or the monthly rollup. A cell is
 * provisional while its latest cohort is open (the close time grows with the
 * day, so the latest cohort decides; stats_closed_through converts the time
 * zone once per query, not once per cell). Sorting uses the C collation:
 * a locale-aware sort of 8,000 rows costs more than the rest of the query.
 * The counts are summed as int (a cell holds far fewer than 2^31 messages a
 * year; sum(int) accumulates in bigint) because sum(bigint) goes through
 * numeric, a third of the query's time.
 */
#define REPORT_SQL_FOR(TABLE, PERIOD, STEP)                                                    \
	"WITH p AS MATERIALIZED ("                                                          \
	"  SELECT make_date($1::int, coalesce($2::int, 1), 1) AS van,"                      \
	"    (make_date($1::int, coalesce($2::int, 1), 1) + interval '1 " STEP "')::date AS tot," \
	"    stats_closed_through(now()) AS gesloten"                                       \
	"), c AS ("                                                                         \
	"  SELECT m.agency_id, m.berichttype, m.papieren_kopie, m." PERIOD " >= p.van AS huidig," \
	"    m.verstuurd::int AS verstuurd, m.geopend_3w::int AS geopend_3w,"               \
	"    m.geopend_6w::int AS geopend_6w, m.laatste_dag, p.gesloten"                    \
	"  FROM " TABLE " m, p"                                                             \
	"  WHERE (m." PERIOD " >= p.van AND m." PERIOD " < p.tot)"                          \
	"     OR (m." PERIOD " >= (p.van - interval '1 year')::date"                        \
	"         AND m." PERIOD " < (p.tot - interval '1 year')::date)"                    \
	"), g AS ("                                                                         \
	"  SELECT CASE WHEN grouping(agency_id) = 1 THEN 0 WHEN grouping(berichttype) = 0 THEN 2" \
	"      WHEN grouping(papieren_kopie) = 0 THEN 3 ELSE 1 END AS niveau,"              \
	"    huidig, agency_id, berichttype, papieren_kopie, sum(verstuurd) AS n,"          \
	"    sum(geopend_3w) AS g3, sum(geopend_6w) AS g6,"                                 \
	"    max(laatste_dag) > min(gesloten) AS voorlopig"                                 \
	"  FROM c GROUP BY GROUPING SETS ((huidig), (huidig, agency_id),"                   \
	"    (huidig, agency_id, berichttype), (huidig, agency_id, papieren_kopie))"        \
	") "                                                                                \
	"SELECT g.niveau, a.oin, a.name, g.berichttype, g.papieren_kopie, g.huidig,"       \
	"  g.n, g.g3, g.g6, g.voorlopig "                                                   \
	"FROM g LEFT JOIN agencies a ON a.id = g.agency_id "                                \
	"ORDER BY a.name COLLATE \"C\" NULLS FIRST, a.oin, g.niveau, g.berichttype COLLATE \"C\"," \
	"  g.papieren_kopie,"                                                               \
	"  g.huidig DESC"

static const char REPORT_SQL_YEAR[] = REPORT_SQL_FOR("stats_jaar", "jaar", "year");
static const char REPORT_SQL_MONTH[] = REPORT_SQL_FOR("stats_maand", "maand", "month");

const char *report_sql(int maand)
{
	return maand ? REPORT_SQL_MONTH : REPORT_SQL_YEAR;
}

enum { R_NIVEAU, R_OIN, R_NAME, R_TYPE, R_PAPIER, R_HUIDIG, R_N, R_G3, R_G6, R_VOORLOPIG };
enum { LEVEL_TOTAL = 0, LEVEL_AGENCY = 1, LEVEL_TYPE = 2, LEVEL_PAPER = 3 };

/* attaches the previous period's figures and the change to a current cell */
static void attach_previous(json_t *cell, long long n, long long g3, long long g6,
			    bool voorlopig)
{
	long long cn = json_integer_value(json_object_get(cell, "aantalBerichten"));
	long long c3 = json_integer_value(json_object_get(cell, "geopendBinnen3Weken"));
	long long c6 = json_integer_value(json_object_get(cell, "geopendBinnen6Weken"));
	json_t *prev = json_object();
	json_object_set_new(prev, "aantalBerichten", json_integer(n));
	json_object_set_new(prev, "percentage3Weken", pct_json(g3, n));
	json_object_set_new(prev, "percentage6Weken", pct_json(g6, n));
	json_object_set_new(prev, "voorlopig", json_boolean(voorlopig));
	json_object_set_new(cell, "vorigJaar", prev);
	json_object_set_new(cell, "groeiAantalBerichten",
			    n > 0 ? tenths_json(report_tenths(cn - n, n)) : json_null());
	bool both = n > 0 && cn > 0;
	json_object_set_new(cell, "verschilPercentage3Weken",
			    both ? tenths_json(report_tenths(c3, cn) - report_tenths(g3, n))
				 : json_null());
	json_object_set_new(cell, "verschilPercentage6Weken",
			    both ? tenths_json(report_tenths(c6, cn) - report_tenths(g6, n))
				 : json_null());
}

static void no_previous(json_t *cell)
{
	json_object_set_new(cell, "vorigJaar", json_null());
	json_object_set_new(cell, "groeiAantalBerichten", json_null());
	json_object_set_new(cell, "verschilPercentage3Weken", json_null());
	json_object_set_new(cell, "verschilPercentage6Weken", json_null());
}

json_t *report_build(const PGresult *res, int jaar, int maand)
{
	json_t *rep = json_object();
	json_t *orgs = json_array();
	json_t *total = NULL, *org = NULL;
	json_t *last = NULL; /* the current-period cell a previous-period row belongs to */
	int last_level = -1;
	const char *last_oin = "", *last_type = "", *last_papier = "";

	if (!rep || !orgs) {
		json_decref(rep);
		json_decref(orgs);
		return NULL;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		int level = (int)ll(res, i, R_NIVEAU);
		const char *oin = PQgetvalue(res, i, R_OIN);
		const char *type = PQgetvalue(res, i, R_TYPE);
		const char *papier = PQgetvalue(res, i, R_PAPIER);
		long long n = ll(res, i, R_N), g3 = ll(res, i, R_G3), g6 = ll(res, i, R_G6);
		bool voorlopig = flag(res, i, R_VOORLOPIG);

		if (!flag(res, i, R_HUIDIG)) {
			if (last && level == last_level && strcmp(oin, last_oin) == 0 &&
			    strcmp(type, last_type) == 0 && strcmp(papier, last_papier) == 0 &&
			    level <= LEVEL_AGENCY)
				attach_previous(last, n, g3, g6, voorlopig);
			continue; /* sub-cells show no comparison; gone cells no row */
		}
		json_t *cell = cell_json(n, g3, g6, voorlopig);
		switch (level) {
		case LEVEL_TOTAL:
			total = cell;
			no_previous(cell);
			break;
		case LEVEL_AGENCY:
			json_object_set_new(cell, "oin", json_string(oin));
			json_object_set_new(cell, "naam", json_string(PQgetvalue(res, i, R_NAME)));
			no_previous(cell);
			json_object_set_new(cell, "berichttypes", json_array());
			json_object_set_new(cell, "papierenKopie", json_array());
			json_array_append_new(orgs, cell);
			org = cell;
			break;
		case LEVEL_TYPE:
			json_object_set_new(cell, "berichttype", json_string(type));
			if (org)
				json_array_append_new(json_object_get(org, "berichttypes"), cell);
			else
				json_decref(cell);
			break;
		default:
			json_object_set_new(cell, "papierenKopie", json_boolean(papier[0] == 't'));
			if (org)
				json_array_append_new(json_object_get(org, "papierenKopie"), cell);
			else
				json_decref(cell);
			break;
		}
		last = cell;
		last_level = level;
		last_oin = oin;
		last_type = type;
		last_papier = papier;
	}
	json_object_set_new(rep, "jaar", json_integer(jaar));
	json_object_set_new(rep, "maand", maand ? json_integer(maand) : json_null());
	json_object_set_new(rep, "tijdzone", json_string("Europe/Amsterdam"));
	if (!total) {
		total = cell_json(0, 0, 0, false);
		no_previous(total);
	}
	json_object_set_new(rep, "totaal", total);
	json_object_set_new(rep, "organisaties", orgs);
	return rep;
}

/* --------------------------------------------------------------- CSV, HTML */

static void csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n")) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
}

/* a JSON number or null as text: "" for null, one decimal for reals */
static void num_text(char *buf, size_t len, const json_t *v)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.1f", json_real_value(v));
	else
		buf[0] = '\0';
}

static const char *const CSV_NUMS[] = {
	"aantalBerichten", "geopendBinnen3Weken", "geopendBinnen6Weken", "percentage3Weken",
	"percentage6Weken",
};
static const char *const CSV_CHANGE[] = {
	"groeiAantalBerichten", "verschilPercentage3Weken", "verschilPercentage6Weken",
};
static const char *const CSV_PREV[] = {
	"aantalBerichten", "percentage3Weken", "percentage6Weken",
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void csv_row(FILE *f, const char *level, const json_t *org, const json_t *cell)
{
	char num[32];

	csv_field(f, level);
	fputc(',', f);
	csv_field(f, org ? json_string_value(json_object_get(org, "oin")) : "");
	fputc(',', f);
	csv_field(f, org ? json_string_value(json_object_get(org, "naam")) : "");
	fputc(',', f);
	const json_t *t = json_object_get(cell, "berichttype");
	csv_field(f, json_is_string(t) ? json_string_value(t) : "");
	fputc(',', f);
	const json_t *p = json_object_get(cell, "papierenKopie");
	fputs(json_is_boolean(p) ? (json_is_true(p) ? "true" : "false") : "", f);
	for (size_t i = 0; i < NELEM(CSV_NUMS); i++) {
		num_text(num, sizeof(num), json_object_get(cell, CSV_NUMS[i]));
		fprintf(f, ",%s", num);
	}
	fprintf(f, ",%s", json_is_true(json_object_get(cell, "voorlopig")) ? "true" : "false");
	const json_t *prev = json_object_get(cell, "vorigJaar");
	for (size_t i = 0; i < NELEM(CSV_PREV); i++) {
		num_text(num, sizeof(num), json_object_get(prev, CSV_PREV[i]));
		fprintf(f, ",%s", num);
	}
	for (size_t i = 0; i < NELEM(CSV_CHANGE); i++) {
		num_text(num, sizeof(num), json_object_get(cell, CSV_CHANGE[i]));
		fprintf(f, ",%s", num);
	}
	fputs("\r\n", f);
}

char *report_csv(const json_t *rep)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	fputs("niveau,oin,naam,berichttype,papierenKopie,aantalBerichten,geopendBinnen3Weken,"
	      "geopendBinnen6Weken,percentage3Weken,percentage6Weken,voorlopig,"
	      "vorigJaarAantalBerichten,vorigJaarPercentage3Weken,vorigJaarPercentage6Weken,"
	      "groeiAantalBerichten,verschilPercentage3Weken,verschilPercentage6Weken\r\n",
	      f);
	csv_row(f, "totaal", NULL, json_object_get(rep, "totaal"));
	size_t i, j;
	json_t *org, *c;
	json_array_foreach(json_object_get(rep, "organisaties"), i, org) {
		csv_row(f, "organisatie", org, org);
		json_array_foreach(json_object_get(org, "berichttypes"), j, c) {
			csv_row(f, "berichttype", org, c);
		}
		json_array_foreach(json_object_get(org, "papierenKopie"), j, c) {
			csv_row(f, "papierenKopie", org, c);
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void html_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static void html_cells(FILE *f, const json_t *cell)
{
	char num[32];
	for (size_t i = 0; i < NELEM(CSV_NUMS); i++) {
		num_text(num, sizeof(num), json_object_get(cell, CSV_NUMS[i]));
		fprintf(f, "<td>%s</td>", num[0] ? num : "&ndash;");
	}
	num_text(num, sizeof(num), json_object_get(cell, "groeiAantalBerichten"));
	fprintf(f, "<td>%s</td>", num[0] ? num : "&ndash;");
	fprintf(f, "<td>%s</td>", json_is_true(json_object_get(cell, "voorlopig")) ? "ja" : "nee");
}

static const char HTML_STYLE[] =
	"body{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}"
	"table{border-collapse:collapse;margin-bottom:2rem}"
	"th,td{border:1px solid #999;padding:.25rem .5rem;text-align:right}"
	"th[scope=row],thead th:first-child{text-align:left}caption{text-align:left;font-weight:bold;"
	"margin-bottom:.5rem}.sub th[scope=row]{padding-left:1.5rem;font-weight:normal}"
	"svg text{font-size:12px;fill:#1a1a1a}"
	"@media print{body{margin:0}table,svg{page-break-inside:avoid}"
	"a{color:inherit;text-decoration:none}}";

#define CHART_BAR_H 10
#define CHART_ROW_H 30
#define CHART_LABEL_W 260
#define CHART_PLOT_W 600
#define CHART_TOP 40
#define CHART_TICKS 5

static void html_chart(FILE *f, const json_t *orgs)
{
	size_t n = json_array_size(orgs);
	int height = CHART_TOP + (int)n * CHART_ROW_H + CHART_ROW_H;
	int width = CHART_LABEL_W + CHART_PLOT_W + 60;

	fprintf(f,
		"<figure><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
		"aria-labelledby=\"grafiek-titel grafiek-desc\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\">"
		"<title id=\"grafiek-titel\">Openingspercentages per organisatie</title>"
		"<desc id=\"grafiek-desc\">Staafdiagram met per organisatie twee staven: het "
		"percentage berichten dat binnen 3 weken (donker) en binnen 6 weken (licht) is "
		"geopend, op een schaal van 0 tot 100 procent. Dezelfde cijfers staan in de tabel "
		"hierboven.</desc>",
		width, height, width, height);
	fprintf(f, "<rect x=\"%d\" y=\"8\" width=\"12\" height=\"12\" fill=\"#154273\"/>"
		   "<text x=\"%d\" y=\"18\">binnen 3 weken</text>"
		   "<rect x=\"%d\" y=\"8\" width=\"12\" height=\"12\" fill=\"#8fcae7\"/>"
		   "<text x=\"%d\" y=\"18\">binnen 6 weken</text>",
		CHART_LABEL_W, CHART_LABEL_W + 16, CHART_LABEL_W + 140, CHART_LABEL_W + 156);
	for (int t = 0; t <= CHART_TICKS; t++) {
		int x = CHART_LABEL_W + t * CHART_PLOT_W / CHART_TICKS;
		fprintf(f,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/>"
			"<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d%%</text>",
			x, CHART_TOP - 4, x, height - CHART_ROW_H + 4, x, height - 8,
			t * 100 / CHART_TICKS);
	}
	size_t i;
	json_t *org;
	json_array_foreach(orgs, i, org) {
		int y = CHART_TOP + (int)i * CHART_ROW_H;
		const json_t *p3 = json_object_get(org, "percentage3Weken");
		const json_t *p6 = json_object_get(org, "percentage6Weken");
		double v3 = json_is_real(p3) ? json_real_value(p3) : 0;
		double v6 = json_is_real(p6) ? json_real_value(p6) : 0;
		fprintf(f, "<g><text x=\"%d\" y=\"%d\" text-anchor=\"end\">", CHART_LABEL_W - 8,
			y + CHART_BAR_H + 4);
		html_text(f, json_string_value(json_object_get(org, "naam")));
		fprintf(f,
			"</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#154273\">"
			"<title>binnen 3 weken: %.1f%%</title></rect>"
			"<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#8fcae7\">"
			"<title>binnen 6 weken: %.1f%%</title></rect></g>",
			CHART_LABEL_W, y, v3 * CHART_PLOT_W / 100, CHART_BAR_H, v3, CHART_LABEL_W,
			y + CHART_BAR_H, v6 * CHART_PLOT_W / 100, CHART_BAR_H, v6);
	}
	fputs("</svg><figcaption>Figuur: openingspercentages per organisatie (zie de tabel "
	      "voor de exacte aantallen).</figcaption></figure>",
	      f);
}

char *report_html(const json_t *rep)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	long long jaar = json_integer_value(json_object_get(rep, "jaar"));
	const json_t *maand = json_object_get(rep, "maand");
	char period[32];
	if (json_is_integer(maand))
		snprintf(period, sizeof(period), "%lld-%02lld", jaar,
			 (long long)json_integer_value(maand));
	else
		snprintf(period, sizeof(period), "%lld", jaar);

	fprintf(f,
		"<!DOCTYPE html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		"<title>Openingspercentages Berichtenbox %s</title><style>%s</style></head>"
		"<body><main><h1>Openingspercentages Berichtenbox %s</h1>"
		"<p>Per organisatie het aandeel berichten dat binnen 3 weken (21 dagen) en binnen "
		"6 weken (42 dagen) na publicatie is geopend. Cohort: de publicatiedag in "
		"Europe/Amsterdam. <strong>Voorlopig</strong>: het venster van minstens een cohort "
		"is nog open; die cijfers kunnen nog stijgen.</p>",
		period, HTML_STYLE, period);
	fprintf(f, "<table><caption>Openingspercentages %s</caption><thead><tr>"
		   "<th scope=\"col\">Organisatie / berichttype</th>"
		   "<th scope=\"col\">Berichten</th><th scope=\"col\">Geopend binnen 3 weken</th>"
		   "<th scope=\"col\">Geopend binnen 6 weken</th><th scope=\"col\">%% 3 weken</th>"
		   "<th scope=\"col\">%% 6 weken</th><th scope=\"col\">Groei berichten t.o.v. vorig "
		   "jaar (%%)</th><th scope=\"col\">Voorlopig</th></tr></thead><tbody>",
		period);
	size_t i, j;
	json_t *org, *c;
	const json_t *orgs = json_object_get(rep, "organisaties");
	json_array_foreach(orgs, i, org) {
		fputs("<tr><th scope=\"row\">", f);
		html_text(f, json_string_value(json_object_get(org, "naam")));
		fputs("</th>", f);
		html_cells(f, org);
		fputs("</tr>", f);
		json_array_foreach(json_object_get(org, "berichttypes"), j, c) {
			fputs("<tr class=\"sub\"><th scope=\"row\">berichttype ", f);
			html_text(f, json_string_value(json_object_get(c, "berichttype")));
			fputs("</th>", f);
			html_cells(f, c);
			fputs("</tr>", f);
		}
		json_array_foreach(json_object_get(org, "papierenKopie"), j, c) {
			fprintf(f, "<tr class=\"sub\"><th scope=\"row\">%s papieren kopie</th>",
				json_is_true(json_object_get(c, "papierenKopie")) ? "met" : "zonder");
			html_cells(f, c);
			fputs("</tr>", f);
		}
	}
	fputs("</tbody><tfoot><tr><th scope=\"row\">Totaal</th>", f);
	html_cells(f, json_object_get(rep, "totaal"));
	fputs("</tr></tfoot></table>", f);
	html_chart(f, orgs);
	fputs("</main></body></html>\n", f);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* -------------------------------------------------------------- agency view */

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
	const char *label;          /* berichttype, or NULL */
	int papier;                 /* 0/1 for the split, -1 otherwise */
	struct counts month[MONTHS + 1];
	struct counts ytd;          /* through the month being walked */
	long long last_shown_n;     /* ytd n when it last showed open figures; 0 = never */
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

json_t *report_agency_build(const PGresult *res, int jaar, long long min_cell)
{
	struct acell *types[TYPES_MAX], *papers[2];
	size_t ntypes = 0;
	int last_month = 0;
	char tot[DATE_LEN] = "";

	if (PQntuples(res) == 0)
		return NULL;
	/* 0 total, 1-2 the paper split, 3.. the types */
	struct acell *cells = calloc(TYPES_MAX + 3, sizeof(*cells));
	if (!cells)
		return NULL;
	cells[0].papier = -1;
	for (int p = 0; p < 2; p++) {
		cells[1 + p].papier = p;
		papers[p] = &cells[1 + p];
	}
	if (!PQgetisnull(res, 0, A_TOT)) {
		snprintf(tot, sizeof(tot), "%s", PQgetvalue(res, 0, A_TOT));
		last_month = atoi(tot + 5); /* YYYY-MM-01 */
	}
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, A_MONTH))
			continue;
		int m = (int)ll(res, i, A_MONTH);
		if (m < 1 || m > MONTHS)
			continue;
		const char *type = PQgetvalue(res, i, A_TYPE);
		long long n = ll(res, i, A_N), g3 = ll(res, i, A_G3), g6 = ll(res, i, A_G6);
		struct acell *t = NULL;
		for (size_t j = 0; j < ntypes; j++)
			if (strcmp(types[j]->label, type) == 0)
				t = types[j];
		if (!t) {
			if (ntypes >= TYPES_MAX) {
				free(cells);
				return NULL;
			}
			t = types[ntypes] = &cells[3 + ntypes];
			t->label = type;
			t->papier = -1;
			ntypes++;
		}
		add_counts(&t->month[m], n, g3, g6);
		add_counts(&cells[0].month[m], n, g3, g6);
		add_counts(&papers[flag(res, i, A_PAPIER)]->month[m], n, g3, g6);
	}

	/*
	 * Walk the snapshots an agency could have taken: after each month closed
	 * it saw the year to date. Each snapshot is suppressed as if it were the
	 * last, so the difference of two snapshots never shows a small group.
	 */
	size_t ncells = 3 + ntypes;
	for (int j = 1; j <= last_month; j++) {
		for (size_t c = 0; c < ncells; c++) {
			add_counts(&cells[c].ytd, cells[c].month[j].n, cells[c].month[j].g3,
				   cells[c].month[j].g6);
			cells[c].suppressed = primary_suppressed(&cells[c], min_cell);
		}
		complement(types, ntypes, &cells[0], min_cell);
		complement(papers, 2, &cells[0], min_cell);
		for (size_t c = 0; c < ncells; c++)
			if (!cells[c].suppressed)
				cells[c].last_shown_n = cells[c].ytd.n;
	}
	if (last_month == 0)
		cells[0].suppressed = true; /* nothing closed yet: nothing to show */

	json_t *o = json_object();
	json_object_set_new(o, "jaar", json_integer(jaar));
	json_object_set_new(o, "oin", json_string(PQgetvalue(res, 0, A_OIN)));
	json_object_set_new(o, "naam", json_string(PQgetvalue(res, 0, A_NAME)));
	if (last_month > 0) {
		/* the last cohort day included: the end of the last closed month */
		static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		int d = mdays[last_month - 1];
		if (last_month == 2 && ((jaar % 4 == 0 && jaar % 100 != 0) || jaar % 400 == 0))
			d++;
		char until[DATE_LEN * 2];
		snprintf(until, sizeof(until), "%04d-%02d-%02d", jaar, last_month, d);
		json_object_set_new(o, "afgeslotenTotEnMet", json_string(until));
	} else {
		json_object_set_new(o, "afgeslotenTotEnMet", json_null());
	}
	json_object_set_new(o, "minimumAantalBerichten", json_integer(min_cell));
	json_object_set_new(o, "totaal", acell_json(&cells[0]));
	json_t *ta = json_array(), *pa = json_array();
	for (size_t j = 0; j < ntypes; j++) {
		if (types[j]->ytd.n == 0)
			continue;
		json_t *c = acell_json(types[j]);
		json_object_set_new(c, "berichttype", json_string(types[j]->label));
		json_array_append_new(ta, c);
	}
	for (int p = 0; p < 2; p++) {
		if (papers[p]->ytd.n == 0)
			continue;
		json_t *c = acell_json(papers[p]);
		json_object_set_new(c, "papierenKopie", json_boolean(p == 1));
		json_array_append_new(pa, c);
	}
	json_object_set_new(o, "berichttypes", ta);
	json_object_set_new(o, "papierenKopie", pa);
	free(cells);
	return o;
}

/* ----------------------------------------------------------- notificaties */

const char REPORT_NOTIF_SQL[] =
	"WITH n AS ("
	"  SELECT coalesce(sum(afgeleverd) FILTER (WHERE kind = 'new'), 0) AS nieuw,"
	"    coalesce(sum(afgeleverd) FILTER (WHERE kind = 'repeat'), 0) AS herhaal,"
	"    coalesce(sum(gebounced), 0) AS bounced, coalesce(sum(mislukt), 0) AS mislukt"
	"  FROM stats_notificaties"
	"  WHERE dag >= make_date($1::int, 1, 1) AND dag < make_date($1::int + 1, 1, 1)"
	"), a AS ("
	"  SELECT count(*) AS actief, count(*) FILTER (WHERE email IS NOT NULL) AS geverifieerd,"
	/* the portal's "no e-mail, I know" confirmation (migration 0004) */
	"    count(*) FILTER (WHERE email IS NULL"
	"      AND no_email_confirmed_at IS NOT NULL) AS zonder_bevestigd"
	"  FROM accounts WHERE active"
	"), d AS ("
	"  SELECT count(*) AS slapend FROM ("
	"    SELECT m.account_id FROM messages m"
	"    JOIN accounts ac ON ac.id = m.account_id AND ac.active"
	"    WHERE m.publicatie_tijdstip > now() - $2::int * interval '1 week'"
	"      AND m.publicatie_tijdstip <= now()"
	"    GROUP BY 1 HAVING bool_and(m.opened_at IS NULL AND m.deleted_at IS NULL)) x"
	") "
	"SELECT n.nieuw, n.herhaal, n.bounced, n.mislukt, a.actief, a.geverifieerd,"
	"  a.zonder_bevestigd, d.slapend,"
	"  to_char(now() AT TIME ZONE 'Europe/Amsterdam', 'YYYY-MM-DD') "
	"FROM n, a, d";

json_t *report_notif_build(const PGresult *res, int jaar, long long dormant_weeks)
{
	if (PQntuples(res) != 1)
		return NULL;
	long long nieuw = ll(res, 0, 0), herhaal = ll(res, 0, 1), bounced = ll(res, 0, 2);
	long long actief = ll(res, 0, 4), geverifieerd = ll(res, 0, 5);
	json_t *o = json_object();
	json_object_set_new(o, "jaar", json_integer(jaar));
	json_object_set_new(o, "notificatiesVerstuurd", json_integer(nieuw));
	json_object_set_new(o, "herinneringenVerstuurd", json_integer(herhaal));
	json_object_set_new(o, "bounces", json_integer(bounced));
	json_object_set_new(o, "bouncePercentage", pct_json(bounced, nieuw + herhaal));
	json_object_set_new(o, "mislukt", json_integer(ll(res, 0, 3)));
	json_object_set_new(o, "peildatum", json_string(PQgetvalue(res, 0, 8)));
	json_object_set_new(o, "actieveAccounts", json_integer(actief));
	json_object_set_new(o, "accountsMetGeverifieerdAdres", json_integer(geverifieerd));
	json_object_set_new(o, "percentageMetGeverifieerdAdres", pct_json(geverifieerd, actief));
	json_object_set_new(o, "accountsZonderEmailBevestigd", json_integer(ll(res, 0, 6)));
	json_object_set_new(o, "slapendeAccounts", json_integer(ll(res, 0, 7)));
	json_object_set_new(o, "slapendNaWeken", json_integer(dormant_weeks));
	return o;
}
