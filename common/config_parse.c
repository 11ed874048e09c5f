/*
 * config_parse.c - the value syntaxes of the configuration (config.h):
 * durations, sizes, quiet hours, Redis URLs, host:port. Pure.
 */
#include "config.h"
#include "config_impl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_DAY (24LL * 3600 * 1000)

bool config_parse_duration(const char *s, int64_t *ms)
{
	char *end;
	int64_t unit;

	if (!s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno)
		return false;
	if (strcmp(end, "ms") == 0)
		unit = 1;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		unit = 1000;
	else if (strcmp(end, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		unit = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		unit = MS_DAY;
	else
		return false;
	if (v > INT64_MAX / unit)
		return false;
	*ms = v * unit;
	return true;
}

bool config_parse_size(const char *s, int64_t *bytes)
{
	char *end;
	int64_t unit = 1;

	if (!s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno)
		return false;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k':
		unit = 1024;
		end++;
		break;
	case 'm':
		unit = 1024 * 1024;
		end++;
		break;
	case 'g':
		unit = 1024LL * 1024 * 1024;
		end++;
		break;
	default: return false;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v > INT64_MAX / unit)
		return false;
	*bytes = v * unit;
	return true;
}

static bool parse_hhmm(const char *s, int *min)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return false;
	int h = (s[0] - '0') * 10 + (s[1] - '0');
	int m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return false;
	*min = h * 60 + m;
	return true;
}

bool config_parse_quiet_hours(const char *s, bool *enabled, int *start_min, int *end_min)
{
	if (strcmp(s, "off") == 0) {
		*enabled = false;
		*start_min = *end_min = 0;
		return true;
	}
	if (strlen(s) != 11 || s[5] != '-')
		return false;
	if (!parse_hhmm(s, start_min) || !parse_hhmm(s + 6, end_min))
		return false;
	if (*start_min == *end_min)
		return false;
	*enabled = true;
	return true;
}

#define REDIS_SCHEME "redis://"
#define REDIS_DEFAULT_PORT 6379

bool config_parse_redis_url(const char *url, char *host, size_t hostlen, int *port)
{
	char hp[300];
	size_t sl = strlen(REDIS_SCHEME);

	if (strncmp(url, REDIS_SCHEME, sl) != 0)
		return false;
	const char *rest = url + sl;
	size_t n = strcspn(rest, "/");
	if (n == 0 || n >= sizeof(hp) || memchr(rest, '@', n))
		return false; /* no credentials in the URL: they would end up in logs */
	const char *path = rest + n;
	if (*path && strcmp(path, "/") != 0 && strcmp(path, "/0") != 0)
		return false;
	memcpy(hp, rest, n);
	hp[n] = '\0';
	if (config_split_hostport(hp, host, hostlen, port))
		return true;
	if (strchr(hp, ':') || strchr(hp, '[') || n >= hostlen)
		return false;
	memcpy(host, hp, n + 1);
	*port = REDIS_DEFAULT_PORT;
	return true;
}

bool config_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	const char *h = s;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return false;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return false;
	if (s[0] != '[' && memchr(s, ':', hl))
		return false; /* an IPv6 address needs brackets */
	if (s[0] != '[' && memchr(s, ']', hl))
		return false;
	if (!isdigit((unsigned char)colon[1]))
		return false; /* no sign, no space */
	char *end;
	errno = 0;
	long p = strtol(colon + 1, &end, 10);
	if (errno || *end || p < 1 || p > 65535)
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return true;
}

/*
 * Edit distance of a and b, a swap of two neighbours counting as one edit
 * (optimal string alignment: "smpt" is one from "smtp"); capped: over 8 is 9.
 */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 8)
		return 9;
	unsigned char d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned char)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned char)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1u < best)
				best = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < best)
				best = d[i][j - 1] + 1u;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1u < best)
				best = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned char)best;
		}
	}
	return d[la][lb];
}

/* near enough to be a typo: at most 2 edits, and fewer than half the name */
static bool near(size_t d, const char *name)
{
	return d <= 2 && d * 2 < strlen(name);
}

bool config_suggest(const char *section, const char *key, char *out, size_t cap)
{
	const char *best = NULL, *best_section = NULL;
	size_t best_d = 9;
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (!key) {
			size_t d = edit_distance(section, k->section);
			if (d < best_d && near(d, k->section))
				best = k->section, best_d = d;
		} else if (strcmp(k->section, section) == 0) {
			size_t d = edit_distance(key, k->key);
			if (d < best_d && near(d, k->key))
				best = k->key, best_d = d;
		} else if (!best_section && strcmp(k->key, key) == 0) {
			best_section = k->section;
		}
	}
	if (!key && best)
		snprintf(out, cap, "[%s]", best);
	else if (best)
		snprintf(out, cap, "%s", best);
	else if (best_section)
		snprintf(out, cap, "[%s] %s", best_section, key);
	return best || best_section;
}

bool config_hostports_each(const char *list, bool (*fn)(const char *host, int port, void *arg),
			   void *arg)
{
	const char *p = list;
	int n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t len = strcspn(p, ",");
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		char elem[300], host[256];
		int port;
		if (len == 0 || len >= sizeof(elem))
			return false;
		memcpy(elem, p, len);
		elem[len] = '\0';
		if (!config_split_hostport(elem, host, sizeof(host), &port))
			return false;
		if (fn && !fn(host, port, arg))
			return false;
		n++;
		p += strcspn(p, ",");
		if (!*p)
			return n > 0;
		p++;
	}
}
