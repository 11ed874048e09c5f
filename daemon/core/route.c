/*
 * route.c - route patterns: path matching and query lists (route.h).
 */
#include "core/route.h"

#include <string.h>

#include "common/utf8.h"

#define QUERY_NAME_ECHO_MAX 64

/* The path part of a route pattern ends at its "{?...}" query list. */
static bool pattern_end(const char *p)
{
	return *p == '\0' || (p[0] == '{' && p[1] == '?');
}

bool route_match(const char *pattern, char *path, const char **params, int *nparams)
{
	const char *p = pattern;
	char *s = path;
	int n = 0;

	while (!pattern_end(p) && *s) {
		if (p[0] == '{' && p[1] == '}') {
			size_t seg = strcspn(s, "/");
			if (seg == 0 || n >= ROUTE_MAX_PARAMS)
				return false;
			params[n++] = s;
			s += seg;
			p += 2;
			if (*s == '/' && *p == '/') {
				*s++ = '\0';
				p++;
			} else if (*s == '\0' && pattern_end(p)) {
				break;
			} else {
				return false;
			}
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	if (!pattern_end(p) || *s)
		return false;
	*nparams = n;
	return true;
}

bool route_has_query_list(const char *pattern)
{
	return strstr(pattern, "{?") != NULL;
}

bool route_query_listed(const char *pattern, const char *name)
{
	const char *q = strstr(pattern, "{?");
	size_t n = strlen(name);

	for (q = q ? q + 2 : ""; *q && *q != '}';) {
		size_t len = strcspn(q, ",}");
		if (len == n && strncmp(q, name, n) == 0)
			return true;
		q += len;
		if (*q == ',')
			q++;
	}
	return false;
}

bool route_name_echoable(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > QUERY_NAME_ECHO_MAX)
		return false;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq_len((const unsigned char *)name + i, len - i);
		if (k == 0 || (k == 1 && ((unsigned char)name[i] < ' ' || name[i] == 0x7f)))
			return false;
		i += k;
	}
	return true;
}
