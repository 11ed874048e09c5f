/*
 * queue.c - the Redis schedule (see queue.h for the model).
 *
 * The Lua scripts make each move between `due` and `inflight` atomic, so an
 * id is always in exactly one of the two sets (or in neither, when Redis
 * lost it and the reconciler has not yet put it back).
 */
#include "core/queue.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/outage.h"

#define KEY_MAX 256
#define ID_STR 24
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define SYNC_CONNECT_TIMEOUT_S 2
#define REQUEUE_MAX "1000"

/*
 * TAKE. KEYS[1]=lanes KEYS[2]=inflight KEYS[3]=rr
 * ARGV[1]=now ARGV[2]=deadline ARGV[3]=max ARGV[4]=prefix
 * Reads up to max due ids from every lane, then takes them one lane at a
 * time in rotation, starting at a lane that moves on with every call.
 */
static const char LUA_TAKE[] =
	"local lanes = redis.call('SMEMBERS', KEYS[1])\n"
	"local nl = #lanes\n"
	"if nl == 0 then return {} end\n"
	"table.sort(lanes)\n"
	"local max = tonumber(ARGV[3])\n"
	"local start = redis.call('INCR', KEYS[3]) % nl\n"
	"local lists = {}\n"
	"for i = 1, nl do\n"
	"  local lane = lanes[((start + i - 1) % nl) + 1]\n"
	"  local key = ARGV[4] .. 'due:' .. lane\n"
	"  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[1], 'LIMIT', 0, max)\n"
	"  if #ids == 0 and redis.call('ZCARD', key) == 0 then\n"
	"    redis.call('SREM', KEYS[1], lane)\n"
	"  end\n"
	"  if #ids > 0 then lists[#lists + 1] = {lane, key, ids} end\n"
	"end\n"
	"local out = {}\n"
	"local idx = 1\n"
	"while #out < max do\n"
	"  local progress = false\n"
	"  for _, l in ipairs(lists) do\n"
	"    local id = l[3][idx]\n"
	"    if id and #out < max then\n"
	"      redis.call('ZREM', l[2], id)\n"
	"      local m = l[1] .. ':' .. id\n"
	"      redis.call('ZADD', KEYS[2], ARGV[2], m)\n"
	"      out[#out + 1] = m\n"
	"      progress = true\n"
	"    end\n"
	"  end\n"
	"  if not progress then break end\n"
	"  idx = idx + 1\n"
	"end\n"
	"return out\n";

/* RETRY. KEYS[1]=lanes KEYS[2]=inflight ARGV[1]=lane ARGV[2]=id ARGV[3]=due ARGV[4]=prefix */
static const char LUA_RETRY[] =
	"redis.call('ZREM', KEYS[2], ARGV[1] .. ':' .. ARGV[2])\n"
	"redis.call('ZADD', ARGV[4] .. 'due:' .. ARGV[1], ARGV[3], ARGV[2])\n"
	"redis.call('SADD', KEYS[1], ARGV[1])\n"
	"return 1\n";

/* REQUEUE. KEYS[1]=lanes KEYS[2]=inflight ARGV[1]=now ARGV[2]=max ARGV[3]=prefix */
static const char LUA_REQUEUE[] =
	"local ms = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])\n"
	"for _, m in ipairs(ms) do\n"
	"  local sep = string.find(m, ':', 1, true)\n"
	"  redis.call('ZREM', KEYS[2], m)\n"
	"  if sep then\n"
	"    local lane = string.sub(m, 1, sep - 1)\n"
	"    redis.call('ZADD', ARGV[3] .. 'due:' .. lane, 'NX', ARGV[1], string.sub(m, sep + 1))\n"
	"    redis.call('SADD', KEYS[1], lane)\n"
	"  end\n"
	"end\n"
	"return #ms\n";

/* DEPTH. KEYS[1]=lanes KEYS[2]=inflight ARGV[1]=prefix */
static const char LUA_DEPTH[] = "local n = redis.call('ZCARD', KEYS[2])\n"
				"for _, lane in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
				"  n = n + redis.call('ZCARD', ARGV[1] .. 'due:' .. lane)\n"
				"end\n"
				"return n\n";

