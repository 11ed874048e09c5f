/*
 * health.c - /healthz, /readyz, /metrics (see health.h).
 *
 * /readyz asks both stores for real (SELECT 1, PING) instead of trusting
 * connection states, so a load balancer that checks the ops listener stops
 * sending agencies here as soon as a store stops answering.
 */
#include "core/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"
#include "common/install.h"

#include "core/framing.h"
#include "core/pgpool.h"
#include "core/queue.h"

struct ready {
	struct http_req *r;
	int pending;
	bool pg_ok, redis_ok;
};

/* The same constant on both listeners: it must never say anything else. */
void health_healthz(struct http_req *r)
{
	http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void ready_done(struct ready *st)
{
	if (--st->pending > 0)
		return;
	bool ok = st->pg_ok && st->redis_ok;
	json_t *body = json_pack("{s:s, s:b, s:b}", "status", ok ? "ok" : "unavailable", "postgres",
				 st->pg_ok, "redis", st->redis_ok);
	http_reply_json(st->r, ok ? 200 : 503, body);
	free(st);
}

static void ready_pg(const PGresult *res, const char *err, void *arg)
{
	struct ready *st = arg;
	st->pg_ok = res && !err;
	ready_done(st);
}

static void ready_redis(bool ok, void *arg)
{
	struct ready *st = arg;
	st->redis_ok = ok;
	ready_done(st);
}

void health_readyz(struct http_req *r)
{
	struct ready *st = calloc(1, sizeof(*st));
	if (!st) {
		http_problem_internal(r);
		return;
	}
	/* either callback may run at once and the last one frees r: keep app */
	struct app *app = r->app;
	st->r = r;
	st->pending = 2;
	if (!pgpool_query(app->pg, "SELECT 1", 0, NULL, ready_pg, st))
		ready_pg(NULL, "out of memory", st);
	/* pgpool_query never calls back when it returns false, so st is alive
	 * here (the analyzer assumes both; pending counts to 2 either way) */
	queue_loop_ping(app->queue, ready_redis, st); // NOLINT(clang-analyzer-unix.Malloc)
}

/* One scrape: the counters written at once, the lanes after Redis and PostgreSQL answer. */
struct scrape {
	struct http_req *r;
	struct mtext t;
	int pending;
	struct queue_lane *lanes;
	size_t nlanes;
	bool lanes_ok, oins_ok;
	struct agency_oin {
		int64_t id;
		char oin[24];
	} * oins;
	int noins;
};

static void counters(struct mtext *t, const struct metrics *m)
{
	const struct {
		const char *name, *help;
		long long v;
	} rows[] = {
		{"berichtd_http_requests_received_total",
		 "HTTP requests received on the API listener (counted on arrival).",
		 m->http_requests},
		{"berichtd_messages_accepted_total", "Messages stored.", m->messages_accepted},
		{"berichtd_notifications_scheduled_total", "Notifications scheduled.",
		 m->notifications_scheduled},
		{"berichtd_notifications_sent_total",
		 "Notifications recorded as sent in PostgreSQL after the relay accepted their mail.",
		 m->notifications_sent},
		{"berichtd_notifications_retried_total", "Temporary delivery failures retried.",
		 m->notifications_retried},
		{"berichtd_notifications_failed_total", "Notifications given up.",
		 m->notifications_failed},
		{"berichtd_notifications_bounced_total", "Notifications hard-bounced.",
		 m->notifications_bounced},
		{"berichtd_notifications_cancelled_total",
		 "Notifications cancelled (opened, deleted, preferences, deactivated).",
		 m->notifications_cancelled},
		{"berichtd_mails_sent_total",
		 "Mails accepted by the relay and recorded (a digest covers several).",
		 m->mails_sent},
		{"berichtd_dsn_applied_total", "Hard-bounce DSNs applied.", m->dsn_applied},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		mtext_single(t, rows[i].name, "counter", rows[i].help, rows[i].v);

	static const char *const refusals[DSN_REFUSALS] = DSN_REFUSAL_LABELS;
	mtext_family(t, "berichtd_dsn_refused_total", "counter", "DSNs refused, by reason.");
	for (int i = 0; i < DSN_REFUSALS; i++)
		mtext_printf(t, "berichtd_dsn_refused_total{reason=\"%s\"} %lld\n", refusals[i],
			     (long long)m->dsn_refused[i]);
	static const char *const outcomes[MAIL_OUTCOMES] = MAIL_OUTCOME_LABELS;
	mtext_family(t, "berichtd_mails_total", "counter",
		     "Mails by what became of them: sent (recorded), bounced, retried, deferred "
		     "unsent, failed.");
	for (int i = 0; i < MAIL_OUTCOMES; i++)
		mtext_printf(t, "berichtd_mails_total{outcome=\"%s\"} %lld\n", outcomes[i],
			     (long long)m->mails[i]);
	static const char *const reasons[RETRY_REASONS] = RETRY_REASON_LABELS;
	mtext_family(t, "berichtd_notification_retries_total", "counter",
		     "Notifications put back for a later attempt, by reason.");
	for (int i = 0; i < RETRY_REASONS; i++)
		mtext_printf(t, "berichtd_notification_retries_total{reason=\"%s\"} %lld\n",
			     reasons[i], (long long)m->retries[i]);
}

static void histograms(struct mtext *t, const struct metrics *m)
{
	mtext_family(t, "berichtd_notification_lag_seconds", "histogram",
		     "From a notification's first due time to the relay's acceptance, of those "
		     "recorded as sent.");
	mtext_hist(t, "berichtd_notification_lag_seconds", NULL, &m->lag, &HIST_LAG);
	mtext_family(t, "berichtd_ingest_duration_seconds", "histogram",
		     "From a message's submission to the group commit to its answer.");
	mtext_hist(t, "berichtd_ingest_duration_seconds", NULL, &m->ingest_duration,
		   &HIST_DURATION);
	mtext_family(t, "berichtd_ingest_group_size", "histogram",
		     "Messages per group-commit statement.");
	mtext_hist(t, "berichtd_ingest_group_size", NULL, &m->ingest_group, &HIST_SIZE);
	mtext_family(t, "berichtd_batch_size", "histogram", "Messages per POST /v1/batches.");
	mtext_hist(t, "berichtd_batch_size", NULL, &m->batch_size, &HIST_SIZE);
	mtext_http(t, &m->http);
}

static void stores(struct mtext *t, struct app *app)
{
	struct pgpool_stats ps;
	pgpool_stats(app->pg, &ps);
	mtext_family(t, "berichtd_pg_connections", "gauge",
		     "The loop's PostgreSQL pool connections, by state (down: waiting out a "
		     "backoff).");
	mtext_printf(t,
		     "berichtd_pg_connections{state=\"idle\"} %d\n"
		     "berichtd_pg_connections{state=\"busy\"} %d\n"
		     "berichtd_pg_connections{state=\"connecting\"} %d\n"
		     "berichtd_pg_connections{state=\"down\"} %d\n",
		     ps.idle, ps.busy, ps.connecting, ps.down);
	mtext_single(t, "berichtd_pg_reconnects_total", "counter",
		     "Pool connections made again after one had been up.", ps.reconnects);
	mtext_single(t, "berichtd_redis_up", "gauge",
		     "Whether the loop's Redis connection is up (1) or not (0).",
		     queue_loop_connected(app->queue) ? 1 : 0);

	struct framing_stats fs;
	http_connection_stats(app, &fs);
	mtext_single(t, "berichtd_http_connections", "gauge",
		     "Client connections open now on the API listener.", fs.connections);
	mtext_single(t, "berichtd_http_slow_clients_cut_total", "counter",
		     "Connections cut off for a request head or body slower than [http] "
		     "header_timeout or request_timeout.",
		     fs.slow_cut);
	mtext_single(t, "berichtd_http_connections_refused_total", "counter",
		     "Connections over [http] max_connections (answered 503).", fs.refused);
	mtext_process(t);
	mtext_family(t, "berichtd_build_info", "gauge", "The running build; always 1.");
	mtext_printf(t, "berichtd_build_info{version=\"%s\",api_version=\"%s\"} 1\n",
		     BERICHTD_VERSION, API_VERSION);
}

static const char *oin_of(const struct scrape *sc, int64_t lane)
{
	if (lane == 0)
		return "portal"; /* the portal's own mails (verification codes) */
	for (int i = 0; i < sc->noins; i++)
		if (sc->oins[i].id == lane)
			return sc->oins[i].oin;
	return NULL;
}

/* Per lane: a lane whose agency is not known (yet) is left out of this scrape. */
static void lanes(struct mtext *t, const struct scrape *sc)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{"berichtd_lane_scheduled_notifications",
		 "Notifications in the agency's lane of the Redis schedule, due now or later."},
		{"berichtd_lane_due_notifications",
		 "Notifications in the agency's lane that are due now: its backlog."},
		{"berichtd_lane_oldest_due_age_seconds",
		 "How long the oldest due notification of the agency's lane has been due (0: none)."},
	};
	int64_t now = timefmt_now_ms();
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		mtext_family(t, fam[f].name, "gauge", fam[f].help);
		for (size_t i = 0; sc->lanes_ok && sc->oins_ok && i < sc->nlanes; i++) {
			const struct queue_lane *l = &sc->lanes[i];
			const char *oin = oin_of(sc, l->lane);
			if (!oin)
				continue;
			if (f == 0)
				mtext_printf(t, "%s{oin=\"%s\"} %lld\n", fam[f].name, oin,
					     l->depth);
			else if (f == 1)
				mtext_printf(t, "%s{oin=\"%s\"} %lld\n", fam[f].name, oin, l->due);
			else
				mtext_printf(t, "%s{oin=\"%s\"} %.3f\n", fam[f].name, oin,
					     l->oldest_ms >= 0 && l->oldest_ms < now
						     ? (double)(now - l->oldest_ms) / 1000.0
						     : 0.0);
		}
	}
	mtext_single(t, "berichtd_lanes_scrape_ok", "gauge",
		     "Whether this scrape read every lane from Redis and the agencies from "
		     "PostgreSQL (1) or shows no lanes (0).",
		     sc->lanes_ok && sc->oins_ok ? 1 : 0);
}

