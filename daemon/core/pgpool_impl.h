/*
 * pgpool_impl.h - what pgpool.c (the pool: queue, dispatch, stats, free)
 * and pgpool_conn.c (one connection's state machine) share inside core/.
 *
 * Include core/pgpool.h first (pgpool_cb, PGPOOL_STMT_MAX): including it
 * here would make pgpool and pgpool_impl an include circle
 * (tests/lint/check_layers.py). Loop thread only.
 */
#ifndef BERICHTD_PGPOOL_IMPL_H
#define BERICHTD_PGPOOL_IMPL_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "common/outage.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum pgc_state { PGC_CONNECTING, PGC_IDLE, PGC_BUSY, PGC_BACKOFF };

/* a connection that failed without a message of its own (or no memory to copy it) */
extern const char pgpool_err_lost[];

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
	bool was_up;       /* has been connected before: the next connect is a reconnect */
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
	long long reconnects; /* connects after a connection had been up (berichtd_pg_reconnects_total) */
	/* failed connects, of every connection at every backoff: one line an outage */
	struct outage down;
};

/* pgpool.c: the pool's side */

void pgq_free(struct pgq *q);
/* q's callback, with q's request as the thread's for the log lines it writes */
void pgpool_call_back(struct pgq *q, const PGresult *res, const char *err);
/* Whether every connection is backing off after having tried at least once. */
bool pgpool_all_down(const struct pgpool *pool);
/* Sends queued queries on the idle connections, oldest first. */
void pgpool_dispatch(struct pgpool *pool);

/* pgpool_conn.c: one connection (the notices and pgpool_lost_primary live there too) */

/* The timer callback of c->timer (evtimer_new): the backoff is over, connect again. */
void pgpool_conn_on_timer(evutil_socket_t fd, short what, void *arg);
/* Starts connecting (PQconnectStart); on failure it backs off at once. */
void pgpool_conn_start(struct pgconn *c);
/* Runs q on the idle connection c (BUSY); a failed send backs off. */
void pgpool_conn_send(struct pgconn *c, struct pgq *q);
/*
 * Closes c and, unless the pool is closing, arms its backoff timer. Its
 * running query fails with reason: called back now while the pool is
 * closing, else from the next loop iteration (pool->failed, done_ev).
 */
void pgpool_conn_backoff(struct pgconn *c, const char *reason);

#endif
