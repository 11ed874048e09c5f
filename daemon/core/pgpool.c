/*
 * pgpool.c - asynchronous libpq connections driven by libevent (see pgpool.h).
 *
 * Each connection has an explicit state (STYLE.md habit 7):
 *
 *   CONNECTING --ok--> IDLE <--> BUSY
 *        |                         |
 *        +--fail--> BACKOFF <--lost+
 *                      | timer (exponential, jittered)
 *                      +--> CONNECTING
 *
 * PQsocket() is read again before every wait, because libpq may open a new
 * socket while connecting (e.g. when it tries the next host).
 *
 * When no connection is up and all have failed at least once, queued queries
 * fail at once with an error instead of hanging: the API answers 503 rather
 * than holding requests open while PostgreSQL is down.
 *
 * A query whose connection fails is called back from the next loop iteration
 * (pool->failed, done_ev), never where the failure is found: a send can fail
 * inside pgpool_query (conn_send from conn_dispatch), and pgpool.h promises
 * that no callback runs inside the call that queued it.
 *
 * A query keeps the request id of the thread that queued it (log.h): its
 * callback, and the notices PostgreSQL sends while it runs, are logged
 * with that request_id. Every connection's notices (and those of the
 * blocking connections of pgconn_open) go through the logger.
 */
#include "core/pgpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/outage.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum pgc_state { PGC_CONNECTING, PGC_IDLE, PGC_BUSY, PGC_BACKOFF };

/* the errors of queries that failed in the queue (pgpool_never_sent) */
static const char ERR_DOWN[] = "database unavailable";
static const char ERR_CLOSING_QUEUED[] = "shutting down";
/* a running query cancelled by pgpool_free: its outcome is unknown */
static const char ERR_CLOSING_RUNNING[] = "shutting down while the query ran";
/* a connection that failed without a message of its own (or no memory to copy it) */
static const char ERR_LOST[] = "connection lost";

bool pgpool_never_sent(const char *err)
{
	return err == ERR_DOWN || err == ERR_CLOSING_QUEUED;
}

struct pgq {
	struct pgq *next;
	char *sql;                      /* NULL for a prepared statement */
	const struct pgpool_stmt *stmt; /* or NULL */
	int stmt_bit;                   /* its index in pool->stmts */
	int nparams;
	char **params;
	pgpool_cb cb;
	void *arg;
	char *err;                        /* on pool->failed: why its connection failed */
	char rid[LOG_REQUEST_ID_MAX + 1]; /* the request it was queued for, or "" */
};

struct pgconn {
	struct pgpool *pool;
	int index;
	enum pgc_state state;
	PGconn *conn;
	struct event *ev;
	struct event *timer;
	struct pgq *cur;
	PGresult *result;
	int backoff_ms;
	bool tried;        /* has attempted to connect at least once */
	bool preparing;    /* the running command is the PREPARE of cur->stmt */
	uint32_t prepared; /* bit i: pool->stmts[i] is prepared on this connection */
};

struct pgpool {
	struct event_base *base;
	char *conninfo;
	int size;
	struct pgconn *conns;
	struct pgq *head, *tail;
	int queued;
	int running;
	struct event *fail_ev;
	struct pgq *failed, *failed_tail; /* called back by done_ev */
	int nfailed;
	struct event *done_ev;
	bool closing;
	const struct pgpool_stmt *stmts[PGPOOL_STMT_MAX];
	int nstmts;
	/* failed connects, of every connection at every backoff: one line an outage */
	struct outage down;
};

static void conn_start(struct pgconn *c);
static void conn_dispatch(struct pgpool *pool);
static void conn_on_io(evutil_socket_t fd, short what, void *arg);
static bool conn_prepared(struct pgconn *c);

static void pgq_free(struct pgq *q)
{
	for (int i = 0; q->params && i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	free(q->err);
	free(q);
}

/* q's callback, with q's request as the thread's for the log lines it writes */
static void call_back(struct pgq *q, const PGresult *res, const char *err)
{
	char saved[LOG_REQUEST_ID_MAX + 1];

	snprintf(saved, sizeof(saved), "%s", log_request_id());
	log_set_request_id(q->rid);
	q->cb(res, err, q->arg);
	log_set_request_id(saved);
}

static void on_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	enum log_level level = LOG_INFO;
	(void)arg;

	if (!sev)
		sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
	if (sev && strcmp(sev, "WARNING") == 0)
		level = LOG_WARN;
	else if (sev && strcmp(sev, "DEBUG") == 0)
		level = LOG_DEBUG;
	log_kv(level, text ? text : PQresultErrorMessage(res), LOG_STR("source", "postgres"),
	       LOG_STR("severity", sev ? sev : "NOTICE"), LOG_STR("sqlstate", state ? state : ""));
}

void pgconn_log_notices(PGconn *conn)
{
	if (conn)
		PQsetNoticeReceiver(conn, on_notice, NULL);
}

