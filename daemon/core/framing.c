/*
 * framing.c - HTTP/1.1 message framing in front of evhttp (see framing.h).
 *
 * Per connection, a state machine over the byte stream:
 *
 *   HEAD --valid head, Content-Length <= max-------> BODY(n) --n bytes--> HEAD
 *   HEAD --Content-Length > max (rewritten, 413)---> DISCARD(n) --n bytes--> HEAD
 *   HEAD --chunked (head held)---------------------> CHUNKED --last chunk--> HEAD
 *        passed on with a Content-Length at its end, or as the 413 as soon
 *        as it grows over max (the rest is discarded)
 *   HEAD --a fault (replaced by our own request)---> SINK (until evhttp closes)
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

#define CHUNK_LINE_MAX 1024
#define CHUNK_HEX_MAX 15 /* fits int64 */
#define SWEEP_S 1

static const char CONTINUE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";
#define MARK(fault) FRAMING_HEADER ": " fault "\r\n"

enum fr_state { FR_HEAD, FR_BODY, FR_DISCARD, FR_CHUNKED, FR_SINK };
enum ch_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct fr_conn {
	struct fr_conn *next;
	struct framing *fr;
	struct bufferevent *bev;
	struct evbuffer_cb_entry *cbent;
	struct evbuffer *held, *front, *fresh, *out;
	struct evbuffer *body; /* CHUNKED: the de-chunked body while within max_body */
	char *head;            /* CHUNKED: its head, passed on at the end */
	size_t head_len;
	enum fr_state state;
	enum ch_state ch;
	int64_t remaining; /* BODY, DISCARD: bytes left; CH_DATA: of this chunk */
	int64_t total;     /* CHUNKED: body bytes so far (while not over) */
	size_t trailer;    /* CHUNKED: trailer bytes so far */
	bool over;         /* CHUNKED: over max_body, its 413 passed on */
	bool busy;
	bool refused;       /* over max_connections: its first request gets the 503 */
	int64_t started_ms; /* when the request being read began; 0 between requests */
	bool head_done;     /* its head is complete; the body is being read */
};

struct framing {
	int64_t max_body;
	struct framing_limits lim;
	int nconns; /* connections tracked (a closed one until the next sweep) */
	long long slow_cut, refused;
	struct event *sweep;
	struct fr_conn *conns;
};

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

static void sweep(evutil_socket_t fd, short what, void *arg)
{
	struct framing *fr = arg;
	int64_t now = clock_mono_ms();
	(void)fd;
	(void)what;

	for (struct fr_conn **pp = &fr->conns; *pp;) {
		struct fr_conn *c = *pp;
		if (conn_gone(c)) {
			*pp = c->next;
			conn_free(c);
			fr->nconns--;
			continue;
		}
		if (too_slow(fr, c, now)) {
			c->started_ms = 0;
			c->state = FR_SINK;
			fr->slow_cut++;
			shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
		}
		pp = &c->next;
	}
}

/* Our own request instead of the client's; the connection is done. */
static void pass_fault(struct fr_conn *c, const char *fault)
{
	evbuffer_add_printf(
		c->out, "GET / HTTP/1.1\r\nHost: berichtd\r\nConnection: close\r\n%s: %s\r\n\r\n",
		FRAMING_HEADER, fault);
	c->state = FR_SINK;
}

/*
 * evhttp would send 100 Continue itself, but it never sees this body. Only
 * called when nothing of an earlier request is unanswered: then every
 * earlier response is in the output buffer or already sent. evhttp leaves
 * EV_WRITE off between responses and its write callback would finish a
 * response that was already finished, so the bufferevent is not asked to
 * write: with its output empty the 100 goes straight to the socket, and
 * anything the socket did not take waits in the output buffer for the
 * final response, which it precedes. With the output not empty evhttp is
 * still writing an earlier response, and the 100 simply follows it.
 */
static void send_continue(struct fr_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = sizeof(CONTINUE_100) - 1;
	ssize_t sent = 0;

	if (evbuffer_get_length(out) == 0) {
		sent = send(bufferevent_getfd(c->bev), CONTINUE_100, len,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent < 0)
			sent = 0;
	}
	if ((size_t)sent < len)
		evbuffer_add(out, CONTINUE_100 + sent, len - (size_t)sent);
}

