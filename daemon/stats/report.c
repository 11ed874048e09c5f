/*
 * report.c - the statistics reports from the rollups (see report.h and
 * docs/statistics.md for the definitions and the suppression rules): the
 * ministry report and the notificaties report. The agency view is in
 * report_agency.c, the CSV and HTML renderings in report_csv.c and
 * report_html.c.
 */
#include "stats/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/report_impl.h"

#define PERMILLE 1000

/* ------------------------------------------------------------ shared bits */

long long report_tenths(long long part, long long whole)
{
	if (whole <= 0)
		return -1;
	long long a = part < 0 ? -part : part;
	long long t = (2 * PERMILLE * a + whole) / (2 * whole); /* half away from zero */
	return part < 0 ? -t : t;
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
#define REPORT_SQL_FOR(TABLE, PERIOD, STEP)                                                        \
	"WITH p AS MATERIALIZED ("                                                                 \
	"  SELECT make_date($1::int, coalesce($2::int, 1), 1) AS van,"                             \
	"    (make_date($1::int, coalesce($2::int, 1), 1) + interval '1 " STEP "')::date AS tot,"  \
	"    stats_closed_through(now()) AS gesloten"                                              \
	"), c AS ("                                                                                \
	"  SELECT m.agency_id, m.berichttype, m.papieren_kopie, m." PERIOD " >= p.van AS huidig,"  \
	"    m.verstuurd::int AS verstuurd, m.geopend_3w::int AS geopend_3w,"                      \
	"    m.geopend_6w::int AS geopend_6w, m.laatste_dag, p.gesloten"                           \
	"  FROM " TABLE " m, p"                                                                    \
	"  WHERE (m." PERIOD " >= p.van AND m." PERIOD " < p.tot)"                                 \
	"     OR (m." PERIOD " >= (p.van - interval '1 year')::date"                               \
	"         AND m." PERIOD " < (p.tot - interval '1 year')::date)"                           \
	"), g AS ("                                                                                \
	"  SELECT CASE WHEN grouping(agency_id) = 1 THEN 0 WHEN grouping(berichttype) = 0 THEN 2"  \
	"      WHEN grouping(papieren_kopie) = 0 THEN 3 ELSE 1 END AS niveau,"                     \
	"    huidig, agency_id, berichttype, papieren_kopie, sum(verstuurd) AS n,"                 \
	"    sum(geopend_3w) AS g3, sum(geopend_6w) AS g6,"                                        \
	"    max(laatste_dag) > min(gesloten) AS voorlopig"                                        \
	"  FROM c GROUP BY GROUPING SETS ((huidig), (huidig, agency_id),"                          \
	"    (huidig, agency_id, berichttype), (huidig, agency_id, papieren_kopie))"               \
	") "                                                                                       \
	"SELECT g.niveau, a.oin, a.name, g.berichttype, g.papieren_kopie, g.huidig,"               \
	"  g.n, g.g3, g.g6, g.voorlopig "                                                          \
	"FROM g LEFT JOIN agencies a ON a.id = g.agency_id "                                       \
	"ORDER BY a.name COLLATE \"C\" NULLS FIRST, a.oin, g.niveau, g.berichttype COLLATE \"C\"," \
	"  g.papieren_kopie,"                                                                      \
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
static void attach_previous(json_t *cell, long long n, long long g3, long long g6, bool voorlopig)
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
	"), v AS ("
	/* representatives (issue 11, migration 0017): per soort, in REPORT_SOORTEN's order */
	"  SELECT array_agg(coalesce(x.nieuw, 0) ORDER BY s.i) AS nieuw,"
	"    array_agg(coalesce(x.herhaal, 0) ORDER BY s.i) AS herhaal"
	"  FROM unnest('{machtiging,ouder,curatele,beschermingsbewind,mentorschap,nabestaande}'"
	"    ::text[]) WITH ORDINALITY AS s(soort, i) LEFT JOIN ("
	"    SELECT soort, sum(afgeleverd) FILTER (WHERE kind = 'new') AS nieuw,"
	"      sum(afgeleverd) FILTER (WHERE kind = 'repeat') AS herhaal"
	"    FROM stats_notificaties_vertegenwoordigers"
	"    WHERE dag >= make_date($1::int, 1, 1) AND dag < make_date($1::int + 1, 1, 1)"
	"    GROUP BY soort) x ON x.soort = s.soort"
	"), b AS ("
	"  SELECT (SELECT coalesce(sum(berichten), 0) FROM stats_berichten_vertegenwoordigd"
	"    WHERE dag >= make_date($1::int, 1, 1) AND dag < make_date($1::int + 1, 1, 1)) AS vert,"
	"    (SELECT coalesce(sum(verstuurd), 0) FROM stats_jaar"
	"      WHERE jaar = make_date($1::int, 1, 1)) AS alle"
	") "
	"SELECT n.nieuw, n.herhaal, n.bounced, n.mislukt, a.actief, a.geverifieerd,"
	"  a.zonder_bevestigd, d.slapend,"
	"  to_char(now() AT TIME ZONE 'Europe/Amsterdam', 'YYYY-MM-DD'),"
	"  array_to_string(v.nieuw, ','), array_to_string(v.herhaal, ','), b.vert, b.alle "
	"FROM n, a, d, v, b";

const char *const REPORT_SOORTEN[REPORT_NSOORTEN] = {
	"machtiging", "ouder", "curatele", "beschermingsbewind", "mentorschap", "nabestaande",
};

/* "1,0,3": one count per soort; missing ones 0 */
static void soort_counts(const char *text, long long *out)
{
	const char *p = text;
	for (int k = 0; k < REPORT_NSOORTEN; k++) {
		char *end = NULL;
		out[k] = p && *p ? strtoll(p, &end, 10) : 0;
		p = end && *end == ',' ? end + 1 : NULL;
	}
}

/*
 * The representatives' part: notifications (and reminders) that reached a
 * representative, per soort (also counted in the totals above), and the
 * share of the year's messages that had one. The ministry sees small
 * cells, as in the rest of this report (it is not a sender).
 */
static void rep_part(json_t *o, const PGresult *res)
{
	long long nieuw[REPORT_NSOORTEN], herhaal[REPORT_NSOORTEN];
	soort_counts(PQgetvalue(res, 0, 9), nieuw);
	soort_counts(PQgetvalue(res, 0, 10), herhaal);
	json_t *per = json_object();
	for (int k = 0; k < REPORT_NSOORTEN; k++)
		json_object_set_new(per, REPORT_SOORTEN[k],
				    json_pack("{s:I, s:I}", "notificaties", (json_int_t)nieuw[k],
					      "herinneringen", (json_int_t)herhaal[k]));
	json_object_set_new(o, "notificatiesAanVertegenwoordigers", per);
	long long vert = ll(res, 0, 11), alle = ll(res, 0, 12);
	json_object_set_new(o, "berichtenMetVertegenwoordiger", json_integer(vert));
	json_object_set_new(o, "percentageBerichtenMetVertegenwoordiger", pct_json(vert, alle));
}

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
	if (PQnfields(res) > 12)
		rep_part(o, res);
	return o;
}
