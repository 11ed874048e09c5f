/*
 * lifeline.c - this instance's liveness, visible in PostgreSQL (see
 * delivery_impl.h and docs/architecture.md "Orphaned claims").
 *
 * A thread of its own registers the instance (a row in `instances`,
 * migration 0015) and takes the session-level advisory lock on its id on
 * a connection of its own, held for the life of the process. Every claim
 * names the instance (notifications.claimed_by); the reconciler of any
 * instance returns the claims of an instance whose lock is free.
 *
 * The workers send only under a lease: LEASE_MS after the start of the
 * last check that found the lifeline's session alive (a successful query
 * on the same session means the lock is still held: a session lock goes
 * only with its session). When a check fails, or hangs, the lease runs out
 * on its own; no new SMTP session starts, and what was claimed under it
 * goes back unsent. The thread reconnects and takes the same id's lock
 * again; each (re)take starts a new epoch, and a worker sends a claim
 * only in the epoch it was made in. Another instance returns our claims
 * only after it saw our lock free for ORPHAN_GRACE_MS (reconcile.c), which
 * is longer than LEASE_MS: by then we have stopped sending them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "notify/delivery_impl.h"

#define CHECK_MS 1000
/* well below reconcile.c's ORPHAN_GRACE_MS (5 s) */
#define LEASE_MS 3000
#define RETRY_MS 500

/* Sleeps up to ms, waking at once when the lifeline is told to stop. */
static void pause_ms(struct delivery *d, int64_t ms)
{
	delivery_wait_ms(d, ms, &d->lifeline_stop);
}

/* One row, one column of sql on c: its first character, or '\0' on failure; *val gets it. */
static char one_value(PGconn *c, const char *sql, int n, const char *const *params, char *val,
		      size_t len)
{
	PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	char first = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		snprintf(val, len, "%s", PQgetvalue(res, 0, 0));
		first = val[0] ? val[0] : '?';
	} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("lifeline: %.*s", (int)strcspn(PQresultErrorMessage(res), "\n"),
			 PQresultErrorMessage(res));
	}
	PQclear(res);
	return first;
}

/* A new instance row and its lock; the instance id, 0 on failure. */
static int register_instance(PGconn *c)
{
	char host[256] = "", pid[16];
	gethostname(host, sizeof(host) - 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	const char *params[] = {host, pid};
	PGresult *res = PQexecParams(
		c,
		"WITH i AS (INSERT INTO instances (host, pid) VALUES ($1, $2::integer) RETURNING id)"
		" SELECT id, instance_lock_take(id) FROM i",
		2, NULL, params, NULL, NULL, 0);
	int id = 0;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    PQgetvalue(res, 0, 1)[0] == 't')
		id = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	else
		log_warn("lifeline: cannot register the instance: %.*s",
			 (int)strcspn(PQresultErrorMessage(res), "\n"), PQresultErrorMessage(res));
	PQclear(res);
	return id;
}

/* Takes our id's lock on c (first time: registers); true when held. */
static bool take_lock(struct delivery *d, PGconn *c)
{
	int id = atomic_load(&d->instance_id);
	if (id == 0) {
		id = register_instance(c);
		if (id == 0)
			return false;
		atomic_store(&d->instance_id, id);
		log_info("delivery: instance %d (pid %d), its lifeline lock held", id,
			 (int)getpid());
		return true;
	}
	char idbuf[16], val[8];
	snprintf(idbuf, sizeof(idbuf), "%d", id);
	const char *params[] = {idbuf};
	char got =
		one_value(c, "SELECT instance_lock_take($1::integer)", 1, params, val, sizeof(val));
	if (got == 't') {
		log_info("lifeline: instance %d holds its lock again", id);
		return true;
	}
	if (got == 'f') /* a reconciler returning our claims, or our old session not yet gone */
		log_warn("lifeline: the lock of instance %d is held elsewhere; trying again", id);
	return false;
}

static void lease_from(struct delivery *d, int64_t start_ms)
{
	atomic_store(&d->lease_until_ms, start_ms + LEASE_MS);
}

static void *lifeline_main(void *arg)
{
	struct delivery *d = arg;
	PGconn *c = NULL;

	while (!atomic_load(&d->lifeline_stop)) {
		if (!c) {
			int64_t start = clock_mono_ms();
			c = conn_pg_open(d->app->cfg, "berichtd lifeline");
			if (PQstatus(c) != CONNECTION_OK || !take_lock(d, c)) {
				if (PQstatus(c) != CONNECTION_OK)
					log_warn("lifeline: PostgreSQL: %.*s",
						 (int)strcspn(PQerrorMessage(c), "\n"),
						 PQerrorMessage(c));
				PQfinish(c);
				c = NULL;
				pause_ms(d, RETRY_MS);
				continue;
			}
			atomic_fetch_add(&d->epoch, 1);
			lease_from(d, start);
		}
		pause_ms(d, CHECK_MS);
		if (atomic_load(&d->lifeline_stop))
			break;
		int64_t start = clock_mono_ms();
		char val[8];
		/* no row from a server that is no longer the primary (a demoted one
		 * keeps sessions): then as lost, and the reconnect finds the primary */
		if (one_value(c,
			      "SELECT 1 WHERE NOT pg_is_in_recovery() "
			      "AND current_setting('transaction_read_only') = 'off'",
			      0, NULL, val, sizeof(val)) == '1') {
			lease_from(d, start);
			continue;
		}
		/* the session, and with it the lock, may be gone: stop sending at once */
		atomic_store(&d->lease_until_ms, 0);
		log_warn("lifeline: instance %d lost its PostgreSQL session; no mail goes out "
			 "until its lock is held again",
			 atomic_load(&d->instance_id));
		PQfinish(c);
		c = NULL;
	}
	atomic_store(&d->lease_until_ms, 0);
	if (c)
		PQfinish(c); /* ends the session: the lock is free */
	return NULL;
}

bool lifeline_start(struct delivery *d)
{
	atomic_store(&d->epoch, 0);
	atomic_store(&d->lease_until_ms, 0);
	if (pthread_create(&d->lifeline, NULL, lifeline_main, d) != 0)
		return false;
	d->lifeline_running = true;
	return true;
}

void lifeline_stop(struct delivery *d)
{
	if (!d->lifeline_running)
		return;
	pthread_mutex_lock(&d->lock);
	atomic_store(&d->lifeline_stop, true);
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->lifeline, NULL);
	d->lifeline_running = false;
}

unsigned lifeline_epoch(struct delivery *d)
{
	if (clock_mono_ms() >= atomic_load(&d->lease_until_ms))
		return 0;
	return atomic_load(&d->epoch);
}
