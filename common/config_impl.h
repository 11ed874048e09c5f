/*
 * config_impl.h - shared by common/config.c (the parser) and
 * common/config_keys.c (the key table). STYLE.md habit 4: config is a
 * table; everything else is derived from its rows.
 */
#ifndef BERICHTD_COMMON_CONFIG_IMPL_H
#define BERICHTD_COMMON_CONFIG_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_type {
	CFG_STRING,
	CFG_PATH, /* string, relative to the config file's directory */
	CFG_INT,
	CFG_DURATION, /* stored as milliseconds */
	CFG_SIZE,     /* stored as bytes */
	CFG_HOSTPORT,
	CFG_QUIET, /* "HH:MM-HH:MM" or "off" */
	CFG_TIMEZONE,
	CFG_LOGLEVEL,
	CFG_HEX,       /* secret key material in hex */
	CFG_REDIS_URL, /* redis://host:port[/0] */
	CFG_BOOL,      /* true or false, stored as an int64_t 1 or 0 */
};

struct config_key {
	const char *section;
	const char *key;
	enum config_type type;
	const char *def; /* NULL: no default (empty) */
	bool reloadable;
	size_t offset;
	int64_t min, max; /* for numeric types */
	const char *doc;
};

extern const struct config_key config_keys[];
extern const size_t config_nkeys;

#endif
