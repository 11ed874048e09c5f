/*
 * delivery.h - the delivery worker threads (DESIGN.md sections 3 and 4).
 *
 * Each worker owns a blocking PostgreSQL connection, a blocking Redis
 * connection and, per batch, one SMTP session. Its loop:
 *
 *   take due ids (Redis, Lua: due -> inflight)
 *   claim rows (PostgreSQL: scheduled -> sending; skip what is not ours)
 *   render and send the mails (libesmtp, one session for the batch)
 *   record results (sent / retry later / bounced / failed)
 *   ack (Redis: out of inflight)
 *
 * delivery_start/stop are called from the main thread.
 */
#ifndef BERICHTD_DELIVERY_H
#define BERICHTD_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/app.h"

struct delivery;

/* Loads the templates and starts cfg->delivery_workers threads. */
struct delivery *delivery_start(struct app *app, char *err, size_t errlen);

/*
 * The watchdog's question: a worker that showed no progress (a turn of its
 * loop, a claim, a line to or from the relay, a record attempt) for more
 * than limit_ms: returns its index, or -1 when every worker moves.
 * *age_ms is the longest time any worker showed none. Main thread only.
 */
int delivery_stalled(const struct delivery *d, int64_t now_ms, int64_t limit_ms, int64_t *age_ms);

/*
 * What delivery_start needs of cfg besides the services: every template
 * (templates.dir) and a usable smtp.from. One line per problem to out;
 * returns their number (for `berichtd check-config`).
 */
int delivery_check(const struct config *cfg, FILE *out);

/* Asks the workers to finish their current batch, joins and frees them. */
void delivery_stop(struct delivery *d);

#endif