struct keys {
	char lanes[KEY_MAX], inflight[KEY_MAX], rr[KEY_MAX];
};

static void keys_for(const char *prefix, struct keys *k)
{
	snprintf(k->lanes, KEY_MAX, "%slanes", prefix);
	snprintf(k->inflight, KEY_MAX, "%sinflight", prefix);
	snprintf(k->rr, KEY_MAX, "%srr", prefix);
}

static void lane_key(const char *prefix, int64_t lane, char out[KEY_MAX])
{
	snprintf(out, KEY_MAX, "%sdue:%" PRId64, prefix, lane);
}

/* ------------------------------------------------------------------ loop */

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

bool queue_role_is_master(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	       r->element[0]->type == REDIS_REPLY_STRING &&
	       strcmp(r->element[0]->str, "master") == 0;
}

bool queue_reply_readonly(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR && r->str && strstr(r->str, "READONLY");
}

/* ---------------------------------------------------------------- worker */

/*
 * A worker's reply: -READONLY means the server was demoted to replica and
 * the context is as good as lost, so it is marked broken (rc->err) and the
 * worker reconnects (to the primary the sentinels name) before its next turn.
 */
static redisReply *sync_checked(redisContext *rc, redisReply *r)
{
	if (queue_reply_readonly(r) && !rc->err) {
		rc->err = REDIS_ERR_OTHER;
		snprintf(rc->errstr, sizeof(rc->errstr), "READONLY: the server is a replica now");
	}
	return r;
}

redisContext *queue_sync_connect(const char *host, int port, char *why, size_t whylen)
{
	struct timeval tv = {SYNC_CONNECT_TIMEOUT_S, 0};
	redisContext *rc = redisConnectWithTimeout(host, port, tv);

	if (!rc || rc->err) {
		if (why)
			snprintf(why, whylen, "%s", rc ? rc->errstr : "out of memory");
		redisFree(rc);
		return NULL;
	}
	return rc;
}

static bool parse_member(const char *s, struct queue_item *out)
{
	char *end;
	long long lane = strtoll(s, &end, 10);
	if (end == s || *end != ':')
		return false;
	const char *idp = end + 1;
	long long id = strtoll(idp, &end, 10);
	if (end == idp || *end)
		return false;
	out->lane = lane;
	out->id = id;
	return true;
}

static void member_of(const struct queue_item *it, char out[2 * ID_STR])
{
	snprintf(out, 2 * ID_STR, "%" PRId64 ":%" PRId64, it->lane, it->id);
}

int queue_sync_take(redisContext *rc, const char *prefix, int64_t now_ms, int64_t visibility_ms,
		    struct queue_item *items, int max)
{
	struct keys k;
	keys_for(prefix, &k);

	redisReply *r =
		sync_checked(rc, redisCommand(rc, "EVAL %s 3 %s %s %s %lld %lld %d %s", LUA_TAKE,
					      k.lanes, k.inflight, k.rr, (long long)now_ms,
					      (long long)(now_ms + visibility_ms), max, prefix));
	if (!r)
		return -1;
	int n = -1;
	if (r->type == REDIS_REPLY_ARRAY) {
		n = 0;
		for (size_t i = 0; i < r->elements && n < max; i++) {
			redisReply *e = r->element[i];
			if (e->type == REDIS_REPLY_STRING && parse_member(e->str, &items[n]))
				n++;
		}
	} else if (r->type == REDIS_REPLY_ERROR) {
		log_warn("redis(worker): take: %s", r->str);
	}
	freeReplyObject(r);
	return n;
}

bool queue_sync_ack(redisContext *rc, const char *prefix, const struct queue_item *items, size_t n)
{
	struct keys k;
	keys_for(prefix, &k);
	if (n == 0)
		return true;

	size_t argc = 2 + n;
	const char **argv = calloc(argc, sizeof(*argv));
	char(*buf)[2 * ID_STR] = calloc(n, 2 * ID_STR);
	bool ok = false;
	if (argv && buf) {
		argv[0] = "ZREM";
		argv[1] = k.inflight;
		for (size_t i = 0; i < n; i++) {
			member_of(&items[i], buf[i]);
			argv[2 + i] = buf[i];
		}
		redisReply *r = sync_checked(rc, redisCommandArgv(rc, (int)argc, argv, NULL));
		ok = r && r->type == REDIS_REPLY_INTEGER;
		if (r)
			freeReplyObject(r);
	}
	free(argv);
	free(buf);
	return ok;
}

