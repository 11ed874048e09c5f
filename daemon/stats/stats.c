/*
 * stats.c - the statistics endpoints (see stats.h): query-string
 * validation, one asynchronous query on the rollups, and the answer in the
 * format asked for.
 */
#include "stats/stats.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dp.h"
#include "common/log.h"
#include "core/pgpool.h"
#include "stats/report.h"

#define YEAR_DIGITS 4
#define MONTH_MAX 12
#define NUM_LEN 24

struct period {
	int jaar;
	int maand; /* 0 = whole year */
};

struct stats_query {
	struct http_req *r;
	struct period p;
	bool csv;
	struct agency_view *view; /* the agency view between its two queries */
	json_t *noise;            /* what was drawn for it */
	int noise_tries;
};

static bool digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * Validates the query string: jaar (required, 4 digits, 2000-2100) and, when
 * maand_name is not NULL, the month parameter of that name (1-12). Every other parameter, and a repeated one, is
 * invalid (http_query_check, after the route's "{?...}" list). All problems
 * are listed at once; on any, answers 400 and returns false.
 */
static bool parse_period(struct http_req *r, const char *maand_name, struct period *p)
{
	struct evkeyvalq q = {0};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	json_t *invalid = json_array();
	bool seen_jaar = false, seen_maand = false;

	p->jaar = 0;
	p->maand = 0;
	if (qs && evhttp_parse_query_str(qs, &q) != 0)
		http_invalid_add(invalid, "query", "invalid", "De query string is ongeldig.");
	/* unknown and repeated parameters: the route's "{?...}" list (http_input.c) */
	http_query_check(r, invalid);
	for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcmp(kv->key, "jaar") == 0 && !seen_jaar) {
			seen_jaar = true;
			int y = digits(kv->value, YEAR_DIGITS, YEAR_DIGITS) ? atoi(kv->value) : -1;
			if (y < REPORT_YEAR_MIN || y > REPORT_YEAR_MAX)
				http_invalid_add(
					invalid, "jaar", "range",
					"Een jaartal van 4 cijfers, 2000 tot en met 2100.");
			else
				p->jaar = y;
		} else if (maand_name && strcmp(kv->key, maand_name) == 0 && !seen_maand) {
			seen_maand = true;
			int m = digits(kv->value, 1, 2) ? atoi(kv->value) : -1;
			if (m < 1 || m > MONTH_MAX)
				http_invalid_add(invalid, maand_name, "range",
						 "Een maand van 1 tot en met 12.");
			else
				p->maand = m;
		}
	}
	if (!seen_jaar)
		http_invalid_add(invalid, "jaar", "required", "Dit veld is verplicht.");
	evhttp_clear_headers(&q);
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return false;
	}
	json_decref(invalid);
	return true;
}

static struct stats_query *query_new(struct http_req *r, const char *maand_name)
{
	struct period p;
	if (!parse_period(r, maand_name, &p))
		return NULL;
	struct stats_query *q = calloc(1, sizeof(*q));
	if (!q) {
		http_problem_internal(r);
		return NULL;
	}
	q->r = r;
	q->p = p;
	return q;
}

static void query_free(struct stats_query *q)
{
	report_agency_view_free(q->view);
	json_decref(q->noise);
	free(q);
}

/* true (and answered) when the query failed */
static bool store_failed(struct stats_query *q, const PGresult *res, const char *err)
{
	if (!err && res)
		return false;
	log_warn("stats %s: %.200s", q->r->id, err ? err : "no result");
	http_problem_unavailable(q->r, "De database is niet bereikbaar.");
	query_free(q);
	return true;
}

static void reply_json(struct http_req *r, json_t *body)
{
	char *text = body ? json_dumps(body, REPORT_JSON_FLAGS) : NULL;
	json_decref(body);
	if (!text) {
		http_problem_internal(r);
		return;
	}
	http_reply_text(r, 200, "application/json", text, strlen(text));
	free(text);
}

static void send_query(struct stats_query *q, const char *sql, int n, const char *const *params,
		       pgpool_cb cb)
{
	if (!pgpool_query(q->r->app->pg, sql, n, params, cb, q)) {
		http_problem_internal(q->r);
		query_free(q);
	}
}

static void on_ministry_rates(const PGresult *res, const char *err, void *arg)
{
	struct stats_query *q = arg;
	if (store_failed(q, res, err))
		return;
	struct http_req *r = q->r;
	json_t *rep = report_build(res, q->p.jaar, q->p.maand);
	if (rep && q->csv) {
		char *csv = report_csv(rep);
		json_decref(rep);
		if (csv)
			http_reply_text(r, 200, "text/csv; charset=utf-8", csv, strlen(csv));
		else
			http_problem_internal(r);
		free(csv);
	} else {
		reply_json(r, rep);
	}
	query_free(q);
}

void stats_http_ministry_rates(struct http_req *r)
{
	struct stats_query *q = query_new(r, "maand");
	if (!q)
		return;
	const char *accept = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Accept");
	q->csv = accept && strcasestr(accept, "text/csv") != NULL;
	char jaar[NUM_LEN], maand[NUM_LEN];
	snprintf(jaar, sizeof(jaar), "%d", q->p.jaar);
	snprintf(maand, sizeof(maand), "%d", q->p.maand);
	const char *params[] = {jaar, q->p.maand ? maand : NULL};
	send_query(q, report_sql(q->p.maand), 2, params, on_ministry_rates);
}

