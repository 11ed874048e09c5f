/*
 * queue.h - the delivery schedule in Redis (DESIGN.md section 4).
 *
 * PostgreSQL is the truth; Redis only says *when* to look at a notification.
 * Keys per deployment (prefix from the config):
 *
 *   <prefix>lanes          set of lanes that may have due ids
 *   <prefix>due:<lane>     notification id -> due time (epoch ms), one per lane
 *   <prefix>inflight       "<lane>:<id>" -> visibility deadline (epoch ms)
 *   <prefix>rr             rotation counter for round-robin over lanes
 *
 * A lane is an agency id (0 for the portal's own mails, e.g. verification).
 * Taking walks the lanes round-robin, one id from each in turn, so a batch of
 * a million from one agency cannot delay another agency's single message by
 * more than one worker batch (DESIGN.md section 5, "bulk does not starve").
 *
 * A worker atomically moves due ids into inflight (Lua), claims them in
 * PostgreSQL, sends, records, and removes them from inflight. An id whose
 * worker died comes back to its lane once its deadline passes. Everything in
 * Redis can be lost: the reconciler re-adds scheduled rows with ZADD NX.
 *
 * The Lua scripts build lane keys at run time, which a single Redis allows;
 * for Redis Cluster the prefix must carry a hash tag ("{berichtd}:").
 *
 * Two halves:
 *  - queue_loop_*: hiredis async on the event loop (loop thread only);
 *  - queue_sync_*: blocking hiredis for delivery worker threads, each with
 *    its own redisContext.
 */
#ifndef BERICHTD_QUEUE_H
#define BERICHTD_QUEUE_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue_loop;

struct queue_loop *queue_loop_new(struct event_base *base, const char *host, int port,
				  const char *prefix);

/*
 * Where the address comes from when it is not fixed (Redis Sentinel,
 * sentinel.h): on every (re)connect the queue calls find on the loop,
 * which answers later, on the loop, with queue_loop_found or
 * queue_loop_not_found (then the queue backs off and asks again). A
 * server found that way is used only once ROLE says master. free(arg)
 * runs in queue_loop_free (also when queue_loop_new_found fails).
 */
struct queue_finder {
	void (*find)(struct queue_loop *q, void *arg);
	void (*free)(void *arg);
	void *arg;
};
struct queue_loop *queue_loop_new_found(struct event_base *base, const char *prefix,
					struct queue_finder f);
void queue_loop_found(struct queue_loop *q, const char *host, int port);
void queue_loop_not_found(struct queue_loop *q, const char *why);

void queue_loop_free(struct queue_loop *q);
bool queue_loop_connected(const struct queue_loop *q);

/*
 * Adds ids with their due times to their lanes (ZADD NX: an id already
 * scheduled keeps its time). Fire and forget: when Redis is down the
 * reconciler repairs it. lanes[i] is the agency id of ids[i].
 */
void queue_loop_schedule_lanes(struct queue_loop *q, const int64_t *ids, const int64_t *lanes,
			       const int64_t *due_ms, size_t n);

/* The same, all in lane 0 (the portal's own mails). */
void queue_loop_schedule(struct queue_loop *q, const int64_t *ids, const int64_t *due_ms, size_t n);

/* PING; cb(ok, arg) runs later on the loop, also when disconnected (ok false). */
typedef void (*queue_ping_cb)(bool ok, void *arg);
void queue_loop_ping(struct queue_loop *q, queue_ping_cb cb, void *arg);

/* Whether a ROLE reply says master; whether a reply is -READONLY (a replica now). */
bool queue_role_is_master(const redisReply *r);
bool queue_reply_readonly(const redisReply *r);

/* ---- worker side (blocking) ---- */

/*
 * Connects with a timeout; NULL on failure, and why (hiredis's words) in
 * why unless it is NULL. Logs nothing: the workers log one line per outage.
 * A reply -READONLY to any queue_sync_* call marks rc broken (rc->err):
 * reconnect (with sentinels, redis_sync_open in sentinel.h).
 */
redisContext *queue_sync_connect(const char *host, int port, char *why, size_t whylen);

/* A taken id with its lane; the pair is its name in the inflight set. */
struct queue_item {
	int64_t id;
	int64_t lane;
};

/*
 * Moves up to max ids due at or before now_ms into inflight with deadline
 * now_ms + visibility_ms, round-robin over the lanes. Returns the number
 * taken (0..max) or -1 on a Redis error (the caller reconnects).
 */
int queue_sync_take(redisContext *rc, const char *prefix, int64_t now_ms, int64_t visibility_ms,
		    struct queue_item *items, int max);

/* Done with these (sent, failed for good, or not ours): drop from inflight. */
bool queue_sync_ack(redisContext *rc, const char *prefix, const struct queue_item *items, size_t n);

/* Retry later: back into its lane at due_ms, out of inflight, atomically. */
bool queue_sync_retry(redisContext *rc, const char *prefix, const struct queue_item *item,
		      int64_t due_ms);

/*
 * Schedules new ids (ZADD NX per lane, then SADD of the lane), pipelined:
 * one round trip for the whole set. items need not be sorted by lane.
 */
bool queue_sync_schedule(redisContext *rc, const char *prefix, const struct queue_item *items,
			 const int64_t *due_ms, size_t n);

/* Inflight ids past their deadline go back to their lanes (worker died). Returns count or -1. */
int queue_sync_requeue_expired(redisContext *rc, const char *prefix, int64_t now_ms);

/* Number of ids waiting in all lanes plus inflight; -1 on error. For tests and /metrics. */
long long queue_sync_depth(redisContext *rc, const char *prefix);

#endif
