/*
 * janitor.h - retention. Every [retention] interval, in batches of
 * [retention] batch rows (one short statement each, FOR UPDATE SKIP LOCKED,
 * so several instances share the work and no long lock is held; a full
 * batch is followed at once by the next one), it deletes:
 *
 *  - messages [retention] agency_record_days after publication, the same
 *    period for every message: the row is the agency's record (its GET,
 *    the idempotency of its referentie), and nothing the citizen does may
 *    change what the agency sees. Never before the statistics window has
 *    closed (the end of the cohort day in [notify] timezone plus 42 days).
 *    Their notifications go with them, in the same statement. The
 *    citizen's copy leaves the box earlier, when the citizen deletes it or
 *    its bewaartermijnDagen has passed (box.c, box_holds);
 *  - verification mails whose code has expired ([portal] verify_ttl);
 *  - mails (migrations/0009) older than both [bounce] max_age and
 *    [delivery] retry_span, once none of their rows can still go out.
 *
 * Asynchronous on the event loop; loop thread only.
 */
#ifndef BERICHTD_JANITOR_H
#define BERICHTD_JANITOR_H

#include "core/app.h"

/* Days after publication in which opens count for the statistics (6 weeks). */
#define JANITOR_STATS_WINDOW_DAYS 42

struct janitor *janitor_start(struct app *app);
void janitor_free(struct janitor *j);

#endif
