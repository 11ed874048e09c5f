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
	CFG_MILLI,     /* a decimal with up to 3 decimals, stored as thousandths */
	CFG_HOSTPORTS, /* host:port,host:port,... (at least one) */
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

/*
 * For an unknown key (section known) or section (key NULL): the nearest
 * known name in edit distance ("listn" -> "listen"), or the same key in
 * another section ("[http] workers" -> "[delivery] workers"), written into
 * out as "KEY", "[SECTION]" or "[SECTION] KEY". False when nothing is near.
 */
bool config_suggest(const char *section, const char *key, char *out, size_t cap);

#endif
