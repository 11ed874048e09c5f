/*
 * utf8.h - strict UTF-8 checking shared by the MIME builder and the
 * template loader (and anything else that must refuse malformed text).
 * Pure, thread-safe.
 */
#ifndef BERICHTD_UTF8_H
#define BERICHTD_UTF8_H

#include <stddef.h>

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes
 * available, n >= 1), or 0 if it is not well-formed (overlong, surrogate,
 * above U+10FFFF, truncated, stray continuation byte).
 */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/*
 * The number of characters of s (UTF-8 its caller has checked, as jansson
 * does), or -1 when it holds a control character (below U+0020, or DEL):
 * the "printable characters" of the API's text fields (referentie,
 * zaakkenmerk, weergavenaam).
 */
int utf8_printable_chars(const char *s);

#endif
