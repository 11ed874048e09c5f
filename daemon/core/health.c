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

void health_metrics(struct http_req *r)
{
	const struct metrics *m = &r->app->metrics;
	char buf[4096];
	const struct {
		const char *name, *help;
		long long v;
	} rows[] = {
		{"berichtd_http_requests_total", "HTTP requests received on the API listener.",
		 m->http_requests},
		{"berichtd_messages_accepted_total", "Messages stored.", m->messages_accepted},
		{"berichtd_notifications_scheduled_total", "Notifications scheduled.",
		 m->notifications_scheduled},
		{"berichtd_notifications_sent_total", "Notification mails accepted by the relay.",
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
		 "Mails accepted by the relay (a digest covers several).", m->mails_sent},
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "# HELP %s %s\n# TYPE %s counter\n%s %lld\n", rows[i].name,
				      rows[i].help, rows[i].name, rows[i].name, rows[i].v);
	static const int64_t bounds[METRICS_LAG_BUCKETS] = METRICS_LAG_BOUNDS;
	if (n < sizeof(buf))
		n += (size_t)snprintf(
			buf + n, sizeof(buf) - n,
			"# HELP berichtd_notification_lag_seconds Due time to relay "
			"acceptance.\n# TYPE berichtd_notification_lag_seconds histogram\n");
	for (int i = 0; i < METRICS_LAG_BUCKETS && n < sizeof(buf); i++) {
		char le[24];
		if (bounds[i] < 0)
			snprintf(le, sizeof(le), "+Inf");
		else
			snprintf(le, sizeof(le), "%.3f", (double)bounds[i] / 1000.0);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "berichtd_notification_lag_seconds_bucket{le=\"%s\"} %lld\n",
				      le, (long long)m->lag_bucket[i]);
	}
	if (n < sizeof(buf))
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "berichtd_notification_lag_seconds_sum %.3f\n"
				      "berichtd_notification_lag_seconds_count %lld\n",
				      (double)m->lag_sum_ms / 1000.0, (long long)m->lag_count);
	static const char *const refusals[DSN_REFUSALS] = DSN_REFUSAL_LABELS;
	if (n < sizeof(buf))
		n += (size_t)snprintf(
			buf + n, sizeof(buf) - n,
			"# HELP berichtd_dsn_applied_total Hard-bounce DSNs applied.\n"
			"# TYPE berichtd_dsn_applied_total counter\n"
			"berichtd_dsn_applied_total %lld\n"
			"# HELP berichtd_dsn_refused_total DSNs refused, by reason.\n"
			"# TYPE berichtd_dsn_refused_total counter\n",
			(long long)m->dsn_applied);
	for (int i = 0; i < DSN_REFUSALS && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "berichtd_dsn_refused_total{reason=\"%s\"} %lld\n",
				      refusals[i], (long long)m->dsn_refused[i]);
	struct framing_stats fs;
	http_connection_stats(r->app, &fs);
	if (n < sizeof(buf))
		n += (size_t)snprintf(
			buf + n, sizeof(buf) - n,
			"# HELP berichtd_http_connections Client connections open now on the API listener.\n"
			"# TYPE berichtd_http_connections gauge\n"
			"berichtd_http_connections %d\n"
			"# HELP berichtd_http_slow_clients_cut_total Connections cut off for a request "
			"head or body slower than [http] header_timeout or request_timeout.\n"
			"# TYPE berichtd_http_slow_clients_cut_total counter\n"
			"berichtd_http_slow_clients_cut_total %lld\n"
			"# HELP berichtd_http_connections_refused_total Connections over [http] "
			"max_connections (answered 503).\n"
			"# TYPE berichtd_http_connections_refused_total counter\n"
			"berichtd_http_connections_refused_total %lld\n",
			fs.connections, fs.slow_cut, fs.refused);
	if (n > sizeof(buf))
		n = sizeof(buf);
	http_reply_text(r, 200, "text/plain; version=0.0.4", buf, n);
}
