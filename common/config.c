/*
 * config.c - the configuration table and its INI parser (see config.h).
 *
 * STYLE.md habit 4: config is a table. Each row names the section, the key,
 * its type, its default, whether a SIGHUP reload may change it, where it is
 * stored, and one line of documentation. Everything else (defaults, parsing,
 * the example file) is derived from the rows, so they cannot drift apart.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "crypto.h"

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

#define OFF(field) offsetof(struct config, field)
#define NOLIMIT 0, 0

/* Bounds that keep an operator's typo from taking the daemon down. */
#define MAX_POOL 256
#define MAX_WORKERS 256
#define MAX_BATCH 1000
#define MAX_BODY (256LL * 1024 * 1024)
#define MIN_BODY 1024
#define MAX_REPEATS 10
#define MAX_RATE 100000000
#define MS_DAY (24LL * 3600 * 1000)
#define MAX_VERIFY_ATTEMPTS 100
#define MAX_RETENTION_DAYS 36500
#define MAX_RETENTION_BATCH 100000
/* an agency never sees open figures of fewer messages than this, whatever the config */
#define MIN_CELL_FLOOR 5
#define MAX_CELL 1000000
#define MAX_DORMANT_WEEKS 52

static const struct config_key config_keys[] = {
	{"http", "listen", CFG_HOSTPORT, "127.0.0.1:8080", false, OFF(http_listen), NOLIMIT,
	 "Address and port the HTTP API listens on (put TLS in front: a reverse proxy or load balancer)."},
	{"http", "max_body", CFG_SIZE, "16m", false, OFF(http_max_body), MIN_BODY, MAX_BODY,
	 "Largest request body accepted; larger requests get 413."},
	{"http", "timeout", CFG_DURATION, "30s", false, OFF(http_timeout_ms), 1000, MS_DAY,
	 "Idle and request timeout of HTTP connections."},

	{"ops", "listen", CFG_HOSTPORT, "127.0.0.1:9090", false, OFF(ops_listen), NOLIMIT,
	 "Address and port of the operators' endpoints /healthz, /readyz and /metrics (never on the API listener). Bind it to loopback or a management network only, never where agencies or citizens can reach it: the counters move when single mails go out."},

	{"ratelimit", "rate", CFG_INT, "5000", false, OFF(ratelimit_rate), 0, MAX_RATE,
	 "Messages per second each agency may submit (single and batch items alike; a token bucket); each BSN it looks up in POST /v1/ontvangers/_zoek costs one as well. 0 means no limit. Over it: 429 with Retry-After."},
	{"ratelimit", "burst", CFG_INT, "20000", false, OFF(ratelimit_burst), 1, MAX_RATE,
	 "Size of each agency's bucket in messages: how many may arrive at once (a batch larger than this still passes when the bucket is full, and leaves it in debt)."},

	{"postgres", "conninfo", CFG_STRING, "dbname=berichtd", false, OFF(pg_conninfo), NOLIMIT,
	 "libpq connection string of the PostgreSQL database (the source of truth)."},
	{"postgres", "pool_size", CFG_INT, "4", false, OFF(pg_pool_size), 1, MAX_POOL,
	 "Number of asynchronous PostgreSQL connections of the event loop."},
	{"postgres", "ingest_timeout", CFG_DURATION, "10s", false, OFF(pg_ingest_timeout_ms), 100,
	 MS_DAY,
	 "Longest wait for the commit of submitted messages; then the requests get 503 with Retry-After (should it commit later, a retry answers 200 with the same id)."},

	{"redis", "url", CFG_REDIS_URL, NULL, false, OFF(redis_url), NOLIMIT,
	 "Redis as a URL, redis://host:port (database 0 only); when set it replaces host and port."},
	{"redis", "host", CFG_STRING, "127.0.0.1", false, OFF(redis_host), NOLIMIT,
	 "Redis host (the schedule; rebuilt from PostgreSQL when lost)."},
	{"redis", "port", CFG_INT, "6379", false, OFF(redis_port), 1, 65535, "Redis TCP port."},
	{"redis", "key_prefix", CFG_STRING, "berichtd:", false, OFF(redis_key_prefix), NOLIMIT,
	 "Prefix of every Redis key, so several deployments can share one Redis."},

	{"smtp", "host", CFG_STRING, "127.0.0.1", false, OFF(smtp_host), NOLIMIT,
	 "SMTP relay that takes the notification mails."},
	{"smtp", "port", CFG_INT, "25", false, OFF(smtp_port), 1, 65535, "SMTP relay port."},
	{"smtp", "from", CFG_STRING, "Berichtenbox <noreply@berichtenbox.example>", false,
	 OFF(smtp_from), NOLIMIT,
	 "From: header of every mail, \"Name <address>\" or a bare address."},
	{"smtp", "bounce_domain", CFG_STRING, "berichtenbox.example", false,
	 OFF(smtp_bounce_domain), NOLIMIT,
	 "Domain of the VERP envelope sender bounce+<notification-id>@<bounce_domain>."},
	{"smtp", "helo", CFG_STRING, NULL, false, OFF(smtp_helo), NOLIMIT,
	 "Name used in EHLO; empty means this host's name."},
	{"smtp", "timeout", CFG_DURATION, "30s", false, OFF(smtp_timeout_ms), 1000, MS_DAY,
	 "Timeout of each SMTP protocol step."},

	{"delivery", "workers", CFG_INT, "2", false, OFF(delivery_workers), 0, MAX_WORKERS,
	 "Delivery worker threads, each with its own SMTP, PostgreSQL and Redis connection (0: this instance only accepts, others deliver)."},
	{"delivery", "batch", CFG_INT, "50", false, OFF(delivery_batch), 1, MAX_BATCH,
	 "Notifications a worker takes at once and sends over one SMTP connection."},
	{"delivery", "rate_limit", CFG_INT, "0", false, OFF(delivery_rate_limit), 0, 1000000,
	 "Most mails per second over all workers of this instance; 0 means no limit."},
	{"delivery", "domain_rate_limit", CFG_INT, "0", false, OFF(delivery_domain_rate_limit), 0,
	 1000000,
	 "Most mails per second to one recipient domain (e.g. a large mail provider); 0 means no limit."},
	{"delivery", "retry_base", CFG_DURATION, "5s", false, OFF(delivery_retry_base_ms), 100,
	 MS_DAY,
	 "First delay after a temporary failure; it doubles with every attempt (with jitter)."},
	{"delivery", "retry_max", CFG_DURATION, "30m", false, OFF(delivery_retry_max_ms), 100,
	 MS_DAY, "Longest delay between two attempts."},
	{"delivery", "retry_span", CFG_DURATION, "48h", false, OFF(delivery_retry_span_ms), 1000,
	 30 * MS_DAY,
	 "How long temporary failures are retried (the law wants a notice out within 48 hours)."},
	{"delivery", "visibility_timeout", CFG_DURATION, "5m", false, OFF(delivery_visibility_ms),
	 1000, MS_DAY,
	 "A notification taken by a worker that neither sent nor released it within this time is taken again."},
	{"delivery", "reconcile_interval", CFG_DURATION, "30s", false, OFF(delivery_reconcile_ms),
	 100, MS_DAY, "How often the Redis schedule is checked against PostgreSQL and repaired."},
	{"delivery", "poll_interval", CFG_DURATION, "100ms", false, OFF(delivery_poll_ms), 1, 60000,
	 "How long an idle worker waits before it looks for due notifications again."},

	{"notify", "digest_window", CFG_DURATION, "5m", false, OFF(notify_digest_window_ms), 0,
	 MS_DAY, "Messages for one account arriving within this window make one mail."},
	{"notify", "quiet_hours", CFG_QUIET, "22:00-07:00", false, OFF(notify_quiet_hours), NOLIMIT,
	 "No mail is sent in this local time window (\"off\" disables); mail due then waits for its end."},
	{"notify", "timezone", CFG_TIMEZONE, "Europe/Amsterdam", false, OFF(notify_timezone),
	 NOLIMIT, "Time zone of quiet hours and of statistics cohorts."},
	{"notify", "repeat_after", CFG_DURATION, "14d", false, OFF(notify_repeat_after_ms), 0,
	 365 * MS_DAY, "A message still unopened this long after publication gets a reminder."},
	{"notify", "repeat_before_deadline", CFG_DURATION, "7d", false,
	 OFF(notify_repeat_before_deadline_ms), 0, 365 * MS_DAY,
	 "With eindDatumHandelingstermijn, the reminder goes out this long before that deadline."},
	{"notify", "max_repeats", CFG_INT, "1", false, OFF(notify_max_repeats), 0, MAX_REPEATS,
	 "Most reminders per message."},

	{"stats", "min_cell", CFG_INT, "10", false, OFF(stats_min_cell), MIN_CELL_FLOOR, MAX_CELL,
	 "An agency sees no open figures for a cell with fewer messages than this (never below 5)."},
	{"stats", "dormant_weeks", CFG_INT, "6", false, OFF(stats_dormant_weeks), 1,
	 MAX_DORMANT_WEEKS,
	 "Notificaties report: an active account whose messages of this many weeks were all left unopened is dormant."},

	{"security", "bsn_key", CFG_HEX, NULL, false, OFF(security_bsn_key), NOLIMIT,
	 "HMAC-SHA256 key (hex, at least 32 bytes) for hashing BSNs; prefer bsn_key_file."},
	{"security", "bsn_key_file", CFG_PATH, NULL, false, OFF(security_bsn_key_file), NOLIMIT,
	 "File holding the BSN hashing key in hex (e.g. a systemd credential). Never change it: hashes would no longer match."},
	{"security", "bounce_key", CFG_HEX, NULL, false, OFF(security_bounce_key), NOLIMIT,
	 "HMAC-SHA256 key (hex, at least 32 bytes) for the tags in VERP addresses and DSN envelope ids; prefer bounce_key_file. Empty: derived from the BSN key."},
	{"security", "bounce_key_file", CFG_PATH, NULL, false, OFF(security_bounce_key_file),
	 NOLIMIT,
	 "File holding the bounce tag key in hex (e.g. a systemd credential). Changing it makes DSNs of mails sent before unattributable."},

	{"bounce", "max_age", CFG_DURATION, "7d", false, OFF(bounce_max_age_ms), 60000,
	 365 * MS_DAY,
	 "A DSN about a mail older than this is refused (mails are kept for bounce attribution this long)."},

	{"portal", "prompt_interval", CFG_DURATION, "182d", false, OFF(portal_prompt_interval_ms),
	 1000, 3650 * MS_DAY,
	 "The portal's prompts (confirm no e-mail, check your address, fix a bounced address) come back this long after they were acknowledged."},
	{"portal", "verify_ttl", CFG_DURATION, "1h", false, OFF(portal_verify_ttl_ms), 1000,
	 30 * MS_DAY, "An e-mail verification code is valid this long."},
	{"portal", "verify_attempts", CFG_INT, "5", false, OFF(portal_verify_attempts), 1,
	 MAX_VERIFY_ATTEMPTS,
	 "Wrong codes after which a verification is locked (the citizen must request a new code)."},

	{"retention", "min_days", CFG_INT, "30", false, OFF(retention_min_days), 1,
	 MAX_RETENTION_DAYS, "Smallest bewaartermijnDagen a citizen may choose."},
	{"retention", "max_days", CFG_INT, "3650", false, OFF(retention_max_days), 1,
	 MAX_RETENTION_DAYS, "Largest bewaartermijnDagen a citizen may choose."},
	{"retention", "default_days", CFG_INT, "365", false, OFF(retention_default_days), 1,
	 MAX_RETENTION_DAYS,
	 "Retention of accounts that did not choose one (between min_days and max_days)."},
	{"retention", "agency_record_days", CFG_INT, "3650", false,
	 OFF(retention_agency_record_days), 1, MAX_RETENTION_DAYS,
	 "The agency's record of a message (GET /v1/berichten/{id}, idempotent replay of its referentie) is kept this long after publication, the same for every message whatever the citizen does; at least max_days."},
	{"retention", "interval", CFG_DURATION, "10m", false, OFF(retention_interval_ms), 10,
	 MS_DAY,
	 "How often the janitor looks for messages past retention (it never purges one before its 6-week statistics window has closed)."},
	{"retention", "batch", CFG_INT, "1000", false, OFF(retention_batch), 1, MAX_RETENTION_BATCH,
	 "Messages purged per statement; small batches keep locks short."},

	{"templates", "dir", CFG_PATH, "templates", false, OFF(templates_dir), NOLIMIT,
	 "Directory of the mail templates."},

	{"log", "level", CFG_LOGLEVEL, "info", true, OFF(log_level), NOLIMIT,
	 "error, warn, info or debug. Logs never contain BSNs, e-mail addresses or tokens."},
	{"log", "file", CFG_PATH, NULL, true, OFF(log_file), NOLIMIT,
	 "Log file; empty means stderr (journald under systemd)."},
};

