/*
 * server.h - `berichtd run`: builds the app context, starts the event loop,
 * the HTTP API, the reconciler and the delivery workers, handles signals,
 * and tears everything down in order on SIGTERM/SIGINT.
 */
#ifndef BERICHTD_SERVER_H
#define BERICHTD_SERVER_H

#include "common/config.h"

/* Runs until a stop signal; returns the process exit code. Main thread. */
int server_run(struct config *cfg);

#endif
