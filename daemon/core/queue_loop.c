/*
 * queue_loop.c - the event loop's Redis connection (queue.h, queue_loop_*):
 * hiredis async on libevent, reconnect with jittered backoff, one log line
 * an outage (outage.h); with a finder (Redis Sentinel, sentinel.h) the
 * address is asked anew on every connect and ROLE must say master.
 * Fire-and-forget schedule writes: what Redis misses, the reconciler adds.
 */
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/outage.h"
#include "core/queue.h"
#include "core/queue_impl.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000

enum ql_state { QL_CONNECTING, QL_UP, QL_BACKOFF };

struct queue_loop {
	struct event_base *base;
	char *host;
	int port;
	char *prefix;
	struct keys keys;
	redisAsyncContext *ac;
	enum ql_state state;
	struct event *timer;
	int backoff_ms;
	bool closing;
	bool found; /* the address comes from finder, and ROLE must say master */
	struct queue_finder finder;
	struct outage down; /* failed connects: one line an outage, not one a backoff */
};

static void ql_connect(struct queue_loop *q);

static void ql_backoff(struct queue_loop *q)
{
	q->ac = NULL;
	q->state = QL_BACKOFF;
	if (q->closing)
		return;
	int ms = q->backoff_ms / 2 + (int)(random() % (q->backoff_ms / 2 + 1));
	q->backoff_ms = q->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : q->backoff_ms * 2;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(q->timer, &tv);
}

static void ql_up(struct queue_loop *q)
{
	q->state = QL_UP;
	q->backoff_ms = RECONNECT_MIN_MS;
	log_info("redis: connected");
	outage_ok(&q->down, clock_mono_ms());
}

/* A replica (stale sentinel, or a demoted primary) is a failed attempt. */
static void ql_not_primary(struct queue_loop *q, redisAsyncContext *ac, const char *why)
{
	outage_fail(&q->down, why, 0, clock_mono_ms());
	q->state = QL_CONNECTING; /* nothing more goes to it */
	if (!(ac->c.flags & REDIS_DISCONNECTING))
		redisAsyncDisconnect(ac); /* then ql_on_disconnect backs off */
}

static void ql_on_role(redisAsyncContext *ac, void *r, void *priv)
{
	struct queue_loop *q = ac->data;
	(void)priv;
	if (!r || q->closing)
		return; /* disconnected meanwhile: ql_on_disconnect has it */
	if (queue_role_is_master(r))
		ql_up(q);
	else
		ql_not_primary(q, ac, "the server the sentinels named is not the primary");
}

static void ql_on_connect(const redisAsyncContext *ac, int status)
{
	struct queue_loop *q = ac->data;

	if (status != REDIS_OK) {
		outage_fail(&q->down, ac->errstr, 0, clock_mono_ms());
		ql_backoff(q); /* hiredis frees ac after this callback */
		return;
	}
	if (q->found) {
		/* a sentinel may be stale: only the primary is "up" */
		if (redisAsyncCommand(q->ac, ql_on_role, NULL, "ROLE") != REDIS_OK)
			redisAsyncDisconnect(q->ac);
		return;
	}
	ql_up(q);
}

static void ql_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct queue_loop *q = ac->data;

	if (!q->closing)
		log_warn("redis: disconnected%s%s", status == REDIS_OK ? "" : ": ",
			 status == REDIS_OK ? "" : ac->errstr);
	ql_backoff(q);
}

static void ql_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ql_connect(arg);
}

static void ql_connect_to(struct queue_loop *q, const char *host, int port)
{
	q->state = QL_CONNECTING;
	q->ac = redisAsyncConnect(host, port);
	if (!q->ac) {
		ql_backoff(q);
		return;
	}
	if (q->ac->err) {
		outage_fail(&q->down, q->ac->errstr, 0, clock_mono_ms());
		redisAsyncFree(q->ac);
		ql_backoff(q);
		return;
	}
	q->ac->data = q;
	redisLibeventAttach(q->ac, q->base);
	redisAsyncSetConnectCallback(q->ac, ql_on_connect);
	redisAsyncSetDisconnectCallback(q->ac, ql_on_disconnect);
}

static void ql_connect(struct queue_loop *q)
{
	if (!q->found) {
		ql_connect_to(q, q->host, q->port);
		return;
	}
	q->state = QL_CONNECTING;
	q->finder.find(q, q->finder.arg); /* answers with queue_loop_found or _not_found */
}

void queue_loop_found(struct queue_loop *q, const char *host, int port)
{
	if (!q->closing && q->state == QL_CONNECTING && !q->ac)
		ql_connect_to(q, host, port);
}

void queue_loop_not_found(struct queue_loop *q, const char *why)
{
	if (q->closing || q->state != QL_CONNECTING || q->ac)
		return;
	outage_fail(&q->down, why, 0, clock_mono_ms());
	ql_backoff(q);
}

static struct queue_loop *ql_new(struct event_base *base, const char *host, int port,
				 const char *prefix, const struct queue_finder *f)
{
	struct queue_loop *q = calloc(1, sizeof(*q));
	if (!q) {
		if (f && f->free)
			f->free(f->arg);
		return NULL;
	}
	outage_init(&q->down, "redis", "Redis");
	if (f) {
		q->found = true;
		q->finder = *f;
	}
	q->base = base;
	q->host = strdup(host);
	q->port = port;
	q->backoff_ms = RECONNECT_MIN_MS;
	q->prefix = strdup(prefix);
	keys_for(prefix, &q->keys);
	q->timer = evtimer_new(base, ql_on_timer, q);
	if (!q->host || !q->prefix || !q->timer) {
		queue_loop_free(q);
		return NULL;
	}
	ql_connect(q);
	return q;
}

