/*
 * stats_cli.c - `berichtd stats rebuild` and `berichtd report` (see
 * stats_cli.h). The SQL of the report lives in report.c, shared with the
 * HTTP endpoints, so the CLI and the API can never disagree.
 */
#include "admin/stats_cli.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "admin/cli.h"
#include "core/pgpool.h"
#include "stats/report.h"

#define DEFAULT_VAN "2000-01-01"
#define DEFAULT_TOT "2101-01-01"
#define REBUILD_WORK_MEM "SET LOCAL work_mem = '256MB'"
#define NS_PER_S 1e9

static bool exec(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = cli_run(c, sql, n, params);
	PQclear(r);
	return r != NULL;
}

/* YYYY-MM-DD */
static bool date_ok(const char *s)
{
	int y, m, d;
	char extra;
	return s && strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) == 3 &&
	       y >= REPORT_YEAR_MIN && y <= REPORT_YEAR_MAX + 1 && m >= 1 && m <= 12 && d >= 1 &&
	       d <= 31;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / NS_PER_S;
}

/* the cohorts' raw rows, aggregated per cell (the same definitions as the triggers) */
static const char REBUILD_TEMP_SQL[] =
	"CREATE TEMP TABLE stats_rebuild (agency_id bigint, berichttype text,"
	"  papieren_kopie boolean, dag date, v bigint, g3 bigint, g6 bigint) ON COMMIT DROP";

static const char REBUILD_AGG_SQL[] =
	"INSERT INTO stats_rebuild "
	"SELECT agency_id, berichttype, papieren_kopie, stats_cohort(publicatie_tijdstip) AS dag,"
	"  count(*) AS v, sum(stats_within(opened_at, publicatie_tijdstip, '504 hours')) AS g3,"
	"  sum(stats_within(opened_at, publicatie_tijdstip, '1008 hours')) AS g6 "
	"FROM messages "
	"WHERE publicatie_tijdstip >= ($1::date::timestamp AT TIME ZONE 'Europe/Amsterdam')"
	"  AND publicatie_tijdstip < ($2::date::timestamp AT TIME ZONE 'Europe/Amsterdam') "
	"GROUP BY 1, 2, 3, 4";

static const char REBUILD_LOST_SQL[] =
	"SELECT count(*), min(s.dag) FROM stats_dag s LEFT JOIN stats_rebuild r"
	"  USING (agency_id, berichttype, papieren_kopie, dag) "
	"WHERE s.dag >= $1::date AND s.dag < $2::date AND s.verstuurd > coalesce(r.v, 0)";

/* (a DELETE in a CTE would not be seen by the INSERT beside it: two statements) */
static const char REBUILD_DAY_DELETE_SQL[] =
	"DELETE FROM stats_dag WHERE dag >= $1::date AND dag < $2::date";

static const char REBUILD_DAY_SQL[] =
	"INSERT INTO stats_dag (agency_id, berichttype, papieren_kopie, dag, verstuurd,"
	"  geopend_3w, geopend_6w) "
	"SELECT agency_id, berichttype, papieren_kopie, dag, v, g3, g6 FROM stats_rebuild";

/* every month the range touches is summed again from the days */
#define MONTH_RANGE                                                                                \
	"WITH r AS (SELECT date_trunc('month', $1::date)::date AS van,"                            \
	"    (date_trunc('month', $2::date - 1) + interval '1 month')::date AS tot) "

static const char REBUILD_MONTH_DELETE_SQL[] =
	MONTH_RANGE "DELETE FROM stats_maand m USING r WHERE m.maand >= r.van AND m.maand < r.tot";

/* and every year it touches from the months */
#define YEAR_RANGE                                                                                 \
	"WITH r AS (SELECT date_trunc('year', $1::date)::date AS van,"                             \
	"    (date_trunc('year', $2::date - 1) + interval '1 year')::date AS tot) "

static const char REBUILD_YEAR_DELETE_SQL[] =
	YEAR_RANGE "DELETE FROM stats_jaar j USING r WHERE j.jaar >= r.van AND j.jaar < r.tot";

static const char REBUILD_YEAR_SQL[] = YEAR_RANGE
	"INSERT INTO stats_jaar (agency_id, berichttype, papieren_kopie, jaar, verstuurd,"
	"  geopend_3w, geopend_6w, laatste_dag) "
	"SELECT agency_id, berichttype, papieren_kopie, date_trunc('year', maand)::date,"
	"  sum(verstuurd), sum(geopend_3w), sum(geopend_6w), max(laatste_dag) "
	"FROM stats_maand, r WHERE maand >= r.van AND maand < r.tot GROUP BY 1, 2, 3, 4";

static const char REBUILD_MONTH_SQL[] = MONTH_RANGE
	"INSERT INTO stats_maand (agency_id, berichttype, papieren_kopie, maand, verstuurd,"
	"  geopend_3w, geopend_6w, laatste_dag) "
	"SELECT agency_id, berichttype, papieren_kopie, date_trunc('month', dag)::date,"
	"  sum(verstuurd), sum(geopend_3w), sum(geopend_6w), max(dag) "
	"FROM stats_dag, r WHERE dag >= r.van AND dag < r.tot GROUP BY 1, 2, 3, 4";

/* the agency view's rollup and sequence numbers, per whole year the range touches
 * (migration 0013: numbers are per year) */
static const char REBUILD_DP_SQL[] = YEAR_RANGE "SELECT stats_dp_rebuild(r.van, r.tot) FROM r";

