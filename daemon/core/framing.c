/*
 * framing.c - HTTP/1.1 message framing in front of evhttp (see framing.h).
 *
 * Per connection, a state machine over the byte stream:
 *
 *   HEAD --valid head, Content-Length <= max-------> BODY(n) --n bytes--> HEAD
 *   HEAD --Content-Length > max (rewritten, 413)---> DISCARD(n) --n bytes--> HEAD
 *   HEAD --chunked (head held)---------------------> CHUNKED --last chunk--> HEAD
 *        passed on with a Content-Length at its end, or as the 413 as soon
 *        as it grows over max (the rest is discarded): framing_chunked.c
 *   HEAD --a fault (replaced by our own request)---> SINK (until evhttp closes)
 *
 * When evhttp closes a connection whose body is still coming (a 413 to a
 * client that asked for Connection: close), the connection lingers: its
 * answer is out and evhttp has shut the write side, and framing.c goes on
 * reading and dropping the body until its end, the client's close or the
 * request timeout. Closing at once would make the kernel answer the
 * client's next bytes with a reset, and the client would lose the 413
 * (RFC 9112 9.6).
 *
 * The input callback runs when bytes are added, before evhttp's read
 * callback; the new bytes are the last n_added of the buffer. Bytes before
 * them (`front`) are evhttp's, not yet read; what feed() lets through
 * (`out`) goes after them.
 */
#include "core/framing.h"
#include "core/framing_impl.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/clock.h"

#define SWEEP_S 1
#define LINGER_MAX_MS 30000 /* without a request timeout */

static void conn_free(struct fr_conn *c)
{
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->cbent);
	evbuffer_free(c->held);
	evbuffer_free(c->front);
	evbuffer_free(c->fresh);
	evbuffer_free(c->out);
	if (c->body)
		evbuffer_free(c->body);
	free(c->head);
	bufferevent_decref(c->bev);
	free(c);
}

/* evhttp's bufferevent_free clears the callbacks; the error callback is never unset before. */
static bool conn_gone(struct fr_conn *c)
{
	bufferevent_event_cb ecb = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
	return ecb == NULL;
}

/*
 * A client that takes longer than the limit over one request's head, or
 * over the whole request, is cut off: the socket is shut down, evhttp reads
 * the end and closes it. (The idle timeout of evhttp counts only the time
 * between two reads, so one byte a second kept a connection for ever.)
 */
static bool too_slow(const struct framing *fr, const struct fr_conn *c, int64_t now)
{
	if (c->started_ms == 0)
		return false;
	int64_t limit = c->head_done ? fr->lim.request_timeout_ms : fr->lim.header_timeout_ms;
	return limit > 0 && now - c->started_ms > limit;
}

static void feed(struct fr_conn *c, bool idle);

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
	struct fr_conn *c = arg;
	(void)bev;
	(void)what; /* EOF, an error or a timeout: the client is done */
	c->linger_done = true;
}

/* evhttp is done with c; lingers when a body is still coming. */
static bool linger_start(struct fr_conn *c, int64_t now)
{
	bool mid_body =
		(c->state == FR_DISCARD && c->remaining > 0) || (c->state == FR_CHUNKED && c->over);
	if (!mid_body)
		return false;
	int64_t limit = c->fr->lim.request_timeout_ms;
	c->linger_until =
		limit > 0 && c->started_ms > 0 ? c->started_ms + limit : now + LINGER_MAX_MS;
	c->lingering = true;
	bufferevent_setcb(c->bev, NULL, NULL, linger_event, c);
	bufferevent_enable(c->bev, EV_READ);
	return true;
}

/* Whether c lingers: already, or from now on because evhttp let it go mid-body. */
static bool lingers(struct fr_conn *c, int64_t now)
{
	return c->lingering || (conn_gone(c) && linger_start(c, now));
}

/* Reads on through the body evhttp no longer wants; done at its end. */
static void linger_feed(struct fr_conn *c, struct evbuffer *input)
{
	if (c->linger_done) {
		evbuffer_drain(input, evbuffer_get_length(input));
		return;
	}
	evbuffer_add_buffer(c->fresh, input);
	feed(c, false);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	if (c->state != FR_DISCARD && c->state != FR_CHUNKED) {
		evbuffer_drain(c->fresh, evbuffer_get_length(c->fresh));
		c->linger_done = true;
	}
}