bool queue_sync_retry(redisContext *rc, const char *prefix, const struct queue_item *item,
		      int64_t due_ms)
{
	struct keys k;
	keys_for(prefix, &k);

	redisReply *r =
		sync_checked(rc, redisCommand(rc, "EVAL %s 2 %s %s %lld %lld %lld %s", LUA_RETRY,
					      k.lanes, k.inflight, (long long)item->lane,
					      (long long)item->id, (long long)due_ms, prefix));
	bool ok = r && r->type == REDIS_REPLY_INTEGER;
	if (r)
		freeReplyObject(r);
	return ok;
}

bool queue_sync_schedule(redisContext *rc, const char *prefix, const struct queue_item *items,
			 const int64_t *due_ms, size_t n)
{
	const char **argv = calloc(3 + 2 * n, sizeof(*argv));
	char(*buf)[ID_STR] = calloc(2 * n + 1, ID_STR);
	bool *done = calloc(n + 1, sizeof(*done));
	char key[KEY_MAX], lanes[KEY_MAX], lanebuf[ID_STR];
	int sent = 0;
	bool ok = argv && buf && done;

	snprintf(lanes, sizeof(lanes), "%slanes", prefix);
	/* one ZADD + one SADD per distinct lane, all appended before reading */
	for (size_t i = 0; ok && i < n; i++) {
		if (done[i])
			continue;
		int64_t lane = items[i].lane;
		size_t argc = 3;
		lane_key(prefix, lane, key);
		argv[0] = "ZADD";
		argv[1] = key;
		argv[2] = "NX";
		for (size_t j = i; j < n; j++) {
			if (done[j] || items[j].lane != lane)
				continue;
			done[j] = true;
			snprintf(buf[argc - 3], ID_STR, "%" PRId64, due_ms[j]);
			snprintf(buf[argc - 2], ID_STR, "%" PRId64, items[j].id);
			argv[argc] = buf[argc - 3];
			argv[argc + 1] = buf[argc - 2];
			argc += 2;
		}
		snprintf(lanebuf, sizeof(lanebuf), "%" PRId64, lane);
		ok = redisAppendCommandArgv(rc, (int)argc, argv, NULL) == REDIS_OK &&
		     redisAppendCommand(rc, "SADD %s %s", lanes, lanebuf) == REDIS_OK;
		sent += 2;
	}
	for (int k = 0; k < sent; k++) {
		redisReply *r = NULL;
		if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
			ok = false;
			break; /* the connection is broken; the caller reconnects */
		}
		if (sync_checked(rc, r)->type == REDIS_REPLY_ERROR)
			ok = false;
		freeReplyObject(r);
	}
	free(argv);
	free(buf);
	free(done);
	return ok;
}

int queue_sync_requeue_expired(redisContext *rc, const char *prefix, int64_t now_ms)
{
	struct keys k;
	keys_for(prefix, &k);

	redisReply *r = sync_checked(rc, redisCommand(rc, "EVAL %s 2 %s %s %lld %s %s", LUA_REQUEUE,
						      k.lanes, k.inflight, (long long)now_ms,
						      REQUEUE_MAX, prefix));
	int n = -1;
	if (r && r->type == REDIS_REPLY_INTEGER)
		n = (int)r->integer;
	if (r)
		freeReplyObject(r);
	return n;
}

long long queue_sync_depth(redisContext *rc, const char *prefix)
{
	struct keys k;
	keys_for(prefix, &k);

	redisReply *r = sync_checked(
		rc, redisCommand(rc, "EVAL %s 2 %s %s %s", LUA_DEPTH, k.lanes, k.inflight, prefix));
	long long n = -1;
	if (r && r->type == REDIS_REPLY_INTEGER)
		n = r->integer;
	if (r)
		freeReplyObject(r);
	return n;
}
