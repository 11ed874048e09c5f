/*
 * roff.h - writing text into a man page (groff -man) so that it prints as
 * written: the generated pages berichtd(8) and berichtd.conf(5) pass every
 * string of the command and config tables through here.
 */
#ifndef BERICHTD_ROFF_H
#define BERICHTD_ROFF_H

#include <stdio.h>

/*
 * Writes text as roff input lines: a backslash becomes \e, '-' the
 * minus sign \- (options copy and paste as typed), and a line that would
 * start with '.' or '\'' (a request) gets \& before it. Each '\n' ends an
 * input line; a last line without one is ended too.
 */
void roff_text(FILE *out, const char *text);

/* The same for the first len bytes of text, with no line end added. */
void roff_span(FILE *out, const char *text, size_t len);

#endif
