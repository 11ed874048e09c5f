/*
 * sentinel.c - see sentinel.h.
 *
 * The loop's lookup runs on a joinable thread that writes one byte to a
 * pipe when it is done; the loop watches the pipe, joins the thread and
 * calls back. libevent is not set up for threads (no evthread), so the
 * thread touches nothing of the loop's but its end of the pipe.
 */
#include "core/sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "core/queue.h"

#define HOST_MAX 256
#define WHY_MAX 160

struct lookup {
	const char *name;
	char *host;
	size_t hostlen;
	int *port;
	char *why;
	size_t whylen;
	bool found;
};

#include <stdarg.h>

static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* One sentinel: connect, ask, close. */
static bool ask_one(const char *shost, int sport, void *arg)
{
	struct lookup *l = arg;
	struct timeval tv = {0, SENTINEL_TIMEOUT_MS * 1000};
	redisContext *c = redisConnectWithTimeout(shost, sport, tv);

	if (!c || c->err) {
		say(l->why, l->whylen, "sentinel %s:%d: %s", shost, sport,
		    c ? c->errstr : "out of memory");
		redisFree(c);
		return true; /* the next one */
	}
	redisSetTimeout(c, tv);
	redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", l->name);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING && strlen(r->element[0]->str) < l->hostlen) {
		long p = strtol(r->element[1]->str, NULL, 10);
		if (p > 0 && p < 65536) {
			snprintf(l->host, l->hostlen, "%s", r->element[0]->str);
			*l->port = (int)p;
			l->found = true;
		}
	}
	if (!l->found)
		say(l->why, l->whylen, "sentinel %s:%d: %s", shost, sport,
		    !r                             ? c->errstr
		    : r->type == REDIS_REPLY_ERROR ? r->str
						   : "knows no primary of that name");
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return !l->found; /* stop at the first answer */
}

bool sentinel_lookup(const char *sentinels, const char *name, char *host, size_t hostlen, int *port,
		     char *why, size_t whylen)
{
	struct lookup l = {name, host, hostlen, port, why, whylen, false};

	say(why, whylen, "no sentinels");
	config_hostports_each(sentinels, ask_one, &l);
	return l.found;
}

redisContext *redis_sync_open(const char *sentinels, const char *name, const char *host, int port,
			      char *why, size_t whylen)
{
	if (!sentinels || !*sentinels)
		return queue_sync_connect(host, port, why, whylen);

	char mhost[HOST_MAX];
	int mport;
	if (!sentinel_lookup(sentinels, name, mhost, sizeof(mhost), &mport, why, whylen))
		return NULL;
	redisContext *rc = queue_sync_connect(mhost, mport, why, whylen);
	if (!rc)
		return NULL;
	redisReply *r = redisCommand(rc, "ROLE");
	bool master = queue_role_is_master(r);
	if (!master)
		say(why, whylen, "%s:%d named by the sentinels is not the primary%s", mhost, mport,
		    r ? "" : " (no answer to ROLE)");
	if (r)
		freeReplyObject(r);
	if (!master) {
		redisFree(rc);
		return NULL;
	}
	return rc;
}

int sentinel_config_warn(const struct config *cfg, FILE *out)
{
	if (!cfg->redis_sentinels || !*cfg->redis_sentinels)
		return 0;
	bool url = cfg->redis_url && *cfg->redis_url;
	/* the defaults (127.0.0.1:6379) cannot be told from the same values written out */
	bool hp = strcmp(cfg->redis_host, "127.0.0.1") != 0 || cfg->redis_port != 6379;
	if (!url && !hp)
		return 0;
	fprintf(out,
		"%s: warning: [redis] sentinels is set, so %s %s ignored: the primary is the one "
		"the sentinels name (master_name = %s)\n",
		cfg->path, url ? "url" : "host and port", url ? "is" : "are",
		cfg->redis_master_name);
	return 1;
}

/* ------------------------------------------------------------- the loop's */

struct sentinel_ask {
	char *sentinels, *name;
	struct queue_loop *q;
	int pipe[2];
	struct event *done_ev;
	pthread_t thread;
	bool running;
	/* written by the thread, read by the loop after the join */
	bool found;
	char host[HOST_MAX];
	int port;
	char why[WHY_MAX];
};

static void *ask_main(void *arg)
{
	struct sentinel_ask *a = arg;
	a->found = sentinel_lookup(a->sentinels, a->name, a->host, sizeof(a->host), &a->port,
				   a->why, sizeof(a->why));
	ssize_t w;
	do
		w = write(a->pipe[1], "x", 1);
	while (w < 0 && errno == EINTR);
	return NULL;
}

static void ask_join(struct sentinel_ask *a)
{
	char b;
	pthread_join(a->thread, NULL);
	a->running = false;
	while (read(a->pipe[0], &b, 1) > 0) {
	}
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct sentinel_ask *a = arg;
	(void)fd;
	(void)what;

	if (!a->running)
		return;
	ask_join(a);
	if (a->found)
		queue_loop_found(a->q, a->host, a->port);
	else
		queue_loop_not_found(a->q, a->why);
}

static void ask_free(void *arg)
{
	struct sentinel_ask *a = arg;
	if (!a)
		return;
	if (a->running)
		ask_join(a);
	if (a->done_ev)
		event_free(a->done_ev);
	for (int i = 0; i < 2; i++)
		if (a->pipe[i] >= 0)
			close(a->pipe[i]);
	free(a->sentinels);
	free(a->name);
	free(a);
}

/* The queue wants an address: a lookup, unless one runs (its answer comes). */
static void ask_start(struct queue_loop *q, void *arg)
{
	struct sentinel_ask *a = arg;
	a->q = q;
	if (a->running)
		return;
	if (pthread_create(&a->thread, NULL, ask_main, a) != 0) {
		queue_loop_not_found(q, "cannot start the sentinel lookup");
		return;
	}
	a->running = true;
}

struct queue_loop *sentinel_queue_loop_new(struct event_base *base, const char *sentinels,
					   const char *name, const char *prefix)
{
	struct sentinel_ask *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->pipe[0] = a->pipe[1] = -1;
	a->sentinels = strdup(sentinels);
	a->name = strdup(name);
	if (!a->sentinels || !a->name || pipe2(a->pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    !(a->done_ev = event_new(base, a->pipe[0], EV_READ | EV_PERSIST, on_done, a)) ||
	    event_add(a->done_ev, NULL) != 0) {
		ask_free(a);
		return NULL;
	}
	struct queue_finder f = {ask_start, ask_free, a};
	return queue_loop_new_found(base, prefix, f); /* frees a when it fails */
}
