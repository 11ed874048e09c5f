/*
 * pgpool.c - asynchronous libpq connections driven by libevent (see
 * pgpool.h): the pool, its queue and its statements. One connection's
 * state machine (connect, send, read, backoff) is pgpool_conn.c.
 *
 * When no connection is up and all have failed at least once, queued queries
 * fail at once with an error instead of hanging: the API answers 503 rather
 * than holding requests open while PostgreSQL is down.
 *
 * A query whose connection fails is called back from the next loop iteration
 * (pool->failed, done_ev), never where the failure is found: a send can fail
 * inside pgpool_query (pgpool_conn_send from pgpool_dispatch), and pgpool.h
 * promises that no callback runs inside the call that queued it.
 *
 * A query keeps the request id of the thread that queued it (log.h): its
 * callback, and the notices PostgreSQL sends while it runs, are logged
 * with that request_id.
 */
#include "core/pgpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/outage.h"
#include "core/pgpool_impl.h"

/* the errors of queries that failed in the queue (pgpool_never_sent) */
static const char ERR_DOWN[] = "database unavailable";
static const char ERR_CLOSING_QUEUED[] = "shutting down";
/* a running query cancelled by pgpool_free: its outcome is unknown */
static const char ERR_CLOSING_RUNNING[] = "shutting down while the query ran";
/* a connection that failed without a message of its own (or no memory to copy it) */
const char pgpool_err_lost[] = "connection lost";

bool pgpool_never_sent(const char *err)
{
	return err == ERR_DOWN || err == ERR_CLOSING_QUEUED;
}

