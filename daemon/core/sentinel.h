/*
 * sentinel.h - finding the Redis primary through Redis Sentinel.
 *
 * hiredis 0.14.1 has no Sentinel client, so this asks the sentinels of
 * `[redis] sentinels` in turn, `SENTINEL get-master-addr-by-name NAME`,
 * each with a short timeout, and takes the first answer. A sentinel can
 * be stale (it has not yet noticed a failover), so whoever connects to the
 * address found checks `ROLE` before using the connection; a replica is a
 * failed attempt, retried after the caller's backoff (queue_role_is_master).
 *
 * The lookup blocks (at most SENTINEL_TIMEOUT_MS per sentinel). Delivery
 * workers call it in their own threads (redis_sync_open); the event loop
 * never does: it runs the lookup on a thread of its own and is told on the
 * loop (sentinel_queue_loop_new).
 */
#ifndef BERICHTD_SENTINEL_H
#define BERICHTD_SENTINEL_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct config;

#define SENTINEL_TIMEOUT_MS 500

/*
 * Asks each sentinel of the list (host:port,...) for the primary of name.
 * True with its address in host/port; false with why (the last failure).
 * Blocks: never on the loop thread.
 */
bool sentinel_lookup(const char *sentinels, const char *name, char *host, size_t hostlen, int *port,
		     char *why, size_t whylen);

/*
 * A worker's blocking connection: without sentinels to host:port
 * (queue_sync_connect); with them, to the primary they name, verified
 * with ROLE. NULL with why on failure. Logs nothing (the caller's outage).
 */
redisContext *redis_sync_open(const char *sentinels, const char *name, const char *host, int port,
			      char *why, size_t whylen);

/*
 * check-config: a warning on out when sentinels are set together with url,
 * or host/port other than their defaults (those are ignored then). Returns
 * the number of warnings (not problems: start works).
 */
int sentinel_config_warn(const struct config *cfg, FILE *out);

/*
 * The loop's connection with sentinels: queue_loop_new_found with a finder
 * that runs sentinel_lookup on a thread of its own, one at a time, and
 * hands the address to the queue on the loop (queue_loop_found).
 */
struct queue_loop *sentinel_queue_loop_new(struct event_base *base, const char *sentinels,
					   const char *name, const char *prefix);

#endif