#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))
#define MIN_BSN_KEY 32
#define MAX_BSN_KEY 64

struct errbuf {
	char *buf;
	size_t len, cap;
	int count;
};

__attribute__((format(printf, 2, 3))) static void err_add(struct errbuf *e, const char *fmt, ...)
{
	e->count++;
	if (!e->buf || e->len + 1 >= e->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	e->len += (size_t)n;
	if (e->len >= e->cap)
		e->len = e->cap - 1;
	if (e->len + 1 < e->cap) {
		e->buf[e->len++] = '\n';
		e->buf[e->len] = '\0';
	}
}

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

static char **str_slot(struct config *cfg, const struct config_key *k)
{
	return (char **)((char *)cfg + k->offset);
}

static int64_t *int_slot(struct config *cfg, const struct config_key *k)
{
	return (int64_t *)((char *)cfg + k->offset);
}

static bool is_string_type(enum config_type t)
{
	return t == CFG_STRING || t == CFG_PATH || t == CFG_HOSTPORT || t == CFG_QUIET ||
	       t == CFG_TIMEZONE || t == CFG_LOGLEVEL || t == CFG_HEX || t == CFG_REDIS_URL;
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

/* Parses one value into its slot; returns a reason on failure. */
static const char *set_value(struct config *cfg, const struct config_key *k, const char *cfgname,
			     const char *value)
{
	int64_t v = 0;
	char host[256];
	int port;
	bool en;
	int a, b;
	uint8_t key[MAX_BSN_KEY + 1];
	size_t keylen = 0;

	switch (k->type) {
	case CFG_INT: {
		char *end;
		errno = 0;
		long long x = strtoll(value, &end, 10);
		if (errno || end == value || *end)
			return "not an integer";
		v = x;
		break;
	}
	case CFG_DURATION:
		if (!config_parse_duration(value, &v))
			return "not a duration (e.g. 500ms, 90s, 10m, 48h, 14d)";
		break;
	case CFG_SIZE:
		if (!config_parse_size(value, &v))
			return "not a size (e.g. 512k, 16m)";
		break;
	case CFG_HOSTPORT:
		if (!config_split_hostport(value, host, sizeof(host), &port))
			return "not host:port";
		break;
	case CFG_QUIET:
		if (!config_parse_quiet_hours(value, &en, &a, &b))
			return "not HH:MM-HH:MM or off";
		break;
	case CFG_TIMEZONE:
		if (!timezone_exists(value))
			return "unknown time zone";
		break;
	case CFG_LOGLEVEL:
		if (strcmp(value, "error") && strcmp(value, "warn") && strcmp(value, "info") &&
		    strcmp(value, "debug"))
			return "not one of error, warn, info, debug";
		break;
	case CFG_HEX: {
		const char *reason = NULL;
		if (strlen(value) > 2 * MAX_BSN_KEY)
			reason = "key longer than 64 bytes";
		else if (*value && !crypto_hex_decode(value, key, sizeof(key), &keylen))
			reason = "not hexadecimal";
		else if (*value && keylen < MIN_BSN_KEY)
			reason = "key shorter than 32 bytes";
		OPENSSL_cleanse(key, sizeof(key));
		if (reason)
			return reason;
		break;
	}
	case CFG_REDIS_URL:
		if (*value && !config_parse_redis_url(value, host, sizeof(host), &port))
			return "not redis://host:port (database 0)";
		break;
	case CFG_STRING:
	case CFG_PATH: break;
	}

	if (is_string_type(k->type)) {
		char **slot = str_slot(cfg, k);
		char *copy = (k->type == CFG_PATH && *value) ? resolve_path(cfgname, value)
							     : strdup(value);
		if (!copy)
			return "out of memory";
		free(*slot);
		*slot = copy;
	} else {
		if ((k->min || k->max) && (v < k->min || v > k->max))
			return "out of range";
		*int_slot(cfg, k) = v;
	}
	return NULL;
}

static const struct config_key *find_key(const char *section, const char *key, bool *section_known)
{
	*section_known = false;
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) != 0)
			continue;
		*section_known = true;
		if (strcmp(config_keys[i].key, key) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * A secret in hex, given inline (hex) or in a file (path). Decodes into
 * out (outcap bytes at most, MIN_KEY at least). Returns 1 when a key was
 * loaded, 0 when neither was given, -1 on an error (reported).
 */
static int load_hex_key(struct config *cfg, struct errbuf *e, const char *name, const char *hex,
			const char *path, uint8_t *out, size_t outcap, size_t *outlen)
{
	char *filebuf = NULL;

	if ((!hex || !*hex) && path && *path) {
		FILE *f = fopen(path, "r");
		if (!f) {
			err_add(e, "%s: security.%s_file: cannot open %s", cfg->path, name, path);
			return -1;
		}
		filebuf = calloc(1, 1024);
		size_t n = filebuf ? fread(filebuf, 1, 1023, f) : 0;
		fclose(f);
		if (!filebuf)
			return -1;
		filebuf[n] = '\0';
		hex = trim(filebuf);
	}
	if (!hex || !*hex) {
		free(filebuf);
		return 0;
	}
	bool ok = crypto_hex_decode(hex, out, outcap, outlen) && *outlen >= MIN_BSN_KEY;
	if (!ok)
		err_add(e, "%s: security: %s key must be 32 to 64 bytes of hex", cfg->path,
			strcmp(name, "bsn_key") == 0 ? "BSN" : "bounce");
	if (filebuf) {
		OPENSSL_cleanse(filebuf, 1024);
		free(filebuf);
	}
	return ok ? 1 : -1;
}

static bool load_bsn_key(struct config *cfg, struct errbuf *e)
{
	int got = load_hex_key(cfg, e, "bsn_key", cfg->security_bsn_key, cfg->security_bsn_key_file,
			       cfg->bsn_key, sizeof(cfg->bsn_key), &cfg->bsn_key_len);
	if (got == 0)
		err_add(e, "%s: security: bsn_key or bsn_key_file is required", cfg->path);
	return got == 1;
}

/*
 * The bounce tag key: its own when given, else derived from the BSN key
 * (HMAC with a fixed label), so that the two never share key material and
 * an existing configuration keeps working.
 */
static void load_bounce_key(struct config *cfg, struct errbuf *e)
{
	static const char label[] = "berichtd bounce tag key v1";
	char hex[CRYPTO_HEX256_LEN];
	int got = load_hex_key(cfg, e, "bounce_key", cfg->security_bounce_key,
			       cfg->security_bounce_key_file, cfg->bounce_key,
			       sizeof(cfg->bounce_key), &cfg->bounce_key_len);
	if (got != 0 || cfg->bsn_key_len == 0)
		return;
	if (crypto_hmac_sha256_hex(cfg->bsn_key, cfg->bsn_key_len, label, strlen(label), hex) &&
	    crypto_hex_decode(hex, cfg->bounce_key, sizeof(cfg->bounce_key), &cfg->bounce_key_len))
		cfg->bounce_key_derived = true;
	else
		err_add(e, "%s: security: cannot derive the bounce key", cfg->path);
	OPENSSL_cleanse(hex, sizeof(hex));
}

static bool apply_defaults(struct config *cfg, struct errbuf *e)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *reason = set_value(cfg, k, cfg->path, k->def ? k->def : "");
		if (reason && k->def) {
			/* a broken default is a bug in the table, not the operator's */
			err_add(e, "internal: default of %s.%s: %s", k->section, k->key, reason);
			return false;
		}
	}
	return true;
}

