/*
 * reconcile.h - keeps the Redis schedule consistent with PostgreSQL.
 *
 * At start-up and every [delivery] reconcile_interval it
 *  1. returns rows stuck in 'sending' longer than the visibility timeout
 *     (their worker died) to 'scheduled', and
 *  2. re-adds every scheduled notification to the due set with ZADD NX,
 *     page by page, so a FLUSHALL, a Redis restart or a lost write after a
 *     commit never loses a notification.
 * and, once a second, returns the 'sending' rows of instances whose
 * lifeline lock has been free for 5 s (their process is gone; migration
 * 0015), so a killed instance's claims come back within seconds; first,
 * at once, the rows of this instance's claims whose reply a worker never
 * saw (their claim_token, migration 0019; claim.c).
 * Asynchronous on the event loop; loop thread only.
 */
#ifndef BERICHTD_RECONCILE_H
#define BERICHTD_RECONCILE_H

#include "core/app.h"

struct reconcile *reconcile_start(struct app *app);
void reconcile_free(struct reconcile *rc);

#endif