static void scrape_done(struct scrape *sc)
{
	if (--sc->pending > 0)
		return;
	lanes(&sc->t, sc);
	if (sc->t.failed)
		http_problem_internal(sc->r);
	else
		http_reply_text(sc->r, 200, "text/plain; version=0.0.4; charset=utf-8", sc->t.buf,
				sc->t.len);
	free(sc->t.buf);
	free(sc->lanes);
	free(sc->oins);
	free(sc);
}

static void scrape_lanes(const struct queue_lane *l, size_t n, bool ok, void *arg)
{
	struct scrape *sc = arg;
	sc->lanes_ok = ok;
	if (ok && n) {
		sc->lanes = calloc(n, sizeof(*l));
		if (sc->lanes) {
			memcpy(sc->lanes, l, n * sizeof(*l));
			sc->nlanes = n;
		} else {
			sc->lanes_ok = false;
		}
	}
	scrape_done(sc);
}

static void scrape_oins(const PGresult *res, const char *err, void *arg)
{
	struct scrape *sc = arg;
	int n = res && !err ? PQntuples(res) : 0;
	sc->oins_ok = res && !err;
	if (n > 0 && !(sc->oins = calloc((size_t)n, sizeof(*sc->oins))))
		sc->oins_ok = false;
	for (int i = 0; sc->oins && i < n; i++) {
		sc->oins[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		snprintf(sc->oins[i].oin, sizeof(sc->oins[i].oin), "%s", PQgetvalue(res, i, 1));
		sc->noins++;
	}
	scrape_done(sc);
}

/*
 * Everything kept in memory at once; then, on the loop, the lanes from
 * Redis and the agencies' OINs from PostgreSQL (both bounded: a few
 * commands a lane, one small table), and the answer when both are back.
 */
void health_metrics(struct http_req *r)
{
	struct app *app = r->app;
	struct scrape *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		http_problem_internal(r);
		return;
	}
	sc->r = r;
	counters(&sc->t, &app->metrics);
	histograms(&sc->t, &app->metrics);
	stores(&sc->t, app);
	sc->pending = 3; /* held until both are asked: either may answer at once */
	if (!pgpool_query(app->pg, "SELECT id, oin FROM agencies", 0, NULL, scrape_oins, sc))
		scrape_oins(NULL, "out of memory", sc);
	/* sc is alive here: pending counts this call too (the analyzer
	 * assumes both callbacks freed it) */
	queue_loop_lanes(app->queue, scrape_lanes, sc); // NOLINT(clang-analyzer-unix.Malloc)
	scrape_done(sc);
}
