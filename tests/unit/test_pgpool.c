/*
 * test_pgpool.c - the contract of daemon/core/pgpool.h that a callback
 * "always runs, later (never from inside this call)", also when the query
 * cannot be sent (issue 12).
 *
 * A thread plays a PostgreSQL server just far enough for libpq to connect
 * (AuthenticationOk, ReadyForQuery), so the pool holds an idle connection
 * without any server installed. PQsendQueryParams then refuses a query with
 * more than 65535 parameters on the client side: the send fails while the
 * connection is idle, the path pgpool_conn_send -> conn_lost -> pgpool_conn_backoff.
 *
 * needs: daemon/core/pgpool.c and pgpool_conn.c, libpq, libevent, pthreads
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/core/pgpool.h"

struct fake_pg {
	int listen_fd;
	int port;
	pthread_t thread;
};

static bool read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* One connection: read the startup packet, say "authenticated, ready", then
 * read whatever comes until the client hangs up. */
static void *fake_pg_run(void *arg)
{
	struct fake_pg *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	uint32_t len_be;
	if (read_full(fd, &len_be, 4)) {
		uint32_t len = ntohl(len_be);
		char *rest = len > 4 && len < 10000 ? malloc(len - 4) : NULL;
		if (rest && read_full(fd, rest, len - 4)) {
			static const char reply[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0, /* AuthenticationOk */
						     'Z', 0, 0, 0, 5, 'I'};          /* ReadyForQuery */
			if (write(fd, reply, sizeof(reply)) == (ssize_t)sizeof(reply)) {
				char sink[4096];
				while (read(fd, sink, sizeof(sink)) > 0)
					;
			}
		}
		free(rest);
	}
	close(fd);
	return NULL;
}

static void fake_pg_start(struct fake_pg *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(f->listen_fd >= 0);
	cr_assert_eq(bind(f->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(f->listen_fd, 8), 0);
	cr_assert_eq(getsockname(f->listen_fd, (struct sockaddr *)&a, &alen), 0);
	f->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&f->thread, NULL, fake_pg_run, f), 0);
}

static void fake_pg_stop(struct fake_pg *f)
{
	shutdown(f->listen_fd, SHUT_RDWR); /* wakes an accept() still waiting */
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
}

static void run_for_ms(struct event_base *base, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

struct probe {
	bool in_call; /* set around pgpool_query */
	int calls;
	bool inside;  /* a callback ran while in_call was set */
	bool had_result;
	char err[128];
};

static void on_done(const PGresult *res, const char *err, void *arg)
{
	struct probe *p = arg;
	p->calls++;
	if (p->in_call)
		p->inside = true;
	p->had_result = res != NULL;
	snprintf(p->err, sizeof(p->err), "%s", err ? err : "");
}

#define TOO_MANY_PARAMS 70000

Test(pgpool, a_failed_send_calls_back_later_not_inside_pgpool_query)
{
	struct fake_pg f;
	char conninfo[128];
	fake_pg_start(&f);
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d user=t dbname=t sslmode=disable gssencmode=disable "
		 "connect_timeout=5",
		 f.port);
	struct event_base *base = event_base_new();
	cr_assert_not_null(base);
	struct pgpool *pool = pgpool_new(base, conninfo, 1);
	cr_assert_not_null(pool);
	run_for_ms(base, 300); /* connected and idle now */

	const char **params = calloc(TOO_MANY_PARAMS, sizeof(*params));
	cr_assert_not_null(params);
	struct probe p = {0};
	p.in_call = true;
	bool queued = pgpool_query(pool, "SELECT 1", TOO_MANY_PARAMS, params, on_done, &p);
	p.in_call = false;
	free(params);

	cr_assert(queued);
	cr_expect_not(p.inside, "the callback ran inside pgpool_query (err: %s)", p.err);
	cr_expect_eq(p.calls, 0, "called back before pgpool_query returned");
	cr_expect_eq(pgpool_pending(pool), 1, "the failed query is pending until its callback");
	run_for_ms(base, 50);
	cr_expect_eq(p.calls, 1, "the callback must still run exactly once");
	cr_expect_not(p.had_result);
	cr_expect_neq(p.err[0], '\0', "a callback without a result names the error");
	cr_expect_eq(pgpool_pending(pool), 0);

	pgpool_free(pool);
	event_base_free(base);
	fake_pg_stop(&f);
}

/* A query that failed to send and the pool freed before the loop ran
 * again: pgpool_free calls it back, once. */
Test(pgpool, shutting_down_calls_back_a_failed_query_once)
{
	struct fake_pg f;
	char conninfo[128];
	fake_pg_start(&f);
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d user=t dbname=t sslmode=disable gssencmode=disable "
		 "connect_timeout=5",
		 f.port);
	struct event_base *base = event_base_new();
	struct pgpool *pool = pgpool_new(base, conninfo, 1);
	cr_assert_not_null(pool);
	run_for_ms(base, 300);

	const char **params = calloc(TOO_MANY_PARAMS, sizeof(*params));
	struct probe p = {0};
	p.in_call = true;
	cr_assert(pgpool_query(pool, "SELECT 1", TOO_MANY_PARAMS, params, on_done, &p));
	p.in_call = false;
	free(params);
	/* freed before the loop ran again: the callback comes from pgpool_free */
	pgpool_free(pool);
	cr_expect_not(p.inside);
	cr_expect_eq(p.calls, 1);
	cr_expect_not(p.had_result);
	event_base_free(base);
	fake_pg_stop(&f);
}
