/*
 * queue_lanes.c - every lane's backlog for /metrics (queue.h,
 * queue_loop_lanes): per agency, how many notifications wait, how many are
 * due, and since when the oldest is due. Three O(log n) commands a lane,
 * pipelined after one SMEMBERS, so a scrape costs one round trip and a few
 * hundred small replies whatever the backlog. Loop thread.
 */
#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/timefmt.h"
#include "core/queue.h"
#include "core/queue_impl.h"

#define LANE_CMDS 3 /* per lane: ZCARD, ZCOUNT, ZRANGE */

struct lanes_ctx {
	queue_lanes_cb cb;
	void *arg;
	char prefix[KEY_MAX];
	struct queue_lane *lanes;
	size_t n;
	size_t pending, replies; /* commands queued and not answered; answers so far */
	bool ok;
};

static void lanes_finish(struct lanes_ctx *c)
{
	c->cb(c->lanes, c->n, c->ok, c->arg);
	free(c->lanes);
	free(c);
}

/* ZCARD, ZCOUNT and ZRANGE of lane k/3 answer in turn: one connection keeps the order */
static void ql_on_lane(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct lanes_ctx *c = priv;
	size_t k = c->replies++;
	struct queue_lane *l = &c->lanes[k / LANE_CMDS];
	(void)ac;
	if (!reply)
		c->ok = false;
	else if (k % LANE_CMDS == 0 && reply->type == REDIS_REPLY_INTEGER)
		l->depth = reply->integer;
	else if (k % LANE_CMDS == 1 && reply->type == REDIS_REPLY_INTEGER)
		l->due = reply->integer;
	else if (k % LANE_CMDS == 2 && reply->type == REDIS_REPLY_ARRAY)
		l->oldest_ms = reply->elements == 2 && reply->element[1]->str
				       ? strtoll(reply->element[1]->str, NULL, 10)
				       : -1;
	else
		c->ok = false;
	if (--c->pending == 0)
		lanes_finish(c);
}

static void ql_on_members(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct lanes_ctx *c = priv;
	if (!reply || reply->type != REDIS_REPLY_ARRAY) {
		c->ok = false;
		lanes_finish(c);
		return;
	}
	size_t n = reply->elements < QUEUE_LANES_MAX ? reply->elements : QUEUE_LANES_MAX;
	c->lanes = calloc(n + 1, sizeof(*c->lanes));
	if (!c->lanes) {
		c->ok = false;
		lanes_finish(c);
		return;
	}
	char now[24];
	snprintf(now, sizeof(now), "%" PRId64, timefmt_now_ms());
	c->pending = 1; /* held until every command is queued */
	for (size_t i = 0; i < n; i++) {
		char key[KEY_MAX];
		struct queue_lane *l = &c->lanes[c->n];
		l->lane = strtoll(reply->element[i]->str ? reply->element[i]->str : "0", NULL, 10);
		l->oldest_ms = -1;
		lane_key(c->prefix, l->lane, key);
		c->n++;
		int rc = redisAsyncCommand(ac, ql_on_lane, c, "ZCARD %s", key);
		if (rc == REDIS_OK) {
			c->pending++;
			rc = redisAsyncCommand(ac, ql_on_lane, c, "ZCOUNT %s -inf %s", key, now);
		}
		if (rc == REDIS_OK) {
			c->pending++;
			rc = redisAsyncCommand(ac, ql_on_lane, c, "ZRANGE %s 0 0 WITHSCORES", key);
		}
		if (rc != REDIS_OK) {
			c->ok = false;
			break;
		}
		c->pending++;
	}
	if (!c->ok) /* a lane without all its answers: say nothing of any lane */
		c->n = 0;
	if (--c->pending == 0)
		lanes_finish(c);
}

void queue_loop_lanes(struct queue_loop *q, queue_lanes_cb cb, void *arg)
{
	struct lanes_ctx *c = calloc(1, sizeof(*c));
	redisAsyncContext *ac = queue_loop_async(q);
	if (c && ac) {
		c->cb = cb;
		c->arg = arg;
		c->ok = true;
		snprintf(c->prefix, sizeof(c->prefix), "%s", queue_loop_prefix(q));
		if (redisAsyncCommand(ac, ql_on_members, c, "SMEMBERS %slanes", c->prefix) ==
		    REDIS_OK)
			return;
	}
	free(c);
	cb(NULL, 0, false, arg);
}
