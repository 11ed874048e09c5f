/*
 * framing_impl.h - what framing.c (the connections and the byte stream),
 * framing_chunked.c (chunked bodies) and framing_head.c (the request head)
 * share inside core/. Included after core/framing.h (struct framing_limits,
 * FRAMING_HEADER); including it here would make an include circle.
 */
#ifndef BERICHTD_FRAMING_IMPL_H
#define BERICHTD_FRAMING_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event;
struct evbuffer;
struct evbuffer_cb_entry;

/* FRAMING_HEADER naming a fault, as a header line */
#define FRAMING_MARK(fault) FRAMING_HEADER ": " fault "\r\n"

/* A connection's state: the picture at the top of framing.c. */
enum fr_state { FR_HEAD, FR_BODY, FR_DISCARD, FR_CHUNKED, FR_SINK };
enum ch_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

/* One connection, tracked from framing_wrap until the sweep after evhttp freed it. */
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
	bool lingering;     /* evhttp closed it mid-body; framing.c reads the body's end */
	bool linger_done;   /* the body ended, or the client closed: free it */
	int64_t linger_until;
};

struct framing {
	int64_t max_body;
	struct framing_limits lim;
	int nconns; /* connections tracked (a closed one until the next sweep) */
	long long slow_cut, refused;
	struct event *sweep;
	struct fr_conn *conns;
};

/* What framing_check_head learnt about a valid head. */
struct head {
	bool http11;
	bool head_method; /* HEAD has no body, whatever it says */
	bool has_cl, chunked, expect_continue, expect_other, has_mark;
	int64_t cl;
};

/*
 * NULL for a head evhttp will take as it is (len bytes, ending with its
 * empty line), else the fault (a FRAMING_* of framing.h). Fills h.
 */
const char *framing_check_head(const char *head, size_t len, struct head *h);

/*
 * Appends head to out without any FRAMING_HEADER of the client's and, when
 * `reframe`, without Content-Length, Transfer-Encoding and Expect; `extra`
 * (header lines, each ending in CRLF) goes before the empty line.
 */
void framing_emit_head(struct evbuffer *out, const char *head, size_t len, bool reframe,
		       const char *extra);

/* framing.c: our own request instead of the client's; the connection is done. */
void framing_pass_fault(struct fr_conn *c, const char *fault);

/* framing.c: after a line or CRLF was taken from held, the rest goes back to fresh. */
void framing_held_back(struct fr_conn *c, size_t taken);

/*
 * framing_chunked.c: a valid chunked head (len bytes, h from
 * framing_check_head) is held and the connection goes to FR_CHUNKED; quiet:
 * nothing of an earlier request is unanswered, so its 100 Continue may go.
 */
void framing_chunked_start(struct fr_conn *c, const char *head, size_t len, const struct head *h,
			   bool quiet);

/*
 * framing_chunked.c: runs the chunked parser over fresh; returns when it
 * needs more bytes (still FR_CHUNKED) or the body is done with.
 */
void framing_feed_chunked(struct fr_conn *c);

#endif
