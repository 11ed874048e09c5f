/*
 * roff.c - text into man page input (see roff.h).
 */
#include "roff.h"

#include <stdbool.h>
#include <string.h>

void roff_span(FILE *out, const char *text, size_t len)
{
	bool line_start = true;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (line_start && (c == '.' || c == '\''))
			fputs("\\&", out);
		line_start = c == '\n';
		if (c == '\\')
			fputs("\\e", out);
		else if (c == '-')
			fputs("\\-", out);
		else
			fputc(c, out);
	}
}

void roff_text(FILE *out, const char *text)
{
	size_t len = strlen(text);
	roff_span(out, text, len);
	if (len == 0 || text[len - 1] != '\n')
		fputc('\n', out);
}
