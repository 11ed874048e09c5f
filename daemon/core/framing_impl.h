/*
 * framing_impl.h - what framing.c (the byte stream, bodies and chunks) and
 * framing_head.c (the request head) share inside core/.
 */
#ifndef BERICHTD_FRAMING_IMPL_H
#define BERICHTD_FRAMING_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

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

#endif
