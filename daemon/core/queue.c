/*
 * queue.c - the Redis schedule (see queue.h for the model).
 *
 * The Lua scripts make each move between `due` and `inflight` atomic, so an
 * id is always in exactly one of the two sets (or in neither, when Redis
 * lost it and the reconciler has not yet put it back). This file holds the
 * scripts and the workers' blocking side; the loop's connection is in
 * queue_loop.c.
 */
#include "core/queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/queue_impl.h"

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
