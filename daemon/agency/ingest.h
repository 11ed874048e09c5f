/*
 * ingest.h - storing submitted messages, with group commit.
 *
 * Items from any number of concurrent requests are collected while a
 * previous statement runs and written together in one statement (one
 * transaction): the message rows and their notification rows. Each item's
 * owner is told its outcome only after that commit. Redis is written after
 * the commit; a crash in between loses nothing (the reconciler finds the row).
 *
 * Deadlines: every item carries its own, [postgres] ingest_timeout after its
 * request arrived. An item still queued when it passes is dropped unsent
 * (INGEST_EXPIRED: not stored); one whose statement is still running is
 * answered INGEST_UNCONFIRMED while the statement goes on. If that statement
 * commits after all, its notifications are scheduled all the same, and a
 * retry with the same referentie finds the stored message.
 *
 * The engine knows nothing of HTTP: owners learn outcomes through
 * ingest_item.done (ingest_http.c answers POST /v1/berichten, batch.c
 * POST /v1/batches).
 *
 * Loop thread only.
 */
#ifndef BERICHTD_INGEST_H
#define BERICHTD_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "agency/ingest_item.h"
#include "core/app.h"

struct ingest *ingest_new(struct app *app);
void ingest_free(struct ingest *in);

/* The deadline of an item whose request arrives now: now + ingest_timeout. */
int64_t ingest_deadline(const struct ingest *in);

/*
 * Queues an item whose deadline_us is set. item->done runs once: after the
 * commit, the failure or the deadline; usually later, but from inside this
 * call when the deadline has passed already or the pool refuses the query.
 * done must not submit items itself. Once done has run, ingest no longer
 * refers to the item: the owner may free it.
 */
void ingest_submit(struct ingest *in, struct ingest_item *item);

/* Items queued or being written. */
int ingest_pending(const struct ingest *in);

/*
 * Most items queued or being written; beyond it new submissions are refused
 * with 503 (PostgreSQL is too slow), so memory and latency stay bounded.
 */
#define INGEST_PENDING_MAX 50000

/* Whether n more items would exceed INGEST_PENDING_MAX. */
bool ingest_overloaded(const struct ingest *in, int n);

#endif