static void chunked_start(struct fr_conn *c, const char *head, size_t len, const struct head *h,
			  bool quiet)
{
	if (!c->body)
		c->body = evbuffer_new();
	c->head = malloc(len);
	if (!c->body || !c->head) {
		pass_fault(c, FRAMING_INTERNAL);
		return;
	}
	memcpy(c->head, head, len);
	c->head_len = len;
	c->state = FR_CHUNKED;
	c->ch = CH_SIZE;
	c->total = 0;
	c->trailer = 0;
	c->over = false;
	if (h->http11 && h->expect_continue && quiet)
		send_continue(c);
}

/* Checks a complete head and lets it (or what stands for it) through. */
static void take_head(struct fr_conn *c, const char *head, size_t len, bool quiet)
{
	struct head h = {0};
	const char *fault = framing_check_head(head, len, &h);

	if (fault) {
		pass_fault(c, fault);
		return;
	}
	if (h.chunked) {
		chunked_start(c, head, len, &h, quiet);
		return;
	}
	if (h.cl > c->fr->max_body) {
		/* a client that waits for 100 Continue never sends the body: then close */
		framing_emit_head(c->out, head, len, true,
				  h.expect_continue
					  ? "Content-Length: 0\r\nConnection: close\r\n" MARK(
						    FRAMING_TOO_LARGE)
					  : "Content-Length: 0\r\n" MARK(FRAMING_TOO_LARGE));
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

/* ------------------------------------------------------- chunked bodies */

static void chunked_end(struct fr_conn *c)
{
	c->started_ms = 0;
	free(c->head);
	c->head = NULL;
	evbuffer_drain(c->body, evbuffer_get_length(c->body));
	c->state = FR_HEAD;
}

static void chunked_fail(struct fr_conn *c)
{
	if (c->over)
		c->state = FR_SINK; /* its 413 is on its way; nothing sensible follows */
	else
		pass_fault(c, FRAMING_CHUNKED);
	free(c->head);
	c->head = NULL;
	evbuffer_drain(c->body, evbuffer_get_length(c->body));
}

/* Over max_body: the 413 goes to evhttp at once, the rest of the body nowhere. */
static void chunked_over(struct fr_conn *c)
{
	framing_emit_head(c->out, c->head, c->head_len, true,
			  "Content-Length: 0\r\n" MARK(FRAMING_TOO_LARGE));
	evbuffer_drain(c->body, evbuffer_get_length(c->body));
	c->over = true;
}

/* chunk-size [ chunk-ext ] (RFC 9112 7.1); extensions are ignored */
static bool chunk_size(const char *line, size_t l, int64_t *size)
{
	size_t i = 0;
	int64_t x = 0;

	for (; i < l; i++) {
		char ch = line[i];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
						 : -1;
		if (d < 0)
			break;
		if (i >= CHUNK_HEX_MAX)
			return false;
		x = x * 16 + d;
	}
	if (i == 0)
		return false;
	size_t j = i;
	while (j < l && (line[j] == ' ' || line[j] == '\t'))
		j++;
	if (j < l && line[j] != ';')
		return false;
	for (; j < l; j++) {
		unsigned char ch = (unsigned char)line[j];
		if ((ch < ' ' && ch != '\t') || ch == 0x7f)
			return false;
	}
	*size = x;
	return true;
}

/* Moves fresh into held and finds a CRLF there: the line's length before it, or -1. */
static ev_ssize_t held_line(struct fr_conn *c)
{
	evbuffer_add_buffer(c->held, c->fresh);
	return evbuffer_search(c->held, "\r\n", 2, NULL).pos;
}

/* After a line or CRLF was taken from held, the rest goes back to fresh. */
static void held_back(struct fr_conn *c, size_t taken)
{
	evbuffer_drain(c->held, taken);
	evbuffer_add_buffer(c->fresh, c->held);
}

/* Runs the chunked parser over fresh; returns when it needs more bytes or is done. */
/*
 * One step of the de-chunking per state; each returns false when it needs
 * more bytes or the connection is done, true to go on.
 */
static bool chunk_size_line(struct fr_conn *c)
{
	char line[CHUNK_LINE_MAX];
	int64_t size = 0;
	ev_ssize_t l = held_line(c);
	if (l < 0) {
		if (evbuffer_get_length(c->held) > CHUNK_LINE_MAX)
			chunked_fail(c);
		return false;
	}
	if ((size_t)l > sizeof(line) || evbuffer_copyout(c->held, line, (size_t)l) != l ||
	    !chunk_size(line, (size_t)l, &size)) {
		chunked_fail(c);
		return false;
	}
	held_back(c, (size_t)l + 2);
	if (size == 0) {
		c->ch = CH_TRAILER;
		return true;
	}
	if (!c->over && size > c->fr->max_body - c->total)
		chunked_over(c);
	c->remaining = size;
	c->ch = CH_DATA;
	return true;
}

static bool chunk_data(struct fr_conn *c)
{
	size_t n = evbuffer_get_length(c->fresh);
	if (n == 0)
		return false;
	size_t k = (int64_t)n < c->remaining ? n : (size_t)c->remaining;
	if (c->over) {
		evbuffer_drain(c->fresh, k);
	} else {
		evbuffer_remove_buffer(c->fresh, c->body, k);
		c->total += (int64_t)k;
	}
	c->remaining -= (int64_t)k;
	if (c->remaining == 0)
		c->ch = CH_DATA_END;
	return true;
}

static bool chunk_data_end(struct fr_conn *c)
{
	char crlf[2];
	evbuffer_add_buffer(c->held, c->fresh);
	if (evbuffer_get_length(c->held) < 2)
		return false;
	evbuffer_copyout(c->held, crlf, 2);
	if (crlf[0] != '\r' || crlf[1] != '\n') {
		chunked_fail(c);
		return false;
	}
	held_back(c, 2);
	c->ch = CH_SIZE;
	return true;
}

/* trailer fields are dropped (RFC 9112 7.1.2 allows it) */
static bool chunk_trailer(struct fr_conn *c)
{
	ev_ssize_t l = held_line(c);
	if (l < 0) {
		if (c->trailer + evbuffer_get_length(c->held) > FRAMING_HEAD_MAX)
			chunked_fail(c);
		return false;
	}
	held_back(c, (size_t)l + 2);
	c->trailer += (size_t)l + 2;
	if (c->trailer > FRAMING_HEAD_MAX) {
		chunked_fail(c);
		return false;
	}
	if (l > 0)
		return true;
	if (!c->over) {
		char cl[48];
		snprintf(cl, sizeof(cl), "Content-Length: %lld\r\n", (long long)c->total);
		framing_emit_head(c->out, c->head, c->head_len, true, cl);
		evbuffer_add_buffer(c->out, c->body);
	}
	chunked_end(c);
	return false;
}

static void feed_chunked(struct fr_conn *c)
{
	bool more = true;

	while (more && c->state == FR_CHUNKED) {
		switch (c->ch) {
		case CH_SIZE: more = chunk_size_line(c); break;
		case CH_DATA: more = chunk_data(c); break;
		case CH_DATA_END: more = chunk_data_end(c); break;
		case CH_TRAILER: more = chunk_trailer(c); break;
		}
	}
}

/* ---------------------------------------------------------- the stream */

/*
 * Feeds the fresh bytes through the state machine into out. idle: evhttp
 * had read everything before them.
 */
static void feed(struct fr_conn *c, bool idle)
{
	if (c->refused && c->state != FR_SINK) {
		pass_fault(c, FRAMING_BUSY);
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
			feed_chunked(c);
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
					pass_fault(c, FRAMING_HEAD_TOO_LARGE);
					evbuffer_add_buffer(c->fresh, c->held);
					break;
				}
				return;
			}
			const char *head = (const char *)evbuffer_pullup(c->held, (ev_ssize_t)len);
			if (!head) {
				pass_fault(c, FRAMING_INTERNAL);
				evbuffer_add_buffer(c->fresh, c->held);
				break;
			}
			bool quiet = idle && evbuffer_get_length(c->out) == 0 &&
				     evbuffer_get_length(c->held) == len;
			take_head(c, head, len, quiet);
			held_back(c, len);
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
