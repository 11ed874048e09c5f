/*
 * mime.h - builds the one kind of mail berichtd sends: a single-part
 * text/plain UTF-8 message (RFC 5322 + MIME), quoted-printable body, CRLF
 * line endings throughout, ready to hand to libesmtp.
 */
#ifndef BERICHTD_COMMON_MIME_H
#define BERICHTD_COMMON_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest header line we write (RFC 5322 §2.1.1 "SHOULD"), excluding CRLF. */
#define MIME_HEADER_LINE_MAX 78
/* Longest quoted-printable body line (RFC 2045 §6.7), excluding CRLF. */
#define MIME_QP_LINE_MAX 76
/* Longest RFC 2047 encoded-word. */
#define MIME_ENCODED_WORD_MAX 75
/* Longest address mime_addr_valid() accepts (RFC 5321 path limit). */
#define MIME_ADDR_MAX 254

/* The fields of one mail. All strings are borrowed, none is kept. */
struct mime_mail {
	const char *from_name;  /* UTF-8 display name, may be NULL (or "") */
	const char *from_addr;  /* addr-spec, ASCII; must pass mime_addr_valid */
	const char *to_addr;    /* addr-spec, ASCII; must pass mime_addr_valid */
	const char *subject;    /* UTF-8, required (may be "") */
	const char *body;       /* UTF-8, lines end in "\n", "\r\n" or a lone "\r" */
	const char *message_id; /* "<left@right>" including angle brackets */
	int64_t date_unix;      /* seconds since epoch, rendered in UTC */
	const char *language;   /* e.g. "nl"; NULL = omit Content-Language */
};

/*
 * Renders *m as a complete message: headers in the order Date, From, To,
 * Subject, Message-ID, MIME-Version, Content-Type, Content-Transfer-Encoding,
 * Content-Language (if set), Auto-Submitted, X-Auto-Response-Suppress; a
 * blank line; the quoted-printable body ending in CRLF.
 *
 * Returns a malloc'd NUL-terminated string the caller frees, and stores its
 * length (without the NUL) in *len_out if len_out is not NULL. Returns NULL
 * on invalid input, so a header can never be injected:
 *   - m, from_addr, to_addr, subject, body or message_id is NULL;
 *   - any header field (from_name, from_addr, to_addr, subject, message_id,
 *     language) fails mime_header_safe();
 *   - an address fails mime_addr_valid();
 *   - from_name, subject or body is not valid UTF-8;
 *   - message_id is not "<dot-atom-text@dot-atom-text>" of at most 250
 *     chars, or language is not a tag like "nl" / "en-GB";
 *   - the date falls outside the years 1900..9999;
 * and also when memory runs out. Pure and thread-safe.
 *
 * Header lines stay within MIME_HEADER_LINE_MAX characters, with two
 * exceptions that cannot be folded safely: a long address (To: line, or
 * " <addr>" on a From: continuation line when longer than 74 characters)
 * and a Message-ID longer than 66 characters, which is written on one line
 * (at most 262 characters; some mail readers mishandle a folded
 * Message-ID).
 */
char *mime_build(const struct mime_mail *m, size_t *len_out) __attribute__((warn_unused_result));

/*
 * True if s may go into a header: it contains no C0 control character
 * other than TAB (so no CR or LF) and no DEL. NULL gives false. Pure.
 */
bool mime_header_safe(const char *s);

/*
 * Conservative addr-spec check: "local@domain", exactly one '@', total
 * length 3..254, local part 1..64 chars of printable ASCII without space or
 * any of <>()[],;:"\ and without leading, trailing or doubled dots; domain
 * made of labels of 1..63 letters, digits and '-' (not at either end of a
 * label) separated by single dots. A single-label domain ("localhost") is
 * accepted. NULL gives false. Pure.
 */
bool mime_addr_valid(const char *addr);

#endif /* BERICHTD_COMMON_MIME_H */
