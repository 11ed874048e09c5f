/*
 * queue_impl.h - what queue.c (the scripts, the workers' side) and
 * queue_loop.c (the event loop's connection) share: the key names.
 */
#ifndef BERICHTD_QUEUE_IMPL_H
#define BERICHTD_QUEUE_IMPL_H

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
	snprintf(out, KEY_MAX, "%sdue:%" PRId64, prefix, lane);
}

#endif
