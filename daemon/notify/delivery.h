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

/*
 * SIGHUP, in two steps so that nothing changes unless everything is right.
 * delivery_gen_new checks and loads what the workers read of cfg (the
 * templates of templates.dir, quiet hours); on a problem it returns NULL
 * with one line per problem in err. delivery_reload hands the generation
 * to the workers (each takes it at its next use) and sets the delivery
 * rate limits; d owns it from then on. cfg must live as long as d. Loop.
 */
struct delivery_gen;
struct delivery_gen *delivery_gen_new(const struct config *cfg, char *err, size_t errlen);
void delivery_gen_free(struct delivery_gen *g);
void delivery_reload(struct delivery *d, struct delivery_gen *g);

/*
 * SIGTERM without blocking the loop: asks the workers to finish the batch
 * they have (its mails sent and recorded) and take no more;
 * delivery_running says how many have not returned yet.
 */
void delivery_ask_stop(struct delivery *d);
int delivery_running(struct delivery *d);

/*
 * Claims whose reply a worker never saw (claim.c): they may have committed,
 * so their rows may be 'sending' under (*instance, token) with no worker
 * holding them. delivery_lost_claims takes up to max of the tokens (0 when
 * none or d is NULL); delivery_lost_claims_back puts them back when they
 * could not be returned. For the reconciler; any thread.
 */
int delivery_lost_claims(struct delivery *d, int64_t *tokens, int max, int *instance);
void delivery_lost_claims_back(struct delivery *d, const int64_t *tokens, int n);

/* Asks the workers to finish their current batch, joins and frees them. */
void delivery_stop(struct delivery *d);

#endif
