/*
 * framing_chunked.c - a chunked request body (RFC 9112 7.1), de-chunked on
 * its way to evhttp (framing_impl.h; the states in framing.c's picture):
 * held with its head and passed on with a Content-Length at its end, or as
 * the 413 as soon as it grows over max_body (the rest is discarded). Its
 * 100 Continue is sent from here, since evhttp never sees this body.
 */
#include "core/framing.h"
#include "core/framing_impl.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CHUNK_LINE_MAX 1024
#define CHUNK_HEX_MAX 15 /* fits int64 */

static const char CONTINUE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

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

void framing_chunked_start(struct fr_conn *c, const char *head, size_t len, const struct head *h,
			   bool quiet)
{
	if (!c->body)
		c->body = evbuffer_new();
	c->head = malloc(len);
	if (!c->body || !c->head) {
		framing_pass_fault(c, FRAMING_INTERNAL);
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
		framing_pass_fault(c, FRAMING_CHUNKED);
	free(c->head);
	c->head = NULL;
	evbuffer_drain(c->body, evbuffer_get_length(c->body));
}

/* Over max_body: the 413 goes to evhttp at once, the rest of the body nowhere. */
static void chunked_over(struct fr_conn *c)
{
	framing_emit_head(c->out, c->head, c->head_len, true,
			  "Content-Length: 0\r\n" FRAMING_MARK(FRAMING_TOO_LARGE));
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
	framing_held_back(c, (size_t)l + 2);
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
	framing_held_back(c, 2);
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
	framing_held_back(c, (size_t)l + 2);
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

void framing_feed_chunked(struct fr_conn *c)
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