bool pgpool_lost_primary(const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return st && strcmp(st, "25006") == 0; /* read_only_sql_transaction */
}

PGconn *pgconn_open(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	pgconn_log_notices(c);
	return c;
}

static const char *conn_error(PGconn *conn)
{
	const char *e = conn ? PQerrorMessage(conn) : NULL;
	return (e && *e) ? e : ERR_LOST;
}

/* Arms a one-shot wait on the connection's current socket. */
static void conn_wait(struct pgconn *c, short what)
{
	int fd = PQsocket(c->conn);

	if (c->ev)
		event_free(c->ev);
	c->ev = event_new(c->pool->base, fd, what, conn_on_io, c);
	if (!c->ev || event_add(c->ev, NULL) != 0)
		log_error("pg[%d]: cannot watch socket", c->index);
}

static bool all_down(const struct pgpool *pool)
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

	if (!all_down(pool))
		return;
	while (pool->head) {
		struct pgq *q = pool->head;
		pool->head = q->next;
		if (!pool->head)
			pool->tail = NULL;
		pool->queued--;
		call_back(q, NULL, ERR_DOWN);
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
		call_back(q, NULL, q->err ? q->err : ERR_LOST);
		pgq_free(q);
		q = next;
	}
}

static void conn_backoff(struct pgconn *c, const char *reason)
{
	struct pgpool *pool = c->pool;

	if (c->cur) {
		struct pgq *q = c->cur;
		c->cur = NULL;
		pool->running--;
		if (pool->closing) {
			/* pgpool_free: "before this returns", and there is no later */
			call_back(q, NULL, reason);
			pgq_free(q);
		} else {
			q->next = NULL;
			q->err = strdup(reason); /* NULL: ERR_LOST is said instead */
			if (pool->failed_tail)
				pool->failed_tail->next = q;
			else
				pool->failed = q;
			pool->failed_tail = q;
			pool->nfailed++;
			event_active(pool->done_ev, 0, 0);
		}
	}
	if (c->result) {
		PQclear(c->result);
		c->result = NULL;
	}
	if (c->ev) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	c->state = PGC_BACKOFF;
	c->tried = true;
	if (pool->closing)
		return;

	/* exponential backoff with full jitter in [backoff/2, backoff] */
	int ms = c->backoff_ms / 2 + (int)(random() % (c->backoff_ms / 2 + 1));
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(c->timer, &tv);
	log_debug("pg[%d]: backing off %d ms", c->index, ms);
	if (all_down(pool))
		event_active(pool->fail_ev, 0, 0);
}

static void conn_lost(struct pgconn *c, const char *what)
{
	char reason[256];
	const char *e = conn_error(c->conn);
	size_t n = strcspn(e, "\n");

	snprintf(reason, sizeof(reason), "%s: %.*s", what, (int)n, e);
	if (c->state == PGC_CONNECTING) {
		/* every connection retries with backoff: one line per outage (outage.h) */
		log_debug("pg[%d]: %s", c->index, reason);
		outage_fail(&c->pool->down, reason, 0, clock_mono_ms());
	} else {
		log_warn("pg[%d]: %s", c->index, reason);
	}
	conn_backoff(c, reason);
}

static void conn_finish_query(struct pgconn *c)
{
	struct pgq *q = c->cur;
	PGresult *res = c->result;
	struct pgpool *pool = c->pool;

	c->cur = NULL;
	c->result = NULL;
	c->state = PGC_IDLE;
	pool->running--;

	bool demoted = pgpool_lost_primary(res);
	if (!res)
		call_back(q, NULL, "no result");
	else {
		ExecStatusType st = PQresultStatus(res);
		const char *err = (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
					  ? NULL
					  : PQresultErrorMessage(res);
		call_back(q, res, err);
		PQclear(res);
	}
	pgq_free(q);
	if (demoted) { /* before anything else is sent on it */
		log_warn("pg[%d]: the server is read-only now; reconnecting to the primary",
			 c->index);
		conn_backoff(c, "server is read-only");
	}
	conn_dispatch(pool);
}

static void conn_read(struct pgconn *c)
{
	if (!PQconsumeInput(c->conn)) {
		conn_lost(c, "read failed");
		return;
	}
	while (!PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);
		if (!r) {
			if (c->preparing && !conn_prepared(c))
				return;
			conn_finish_query(c);
			return;
		}
		/* keep the first error, else the last result */
		if (c->result && PQresultStatus(c->result) == PGRES_FATAL_ERROR)
			PQclear(r);
		else {
			if (c->result)
				PQclear(c->result);
			c->result = r;
		}
	}
	conn_wait(c, EV_READ);
}

static void conn_flush(struct pgconn *c);

static int stmt_index(const struct pgpool *pool, const struct pgpool_stmt *stmt)
{
	for (int i = 0; i < pool->nstmts; i++)
		if (pool->stmts[i] == stmt)
			return i;
	return -1;
}

