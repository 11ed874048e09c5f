/*
 * sdnotify.h - the few lines of the systemd notify protocol berichtd needs
 * (Type=notify: READY=1, RELOADING=1, STOPPING=1, STATUS=...), written
 * against $NOTIFY_SOCKET directly so the daemon does not link libsystemd.
 * A no-op when not started by systemd.
 */
#ifndef BERICHTD_SDNOTIFY_H
#define BERICHTD_SDNOTIFY_H

#include <stdbool.h>

bool sdnotify(const char *state);

#endif