/* the agency view, second step: the stored noise (issue 10) */
static void send_noise(struct stats_query *q);

static void on_agency_noise(const PGresult *res, const char *err, void *arg)
{
	struct stats_query *q = arg;
	if (store_failed(q, res, err))
		return;
	if (!report_agency_noise(q->view, res)) {
		/* another instance stored a node after this statement's snapshot:
		 * a new statement sees it */
		if (q->noise_tries < 2) {
			send_noise(q);
			return;
		}
		log_warn("stats %s: noise nodes missing after %d tries", q->r->id, q->noise_tries);
		http_problem_unavailable(q->r, "De statistiek is even niet beschikbaar.");
		query_free(q);
		return;
	}
	const struct config *cfg = q->r->app->cfg;
	struct report_agency_opts o = {
		.min_cell = (long long)cfg->stats_min_cell,
		.epsilon_milli = (long long)cfg->stats_agency_epsilon_milli,
		.max_per_citizen = (long long)cfg->stats_max_per_citizen,
		.upto_month = q->p.maand,
	};
	reply_json(q->r, report_agency_json(q->view, &o));
	query_free(q);
}

static void send_noise(struct stats_query *q)
{
	char agency[NUM_LEN], jaar[NUM_LEN], t[NUM_LEN], s[NUM_LEN];
	uint64_t st, ss;
	const struct config *cfg = q->r->app->cfg;
	dp_scale(cfg->stats_agency_epsilon_milli, cfg->stats_max_per_citizen, &st, &ss);
	char *noise = json_dumps(q->noise, JSON_COMPACT);
	if (!noise) {
		http_problem_internal(q->r);
		query_free(q);
		return;
	}
	snprintf(agency, sizeof(agency), "%lld", (long long)q->r->agency_id);
	snprintf(jaar, sizeof(jaar), "%d", q->p.jaar);
	snprintf(t, sizeof(t), "%llu", (unsigned long long)st);
	snprintf(s, sizeof(s), "%llu", (unsigned long long)ss);
	const char *params[] = {agency, jaar, noise, t, s};
	q->noise_tries++;
	send_query(q, REPORT_AGENCY_NOISE_SQL, 5, params, on_agency_noise);
	free(noise); /* libpq copied the parameters */
}

static void on_agency_rates(const PGresult *res, const char *err, void *arg)
{
	struct stats_query *q = arg;
	if (store_failed(q, res, err))
		return;
	/* the view keeps the result (its type names); pgpool frees its own */
	PGresult *copy = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	q->view = copy ? report_agency_view(copy, (long long)q->r->agency_id, q->p.jaar, q->p.maand)
		       : NULL;
	if (!q->view) {
		http_problem_not_found(q->r, "Onbekende organisatie.");
		query_free(q);
		return;
	}
	const struct config *cfg = q->r->app->cfg;
	uint64_t t, s;
	dp_scale(cfg->stats_agency_epsilon_milli, cfg->stats_max_per_citizen, &t, &s);
	q->noise = report_agency_draw(q->view, cfg->stats_noise_seed, t, s);
	if (!q->noise) {
		log_warn("stats %s: drawing noise failed", q->r->id);
		http_problem_internal(q->r);
		query_free(q);
		return;
	}
	send_noise(q);
}

void stats_http_agency_rates(struct http_req *r)
{
	struct stats_query *q = query_new(r, "totEnMetMaand");
	if (!q)
		return;
	char agency[NUM_LEN], jaar[NUM_LEN], m[NUM_LEN];
	snprintf(agency, sizeof(agency), "%lld", (long long)r->agency_id);
	snprintf(jaar, sizeof(jaar), "%d", q->p.jaar);
	snprintf(m, sizeof(m), "%lld", (long long)r->app->cfg->stats_max_per_citizen);
	const char *params[] = {agency, jaar, m};
	send_query(q, REPORT_AGENCY_SQL, 3, params, on_agency_rates);
}

static void on_notifications(const PGresult *res, const char *err, void *arg)
{
	struct stats_query *q = arg;
	if (store_failed(q, res, err))
		return;
	reply_json(q->r, report_notif_build(res, q->p.jaar,
					    (long long)q->r->app->cfg->stats_dormant_weeks));
	query_free(q);
}

void stats_http_notifications(struct http_req *r)
{
	struct stats_query *q = query_new(r, NULL);
	if (!q)
		return;
	char jaar[NUM_LEN], weeks[NUM_LEN];
	snprintf(jaar, sizeof(jaar), "%d", q->p.jaar);
	snprintf(weeks, sizeof(weeks), "%lld", (long long)r->app->cfg->stats_dormant_weeks);
	const char *params[] = {jaar, weeks};
	send_query(q, REPORT_NOTIF_SQL, 2, params, on_notifications);
}

const struct http_route stats_routes[] = {
	{EVHTTP_REQ_GET, "/v1/rapportages/openingspercentages{?jaar,maand}", ROLE_MINISTRY, false,
	 stats_http_ministry_rates},
	{EVHTTP_REQ_GET, "/v1/statistieken/openingspercentages{?jaar,totEnMetMaand}", ROLE_AGENCY,
	 false, stats_http_agency_rates},
	{EVHTTP_REQ_GET, "/v1/rapportages/notificaties{?jaar}", ROLE_MINISTRY, false,
	 stats_http_notifications},
	{0, NULL, 0, false, NULL},
};
