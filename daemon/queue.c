/*
 * queue.c - the Redis schedule (see queue.h for the model).
 *
 * The Lua scripts make each move between `due` and `inflight` atomic, so an
 * id is always in exactly one of the two sets (or in neither, when Redis
 * lost it and the reconciler has not yet put it back).
 */
#include "queue.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define KEY_MAX 256
#define ID_STR 24
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define SYNC_CONNECT_TIMEOUT_S 2
#define REQUEUE_MAX "1000"

/* KEYS[1]=due KEYS[2]=inflight ARGV[1]=now ARGV[2]=deadline ARGV[3]=max */
static const char LUA_TAKE[] =
	"local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
	"for _, id in ipairs(ids) do\n"
	"  redis.call('ZREM', KEYS[1], id)\n"
	"  redis.call('ZADD', KEYS[2], ARGV[2], id)\n"
	"end\n"
	"return ids\n";

/* KEYS[1]=due KEYS[2]=inflight ARGV[1]=id ARGV[2]=due */
static const char LUA_RETRY[] =
	"redis.call('ZREM', KEYS[2], ARGV[1])\n"
	"redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
	"return 1\n";

/* KEYS[1]=due KEYS[2]=inflight ARGV[1]=now ARGV[2]=max */
static const char LUA_REQUEUE[] =
	"local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])\n"
	"for _, id in ipairs(ids) do\n"
	"  redis.call('ZREM', KEYS[2], id)\n"
	"  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], id)\n"
	"end\n"
	"return #ids\n";

static void keys_for(const char *prefix, char due[KEY_MAX], char inflight[KEY_MAX])
{
	snprintf(due, KEY_MAX, "%sdue", prefix);
	snprintf(inflight, KEY_MAX, "%sinflight", prefix);
}

/* ------------------------------------------------------------------ loop */

enum ql_state { QL_CONNECTING, QL_UP, QL_BACKOFF };

