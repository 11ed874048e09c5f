/*
 * mime_impl.h - shared inside common/mime*.c: the checks of mime_check.c
 * that the builder in mime.c uses.
 */
#ifndef BERICHTD_COMMON_MIME_IMPL_H
#define BERICHTD_COMMON_MIME_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "mime.h"

/* Limits and constants of both halves. */
enum {
	MIME_INITIAL_CAP = 1024,
	MIME_MSGID_MAX = 250,     /* keeps the Message-ID line far below 998 */
				  /* (never folded: some MUAs mishandle that) */
	MIME_LOCAL_MAX = 64,      /* RFC 5321 §4.5.3.1.1 */
	MIME_LABEL_MAX = 63,      /* RFC 1035 */
	MIME_ADDR_MIN = 3,        /* "a@b" */
	MIME_LANG_SUBTAG_MAX = 8, /* BCP 47 */
	MIME_LANG_MAX = 35,
	MIME_YEAR_MIN = 1900, /* RFC 5322 §3.3 */
	MIME_YEAR_MAX = 9999,
	MIME_TM_YEAR_BASE = 1900,
	MIME_DATE_BUF = 64,
	MIME_CHAR_DEL = 0x7F,
	MIME_CHAR_SPACE = 0x20,
	MIME_UTF8_MAX_SEQ = 4,
	MIME_B64_GROUP_IN = 3,  /* bytes per base64 group */
	MIME_B64_GROUP_OUT = 4, /* chars per base64 group */
	MIME_B64_BITS = 6,
	MIME_B64_MASK = 0x3F,
	MIME_BITS_PER_BYTE = 8,
	MIME_NIBBLE_BITS = 4,
	MIME_NIBBLE_MASK = 0x0F,
	MIME_QP_TOKEN_MAX = 3 * MIME_UTF8_MAX_SEQ, /* one char as =XX=XX=XX=XX */
};

bool mime_is_atext(unsigned char c);
bool mime_is_wsp(unsigned char c);
bool mime_is_print(unsigned char c);
bool mime_mail_valid(const struct mime_mail *m);

#endif
