/*
 * framing.h - HTTP/1.1 message framing checked in front of evhttp, so that
 * every refusal is our own problem+json (API-Version and all) and evhttp
 * never answers with one of its HTML pages.
 *
 * libevent 2.1.12 answers malformed requests (400), unsupported methods
 * (501), an Expect other than 100-continue (417) and over-long bodies (413)
 * with evhttp_send_error, which clears every header we set, and it has no
 * hook to change that (evhttp_set_errorcb and evhttp_set_newreqcb came
 * later). So each connection's bufferevent is made here (evhttp_set_bevcb)
 * with a callback on its input buffer that sees the bytes before evhttp
 * does. Each request head is held until complete and checked as strictly as
 * RFC 9112 asks (and at least as strictly as evhttp, whose URI parser it
 * calls). Then:
 *
 *  - a valid head passes unchanged; its Content-Length body follows;
 *  - a Content-Length over max_body passes with Content-Length 0 and
 *    FRAMING_HEADER: te-groot, and the body is discarded as it arrives
 *    (the connection stays usable);
 *  - a chunked body is de-chunked here and passed on with a Content-Length
 *    (evhttp never sees chunked); over max_body it becomes the same 413,
 *    and the rest of it is discarded;
 *  - anything else evhttp would refuse, or that is ambiguous framing
 *    (Content-Length with Transfer-Encoding), is replaced by a request of
 *    our own, "GET / HTTP/1.1" with Connection: close and FRAMING_HEADER
 *    naming the fault; every later byte on that connection is dropped.
 *
 * http_serve.c answers a request carrying FRAMING_HEADER with the problem for
 * its fault, before routing. A client's own FRAMING_HEADER is removed.
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

#define FRAMING_HEADER "X-Berichtd-Fout"

/* the faults, as FRAMING_HEADER's value */
#define FRAMING_TOO_LARGE "te-groot"          /* 413: body over max_body (keep-alive) */
#define FRAMING_BAD_REQUEST "verzoek"         /* 400: request line or header field */
#define FRAMING_LENGTH "lengte"               /* 400: Content-Length, or a body where none can be */
#define FRAMING_CL_TE "cl-te"                 /* 400: Content-Length and Transfer-Encoding */
#define FRAMING_CHUNKED "chunked"             /* 400: malformed chunked body */
#define FRAMING_HEAD_TOO_LARGE "kop-te-groot" /* 431: request line and headers over 64 KiB */
#define FRAMING_EXPECT "expect"               /* 417: an Expect other than 100-continue */
#define FRAMING_METHOD "methode"              /* 501: a method the API does not have */
#define FRAMING_CODING "codering"             /* 501: a transfer coding other than chunked */
#define FRAMING_INTERNAL "intern"             /* 503: out of memory */
#define FRAMING_BUSY "te-druk"                /* 503: over [http] max_connections */

/* The longest request head (request line and header fields) accepted. */
#define FRAMING_HEAD_MAX (64 * 1024)

struct framing;

/* Hostile clients: 0 means no limit. */
struct framing_limits {
	int64_t header_timeout_ms;  /* from a request's first byte to the end of its head */
	int64_t request_timeout_ms; /* from its first byte to the end of its body */
	int max_connections;        /* more get 503 (Connection: close) on their first request */
};

struct framing_stats {
	int connections;
	long long slow_cut; /* connections cut off for a slow head or body */
	long long refused;  /* connections over max_connections */
};

struct framing *framing_new(struct event_base *base, int64_t max_body,
			    const struct framing_limits *lim);
void framing_stats(const struct framing *fr, struct framing_stats *out);
/* Call after evhttp_free: releases the connections still tracked. */
void framing_free(struct framing *fr);

/* For evhttp_set_bevcb(http, framing_bev, fr). */
struct bufferevent *framing_bev(struct event_base *base, void *fr);

/* The same for a bufferevent made elsewhere (a TLS one: the framing sees
 * the decrypted bytes); returns bev (NULL stays NULL). */
struct bufferevent *framing_wrap(struct framing *fr, struct bufferevent *bev);

#endif
