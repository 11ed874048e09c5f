/*
 * fuzz.h - what the libFuzzer harnesses of tests/fuzz/ share: the entry
 * point's prototype (for -Wmissing-prototypes) and a NUL-terminated copy
 * of the input.
 */
#ifndef BERICHTD_FUZZ_H
#define BERICHTD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string (cut at its first NUL); the caller frees it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Splits s in place at each '\x1f' (ASCII unit separator) into at most n
 * fields; the missing ones are "". Returns the number found.
 */
static inline size_t fuzz_fields(char *s, char **f, size_t n)
{
	size_t got = 0;
	for (size_t i = 0; i < n; i++)
		f[i] = (char *)"";
	while (got < n) {
		f[got++] = s;
		char *sep = strchr(s, '\x1f');
		if (!sep)
			break;
		*sep = '\0';
		s = sep + 1;
	}
	return got;
}

#endif
