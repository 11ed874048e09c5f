/*
 * report_agency.c - an agency's own closed-window figures, differentially
 * private (issue 10; see report.h, common/dp.h and docs/statistics.md).
 *
 * The leaves are the (berichttype, papierenKopie) cells of the agency-year.
 * Each leaf's two components (c1 = opened within 3 weeks, c2 = after 3 and
 * within 6) per month get the binary tree mechanism with noise stored per
 * node; the shown figures are the online post-processing of the noisy
 * prefixes (dp_leaf_release). Every other figure (per type, per paper flag,
 * the total) is a sum of post-processed leaves, so parts add up to totals
 * and the whole view is post-processing of the leaves.
 */
#include "stats/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dp.h"
#include "stats/report_impl.h"

#define TYPES_MAX 256
#define LEAVES_MAX (2 * TYPES_MAX)
#define LABEL_LEN 512

const char REPORT_AGENCY_SQL[] =
	"WITH closed AS ("
	/* the last month of the year whose every cohort window has closed */
	"  SELECT max(d)::date AS tot FROM generate_series(make_date($2::int, 1, 1),"
	"    make_date($2::int, 12, 1), interval '1 month') d"
	"  WHERE (d + interval '1 month' - interval '1 day')::date <= stats_closed_through(now())"
	") "
	"SELECT a.oin, a.name, closed.tot, extract(month FROM m.maand)::int, m.berichttype,"
	"  m.papieren_kopie, sum(m.verstuurd),"
	"  coalesce(sum(m.verstuurd) FILTER (WHERE m.volgnummer <= $3::int), 0),"
	"  coalesce(sum(m.geopend_3w) FILTER (WHERE m.volgnummer <= $3::int), 0),"
	"  coalesce(sum(m.geopend_6w - m.geopend_3w) FILTER (WHERE m.volgnummer <= $3::int), 0) "
	"FROM agencies a CROSS JOIN closed LEFT JOIN stats_dp_maand m ON m.agency_id = a.id"
	"  AND m.maand >= make_date($2::int, 1, 1) AND m.maand <= closed.tot "
	"WHERE a.id = $1::bigint GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 5, 6, 4";

enum { A_OIN, A_NAME, A_TOT, A_MONTH, A_TYPE, A_PAPIER, A_N, A_COUNTED, A_C1, A_C2 };

/*
 * $1 agency, $2 year, $3 the drawn noise [{b, p, c, l, i, r}], $4/$5 the
 * scale: stores what is not there yet and returns every stored node of the
 * year (the rows inserted now come from RETURNING: the SELECT's snapshot
 * does not see them). A node another instance inserted after this
 * statement's snapshot is in neither; the caller asks once more.
 */
const char REPORT_AGENCY_NOISE_SQL[] =
	"WITH input AS (SELECT * FROM json_to_recordset($3::json)"
	"  AS t(b text, p boolean, c int, l int, i int, r bigint)), "
	"ins AS (INSERT INTO stats_dp_ruis (agency_id, jaar, berichttype, papieren_kopie,"
	"    component, niveau, idx, ruis, schaal_t, schaal_s)"
	"  SELECT $1::bigint, $2::int, b, p, c, l, i, r, $4::bigint, $5::bigint FROM input"
	"  ORDER BY b, p, c, l, i ON CONFLICT DO NOTHING"
	"  RETURNING berichttype, papieren_kopie, component, niveau, idx, ruis) "
	"SELECT berichttype, papieren_kopie, component, niveau, idx, ruis FROM stats_dp_ruis"
	"  WHERE agency_id = $1::bigint AND jaar = $2::int "
	"UNION ALL SELECT * FROM ins";

enum { N_TYPE, N_PAPIER, N_COMP, N_LEVEL, N_IDX, N_VALUE };

struct leaf {
	const char *type; /* points into the first result */
	int papier;
	int64_t sent[DP_MONTHS + 1]; /* every message, exact (the agency knows what it sent) */
	struct dp_leaf dp;           /* counted messages, c1, c2, noise */
	bool have[DP_COMPONENTS][DP_NODES];
	int64_t g3[DP_MONTHS + 1], g6[DP_MONTHS + 1];
};

struct agency_view {
	PGresult *res; /* owned: the leaves' type strings point into it */
	int jaar, last_month;
	long long agency_id;
	struct leaf *leaves;
	size_t nleaves;
};

