/*
 * config.h - berichtd's configuration: one table of keys (config.c) drives
 * the parser, the defaults, the validation, `check-config` and the
 * documented example file config/berichtd.conf (see `config_write_example`).
 *
 * File format: INI. `[section]`, `key = value`, `#` or `;` comments on their
 * own line. Unknown sections and keys are errors, so a typo never silently
 * falls back to a default.
 */
#ifndef BERICHTD_CONFIG_H
#define BERICHTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ERR_MAX 8192

struct config {
	/* [http] */
	char *http_listen;     /* "host:port" */
	int64_t http_max_body; /* bytes */
	int64_t http_timeout_ms;
	int64_t http_header_timeout_ms;
	int64_t http_request_timeout_ms;
	int64_t http_max_connections;
	char *http_problem_base; /* problem+json "type" is this and a slug */

	/* [ops] */
	char *ops_listen; /* "host:port" of /healthz, /readyz, /metrics */

	/* [ratelimit] */
	int64_t ratelimit_rate;  /* messages/s per agency, 0 = none */
	int64_t ratelimit_burst; /* bucket size in messages */

	/* [postgres] */
	char *pg_conninfo;
	int64_t pg_pool_size;
	int64_t pg_ingest_timeout_ms;

	/* [redis] */
	char *redis_url; /* redis://host:port[/0]; when set, wins over host/port */
	char *redis_host;
	int64_t redis_port;
	char *redis_key_prefix;
	char *redis_sentinels;   /* host:port,...: when set, host/port/url are ignored */
	char *redis_master_name; /* the name the sentinels know the primary by */

	/* [smtp] */
	char *smtp_host;
	int64_t smtp_port;
	char *smtp_from; /* "Display Name <addr>" or "addr" */
	char *smtp_bounce_domain;
	char *smtp_helo;
	int64_t smtp_timeout_ms;
	char *smtp_starttls; /* off | opportunistic | require */

	/* [tls] */
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_client_auth; /* off | optional | require */
	char *tls_client_ca_file;
	char *tls_portal_certs, *tls_ministry_certs, *tls_relay_certs;

	char *smtp_ca_file;
	char *smtp_user;
	char *smtp_password_file;

	/* [delivery] */
	int64_t delivery_workers;
	int64_t delivery_batch;
	int64_t delivery_rate_limit;        /* mails/s over all workers, 0 = none */
	int64_t delivery_domain_rate_limit; /* mails/s per recipient domain, 0 = none */
	int64_t delivery_retry_base_ms;
	int64_t delivery_retry_max_ms;
	int64_t delivery_retry_span_ms;
	int64_t delivery_visibility_ms;
	int64_t delivery_stall_ms;
	int64_t delivery_reconcile_ms;
	int64_t delivery_poll_ms;

	/* [notify] */
	int64_t notify_digest_window_ms;
	char *notify_quiet_hours; /* "HH:MM-HH:MM" or "off" */
	char *notify_timezone;
	int64_t notify_repeat_after_ms;
	int64_t notify_repeat_before_deadline_ms;
	int64_t notify_max_repeats;

	/* [stats] */
	int64_t stats_min_cell;      /* fewest messages with open figures for agencies */
	int64_t stats_dormant_weeks; /* notificaties report: look-back of dormant accounts */
	int64_t stats_count_representative_opens; /* 1: a representative's open is an open */

	/* [representatives] */
	int64_t representatives_max_depth; /* 1 = a representation is never passed on */

	int64_t stats_agency_epsilon_milli; /* the agency view's epsilon per year, in thousandths */
	int64_t stats_max_per_citizen;      /* counted messages per citizen, agency and year */
	char *stats_noise_seed; /* TEST ONLY: deterministic noise; empty = OpenSSL RAND_bytes */

	/* [security] */
	char *security_bsn_key;      /* hex */
	char *security_bsn_key_file; /* file holding the hex key */
	char *security_bounce_key;   /* hex */
	char *security_bounce_key_file;
	int64_t security_token_cache_ttl_ms; /* auth cache lifetime, at most 30 s */

	/* [bounce] */
	int64_t bounce_max_age_ms; /* DSNs about older mails are refused */

	/* [portal] */
	int64_t portal_prompt_interval_ms; /* prompts come back after this */
	int64_t portal_verify_ttl_ms;      /* an e-mail verification code expires */
	int64_t portal_verify_attempts;    /* wrong codes before it locks */

	/* [retention] */
	int64_t retention_min_days;
	int64_t retention_max_days;
	int64_t retention_default_days;
	int64_t retention_agency_record_days; /* the agency's record, whatever the citizen does */
	int64_t retention_interval_ms;
	int64_t retention_batch;

	/* [templates] */
	char *templates_dir;

	/* [log] */
	char *log_level;
	char *log_file;

	/* derived after loading */
	char *path; /* the file this came from */
	uint8_t bsn_key[64];
	size_t bsn_key_len;
	char smtp_password[256]; /* read from smtp_password_file; "" without AUTH */
	uint8_t bounce_key[64];
	size_t bounce_key_len;
	bool bounce_key_derived; /* no bounce key configured: derived from the BSN key */
};

/*
 * Loads and validates `path`. On failure returns false and writes one line
 * per problem, "file:line: key: reason", into err (NUL-terminated, cut at
 * errlen). Relative paths in the file are resolved against the file's
 * directory. The caller owns *cfg and frees it with config_free().
 */
bool config_load(const char *path, struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Same, from a string; `name` is used in error messages and for relative paths. */
bool config_load_string(const char *name, const char *text, struct config *cfg, char *err,
			size_t errlen) __attribute__((warn_unused_result));

void config_free(struct config *cfg);

/* Writes the documented example file (every key, its default, its doc). */
void config_write_example(FILE *out);

/* Duration "500ms", "90s", "10m", "48h", "14d" (a bare number means seconds). */
bool config_parse_duration(const char *s, int64_t *ms);

/* Size "512", "64k", "1m", "1g" in bytes. */
bool config_parse_size(const char *s, int64_t *bytes);

/* "HH:MM-HH:MM" into minutes after midnight; "off" gives false in *enabled. */
bool config_parse_quiet_hours(const char *s, bool *enabled, int *start_min, int *end_min);

/*
 * Calls fn(host, port, arg) for each element of "host:port,host:port"
 * (spaces around elements allowed) until fn returns false; fn may be NULL
 * to only check the syntax. False when the list is empty or an element is
 * not host:port, or fn returned false.
 */
bool config_hostports_each(const char *list, bool (*fn)(const char *host, int port, void *arg),
			   void *arg);

/* Parses "redis://host[:port][/0]" (port 6379 by default). */
bool config_parse_redis_url(const char *url, char *host, size_t hostlen, int *port);

/* Splits "host:port" ("[v6]:port" too). host is written into a caller buffer. */
bool config_split_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
