/*
 * report_html.c - the ministry report as one HTML page with an inline SVG
 * chart (see report.h).
 */
#include "stats/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/report_impl.h"

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
	for (size_t i = 0; i < REPORT_CELL_NNUMS; i++) {
		report_num_text(num, sizeof(num), json_object_get(cell, REPORT_CELL_NUMS[i]));
		fprintf(f, "<td>%s</td>", num[0] ? num : "&ndash;");
	}
	report_num_text(num, sizeof(num), json_object_get(cell, "groeiAantalBerichten"));
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
	fprintf(f,
		"<rect x=\"%d\" y=\"8\" width=\"12\" height=\"12\" fill=\"#154273\"/>"
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
	json_array_foreach(orgs, i, org)
	{
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
	fprintf(f,
		"<table><caption>Openingspercentages %s</caption><thead><tr>"
		"<th scope=\"col\">Organisatie / berichttype</th>"
		"<th scope=\"col\">Berichten</th><th scope=\"col\">Geopend binnen 3 weken</th>"
		"<th scope=\"col\">Geopend binnen 6 weken</th><th scope=\"col\">%% 3 weken</th>"
		"<th scope=\"col\">%% 6 weken</th><th scope=\"col\">Groei berichten t.o.v. vorig "
		"jaar (%%)</th><th scope=\"col\">Voorlopig</th></tr></thead><tbody>",
		period);
	size_t i, j;
	json_t *org, *c;
	const json_t *orgs = json_object_get(rep, "organisaties");
	json_array_foreach(orgs, i, org)
	{
		fputs("<tr><th scope=\"row\">", f);
		html_text(f, json_string_value(json_object_get(org, "naam")));
		fputs("</th>", f);
		html_cells(f, org);
		fputs("</tr>", f);
		json_array_foreach(json_object_get(org, "berichttypes"), j, c)
		{
			fputs("<tr class=\"sub\"><th scope=\"row\">berichttype ", f);
			html_text(f, json_string_value(json_object_get(c, "berichttype")));
			fputs("</th>", f);
			html_cells(f, c);
			fputs("</tr>", f);
		}
		json_array_foreach(json_object_get(org, "papierenKopie"), j, c)
		{
			fprintf(f, "<tr class=\"sub\"><th scope=\"row\">%s papieren kopie</th>",
				json_is_true(json_object_get(c, "papierenKopie")) ? "met"
										  : "zonder");
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
