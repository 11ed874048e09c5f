/*
 * fuzz_dsn.c - common/dsn.c: any bytes as a bounce the relay hands to POST
 * /v1/bounces or `berichtd bounce`. Since no fuzzer forges an HMAC, every
 * "@VERP@" in the input becomes the valid VERP address of a fixed ref and
 * every "@ENVID@" its envelope id (as tests/unit/test_dsn.c writes them), so
 * the attributed paths are reached too. An attributed report must name a
 * ref and only then; strings stay terminated within their arrays.
 */
#include <stdio.h>
#include <string.h>

#include "common/dsn.h"
#include "common/mailref.h"
#include "fuzz.h"

#define DOMAIN "berichtenbox.example"
#define REF "0123456789abcdef0123456789abcdef"

static const uint8_t KEY[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
				17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* data with the placeholders filled in; *outlen bytes, malloc'd */
static char *fill(const uint8_t *data, size_t size, size_t *outlen)
{
	char verp[MAILREF_NAME_MAX], envid[MAILREF_NAME_MAX];
	if (!mailref_verp(KEY, sizeof(KEY), REF, DOMAIN, verp, sizeof(verp)) ||
	    !mailref_envid(KEY, sizeof(KEY), REF, envid, sizeof(envid)))
		abort();
	char *out = malloc(size * (MAILREF_NAME_MAX / 6 + 1) + 1);
	if (!out)
		abort();
	size_t n = 0;
	for (size_t i = 0; i < size;) {
		if (size - i >= 6 && memcmp(data + i, "@VERP@", 6) == 0) {
			n += (size_t)sprintf(out + n, "%s", verp);
			i += 6;
		} else if (size - i >= 7 && memcmp(data + i, "@ENVID@", 7) == 0) {
			n += (size_t)sprintf(out + n, "%s", envid);
			i += 7;
		} else {
			out[n++] = (char)data[i++];
		}
	}
	*outlen = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *msg = fill(data, size, &len);
	/* exactly len bytes: dsn_parse must not need a NUL after them */
	char *exact = malloc(len ? len : 1);
	if (!exact)
		abort();
	memcpy(exact, msg, len);
	free(msg);
	struct dsn_report r;
	memset(&r, 0x55, sizeof(r));
	if (dsn_parse(exact, len, DOMAIN, KEY, sizeof(KEY), &r)) {
		if (strnlen(r.ref, sizeof(r.ref)) == sizeof(r.ref) ||
		    strnlen(r.status, sizeof(r.status)) == sizeof(r.status) ||
		    strnlen(r.final_recipient, sizeof(r.final_recipient)) ==
			    sizeof(r.final_recipient))
			abort();
		if ((r.attribution == DSN_ATTRIBUTED) != (r.ref[0] != '\0'))
			abort();
		if (r.attribution == DSN_ATTRIBUTED && strcmp(r.ref, REF) != 0)
			abort();
		(void)dsn_is_hard(&r);
	}
	free(exact);
	return 0;
}