static struct leaf *leaf_of(struct agency_view *v, const char *type, int papier)
{
	for (size_t i = 0; i < v->nleaves; i++)
		if (v->leaves[i].papier == papier && strcmp(v->leaves[i].type, type) == 0)
			return &v->leaves[i];
	if (v->nleaves >= LEAVES_MAX)
		return NULL;
	struct leaf *l = &v->leaves[v->nleaves++];
	l->type = type;
	l->papier = papier;
	return l;
}

struct agency_view *report_agency_view(PGresult *res, long long agency_id, int jaar, int upto_month)
{
	if (PQntuples(res) == 0)
		return NULL;
	struct agency_view *v = calloc(1, sizeof(*v));
	if (!v || !(v->leaves = calloc(LEAVES_MAX, sizeof(*v->leaves)))) {
		free(v);
		return NULL;
	}
	v->res = res;
	v->jaar = jaar;
	v->agency_id = agency_id;
	if (!PQgetisnull(res, 0, A_TOT))
		v->last_month = atoi(PQgetvalue(res, 0, A_TOT) + 5); /* YYYY-MM-01 */
	if (upto_month > 0 && upto_month < v->last_month)
		v->last_month = upto_month;
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, A_MONTH))
			continue;
		int m = (int)ll(res, i, A_MONTH);
		if (m < 1 || m > v->last_month)
			continue;
		struct leaf *l = leaf_of(v, PQgetvalue(res, i, A_TYPE), flag(res, i, A_PAPIER));
		if (!l) {
			report_agency_view_free(v);
			return NULL;
		}
		l->sent[m] += ll(res, i, A_N);
		l->dp.n[m] += ll(res, i, A_COUNTED);
		l->dp.c[0][m] += ll(res, i, A_C1);
		l->dp.c[1][m] += ll(res, i, A_C2);
	}
	return v;
}

void report_agency_view_free(struct agency_view *v)
{
	if (!v)
		return;
	PQclear(v->res);
	free(v->leaves);
	free(v);
}

size_t report_agency_leaves(const struct agency_view *v)
{
	return v->nleaves;
}

/* the seeded stream's label of one node: every node its own stream */
static void node_label(char *buf, size_t len, const struct agency_view *v, const struct leaf *l,
		       int comp, struct dp_node n)
{
	snprintf(buf, len, "%lld/%d/%s/%d/%d/%d/%d", v->agency_id, v->jaar, l->type, l->papier,
		 comp + 1, n.level, n.index);
}

json_t *report_agency_draw(const struct agency_view *v, const char *seed, uint64_t t, uint64_t s)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < v->nleaves && arr; i++) {
		const struct leaf *l = &v->leaves[i];
		for (int comp = 0; comp < DP_COMPONENTS; comp++)
			for (int k = 0; k < DP_NODES; k++) {
				struct dp_node n = dp_node_at(k);
				struct dp_seeded st;
				struct dp_rng rng = {dp_rng_openssl, NULL};
				if (seed && *seed) {
					char label[LABEL_LEN];
					node_label(label, sizeof(label), v, l, comp, n);
					dp_seeded_init(&st, seed, label);
					rng = (struct dp_rng){dp_rng_seeded, &st};
				}
				int64_t z;
				if (!dp_dlaplace(&rng, t, s, &z)) {
					json_decref(arr);
					return NULL;
				}
				json_array_append_new(
					arr, json_pack("{s:s, s:b, s:i, s:i, s:i, s:I}", "b",
						       l->type, "p", l->papier, "c", comp + 1, "l",
						       n.level, "i", n.index, "r", (json_int_t)z));
			}
	}
	return arr;
}

bool report_agency_noise(struct agency_view *v, const PGresult *noise)
{
	for (int i = 0; i < PQntuples(noise); i++) {
		int papier = flag(noise, i, N_PAPIER);
		int comp = (int)ll(noise, i, N_COMP) - 1;
		int k = dp_node_find((int)ll(noise, i, N_LEVEL), (int)ll(noise, i, N_IDX));
		if (comp < 0 || comp >= DP_COMPONENTS || k < 0)
			continue;
		for (size_t j = 0; j < v->nleaves; j++) {
			struct leaf *l = &v->leaves[j];
			if (l->papier == papier &&
			    strcmp(l->type, PQgetvalue(noise, i, N_TYPE)) == 0) {
				l->dp.noise[comp][k] = ll(noise, i, N_VALUE);
				l->have[comp][k] = true;
			}
		}
	}
	for (size_t j = 0; j < v->nleaves; j++)
		for (int comp = 0; comp < DP_COMPONENTS; comp++)
			for (int k = 0; k < DP_NODES; k++)
				if (!v->leaves[j].have[comp][k])
					return false;
	return true;
}

