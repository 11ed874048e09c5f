/*
 * queue_impl.h - what queue.c (the scripts, the workers' side),
 * queue_loop.c (the event loop's connection) and queue_lanes.c (the lanes
 * for /metrics) share: the key names, and the loop's connection.
 */
#ifndef BERICHTD_QUEUE_IMPL_H
#define BERICHTD_QUEUE_IMPL_H

#include <hiredis/async.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#define KEY_MAX 256
#define ID_STR 24

struct keys {
	char lanes[KEY_MAX], inflight[KEY_MAX], rr[KEY_MAX];
};

static inline void keys_for(const char *prefix, struct keys *k)
{
	snprintf(k->lanes, KEY_MAX, "%slanes", prefix);
	snprintf(k->inflight, KEY_MAX, "%sinflight", prefix);
	snprintf(k->rr, KEY_MAX, "%srr", prefix);
}

static inline void lane_key(const char *prefix, int64_t lane, char out[KEY_MAX])
{
	/* key_prefix is bounded far below KEY_MAX by the config; a key that
	 * would not fit is left empty, which no lane uses */
	if (snprintf(out, KEY_MAX, "%sdue:%" PRId64, prefix, lane) >= KEY_MAX)
		out[0] = '\0';
}

struct queue_loop;

/* The loop's connection while it is up, else NULL. Loop thread. */
redisAsyncContext *queue_loop_async(const struct queue_loop *q);
/* The key prefix ([redis] key_prefix). */
const char *queue_loop_prefix(const struct queue_loop *q);

#endif