int stats_cli_rebuild(const struct config *cfg, const char *van, const char *tot, bool force)
{
	if ((van && !date_ok(van)) || (tot && !date_ok(tot))) {
		fprintf(stderr, "berichtd: --van and --tot are dates YYYY-MM-DD (2000-2101)\n");
		return 2;
	}
	const char *range[] = {van ? van : DEFAULT_VAN, tot ? tot : DEFAULT_TOT};
	if (strcmp(range[0], range[1]) >= 0) {
		fprintf(stderr, "berichtd: --van must be before --tot\n");
		return 2;
	}
	PGconn *c = pgconn_open(cfg->pg_conninfo);
	int rc = 1;
	PGresult *r = NULL;
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		goto out;
	}
	double t0 = now_s();
	/* SHARE blocks inserts and opens meanwhile: their trigger deltas would
	 * otherwise race with the recount */
	if (!exec(c, "BEGIN", 0, NULL) || !exec(c, REBUILD_WORK_MEM, 0, NULL) ||
	    !exec(c, "LOCK TABLE messages IN SHARE MODE", 0, NULL) ||
	    !exec(c, REBUILD_TEMP_SQL, 0, NULL) || !exec(c, REBUILD_AGG_SQL, 2, range))
		goto out;
	if (!(r = cli_run(c, REBUILD_LOST_SQL, 2, range)))
		goto out;
	long long lost = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (lost > 0 && !force) {
		fprintf(stderr,
			"berichtd: %lld cells (from cohort %s) count more messages than the raw rows "
			"left (purged by retention?); a rebuild would lose them. Narrow --van/--tot "
			"or pass --force.\n",
			lost, PQgetvalue(r, 0, 1));
		goto out;
	}
	PQclear(r);
	r = NULL;
	if (!(r = cli_run(c, "SELECT count(*), coalesce(sum(v), 0) FROM stats_rebuild", 0, NULL)))
		goto out;
	long long cells = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	long long rows = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	r = NULL;
	if (!exec(c, REBUILD_DAY_DELETE_SQL, 2, range) || !exec(c, REBUILD_DAY_SQL, 0, NULL) ||
	    !exec(c, REBUILD_MONTH_DELETE_SQL, 2, range) || !exec(c, REBUILD_MONTH_SQL, 2, range) ||
	    !exec(c, REBUILD_YEAR_DELETE_SQL, 2, range) || !exec(c, REBUILD_YEAR_SQL, 2, range) ||
	    !exec(c, REBUILD_DP_SQL, 2, range) || !exec(c, "COMMIT", 0, NULL))
		goto out;
	double secs = now_s() - t0;
	printf("stats rebuild %s..%s: %lld messages into %lld daily cells in %.2f s (%.0f rows/s)\n",
	       range[0], range[1], rows, cells, secs, secs > 0 ? (double)rows / secs : 0.0);
	rc = 0;
out:
	PQclear(r);
	PQfinish(c);
	return rc;
}

/* a device, a pipe or stdout is written in place: only a regular file is replaced */
static bool write_direct(const char *path, const char *text)
{
	if (strcmp(path, "-") == 0)
		return fputs(text, stdout) >= 0 && fflush(stdout) == 0;
	FILE *f = fopen(path, "w");
	bool ok = f && fputs(text, f) >= 0;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok)
		perror(path);
	return ok;
}

static bool write_out(const char *path, const char *text)
{
	struct stat st;
	if (strcmp(path, "-") == 0 || (stat(path, &st) == 0 && !S_ISREG(st.st_mode)))
		return write_direct(path, text);
	size_t len = strlen(path) + sizeof(".tmp");
	char *tmp = malloc(len);
	if (!tmp)
		return false;
	snprintf(tmp, len, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	bool ok = f && fputs(text, f) >= 0;
	if (f && fclose(f) != 0)
		ok = false;
	ok = ok && rename(tmp, path) == 0; /* never a half-written report */
	if (!ok) {
		perror(path);
		remove(tmp);
	}
	free(tmp);
	return ok;
}

int stats_cli_report(const struct config *cfg, const char *jaar, const char *maand,
		     const char *format, const char *out)
{
	int y = jaar && strlen(jaar) == 4 ? atoi(jaar) : 0;
	int m = maand ? atoi(maand) : 0;
	if (y < REPORT_YEAR_MIN || y > REPORT_YEAR_MAX || (maand && (m < 1 || m > 12))) {
		fprintf(stderr, "berichtd: --jaar YYYY (2000-2100) is required; --maand is 1-12\n");
		return 2;
	}
	if (!format || (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0 &&
			strcmp(format, "html") != 0)) {
		fprintf(stderr, "berichtd: --format must be csv, json or html\n");
		return 2;
	}
	if (!out) {
		fprintf(stderr, "berichtd: --out FILE is required (- for stdout)\n");
		return 2;
	}
	PGconn *c = pgconn_open(cfg->pg_conninfo);
	int rc = 1;
	PGresult *r = NULL;
	json_t *rep = NULL;
	char *text = NULL;
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "berichtd: %s", PQerrorMessage(c));
		goto done;
	}
	char ys[8], ms[8];
	snprintf(ys, sizeof(ys), "%d", y);
	snprintf(ms, sizeof(ms), "%d", m);
	const char *params[] = {ys, maand ? ms : NULL};
	if (!(r = cli_run(c, report_sql(m), 2, params)))
		goto done;
	rep = report_build(r, y, m);
	if (!rep)
		goto done;
	if (strcmp(format, "csv") == 0)
		text = report_csv(rep);
	else if (strcmp(format, "html") == 0)
		text = report_html(rep);
	else
		text = json_dumps(rep, REPORT_JSON_FLAGS | JSON_INDENT(2));
	if (text && write_out(out, text))
		rc = 0;
done:
	free(text);
	json_decref(rep);
	PQclear(r);
	PQfinish(c);
	return rc;
}
