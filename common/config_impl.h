/*
 * config_impl.h - shared by common/config.c (the parser),
 * common/config_value.c (one value by its type) and common/config_keys.c
 * (the key table). STYLE.md habit 4: config is a table; everything else is
 * derived from its rows.
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

/* A secret key (CFG_HEX, [security] bsn_key and bounce_key): its length in bytes. */
#define MIN_BSN_KEY 32
#define MAX_BSN_KEY 64

struct config;

/* Whether values of type t are stored as a char * (else an int64_t). */
bool config_type_is_string(enum config_type t);

/* Where key k's value is in cfg, for a string type (config_type_is_string). */
char **config_str_slot(struct config *cfg, const struct config_key *k);

/*
 * Checks value by k's type and range and stores it in cfg (a copy for a
 * string type, a relative CFG_PATH resolved against the directory of
 * cfgname). NULL on success, else the reason; the slot is then unchanged.
 */
const char *config_set_value(struct config *cfg, const struct config_key *k, const char *cfgname,
			     const char *value);

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
