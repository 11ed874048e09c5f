/*
 * framing.c - our own 413 for over-long bodies (see framing.h).
 *
 * Per connection, a small state machine over the byte stream:
 *
 *   HEAD --complete head, Content-Length <= max--> BODY(n) --n bytes--> HEAD
 *   HEAD --Content-Length > max (rewritten)------> DISCARD(n) --n bytes--> HEAD
 *   HEAD --chunked, malformed or oversized head--> OFF (evhttp decides)
 *
 * The input callback runs when bytes are added, before evhttp's read
 * callback; the new bytes are the last n_added of the buffer.
 */
#include "framing.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define HEAD_MAX (64 * 1024)
#define SWEEP_S 1

enum fr_state { FR_HEAD, FR_BODY, FR_DISCARD, FR_OFF };

struct fr_conn {
	struct fr_conn *next;
	struct framing *bl;
	struct bufferevent *bev;
	struct evbuffer_cb_entry *cbent;
	struct evbuffer *held, *front, *fresh, *out;
	enum fr_state state;
	int64_t remaining;
	bool busy;
};

struct framing {
	int64_t max_body;
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

static void sweep(evutil_socket_t fd, short what, void *arg)
{
	struct framing *bl = arg;
	(void)fd;
	(void)what;

	for (struct fr_conn **pp = &bl->conns; *pp;) {
		struct fr_conn *c = *pp;
		if (conn_gone(c)) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static bool header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/*
 * Parses a complete head (len bytes, ending with its empty line) into out,
 * rewritten if its body is too long; sets the connection's next state.
 */
static void pass_head(struct fr_conn *c, const char *head, size_t len)
{
	int64_t cl = 0;
	bool has_cl = false, chunked = false, bad = false;
	const char *p = head, *end = head + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (header_is(p, l, "Content-Length")) {
			const char *v = p + strlen("Content-Length:");
			const char *ve = p + l;
			int64_t x = 0;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			if (v == ve)
				bad = true;
			for (; v < ve && !bad; v++) {
				if (*v == ' ' || *v == '\t')
					continue;
				if (!isdigit((unsigned char)*v) || x > (INT64_MAX - 9) / 10)
					bad = true;
				else
					x = x * 10 + (*v - '0');
			}
			if (has_cl && x != cl)
				bad = true;
			has_cl = true;
			cl = x;
		} else if (header_is(p, l, "Transfer-Encoding")) {
			chunked = true;
		}
		p = nl ? nl + 1 : end;
	}

	if (chunked || bad) {
		c->state = FR_OFF;
		evbuffer_add(c->out, head, len);
		return;
	}
	if (!has_cl || cl <= c->bl->max_body) {
		evbuffer_add(c->out, head, len);
		c->remaining = cl;
		c->state = cl > 0 ? FR_BODY : FR_HEAD;
		return;
	}
	/* everything but Content-Length, then ours before the empty line */
	p = head;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t full = (size_t)((nl ? nl + 1 : end) - p);
		size_t l = full;
		while (l > 0 && (p[l - 1] == '\n' || p[l - 1] == '\r'))
			l--;
		if (l == 0) {
			evbuffer_add_printf(c->out, "Content-Length: 0\r\n%s: %lld\r\n\r\n",
					    FRAMING_HEADER, (long long)cl);
			break;
		}
		if (!header_is(p, l, "Content-Length"))
			evbuffer_add(c->out, p, full);
		p += full;
	}
	c->remaining = cl;
	c->state = FR_DISCARD;
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

/* Feeds the fresh bytes through the state machine into out. */
static void feed(struct fr_conn *c)
{
	while (evbuffer_get_length(c->fresh) > 0 || c->state == FR_HEAD) {
		size_t n = evbuffer_get_length(c->fresh);
		switch (c->state) {
		case FR_OFF:
			evbuffer_add_buffer(c->out, c->fresh);
			return;
		case FR_BODY:
		case FR_DISCARD: {
			size_t k = (int64_t)n < c->remaining ? n : (size_t)c->remaining;
			if (c->state == FR_BODY)
				evbuffer_remove_buffer(c->fresh, c->out, k);
			else
				evbuffer_drain(c->fresh, k);
			c->remaining -= (int64_t)k;
			if (c->remaining == 0)
				c->state = FR_HEAD;
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
			size_t len = head_end(c->held);
			if (len == 0) {
				if (evbuffer_get_length(c->held) > HEAD_MAX) {
					c->state = FR_OFF;
					evbuffer_add_buffer(c->out, c->held);
				}
				return;
			}
			const char *head = (const char *)evbuffer_pullup(c->held, (ev_ssize_t)len);
			if (!head) {
				c->state = FR_OFF;
				evbuffer_add_buffer(c->out, c->held);
				return;
			}
			pass_head(c, head, len);
			evbuffer_drain(c->held, len);
			evbuffer_add_buffer(c->fresh, c->held);
			break;
		}
		}
	}
}

static void on_input(struct evbuffer *input, const struct evbuffer_cb_info *info, void *arg)
{
	struct fr_conn *c = arg;
	size_t len = evbuffer_get_length(input);

	if (c->busy || info->n_added == 0 || c->state == FR_OFF)
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
	feed(c);
	evbuffer_add_buffer(input, c->front);
	evbuffer_add_buffer(input, c->out);
	c->busy = false;
}

struct bufferevent *framing_bev(struct event_base *base, void *arg)
{
	struct framing *bl = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct fr_conn *c = calloc(1, sizeof(*c));

	if (!bev || !c) {
		free(c);
		return bev; /* NULL makes evhttp use its own; without c, evhttp's limit applies */
	}
	c->bl = bl;
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
	c->next = bl->conns;
	bl->conns = c;
	return bev;
}

struct framing *framing_new(struct event_base *base, int64_t max_body)
{
	struct framing *bl = calloc(1, sizeof(*bl));
	struct timeval every = {SWEEP_S, 0};

	if (!bl)
		return NULL;
	bl->max_body = max_body;
	bl->sweep = event_new(base, -1, EV_PERSIST, sweep, bl);
	if (!bl->sweep || event_add(bl->sweep, &every) != 0) {
		if (bl->sweep)
			event_free(bl->sweep);
		free(bl);
		return NULL;
	}
	return bl;
}

void framing_free(struct framing *bl)
{
	if (!bl)
		return;
	event_free(bl->sweep);
	while (bl->conns) {
		struct fr_conn *c = bl->conns;
		bl->conns = c->next;
		conn_free(c);
	}
	free(bl);
}