static void conn_send_prepared(struct pgconn *c)
{
	struct pgq *q = c->cur;
	if (!PQsendQueryPrepared(c->conn, q->stmt->name, q->nparams, (const char *const *)q->params,
				 NULL, NULL, 0))
		conn_lost(c, "send failed");
	else
		conn_flush(c);
}

/*
 * The PREPARE of cur's statement has finished. On success the statement
 * itself goes out now and the caller stops reading (returns false); a
 * failed PREPARE is the query's error (returns true: finish the query).
 */
static bool conn_prepared(struct pgconn *c)
{
	c->preparing = false;
	if (!c->result || PQresultStatus(c->result) != PGRES_COMMAND_OK)
		return true;
	PQclear(c->result);
	c->result = NULL;
	c->prepared |= 1u << c->cur->stmt_bit;
	conn_send_prepared(c);
	return false;
}

static void conn_flush(struct pgconn *c)
{
	int r = PQflush(c->conn);
	if (r < 0)
		conn_lost(c, "write failed");
	else if (r == 1)
		conn_wait(c, EV_READ | EV_WRITE);
	else
		conn_wait(c, EV_READ);
}

static void conn_poll_connect(struct pgconn *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING: conn_wait(c, EV_READ); break;
	case PGRES_POLLING_WRITING: conn_wait(c, EV_WRITE); break;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(c->conn, 1) != 0) {
			conn_lost(c, "setnonblocking");
			break;
		}
		if (c->ev) {
			event_free(c->ev);
			c->ev = NULL;
		}
		c->state = PGC_IDLE;
		c->backoff_ms = BACKOFF_MIN_MS;
		log_info("pg[%d]: connected", c->index);
		outage_ok(&c->pool->down, clock_mono_ms());
		conn_dispatch(c->pool);
		break;
	default: conn_lost(c, "connect failed"); break;
	}
}

/* The running query's I/O; notices read meanwhile are logged with its request id. */
static void conn_busy_io(struct pgconn *c, short what)
{
	char saved[LOG_REQUEST_ID_MAX + 1];

	snprintf(saved, sizeof(saved), "%s", log_request_id());
	log_set_request_id(c->cur->rid);
	if (what & EV_WRITE) {
		int r = PQflush(c->conn);
		if (r < 0) {
			conn_lost(c, "write failed");
			goto out;
		}
		if (r == 1 && !(what & EV_READ)) {
			conn_wait(c, EV_READ | EV_WRITE);
			goto out;
		}
	}
	conn_read(c);
out:
	log_set_request_id(saved);
}

static void conn_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	(void)fd;

	switch (c->state) {
	case PGC_CONNECTING: conn_poll_connect(c); break;
	case PGC_BUSY: conn_busy_io(c, what); break;
	case PGC_IDLE:
		/* an idle connection became readable: a notice, or the server went away */
		if (!PQconsumeInput(c->conn) || PQstatus(c->conn) == CONNECTION_BAD) {
			conn_lost(c, "idle connection closed");
			return;
		}
		conn_wait(c, EV_READ);
		break;
	case PGC_BACKOFF: break;
	}
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_start(arg);
}

static void conn_start(struct pgconn *c)
{
	c->state = PGC_CONNECTING;
	c->prepared = 0; /* a new session has no prepared statements */
	c->preparing = false;
	c->conn = PQconnectStart(c->pool->conninfo);
	pgconn_log_notices(c->conn);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
		conn_lost(c, "connect failed");
		return;
	}
	conn_wait(c, EV_WRITE);
}

static void conn_send(struct pgconn *c, struct pgq *q)
{
	c->cur = q;
	c->state = PGC_BUSY;
	c->pool->running++;
	if (q->stmt) {
		if (c->prepared & (1u << q->stmt_bit)) {
			conn_send_prepared(c);
			return;
		}
		c->preparing = true;
		if (!PQsendPrepare(c->conn, q->stmt->name, q->stmt->sql, q->nparams, NULL)) {
			conn_lost(c, "send failed");
			return;
		}
		conn_flush(c);
		return;
	}
	if (!PQsendQueryParams(c->conn, q->sql, q->nparams, NULL, (const char *const *)q->params,
			       NULL, NULL, 0)) {
		conn_lost(c, "send failed");
		return;
	}
	conn_flush(c);
}

static void conn_dispatch(struct pgpool *pool)
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
		conn_send(c, q);
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
		c->timer = evtimer_new(base, conn_on_timer, c);
		if (!c->timer) {
			pgpool_free(pool);
			return NULL;
		}
	}
	for (int i = 0; i < size; i++)
		conn_start(&pool->conns[i]);
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
	conn_dispatch(pool);
	if (pool->head && all_down(pool))
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
		call_back(q, NULL, ERR_CLOSING_QUEUED);
		pgq_free(q);
	}
	if (pool->conns) {
		for (int i = 0; i < pool->size; i++) {
			struct pgconn *c = &pool->conns[i];
			if (c->conn || c->cur)
				conn_backoff(c, ERR_CLOSING_RUNNING);
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