bool config_load_string(const char *name, const char *text, struct config *cfg, char *err,
			size_t errlen)
{
	struct errbuf e = {err, 0, errlen, 0};
	char section[64] = "";
	int lineno = 0;
	bool key_reported = false;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	cfg->path = strdup(name);
	if (!cfg->path || !apply_defaults(cfg, &e))
		return false;

	char *copy = strdup(text);
	if (!copy)
		return false;
	char *save = NULL;
	/* strtok_r would skip empty lines and so lose line numbers: walk by hand */
	for (char *line = copy; line; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = '\0';
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *rb = strchr(s, ']');
			if (!rb || rb[1] != '\0' || rb - s - 1 <= 0 ||
			    (size_t)(rb - s - 1) >= sizeof(section)) {
				err_add(&e, "%s:%d: malformed section header", name, lineno);
				section[0] = '\0';
				continue;
			}
			snprintf(section, sizeof(section), "%.*s", (int)(rb - s - 1), s + 1);
			bool known = false;
			find_key(section, "", &known);
			if (!known)
				err_add(&e, "%s:%d: [%s]: unknown section", name, lineno, section);
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			err_add(&e, "%s:%d: expected key = value", name, lineno);
			continue;
		}
		*eq = '\0';
		char *key = trim(s);
		char *value = trim(eq + 1);
		if (!*section) {
			err_add(&e, "%s:%d: %s: key outside of a [section]", name, lineno, key);
			continue;
		}
		bool known;
		const struct config_key *k = find_key(section, key, &known);
		if (!known)
			continue; /* the section was already reported */
		if (!k) {
			err_add(&e, "%s:%d: %s.%s: unknown key", name, lineno, section, key);
			continue;
		}
		const char *reason = set_value(cfg, k, name, value);
		if (reason)
			err_add(&e, "%s:%d: %s.%s: %s: '%s'", name, lineno, section, key, reason,
				k->type == CFG_HEX ? "(secret)" : value);
		if (reason && k->type == CFG_HEX)
			key_reported = true;
	}
	free(copy);

	if (cfg->redis_url && *cfg->redis_url) {
		char host[256];
		int port;
		if (config_parse_redis_url(cfg->redis_url, host, sizeof(host), &port)) {
			char *h = strdup(host);
			if (h) {
				free(cfg->redis_host);
				cfg->redis_host = h;
				cfg->redis_port = port;
			}
		}
	}
	/* reported together with any other problem, so one run shows them all */
	if (!key_reported && load_bsn_key(cfg, &e))
		load_bounce_key(cfg, &e);
	if (!(cfg->retention_min_days <= cfg->retention_default_days &&
	      cfg->retention_default_days <= cfg->retention_max_days))
		err_add(&e, "%s: retention: need min_days <= default_days <= max_days", name);
	if (cfg->retention_agency_record_days < cfg->retention_max_days)
		err_add(&e, "%s: retention: agency_record_days must be at least max_days", name);
	if (cfg->ops_listen && cfg->http_listen && strcmp(cfg->ops_listen, cfg->http_listen) == 0)
		err_add(&e, "%s: ops.listen: must differ from http.listen", name);
	return e.count == 0;
}

