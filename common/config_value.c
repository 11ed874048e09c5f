/*
 * config_value.c - one key's value, checked by its type and stored in its
 * slot of struct config (config_impl.h). The parser (config.c) calls it
 * for every default and for every key of the file; pure but for the time
 * zone's file.
 */
#include "config.h"
#include "config_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "crypto.h"

static bool timezone_exists(const char *tz)
{
	char path[512];
	struct stat st;

	if (!*tz || strstr(tz, "..") || tz[0] == '/')
		return false;
	if (strcmp(tz, "UTC") == 0)
		return true;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	/* a real zone is a TZif file, not zone.tab or leap-seconds.list */
	char magic[4] = {0};
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(magic, 1, sizeof(magic), f) : 0;
	if (f)
		fclose(f);
	return n == sizeof(magic) && memcmp(magic, "TZif", sizeof(magic)) == 0;
}

char **config_str_slot(struct config *cfg, const struct config_key *k)
{
	return (char **)((char *)cfg + k->offset);
}

static int64_t *int_slot(struct config *cfg, const struct config_key *k)
{
	return (int64_t *)((char *)cfg + k->offset);
}

bool config_type_is_string(enum config_type t)
{
	return t == CFG_STRING || t == CFG_PATH || t == CFG_HOSTPORT || t == CFG_QUIET ||
	       t == CFG_TIMEZONE || t == CFG_LOGLEVEL || t == CFG_HEX || t == CFG_REDIS_URL ||
	       t == CFG_HOSTPORTS;
}

/* Resolves a relative path against the directory of the config file. */
static char *resolve_path(const char *cfgname, const char *value)
{
	if (value[0] == '/' || !cfgname)
		return strdup(value);
	const char *slash = strrchr(cfgname, '/');
	if (!slash)
		return strdup(value);
	size_t dl = (size_t)(slash - cfgname);
	size_t n = dl + 1 + strlen(value) + 1;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%.*s/%s", (int)dl, cfgname, value);
	return p;
}

/* "1", "0.25", "2.125": thousandths in *out */
static bool parse_milli(const char *s, int64_t *out)
{
	int64_t whole = 0, frac = 0;
	int decimals = 0;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > 1000000)
			return false;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (; isdigit((unsigned char)*p); p++) {
			if (++decimals > 3)
				return false;
			frac = frac * 10 + (*p - '0');
		}
	}
	if (*p)
		return false;
	for (; decimals < 3; decimals++)
		frac *= 10;
	*out = whole * 1000 + frac;
	return true;
}

/* A secret key in hex: NULL if acceptable (or empty), else why not. */
static const char *check_hex_key(const char *value)
{
	uint8_t key[MAX_BSN_KEY + 1];
	size_t keylen = 0;
	const char *reason = NULL;
	if (strlen(value) > 2 * MAX_BSN_KEY)
		reason = "key longer than 64 bytes";
	else if (*value && !crypto_hex_decode(value, key, sizeof(key), &keylen))
		reason = "not hexadecimal";
	else if (*value && keylen < MIN_BSN_KEY)
		reason = "key shorter than 32 bytes";
	OPENSSL_cleanse(key, sizeof(key));
	return reason;
}

static const char *parse_int(const char *value, int64_t *v)
{
	char *end;
	errno = 0;
	long long x = strtoll(value, &end, 10);
	if (errno || end == value || *end)
		return "not an integer";
	*v = x;
	return NULL;
}

static const char *parse_bool(const char *value, int64_t *v)
{
	if (strcmp(value, "true") == 0)
		*v = 1;
	else if (strcmp(value, "false") != 0)
		return "not true or false";
	return NULL;
}

static const char *check_hostport(const char *value)
{
	char host[256];
	int port;
	return config_split_hostport(value, host, sizeof(host), &port) ? NULL : "not host:port";
}

static const char *check_redis_url(const char *value)
{
	char host[256];
	int port;
	if (*value && !config_parse_redis_url(value, host, sizeof(host), &port))
		return "not redis://host:port (database 0)";
	return NULL;
}

static const char *check_quiet(const char *value)
{
	bool en;
	int a, b;
	return config_parse_quiet_hours(value, &en, &a, &b) ? NULL : "not HH:MM-HH:MM or off";
}

static const char *check_loglevel(const char *value)
{
	if (strcmp(value, "error") && strcmp(value, "warn") && strcmp(value, "info") &&
	    strcmp(value, "debug"))
		return "not one of error, warn, info, debug";
	return NULL;
}

/*
 * The syntax of type t: NULL when value is one, else why not. A numeric
 * type's value goes into *v (left alone for the others).
 */
static const char *check_value(enum config_type t, const char *value, int64_t *v)
{
	switch (t) {
	case CFG_INT: return parse_int(value, v);
	case CFG_DURATION:
		if (!config_parse_duration(value, v))
			return "not a duration (e.g. 500ms, 90s, 10m, 48h, 14d)";
		break;
	case CFG_SIZE:
		if (!config_parse_size(value, v))
			return "not a size (e.g. 512k, 16m)";
		break;
	case CFG_HOSTPORT: return check_hostport(value);
	case CFG_HOSTPORTS:
		if (*value && !config_hostports_each(value, NULL, NULL))
			return "not host:port,host:port,...";
		break;
	case CFG_QUIET: return check_quiet(value);
	case CFG_TIMEZONE: return timezone_exists(value) ? NULL : "unknown time zone";
	case CFG_LOGLEVEL: return check_loglevel(value);
	case CFG_HEX: return check_hex_key(value);
	case CFG_REDIS_URL: return check_redis_url(value);
	case CFG_BOOL: return parse_bool(value, v);
	case CFG_MILLI:
		if (!parse_milli(value, v))
			return "not a decimal number with at most 3 decimals (e.g. 1.0, 0.25)";
		break;
	case CFG_STRING:
	case CFG_PATH: break;
	}
	return NULL;
}

/* A copy of value (a path resolved against the config file's directory) into its slot. */
static const char *store_string(struct config *cfg, const struct config_key *k, const char *cfgname,
				const char *value)
{
	char **slot = config_str_slot(cfg, k);
	char *copy = (k->type == CFG_PATH && *value) ? resolve_path(cfgname, value) : strdup(value);
	if (!copy)
		return "out of memory";
	free(*slot);
	*slot = copy;
	return NULL;
}

const char *config_set_value(struct config *cfg, const struct config_key *k, const char *cfgname,
			     const char *value)
{
	int64_t v = 0;
	const char *reason = check_value(k->type, value, &v);

	if (reason)
		return reason;
	if (config_type_is_string(k->type))
		return store_string(cfg, k, cfgname, value);
	if ((k->min || k->max) && (v < k->min || v > k->max))
		return "out of range";
	*int_slot(cfg, k) = v;
	return NULL;
}
