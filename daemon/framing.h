/*
 * framing.h - a request body over [http] max_body answered with our own
 * 413 problem (API-Version and all), without ever buffering that body.
 *
 * libevent 2.1 decides about an over-long body between the headers and the
 * body, where it offers no hook, and answers with its own HTML page. So
 * each connection's bufferevent is made here (evhttp_set_bevcb) with a
 * callback on its input buffer that sees the bytes before evhttp does:
 * request heads are held until complete, then passed on; a head whose
 * Content-Length is over the limit is passed on with Content-Length 0 and
 * the header FRAMING_HEADER, and the body that follows is discarded as it
 * arrives. http.c answers a request carrying that header with 413. A
 * chunked body is left to evhttp's own limit (and its own 413).
 *
 * Connection state is freed by a periodic sweep once evhttp has freed the
 * connection (its callbacks are gone); the sweep holds a reference so the
 * bufferevent outlives evhttp's free until then.
 *
 * Loop thread only.
 */
#ifndef BERICHTD_FRAMING_H
#define BERICHTD_FRAMING_H

#include <event2/event.h>
#include <stdint.h>

#define FRAMING_HEADER "X-Berichtd-Te-Groot"

struct framing;

struct framing *framing_new(struct event_base *base, int64_t max_body);
/* Call after evhttp_free: releases the connections still tracked. */
void framing_free(struct framing *bl);

/* For evhttp_set_bevcb(http, framing_bev, bl). */
struct bufferevent *framing_bev(struct event_base *base, void *bl);

#endif
