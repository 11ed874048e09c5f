/*
 * pgpool.h - asynchronous PostgreSQL connections on the event loop.
 *
 * The event loop never blocks (DESIGN.md section 3): every query is sent with
 * PQsendQueryParams and its socket is watched by libevent. Callers queue a
 * query with a callback; the pool runs it on the first idle connection.
 * Connections reconnect by themselves with exponential backoff and jitter.
 *
 * Every function here runs on the event-loop thread only.
 */
#ifndef BERICHTD_PGPOOL_H
#define BERICHTD_PGPOOL_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>

struct pgpool;

/*
 * Called once per query on the loop thread. `res` is the last result of the
 * query (PGRES_TUPLES_OK/COMMAND_OK on success), or NULL when the connection
 * failed or the query could not be sent; `err` then says why (never NULL when
 * res is NULL or an error). The pool owns `res` and clears it after the
 * callback returns.
 */
typedef void (*pgpool_cb)(const PGresult *res, const char *err, void *arg);

/*
 * Whether `err` of a callback without a result means the query never
 * reached the server, so it did nothing there: it failed in the queue
 * because no connection was up, or because the pool was being freed. Any
 * other failure without a result (a connection lost, or the pool freed,
 * while it ran) leaves the outcome unknown: its transaction may have
 * committed. An error result (res not NULL) means it did not commit.
 */
bool pgpool_never_sent(const char *err);

struct pgpool *pgpool_new(struct event_base *base, const char *conninfo, int size);

/*
 * Queues a query. params are copied, so the caller may free them right away.
 * The callback always runs, later (never from inside this call).
 * Returns false when out of memory or when the pool is being freed.
 */
bool pgpool_query(struct pgpool *pool, const char *sql, int nparams, const char *const *params,
		  pgpool_cb cb, void *arg) __attribute__((warn_unused_result));

/*
 * A statement the pool prepares once per connection (on first use, again
 * after a reconnect) and then runs with PQsendQueryPrepared: the hot paths
 * skip parsing and planning, which for the ingest statement cost more than
 * the execution of a small group. Define it static const; the pool keys it
 * by address. At most PGPOOL_STMT_MAX distinct statements per pool.
 */
#define PGPOOL_STMT_MAX 32

struct pgpool_stmt {
	const char *name; /* unique per pool, e.g. "ingest" */
	const char *sql;
	int nparams;
};

/* As pgpool_query, with a prepared statement; nparams is stmt->nparams. */
bool pgpool_query_stmt(struct pgpool *pool, const struct pgpool_stmt *stmt,
		       const char *const *params, pgpool_cb cb, void *arg)
	__attribute__((warn_unused_result));

/*
 * libpq's notices (RAISE NOTICE, WARNING, ...) of conn through the logger
 * (log.h), with source=postgres severity= sqlstate=. The pool does it for
 * its own connections; pgconn_open for blocking ones (delivery workers,
 * the CLI). Any thread.
 */
void pgconn_log_notices(PGconn *conn);
/*
 * Whether an error result says the server is no longer the primary
 * (SQLSTATE 25006, "cannot execute ... in a read-only transaction": a
 * primary demoted to standby, or made read-only). Such a connection is
 * treated as lost: the pool closes it and reconnects, and libpq's
 * target_session_attrs=read-write in the conninfo finds the new primary.
 * The statement did not commit. Any thread.
 */
bool pgpool_lost_primary(const PGresult *res);

/* PQconnectdb, then pgconn_log_notices. The caller checks PQstatus and PQfinishes. */
PGconn *pgconn_open(const char *conninfo);

/* Queries queued, running, or failed and not yet called back. */
int pgpool_pending(const struct pgpool *pool);

/*
 * Frees the pool. Queued queries get their callback with err "shutting down"
 * before this returns (pgpool_never_sent is true); running ones are
 * cancelled with an error of their own (their outcome is unknown).
 */
void pgpool_free(struct pgpool *pool);

#endif