static void sweep(evutil_socket_t fd, short what, void *arg)
{
	struct framing *fr = arg;
	int64_t now = clock_mono_ms();
	(void)fd;
	(void)what;

	for (struct fr_conn **pp = &fr->conns; *pp;) {
		struct fr_conn *c = *pp;
		bool done =
			lingers(c, now) ? c->linger_done || now >= c->linger_until : conn_gone(c);
		if (done) {
			*pp = c->next;
			conn_free(c);
			fr->nconns--;
			continue;
		}
		if (!c->lingering && too_slow(fr, c, now)) {
			c->started_ms = 0;
			c->state = FR_SINK;
			fr->slow_cut++;
			shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
		}
		pp = &c->next;
	}
}

/* Our own request instead of the client's; the connection is done. */
void framing_pass_fault(struct fr_conn *c, const char *fault)
{
	evbuffer_add_printf(
		c->out, "GET / HTTP/1.1\r\nHost: berichtd\r\nConnection: close\r\n%s: %s\r\n\r\n",
		FRAMING_HEADER, fault);
	c->state = FR_SINK;
}

/* Checks a complete head and lets it (or what stands for it) through. */
static void take_head(struct fr_conn *c, const char *head, size_t len, bool quiet)
{
	struct head h = {0};
	const char *fault = framing_check_head(head, len, &h);

	if (fault) {
		framing_pass_fault(c, fault);
		return;
	}
	if (h.chunked) {
		framing_chunked_start(c, head, len, &h, quiet);
		return;
	}
	if (h.cl > c->fr->max_body) {
		/* a client that waits for 100 Continue never sends the body: then close */
		framing_emit_head(
			c->out, head, len, true,
			h.expect_continue
				? "Content-Length: 0\r\nConnection: close\r\n" FRAMING_MARK(
					  FRAMING_TOO_LARGE)
				: "Content-Length: 0\r\n" FRAMING_MARK(FRAMING_TOO_LARGE));
		c->remaining = h.cl;
		c->state = FR_DISCARD;
		return;
	}
	if (h.has_mark)
		framing_emit_head(c->out, head, len, false, NULL);
	else
		evbuffer_add(c->out, head, len);
	c->remaining = h.cl;
	c->state = h.cl > 0 ? FR_BODY : FR_HEAD;
}

/* Looks for the end of a head in held; returns its length or 0. */
static size_t head_end(struct evbuffer *held)
{
	struct evbuffer_ptr pos = evbuffer_search(held, "\n\r\n", 3, NULL);
	struct evbuffer_ptr pos2 = evbuffer_search(held, "\n\n", 2, NULL);
	size_t a = pos.pos >= 0 ? (size_t)pos.pos + 3 : 0;
	size_t b = pos2.pos >= 0 ? (size_t)pos2.pos + 2 : 0;
	if (a && b)
		return a < b ? a : b;
	return a ? a : b;
}

/* After a line or CRLF was taken from held, the rest goes back to fresh. */
void framing_held_back(struct fr_conn *c, size_t taken)
{
	evbuffer_drain(c->held, taken);
	evbuffer_add_buffer(c->fresh, c->held);
}

/* ---------------------------------------------------------- the stream */

/*
 * Feeds the fresh bytes through the state machine into out. idle: evhttp
 * had read everything before them.
 */
static void feed(struct fr_conn *c, bool idle)
{
	if (c->refused && c->state != FR_SINK) {
		framing_pass_fault(c, FRAMING_BUSY);
		evbuffer_drain(c->fresh, evbuffer_get_length(c->fresh));
		return;
	}
	while (evbuffer_get_length(c->fresh) > 0 || c->state == FR_HEAD) {
		size_t n = evbuffer_get_length(c->fresh);
		switch (c->state) {
		case FR_SINK:
			evbuffer_drain(c->fresh, n);
			evbuffer_drain(c->held, evbuffer_get_length(c->held));
			return;
		case FR_CHUNKED:
			framing_feed_chunked(c);
			if (c->state == FR_CHUNKED)
				return;
			break;
		case FR_BODY:
		case FR_DISCARD: {
			size_t k = (int64_t)n < c->remaining ? n : (size_t)c->remaining;
			if (c->state == FR_BODY)
				evbuffer_remove_buffer(c->fresh, c->out, k);
			else
				evbuffer_drain(c->fresh, k);
			c->remaining -= (int64_t)k;
			if (c->remaining == 0) {
				c->state = FR_HEAD;
				c->started_ms = 0;
			}
			break;
		}
		case FR_HEAD: {
			evbuffer_add_buffer(c->held, c->fresh);
			/* empty lines between requests are allowed; drop them */
			while (evbuffer_get_length(c->held) > 0) {
				unsigned char ch;
				evbuffer_copyout(c->held, &ch, 1);
				if (ch != '\r' && ch != '\n')
					break;
				evbuffer_drain(c->held, 1);
			}
			if (c->started_ms == 0 && evbuffer_get_length(c->held) > 0) {
				c->started_ms = clock_mono_ms();
				c->head_done = false;
			}
			size_t len = head_end(c->held);
			if (len == 0 || len > FRAMING_HEAD_MAX) {
				if (len > 0 || evbuffer_get_length(c->held) > FRAMING_HEAD_MAX) {
					framing_pass_fault(c, FRAMING_HEAD_TOO_LARGE);
					evbuffer_add_buffer(c->fresh, c->held);
					break;
				}
				return;
			}
			const char *head = (const char *)evbuffer_pullup(c->held, (ev_ssize_t)len);
			if (!head) {
				framing_pass_fault(c, FRAMING_INTERNAL);
				evbuffer_add_buffer(c->fresh, c->held);
				break;
			}
			bool quiet = idle && evbuffer_get_length(c->out) == 0 &&
				     evbuffer_get_length(c->held) == len;
			take_head(c, head, len, quiet);
			framing_held_back(c, len);
			c->head_done = true;
			if (c->state == FR_HEAD)
				c->started_ms = 0; /* no body: the request is read */
			break;
		}
		}
	}
}

