/*
 * pgpool_conn.c - one connection of the pool (pgpool.h, pgpool_impl.h), and
 * what any libpq connection of the daemon does with its notices.
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
 * A query whose connection fails is not called back here: it goes on
 * pool->failed, and pgpool.c calls it back from the next loop iteration
 * (see there).
 *
 * The notices PostgreSQL sends while a query runs are logged with the
 * request id of the query. Every connection's notices (and those of the
 * blocking connections of pgconn_open) go through the logger.
 */
#include "core/pgpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/outage.h"
#include "core/pgpool_impl.h"

static void conn_on_io(evutil_socket_t fd, short what, void *arg);
static bool conn_prepared(struct pgconn *c);

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
	return (e && *e) ? e : pgpool_err_lost;
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

void pgpool_conn_backoff(struct pgconn *c, const char *reason)
{
	struct pgpool *pool = c->pool;

	if (c->cur) {
		struct pgq *q = c->cur;
		c->cur = NULL;
		pool->running--;
		if (pool->closing) {
			/* pgpool_free: "before this returns", and there is no later */
			pgpool_call_back(q, NULL, reason);
			pgq_free(q);
		} else {
			q->next = NULL;
			q->err = strdup(reason); /* NULL: pgpool_err_lost is said instead */
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
	if (pgpool_all_down(pool))
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
	pgpool_conn_backoff(c, reason);
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
		pgpool_call_back(q, NULL, "no result");
	else {
		ExecStatusType st = PQresultStatus(res);
		const char *err = (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
					  ? NULL
					  : PQresultErrorMessage(res);
		pgpool_call_back(q, res, err);
		PQclear(res);
	}
	pgq_free(q);
	if (demoted) { /* before anything else is sent on it */
		log_warn("pg[%d]: the server is read-only now; reconnecting to the primary",
			 c->index);
		pgpool_conn_backoff(c, "server is read-only");
	}
	pgpool_dispatch(pool);
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
		if (c->was_up)
			c->pool->reconnects++;
		c->was_up = true;
		log_info("pg[%d]: connected", c->index);
		outage_ok(&c->pool->down, clock_mono_ms());
		pgpool_dispatch(c->pool);
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

void pgpool_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pgpool_conn_start(arg);
}

void pgpool_conn_start(struct pgconn *c)
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

void pgpool_conn_send(struct pgconn *c, struct pgq *q)
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