bool config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: cannot open: %s\n", path, strerror(errno));
		return false;
	}
	char *text = NULL;
	size_t cap = 0, len = 0;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *t = realloc(text, cap);
			if (!t) {
				free(text);
				fclose(f);
				return false;
			}
			text = t;
		}
		memcpy(text + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (!text) {
		text = strdup("");
		if (!text)
			return false;
	}
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: contains a NUL byte\n", path);
		return false;
	}
	bool ok = config_load_string(path, text, cfg, err, errlen);
	free(text);
	return ok;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (is_string_type(config_keys[i].type)) {
			char **slot = str_slot(cfg, &config_keys[i]);
			free(*slot);
			*slot = NULL;
		}
	}
	free(cfg->path);
	cfg->path = NULL;
	memset(cfg->bsn_key, 0, sizeof(cfg->bsn_key));
	OPENSSL_cleanse(cfg->bounce_key, sizeof(cfg->bounce_key));
}

void config_write_example(FILE *out)
{
	const char *section = "";

	fputs("# berichtd.conf - documented example, generated from the key table in\n"
	      "# common/config.c by `berichtd config-example`. Every key is shown with its\n"
	      "# default. Keys marked (reload) take effect on SIGHUP; the others need a\n"
	      "# restart. Unknown keys are errors. Durations: 500ms, 90s, 10m, 48h, 14d.\n",
	      out);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		if (strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "# %s%s\n", k->doc, k->reloadable ? " (reload)" : "");
		if (k->def)
			fprintf(out, "%s = %s\n", k->key, k->def);
		else
			fprintf(out, "#%s =\n", k->key);
	}
}