static void on_input(struct evbuffer *input, const struct evbuffer_cb_info *info, void *arg)
{
	struct fr_conn *c = arg;
	size_t len = evbuffer_get_length(input);

	if (c->busy || info->n_added == 0)
		return;
	if (lingers(c, clock_mono_ms())) {
		c->busy = true;
		linger_feed(c, input);
		c->busy = false;
		return;
	}
	if (conn_gone(c)) {
		evbuffer_drain(input, len); /* evhttp is done with it; the sweep frees it */
		return;
	}
	size_t n = info->n_added < len ? info->n_added : len;
	if (c->state == FR_BODY && (int64_t)n < c->remaining) {
		c->remaining -= (int64_t)n; /* the common case: body bytes, nothing to move */
		return;
	}
	c->busy = true;
	evbuffer_remove_buffer(input, c->front, len - n);
	evbuffer_add_buffer(c->fresh, input);
	feed(c, len == n);
	evbuffer_add_buffer(input, c->front);
	evbuffer_add_buffer(input, c->out);
	c->busy = false;
}

struct bufferevent *framing_bev(struct event_base *base, void *arg)
{
	return framing_wrap(arg, bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
}

struct bufferevent *framing_wrap(struct framing *fr, struct bufferevent *bev)
{
	if (!fr)
		return bev;
	struct fr_conn *c = calloc(1, sizeof(*c));

	if (!bev || !c) {
		free(c);
		return bev; /* NULL makes evhttp use its own; without c, evhttp's checks apply */
	}
	c->fr = fr;
	c->bev = bev;
	c->held = evbuffer_new();
	c->front = evbuffer_new();
	c->fresh = evbuffer_new();
	c->out = evbuffer_new();
	if (c->held && c->front && c->fresh && c->out)
		c->cbent = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
	if (!c->cbent) {
		if (c->held)
			evbuffer_free(c->held);
		if (c->front)
			evbuffer_free(c->front);
		if (c->fresh)
			evbuffer_free(c->fresh);
		if (c->out)
			evbuffer_free(c->out);
		free(c);
		return bev;
	}
	bufferevent_incref(bev);
	c->next = fr->conns;
	fr->conns = c;
	if (fr->lim.max_connections > 0 && fr->nconns >= fr->lim.max_connections) {
		c->refused = true;
		fr->refused++;
	}
	fr->nconns++;
	return bev;
}

struct framing *framing_new(struct event_base *base, int64_t max_body,
			    const struct framing_limits *lim)
{
	struct framing *fr = calloc(1, sizeof(*fr));
	struct timeval every = {SWEEP_S, 0};

	if (!fr)
		return NULL;
	fr->max_body = max_body;
	if (lim)
		fr->lim = *lim;
	fr->sweep = event_new(base, -1, EV_PERSIST, sweep, fr);
	if (!fr->sweep || event_add(fr->sweep, &every) != 0) {
		if (fr->sweep)
			event_free(fr->sweep);
		free(fr);
		return NULL;
	}
	return fr;
}

void framing_free(struct framing *fr)
{
	if (!fr)
		return;
	event_free(fr->sweep);
	while (fr->conns) {
		struct fr_conn *c = fr->conns;
		fr->conns = c->next;
		conn_free(c);
	}
	free(fr);
}

void framing_stats(const struct framing *fr, struct framing_stats *out)
{
	*out = (struct framing_stats){0};
	if (!fr)
		return;
	out->connections = fr->nconns;
	out->slow_cut = fr->slow_cut;
	out->refused = fr->refused;
}
