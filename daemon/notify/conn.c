/*
 * conn.c - a delivery worker's blocking connections (see delivery_impl.h).
 *
 * Each worker owns one PostgreSQL and one Redis connection. The claim and
 * the record statements are prepared once per PostgreSQL connection; a
 * statement that failed because the connection had gone runs once more on
 * a new one. The lifeline (lifeline.c) opens its connection here too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/sentinel.h"
#include "notify/delivery_impl.h"

/*
 * Our settings come before the operator's conninfo, so its own keys win:
 * a connection attempt gives up after 5 s, and a peer that went silent
 * (a dead machine, a partition) is noticed within seconds, not after the
 * kernel's two hours of keepalive. application_name shows in
 * pg_stat_activity which connection is which.
 */
PGconn *conn_pg_open(const struct config *cfg, const char *name)
{
	const char *const keys[] = {"connect_timeout",     "keepalives",       "keepalives_idle",
				    "keepalives_interval", "keepalives_count", "tcp_user_timeout",
				    "application_name",    "dbname",           NULL};
	const char *const vals[] = {"5", "1", "5", "2", "3", "5000", name, cfg->pg_conninfo, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	pgconn_log_notices(c); /* libpq's notices through the logger */
	return c;
}

bool conn_connect(struct worker *w)
{
	const struct config *cfg = delivery_cfg(w->d);

	if (!w->pg || PQstatus(w->pg) != CONNECTION_OK) {
		if (w->pg)
			PQfinish(w->pg);
		w->pg = conn_pg_open(cfg, "berichtd delivery");
		w->prepared = 0;
		if (PQstatus(w->pg) != CONNECTION_OK) {
			/* every worker retries each second: one line per outage (outage.h) */
			char why[OUTAGE_REASON_MAX];
			const char *e = PQerrorMessage(w->pg);
			snprintf(why, sizeof(why), "%.*s", (int)strcspn(e, "\n"), e);
			outage_fail(&w->d->pg, why, 0, clock_mono_ms());
			return false;
		}
		outage_ok(&w->d->pg, clock_mono_ms());
	}
	if (!w->rc || w->rc->err) {
		if (w->rc)
			redisFree(w->rc);
		char why[OUTAGE_REASON_MAX];
		w->rc = redis_sync_open(cfg->redis_sentinels, cfg->redis_master_name,
					cfg->redis_host, (int)cfg->redis_port, why, sizeof(why));
		if (!w->rc) {
			outage_fail(&w->d->redis, why, 0, clock_mono_ms());
			return false;
		}
		outage_ok(&w->d->redis, clock_mono_ms());
	}
	return true;
}

/* Formats ids as a PostgreSQL array literal "{1,2,3}"; caller frees. */
char *conn_id_array(const int64_t *ids, int n)
{
	size_t cap = (size_t)n * 21 + 3;
	char *s = malloc(cap);
	size_t len = 0;
	if (!s)
		return NULL;
	s[len++] = '{';
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

/*
 * A statement that failed because the connection had gone (PostgreSQL was
 * restarted while this worker was idle or sending) runs once more on a new
 * connection. Without that, the first claim after a restart left its batch
 * in flight until the visibility timeout, and a lost record of mails the
 * relay had accepted made the reconciler send them again. Both statements
 * may run twice: a record finds its rows no longer 'sending'; a claim
 * (claim.c) runs each attempt under a token of its own, so that the rows
 * of an attempt whose reply was lost can be returned.
 */
bool conn_reconnected(struct worker *w)
{
	if (w->pg && PQstatus(w->pg) != CONNECTION_BAD)
		return false;
	log_info("delivery[%d]: PostgreSQL connection lost; reconnecting", w->index);
	return conn_connect(w);
}

/*
 * The two statements every batch runs (claim and record) are prepared once
 * per connection: their planning (several CTEs and joins) cost as much as
 * their execution for a batch of 100. st == NULL runs sql unprepared.
 */
static PGresult *run_once(struct worker *w, int which, const struct pgpool_stmt *st,
			  const char *sql, int n, const char *const *params)
{
	if (st && !(w->prepared & (1u << which))) {
		PGresult *res = PQprepare(w->pg, st->name, st->sql, st->nparams, NULL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			log_warn("delivery[%d]: prepare %s failed: %.*s", w->index, st->name,
				 (int)strcspn(PQresultErrorMessage(res), "\n"),
				 PQresultErrorMessage(res));
		PQclear(res);
		if (!ok)
			return NULL;
		w->prepared |= 1u << which;
	}
	PGresult *res = st ? PQexecPrepared(w->pg, st->name, n, params, NULL, NULL, 0)
			   : PQexecParams(w->pg, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType status = PQresultStatus(res);
	if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
		log_warn("delivery[%d]: %s failed: %.*s", w->index, st ? st->name : "query",
			 (int)strcspn(PQresultErrorMessage(res), "\n"), PQresultErrorMessage(res));
		if (pgpool_lost_primary(res)) { /* a read-only server: as good as gone */
			PQfinish(w->pg);
			w->pg = NULL;
		}
		PQclear(res);
		return NULL;
	}
	return res;
}

static PGresult *run(struct worker *w, int which, const struct pgpool_stmt *st, const char *sql,
		     int n, const char *const *params)
{
	PGresult *res = run_once(w, which, st, sql, n, params);
	if (!res && conn_reconnected(w))
		res = run_once(w, which, st, sql, n, params);
	return res;
}

PGresult *conn_exec(struct worker *w, const char *sql, int n, const char *const *params)
{
	return run(w, -1, NULL, sql, n, params);
}

PGresult *conn_exec_stmt_once(struct worker *w, int which, const struct pgpool_stmt *st,
			      const char *const *params)
{
	return run_once(w, which, st, NULL, st->nparams, params);
}

PGresult *conn_exec_stmt(struct worker *w, int which, const struct pgpool_stmt *st,
			 const char *const *params)
{
	return run(w, which, st, NULL, st->nparams, params);
}

void conn_exec_discard(struct worker *w, const char *sql, int n, const char *const *params)
{
	PGresult *res = conn_exec(w, sql, n, params);
	if (res)
		PQclear(res);
}
