/*
 * queue_impl.h - what queue.c shares with queue_lanes.c inside core/.
 * Loop thread.
 */
#ifndef BERICHTD_QUEUE_IMPL_H
#define BERICHTD_QUEUE_IMPL_H

#include <hiredis/async.h>
#include <stdint.h>

struct queue_loop;

#define QUEUE_KEY_MAX 256

/* The loop's connection while it is up, else NULL. */
redisAsyncContext *queue_loop_async(const struct queue_loop *q);
/* The key prefix ([redis] key_prefix). */
const char *queue_loop_prefix(const struct queue_loop *q);
/* <prefix>due:<lane> */
void queue_lane_key(const char *prefix, int64_t lane, char out[QUEUE_KEY_MAX]);

#endif
