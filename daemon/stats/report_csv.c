/*
 * report_csv.c - the ministry report as CSV (see report.h).
 */
#include "stats/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/report_impl.h"

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

const char *const REPORT_CELL_NUMS[REPORT_CELL_NNUMS] = {
	"aantalBerichten",  "geopendBinnen3Weken", "geopendBinnen6Weken",
	"percentage3Weken", "percentage6Weken",
};
static const char *const CSV_CHANGE[] = {
	"groeiAantalBerichten",
	"verschilPercentage3Weken",
	"verschilPercentage6Weken",
};
static const char *const CSV_PREV[] = {
	"aantalBerichten",
	"percentage3Weken",
	"percentage6Weken",
};

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
	for (size_t i = 0; i < NELEM(REPORT_CELL_NUMS); i++) {
		report_num_text(num, sizeof(num), json_object_get(cell, REPORT_CELL_NUMS[i]));
		fprintf(f, ",%s", num);
	}
	fprintf(f, ",%s", json_is_true(json_object_get(cell, "voorlopig")) ? "true" : "false");
	const json_t *prev = json_object_get(cell, "vorigJaar");
	for (size_t i = 0; i < NELEM(CSV_PREV); i++) {
		report_num_text(num, sizeof(num), json_object_get(prev, CSV_PREV[i]));
		fprintf(f, ",%s", num);
	}
	for (size_t i = 0; i < NELEM(CSV_CHANGE); i++) {
		report_num_text(num, sizeof(num), json_object_get(cell, CSV_CHANGE[i]));
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
	json_array_foreach(json_object_get(rep, "organisaties"), i, org)
	{
		csv_row(f, "organisatie", org, org);
		json_array_foreach(json_object_get(org, "berichttypes"), j, c)
		{
			csv_row(f, "berichttype", org, c);
		}
		json_array_foreach(json_object_get(org, "papierenKopie"), j, c)
		{
			csv_row(f, "papierenKopie", org, c);
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* a JSON number or null as text: "" for null, one decimal for reals */
void report_num_text(char *buf, size_t len, const json_t *v)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.1f", json_real_value(v));
	else
		buf[0] = '\0';
}