struct queue_loop *queue_loop_new(struct event_base *base, const char *host, int port,
				  const char *prefix)
{
	return ql_new(base, host, port, prefix, NULL);
}

struct queue_loop *queue_loop_new_found(struct event_base *base, const char *prefix,
					struct queue_finder f)
{
	return ql_new(base, "", 0, prefix, &f);
}

void queue_loop_free(struct queue_loop *q)
{
	if (!q)
		return;
	q->closing = true;
	if (q->found && q->finder.free)
		q->finder.free(q->finder.arg); /* waits for a lookup it runs; calls nothing */
	if (q->ac)
		redisAsyncFree(q->ac); /* runs pending callbacks with a NULL reply */
	if (q->timer)
		event_free(q->timer);
	free(q->host);
	free(q->prefix);
	outage_destroy(&q->down);
	free(q);
}

redisAsyncContext *queue_loop_async(const struct queue_loop *q)
{
	return q->state == QL_UP ? q->ac : NULL;
}

const char *queue_loop_prefix(const struct queue_loop *q)
{
	return q->prefix;
}

bool queue_loop_connected(const struct queue_loop *q)
{
	return q->state == QL_UP;
}

static void ql_on_zadd(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct queue_loop *q = ac->data;
	(void)priv;
	if (!reply || reply->type != REDIS_REPLY_ERROR)
		return;
	log_warn("redis: ZADD failed: %s", reply->str);
	/* a primary demoted to replica keeps our connection: find the primary again */
	if (queue_reply_readonly(reply) && !q->closing)
		ql_not_primary(q, ac, "the primary became a replica (READONLY)");
}

/* One lane's ZADD NX, then SADD of the lane: in that order, a concurrent
 * take that empties the lane cannot strand the new ids (see LUA_TAKE). */
static void ql_schedule_lane(struct queue_loop *q, int64_t lane, const int64_t *ids,
			     const int64_t *due_ms, size_t n)
{
	char key[KEY_MAX], lanebuf[ID_STR];
	size_t argc = 3 + 2 * n;
	const char **argv = calloc(argc, sizeof(*argv));
	size_t *argvlen = calloc(argc, sizeof(*argvlen));
	char(*buf)[ID_STR] = calloc(2 * n, ID_STR);
	if (!argv || !argvlen || !buf)
		goto out;
	lane_key(q->prefix, lane, key);
	argv[0] = "ZADD";
	argv[1] = key;
	argv[2] = "NX";
	for (size_t i = 0; i < n; i++) {
		snprintf(buf[2 * i], ID_STR, "%" PRId64, due_ms[i]);
		snprintf(buf[2 * i + 1], ID_STR, "%" PRId64, ids[i]);
		argv[3 + 2 * i] = buf[2 * i];
		argv[4 + 2 * i] = buf[2 * i + 1];
	}
	for (size_t i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	snprintf(lanebuf, sizeof(lanebuf), "%" PRId64, lane);
	if (redisAsyncCommandArgv(q->ac, ql_on_zadd, NULL, (int)argc, argv, argvlen) != REDIS_OK ||
	    redisAsyncCommand(q->ac, ql_on_zadd, NULL, "SADD %s %s", q->keys.lanes, lanebuf) !=
		    REDIS_OK)
		log_warn("redis: cannot queue ZADD");
out:
	free(argv);
	free(argvlen);
	free(buf);
}

void queue_loop_schedule_lanes(struct queue_loop *q, const int64_t *ids, const int64_t *lanes,
			       const int64_t *due_ms, size_t n)
{
	if (n == 0)
		return;
	if (q->state != QL_UP) {
		log_debug("redis: down, %zu ids left to the reconciler", n);
		return;
	}
	/* group runs of the same lane (ingest groups are mostly one agency) */
	size_t i = 0;
	while (i < n) {
		size_t j = i + 1;
		while (j < n && lanes[j] == lanes[i])
			j++;
		ql_schedule_lane(q, lanes[i], ids + i, due_ms + i, j - i);
		i = j;
	}
}

void queue_loop_schedule(struct queue_loop *q, const int64_t *ids, const int64_t *due_ms, size_t n)
{
	int64_t *lanes = calloc(n + 1, sizeof(*lanes));
	if (!lanes)
		return;
	queue_loop_schedule_lanes(q, ids, lanes, due_ms, n);
	free(lanes);
}

struct ping_ctx {
	queue_ping_cb cb;
	void *arg;
};

static void ql_on_ping(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct ping_ctx *p = priv;
	(void)ac;
	p->cb(reply && reply->type == REDIS_REPLY_STATUS, p->arg);
	free(p);
}

void queue_loop_ping(struct queue_loop *q, queue_ping_cb cb, void *arg)
{
	struct ping_ctx *p = malloc(sizeof(*p));
	if (p && q->state == QL_UP) {
		p->cb = cb;
		p->arg = arg;
		if (redisAsyncCommand(q->ac, ql_on_ping, p, "PING") == REDIS_OK)
			return;
	}
	free(p);
	cb(false, arg);
}