struct acell {
	long long sent, counted, g3, g6;
};

static void add(struct acell *c, const struct leaf *l, int last)
{
	for (int m = 1; m <= last; m++) {
		c->sent += l->sent[m];
		c->counted += l->dp.n[m];
	}
	c->g3 += l->g3[last];
	c->g6 += l->g6[last];
}

static json_t *acell_json(const struct acell *c, long long min_cell, bool hide)
{
	json_t *o = json_object();
	bool suppressed = hide || c->counted < min_cell;
	json_object_set_new(o, "aantalBerichten", json_integer(c->sent));
	json_object_set_new(o, "aantalBerichtenGeteld", json_integer(c->counted));
	if (suppressed) {
		json_object_set_new(o, "geopendBinnen3Weken", json_null());
		json_object_set_new(o, "geopendBinnen6Weken", json_null());
		json_object_set_new(o, "percentage3Weken", json_null());
		json_object_set_new(o, "percentage6Weken", json_null());
	} else {
		json_object_set_new(o, "geopendBinnen3Weken", json_integer(c->g3));
		json_object_set_new(o, "geopendBinnen6Weken", json_integer(c->g6));
		json_object_set_new(o, "percentage3Weken", pct_json(c->g3, c->counted));
		json_object_set_new(o, "percentage6Weken", pct_json(c->g6, c->counted));
	}
	json_object_set_new(o, "onderdrukt", json_boolean(suppressed));
	json_object_set_new(o, "voorlopig", json_false());
	return o;
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

json_t *report_agency_json(struct agency_view *v, const struct report_agency_opts *o)
{
	int last = v->last_month;
	struct acell total = {0}, papers[2] = {{0}, {0}};
	struct acell *types = calloc(v->nleaves + 1, sizeof(*types));
	const char **names = calloc(v->nleaves + 1, sizeof(*names));
	size_t ntypes = 0;
	if (!types || !names) {
		free(types);
		free(names);
		return NULL;
	}
	for (size_t i = 0; i < v->nleaves; i++) {
		struct leaf *l = &v->leaves[i];
		dp_leaf_release(&l->dp, last, l->g3, l->g6);
		size_t t = 0;
		while (t < ntypes && strcmp(names[t], l->type) != 0)
			t++;
		if (t == ntypes)
			names[ntypes++] = l->type;
		add(&types[t], l, last);
		add(&papers[l->papier], l, last);
		add(&total, l, last);
	}
	json_t *r = json_object();
	json_object_set_new(r, "jaar", json_integer(v->jaar));
	json_object_set_new(r, "oin", json_string(PQgetvalue(v->res, 0, A_OIN)));
	json_object_set_new(r, "naam", json_string(PQgetvalue(v->res, 0, A_NAME)));
	json_object_set_new(r, "afgeslotenTotEnMet", closed_until(v->jaar, last));
	json_object_set_new(r, "totEnMetMaand",
			    o->upto_month ? json_integer(o->upto_month) : json_null());
	json_object_set_new(r, "minimumAantalBerichten", json_integer(o->min_cell));
	json_object_set_new(r, "privacy",
			    json_pack("{s:f, s:I}", "epsilon", (double)o->epsilon_milli / 1000.0,
				      "maxBerichtenPerBurger", (json_int_t)o->max_per_citizen));
	/* nothing closed yet: nothing to show */
	json_object_set_new(r, "totaal", acell_json(&total, o->min_cell, last == 0));
	json_t *ta = json_array(), *pa = json_array();
	for (size_t t = 0; t < ntypes; t++) {
		if (types[t].sent == 0)
			continue;
		json_t *c = acell_json(&types[t], o->min_cell, false);
		json_object_set_new(c, "berichttype", json_string(names[t]));
		json_array_append_new(ta, c);
	}
	for (int p = 0; p < 2; p++) {
		if (papers[p].sent == 0)
			continue;
		json_t *c = acell_json(&papers[p], o->min_cell, false);
		json_object_set_new(c, "papierenKopie", json_boolean(p == 1));
		json_array_append_new(pa, c);
	}
	json_object_set_new(r, "berichttypes", ta);
	json_object_set_new(r, "papierenKopie", pa);
	free(types);
	free(names);
	return r;
}
