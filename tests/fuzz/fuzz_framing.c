/*
 * fuzz_framing.c - daemon/core/framing_head.c: any bytes as a request head,
 * cut where framing.c cuts it (leading empty lines dropped, up to the first
 * empty line), checked, and passed on as framing.c would. A head that
 * passes must not be both chunked and have a Content-Length; what is
 * passed on never carries the client's own marker header.
 */
#include <event2/buffer.h>
#include <string.h>

#include "core/framing.h"
#include "core/framing_impl.h"
#include "fuzz.h"

static size_t head_end(const char *p, size_t len)
{
	const char *a = memmem(p, len, "\n\r\n", 3), *b = memmem(p, len, "\n\n", 2);
	size_t ea = a ? (size_t)(a - p) + 3 : 0, eb = b ? (size_t)(b - p) + 2 : 0;
	if (ea && eb)
		return ea < eb ? ea : eb;
	return ea ? ea : eb;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	while (size && (*p == '\r' || *p == '\n'))
		p++, size--;
	size_t len = head_end(p, size);
	if (len == 0 || len > FRAMING_HEAD_MAX)
		return 0;
	char *head = malloc(len);
	if (!head)
		abort();
	memcpy(head, p, len); /* exactly len bytes, so ASan sees any read past them */
	struct head h = {0};
	const char *fault = framing_check_head(head, len, &h);
	if (!fault) {
		if ((h.chunked && h.has_cl) || h.cl < 0)
			abort();
		struct evbuffer *out = evbuffer_new();
		framing_emit_head(out, head, len, h.chunked || h.has_cl,
				  "Content-Length: 0\r\n" FRAMING_HEADER ": te-groot\r\n");
		size_t n = evbuffer_get_length(out);
		char *o = (char *)evbuffer_pullup(out, -1);
		if (!o || n < 4 || !memmem(o, n, "\n\r\n", 3))
			abort();
		/* ours is the only marker: the client's copy was removed */
		static const char mark[] = "\n" FRAMING_HEADER ":";
		char *first = memmem(o, n, mark, sizeof(mark) - 1);
		if (!first ||
		    memmem(first + 1, n - (size_t)(first + 1 - o), mark, sizeof(mark) - 1))
			abort();
		evbuffer_free(out);
	}
	free(head);
	return 0;
}