void pgq_free(struct pgq *q)
{
	for (int i = 0; q->params && i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	free(q->err);
	free(q);
}

/* q's callback, with q's request as the thread's for the log lines it writes */
void pgpool_call_back(struct pgq *q, const PGresult *res, const char *err)
{
	char saved[LOG_REQUEST_ID_MAX + 1];

	snprintf(saved, sizeof(saved), "%s", log_request_id());
	log_set_request_id(q->rid);
	q->cb(res, err, q->arg);
	log_set_request_id(saved);
}

bool pgpool_all_down(const struct pgpool *pool)
{
	for (int i = 0; i < pool->size; i++) {
		const struct pgconn *c = &pool->conns[i];
		if (c->state != PGC_BACKOFF || !c->tried)
			return false;
	}
	return true;
}

/* Fails queued queries while no connection is usable (see file comment). */
static void pool_fail_queued(evutil_socket_t fd, short what, void *arg)
{
	struct pgpool *pool = arg;
	(void)fd;
	(void)what;

	if (!pgpool_all_down(pool))
		return;
	while (pool->head) {
		struct pgq *q = pool->head;
		pool->head = q->next;
		if (!pool->head)
			pool->tail = NULL;
		pool->queued--;
		pgpool_call_back(q, NULL, ERR_DOWN);
		pgq_free(q);
	}
}

/* Calls back the queries whose connection failed (see file comment). */
static void pool_call_failed(evutil_socket_t fd, short what, void *arg)
{
	struct pgpool *pool = arg;
	struct pgq *q = pool->failed;
	(void)fd;
	(void)what;

	pool->failed = pool->failed_tail = NULL; /* later failures wait for the next round */
	while (q) {
		struct pgq *next = q->next;
		pool->nfailed--;
		pgpool_call_back(q, NULL, q->err ? q->err : pgpool_err_lost);
		pgq_free(q);
		q = next;
	}
}

static int stmt_index(const struct pgpool *pool, const struct pgpool_stmt *stmt)
{
	for (int i = 0; i < pool->nstmts; i++)
		if (pool->stmts[i] == stmt)
			return i;
	return -1;
}

void pgpool_dispatch(struct pgpool *pool)
{
	for (int i = 0; i < pool->size && pool->head; i++) {
		struct pgconn *c = &pool->conns[i];
		if (c->state != PGC_IDLE)
			continue;
		struct pgq *q = pool->head;
		pool->head = q->next;
		if (!pool->head)
			pool->tail = NULL;
		pool->queued--;
		q->next = NULL;
		pgpool_conn_send(c, q);
	}
}

struct pgpool *pgpool_new(struct event_base *base, const char *conninfo, int size)
{
	struct pgpool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	outage_init(&pool->down, "postgres", "PostgreSQL");
	pool->base = base;
	pool->size = size;
	pool->conninfo = strdup(conninfo);
	pool->conns = calloc((size_t)size, sizeof(*pool->conns));
	pool->fail_ev = event_new(base, -1, 0, pool_fail_queued, pool);
	pool->done_ev = event_new(base, -1, 0, pool_call_failed, pool);
	if (!pool->conninfo || !pool->conns || !pool->fail_ev || !pool->done_ev) {
		pgpool_free(pool);
		return NULL;
	}
	for (int i = 0; i < size; i++) {
		struct pgconn *c = &pool->conns[i];
		c->pool = pool;
		c->index = i;
		c->backoff_ms = BACKOFF_MIN_MS;
		c->timer = evtimer_new(base, pgpool_conn_on_timer, c);
		if (!c->timer) {
			pgpool_free(pool);
			return NULL;
		}
	}
	for (int i = 0; i < size; i++)
		pgpool_conn_start(&pool->conns[i]);
	return pool;
}

static bool pool_enqueue(struct pgpool *pool, const char *sql, const struct pgpool_stmt *stmt,
			 int stmt_bit, int nparams, const char *const *params, pgpool_cb cb,
			 void *arg)
{
	if (pool->closing)
		return false;
	struct pgq *q = calloc(1, sizeof(*q));
	if (!q)
		return false;
	q->sql = sql ? strdup(sql) : NULL;
	q->stmt = stmt;
	q->stmt_bit = stmt_bit;
	q->nparams = nparams;
	q->params = calloc((size_t)(nparams ? nparams : 1), sizeof(char *));
	q->cb = cb;
	q->arg = arg;
	snprintf(q->rid, sizeof(q->rid), "%s", log_request_id());
	if ((sql && !q->sql) || !q->params) {
		pgq_free(q);
		return false;
	}
	for (int i = 0; i < nparams; i++) {
		if (params[i] && !(q->params[i] = strdup(params[i]))) {
			pgq_free(q);
			return false;
		}
	}
	if (pool->tail)
		pool->tail->next = q;
	else
		pool->head = q;
	pool->tail = q;
	pool->queued++;
	pgpool_dispatch(pool);
	if (pool->head && pgpool_all_down(pool))
		event_active(pool->fail_ev, 0, 0);
	return true;
}

bool pgpool_query(struct pgpool *pool, const char *sql, int nparams, const char *const *params,
		  pgpool_cb cb, void *arg)
{
	return pool_enqueue(pool, sql, NULL, 0, nparams, params, cb, arg);
}

bool pgpool_query_stmt(struct pgpool *pool, const struct pgpool_stmt *stmt,
		       const char *const *params, pgpool_cb cb, void *arg)
{
	int bit = stmt_index(pool, stmt);
	if (bit < 0) {
		if (pool->nstmts >= PGPOOL_STMT_MAX) {
			log_error("pgpool: more than %d prepared statements", PGPOOL_STMT_MAX);
			return false;
		}
		bit = pool->nstmts;
		pool->stmts[pool->nstmts++] = stmt;
	}
	return pool_enqueue(pool, NULL, stmt, bit, stmt->nparams, params, cb, arg);
}

int pgpool_pending(const struct pgpool *pool)
{
	return pool->queued + pool->running + pool->nfailed;
}

void pgpool_free(struct pgpool *pool)
{
	if (!pool)
		return;
	pool->closing = true;
	/* the failed ones first: they left the queue before the queued ones */
	pool_call_failed(-1, 0, pool);
	while (pool->head) {
		struct pgq *q = pool->head;
		pool->head = q->next;
		pgpool_call_back(q, NULL, ERR_CLOSING_QUEUED);
		pgq_free(q);
	}
	if (pool->conns) {
		for (int i = 0; i < pool->size; i++) {
			struct pgconn *c = &pool->conns[i];
			if (c->conn || c->cur)
				pgpool_conn_backoff(c, ERR_CLOSING_RUNNING);
			if (c->timer)
				event_free(c->timer);
		}
	}
	if (pool->fail_ev)
		event_free(pool->fail_ev);
	if (pool->done_ev)
		event_free(pool->done_ev);
	free(pool->conns);
	free(pool->conninfo);
	outage_destroy(&pool->down);
	free(pool);
}

void pgpool_stats(const struct pgpool *pool, struct pgpool_stats *out)
{
	*out = (struct pgpool_stats){0};
	out->reconnects = pool->reconnects;
	for (int i = 0; i < pool->size; i++)
		switch (pool->conns[i].state) {
		case PGC_IDLE: out->idle++; break;
		case PGC_BUSY: out->busy++; break;
		case PGC_CONNECTING: out->connecting++; break;
		case PGC_BACKOFF: out->down++; break;
		}
}
