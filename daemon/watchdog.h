/*
 * watchdog.h - the systemd watchdog (WatchdogSec= in the unit).
 *
 * When systemd set WATCHDOG_USEC, a timer on the event loop sends
 * WATCHDOG=1 at half that interval, but only while every delivery worker
 * shows progress (delivery_stalled): a worker held up in a relay that
 * trickles bytes, or in a statement that never returns, stops the pings,
 * and systemd restarts the daemon (its claims come back to the schedule).
 * The timer firing at all shows the event loop itself runs.
 */
#ifndef BERICHTD_WATCHDOG_H
#define BERICHTD_WATCHDOG_H

#include "core/app.h"

struct watchdog;

/* NULL when systemd asked for no watchdog (or out of memory). */
struct watchdog *watchdog_start(struct app *app);
void watchdog_stop(struct watchdog *wd);

#endif
