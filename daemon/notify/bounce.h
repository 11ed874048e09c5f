/*
 * bounce.h - delivery status notifications coming back from the relay:
 * POST /v1/bounces (role relay, the raw DSN as body) and `berichtd bounce`
 * (the DSN on standard input, for a pipe from the MTA). A hard bounce marks
 * the notification bounced and the account's address as bouncing, which
 * stops mail to it and raises the portal's herstelEmail prompt. The agency
 * never learns of it.
 */
#ifndef BERICHTD_BOUNCE_H
#define BERICHTD_BOUNCE_H

#include <stdio.h>

#include "common/config.h"
#include "core/http.h"

/* The relay routes this module serves (NULL-terminated, listed in routes.c). */
extern const struct http_route bounce_routes[];

/* `berichtd bounce`: reads a DSN from in; returns the exit code. Blocking. */
int bounce_cli(const struct config *cfg, FILE *in);

#endif