struct queue_loop {
	struct event_base *base;
	char *host;
	int port;
	char due_key[KEY_MAX], inflight_key[KEY_MAX];
	redisAsyncContext *ac;
	enum ql_state state;
	struct event *timer;
	int backoff_ms;
	bool closing;
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

static void ql_on_connect(const redisAsyncContext *ac, int status)
{
	struct queue_loop *q = ac->data;

	if (status != REDIS_OK) {
		log_warn("redis: connect failed: %s", ac->errstr);
		ql_backoff(q); /* hiredis frees ac after this callback */
		return;
	}
	q->state = QL_UP;
	q->backoff_ms = RECONNECT_MIN_MS;
	log_info("redis: connected");
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

static void ql_connect(struct queue_loop *q)
{
	q->state = QL_CONNECTING;
	q->ac = redisAsyncConnect(q->host, q->port);
	if (!q->ac) {
		ql_backoff(q);
		return;
	}
	if (q->ac->err) {
		log_warn("redis: connect failed: %s", q->ac->errstr);
		redisAsyncFree(q->ac);
		ql_backoff(q);
		return;
	}
	q->ac->data = q;
	redisLibeventAttach(q->ac, q->base);
	redisAsyncSetConnectCallback(q->ac, ql_on_connect);
	redisAsyncSetDisconnectCallback(q->ac, ql_on_disconnect);
}

struct queue_loop *queue_loop_new(struct event_base *base, const char *host, int port,
				  const char *prefix)
{
	struct queue_loop *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->base = base;
	q->host = strdup(host);
	q->port = port;
	q->backoff_ms = RECONNECT_MIN_MS;
	keys_for(prefix, q->due_key, q->inflight_key);
	q->timer = evtimer_new(base, ql_on_timer, q);
	if (!q->host || !q->timer) {
		queue_loop_free(q);
		return NULL;
	}
	ql_connect(q);
	return q;
}

void queue_loop_free(struct queue_loop *q)
{
	if (!q)
		return;
	q->closing = true;
	if (q->ac)
		redisAsyncFree(q->ac); /* runs pending callbacks with a NULL reply */
	if (q->timer)
		event_free(q->timer);
	free(q->host);
	free(q);
}

bool queue_loop_connected(const struct queue_loop *q)
{
	return q->state == QL_UP;
}

static void ql_on_zadd(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	(void)ac;
	(void)priv;
	if (reply && reply->type == REDIS_REPLY_ERROR)
		log_warn("redis: ZADD failed: %s", reply->str);
}

void queue_loop_schedule(struct queue_loop *q, const int64_t *ids, const int64_t *due_ms, size_t n)
{
	if (n == 0)
		return;
	if (q->state != QL_UP) {
		log_debug("redis: down, %zu ids left to the reconciler", n);
		return;
	}
	size_t argc = 3 + 2 * n;
	const char **argv = calloc(argc, sizeof(*argv));
	size_t *argvlen = calloc(argc, sizeof(*argvlen));
	char (*buf)[ID_STR] = calloc(2 * n, ID_STR);
	if (!argv || !argvlen || !buf)
		goto out;
	argv[0] = "ZADD";
	argv[1] = q->due_key;
	argv[2] = "NX";
	for (size_t i = 0; i < n; i++) {
		snprintf(buf[2 * i], ID_STR, "%" PRId64, due_ms[i]);
		snprintf(buf[2 * i + 1], ID_STR, "%" PRId64, ids[i]);
		argv[3 + 2 * i] = buf[2 * i];
		argv[4 + 2 * i] = buf[2 * i + 1];
	}
	for (size_t i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	if (redisAsyncCommandArgv(q->ac, ql_on_zadd, NULL, (int)argc, argv, argvlen) != REDIS_OK)
		log_warn("redis: cannot queue ZADD");
out:
	free(argv);
	free(argvlen);
	free(buf);
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

/* ---------------------------------------------------------------- worker */

redisContext *queue_sync_connect(const char *host, int port)
{
	struct timeval tv = {SYNC_CONNECT_TIMEOUT_S, 0};
	redisContext *rc = redisConnectWithTimeout(host, port, tv);

	if (!rc)
		return NULL;
	if (rc->err) {
		log_warn("redis(worker): connect failed: %s", rc->errstr);
		redisFree(rc);
		return NULL;
	}
	return rc;
}

static bool parse_id(const char *s, int64_t *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end)
		return false;
	*out = v;
	return true;
}

int queue_sync_take(redisContext *rc, const char *prefix, int64_t now_ms, int64_t visibility_ms,
		    int64_t *ids, int max)
{
	char due[KEY_MAX], inflight[KEY_MAX];
	keys_for(prefix, due, inflight);

	redisReply *r = redisCommand(rc, "EVAL %s 2 %s %s %lld %lld %d", LUA_TAKE, due, inflight,
				     (long long)now_ms, (long long)(now_ms + visibility_ms), max);
	if (!r)
		return -1;
	int n = -1;
	if (r->type == REDIS_REPLY_ARRAY) {
		n = 0;
		for (size_t i = 0; i < r->elements && n < max; i++) {
			redisReply *e = r->element[i];
			if (e->type == REDIS_REPLY_STRING && parse_id(e->str, &ids[n]))
				n++;
		}
	} else if (r->type == REDIS_REPLY_ERROR) {
		log_warn("redis(worker): take: %s", r->str);
	}
	freeReplyObject(r);
	return n;
}

bool queue_sync_ack(redisContext *rc, const char *prefix, const int64_t *ids, size_t n)
{
	char due[KEY_MAX], inflight[KEY_MAX];
	keys_for(prefix, due, inflight);
	if (n == 0)
		return true;

	size_t argc = 2 + n;
	const char **argv = calloc(argc, sizeof(*argv));
	char (*buf)[ID_STR] = calloc(n, ID_STR);
	bool ok = false;
	if (argv && buf) {
		argv[0] = "ZREM";
		argv[1] = inflight;
		for (size_t i = 0; i < n; i++) {
			snprintf(buf[i], ID_STR, "%" PRId64, ids[i]);
			argv[2 + i] = buf[i];
		}
		redisReply *r = redisCommandArgv(rc, (int)argc, argv, NULL);
		ok = r && r->type == REDIS_REPLY_INTEGER;
		if (r)
			freeReplyObject(r);
	}
	free(argv);
	free(buf);
	return ok;
}

bool queue_sync_retry(redisContext *rc, const char *prefix, int64_t id, int64_t due_ms)
{
	char due[KEY_MAX], inflight[KEY_MAX];
	keys_for(prefix, due, inflight);

	redisReply *r = redisCommand(rc, "EVAL %s 2 %s %s %lld %lld", LUA_RETRY, due, inflight,
				     (long long)id, (long long)due_ms);
	bool ok = r && r->type == REDIS_REPLY_INTEGER;
	if (r)
		freeReplyObject(r);
	return ok;
}

int queue_sync_requeue_expired(redisContext *rc, const char *prefix, int64_t now_ms)
{
	char due[KEY_MAX], inflight[KEY_MAX];
	keys_for(prefix, due, inflight);

	redisReply *r = redisCommand(rc, "EVAL %s 2 %s %s %lld %s", LUA_REQUEUE, due, inflight,
				     (long long)now_ms, REQUEUE_MAX);
	int n = -1;
	if (r && r->type == REDIS_REPLY_INTEGER)
		n = (int)r->integer;
	if (r)
		freeReplyObject(r);
	return n;
}
