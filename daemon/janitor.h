/*
 * janitor.h - retention: purges message metadata past the citizen's
 * bewaartermijnDagen (accounts.retention_days, bounded by [retention]
 * min_days/max_days, default_days when unset), and messages the citizen
 * deleted, but never before the message's statistics window has closed
 * (the end of its cohort day in [notify] timezone plus 42 days), so that
 * frozen reports never change.
 *
 * Every [retention] interval it deletes in batches of [retention] batch rows
 * (one short statement each, FOR UPDATE SKIP LOCKED, so several instances
 * share the work and no long lock is held); a full batch is followed at once
 * by the next one. Their notifications go with them, in the same statement.
 * Asynchronous on the event loop; loop thread only.
 */
#ifndef BERICHTD_JANITOR_H
#define BERICHTD_JANITOR_H

#include "app.h"

/* Days after publication in which opens count for the statistics (6 weeks). */
#define JANITOR_STATS_WINDOW_DAYS 42

struct janitor *janitor_start(struct app *app);
void janitor_free(struct janitor *j);

#endif
