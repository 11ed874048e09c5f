/*
 * config_keys.c - every configuration key: section, name, type, default,
 * whether SIGHUP may change it, where it is stored, bounds and one line of
 * documentation (config_impl.h). The parser, the defaults and the example
 * file are all derived from this table.
 */
#include "config.h"
#include "config_impl.h"

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
/* a revoked token must stop working within 30 s (issue 15) */
#define AUTH_CACHE_TTL_MAX_MS 30000
/* representation_in_force (0012) walks at most 16 links */
#define MAX_REP_DEPTH 16
/* epsilon 0.001 .. 100 (thousandths); max_per_citizen below the rollup's cap (dp.h) */
#define MAX_EPSILON_MILLI 100000
#define MAX_PER_CITIZEN 15

const struct config_key config_keys[] = {
	{"http", "listen", CFG_HOSTPORT, "127.0.0.1:8080", false, OFF(http_listen), NOLIMIT,
	 "Address and port the HTTP API listens on (put TLS in front: a reverse proxy or load balancer)."},
	{"http", "max_body", CFG_SIZE, "16m", false, OFF(http_max_body), MIN_BODY, MAX_BODY,
	 "Largest request body accepted; larger requests get 413."},
	{"http", "header_timeout", CFG_DURATION, "10s", false, OFF(http_header_timeout_ms), 1000,
	 MS_DAY,
	 "Longest time from a request's first byte to the end of its headers; a slower client (slowloris) is cut off."},
	{"http", "request_timeout", CFG_DURATION, "60s", false, OFF(http_request_timeout_ms), 1000,
	 MS_DAY, "Longest time from a request's first byte to the end of its body."},
	{"http", "max_connections", CFG_INT, "20000", false, OFF(http_max_connections), 1, 1000000,
	 "Most client connections at once on the API listener (the ops listener has no limit); more get 503 with Connection: close. Keep it under LimitNOFILE."},
	{"http", "timeout", CFG_DURATION, "30s", false, OFF(http_timeout_ms), 1000, MS_DAY,
	 "Idle and request timeout of HTTP connections."},
	{"http", "problem_base", CFG_STRING, "https://berichtd.invalid/problemen/", false,
	 OFF(http_problem_base), NOLIMIT,
	 "Base of the \"type\" URI of every problem+json answer; the problem's slug (e.g. ongeldige-invoer) is appended. The default is under .invalid (RFC 6761), which never resolves: set it to a page you publish."},

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
	{"redis", "sentinels", CFG_HOSTPORTS, NULL, false, OFF(redis_sentinels), NOLIMIT,
	 "Redis Sentinels as host:port,host:port,...: when set, the primary is asked of them (SENTINEL get-master-addr-by-name) on every connect, and url, host and port are ignored."},
	{"redis", "master_name", CFG_STRING, "berichtd", false, OFF(redis_master_name), NOLIMIT,
	 "The name the sentinels monitor the Redis primary by (sentinel monitor NAME ...); only with sentinels."},
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
	{"tls", "cert_file", CFG_PATH, NULL, false, OFF(tls_cert_file), NOLIMIT,
	 "Certificate chain (PEM) of the API listener; set, the listener speaks only TLS 1.2/1.3. Reloaded on SIGHUP."},
	{"tls", "key_file", CFG_PATH, NULL, false, OFF(tls_key_file), NOLIMIT,
	 "Its private key (PEM); empty: in cert_file. A systemd credential in production."},
	{"tls", "client_auth", CFG_STRING, "off", false, OFF(tls_client_auth), NOLIMIT,
	 "Client certificates (Digikoppeling): off, optional (checked when sent: an agency's must carry its OIN in serialNumber) or require (agency routes without one get 401)."},
	{"tls", "client_ca_file", CFG_PATH, NULL, false, OFF(tls_client_ca_file), NOLIMIT,
	 "CA certificates (PEM) client certificates must chain to (PKIoverheid)."},
	{"tls", "portal_certs", CFG_STRING, NULL, false, OFF(tls_portal_certs), NOLIMIT,
	 "SHA-256 fingerprints (hex, comma-separated) of the client certificates portal tokens are bound to; empty: not bound."},
	{"tls", "ministry_certs", CFG_STRING, NULL, false, OFF(tls_ministry_certs), NOLIMIT,
	 "The same for ministry tokens."},
	{"tls", "relay_certs", CFG_STRING, NULL, false, OFF(tls_relay_certs), NOLIMIT,
	 "The same for relay tokens."},

	{"smtp", "starttls", CFG_STRING, "opportunistic", false, OFF(smtp_starttls), NOLIMIT,
	 "TLS to the relay: off, opportunistic (when the relay offers STARTTLS) or require (no mail goes to a relay without it). With TLS the relay's certificate must be valid for smtp.host: a relay that offers TLS with a bad certificate gets no mail."},
	{"smtp", "ca_file", CFG_PATH, NULL, false, OFF(smtp_ca_file), NOLIMIT,
	 "CA certificates (PEM) the relay's certificate is checked against; empty: the system's store."},
	{"smtp", "user", CFG_STRING, NULL, false, OFF(smtp_user), NOLIMIT,
	 "User for SMTP AUTH at the relay; empty: no AUTH. Needs starttls = require (the password never goes in clear)."},
	{"smtp", "password_file", CFG_PATH, NULL, false, OFF(smtp_password_file), NOLIMIT,
	 "File holding the SMTP AUTH password (a systemd credential in production: LoadCredential=)."},

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
	{"delivery", "stall_timeout", CFG_DURATION, "90s", false, OFF(delivery_stall_ms), 1000,
	 MS_DAY,
	 "Under the systemd watchdog: a delivery worker that shows no progress (no turn of its loop, no line to or from the relay, no database attempt) for this long stops the watchdog pings, so systemd restarts the daemon. Longer than smtp.timeout."},
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
	{"stats", "count_representative_opens", CFG_BOOL, "true", false,
	 OFF(stats_count_representative_opens), NOLIMIT,
	 "A message opened by a representative (POST .../openingen with doorAccountId) counts as opened in the statistics (true or false; reminders stop either way; docs/statistics.md)."},

	{"representatives", "max_depth", CFG_INT, "2", false, OFF(representatives_max_depth), 1,
	 MAX_REP_DEPTH,
	 "Longest chain of a representation passed on (ketenmachtiging, doorgegevenDoor): 1 = never passed on, 2 = once."},
	{"stats", "agency_epsilon", CFG_MILLI, "1.0", false, OFF(stats_agency_epsilon_milli), 1,
	 MAX_EPSILON_MILLI,
	 "Differential privacy budget of each agency's statistics view per year (docs/statistics.md): seeing its figures makes an agency at most e^epsilon times surer about one citizen's opens."},
	{"stats", "max_per_citizen", CFG_INT, "3", false, OFF(stats_max_per_citizen), 1,
	 MAX_PER_CITIZEN,
	 "The agency view counts at most this many messages per citizen, agency and year (the first ones sent; at most 15)."},
	{"stats", "noise_seed", CFG_STRING, NULL, false, OFF(stats_noise_seed), NOLIMIT,
	 "TEST ONLY: derive the agency view's noise from this seed instead of OpenSSL's CSPRNG (anyone with the seed can remove the noise; logged as a warning at start). Leave empty in production."},

	{"security", "bsn_key", CFG_HEX, NULL, false, OFF(security_bsn_key), NOLIMIT,
	 "HMAC-SHA256 key (hex, at least 32 bytes) for hashing BSNs; prefer bsn_key_file."},
	{"security", "bsn_key_file", CFG_PATH, "bsn.key", false, OFF(security_bsn_key_file),
	 NOLIMIT,
	 "File holding the BSN hashing key in hex, beside this file by default (openssl rand -hex 32 > /etc/berichtd/bsn.key; chmod 600). Under systemd, LoadCredential=bsn.key:/etc/berichtd/bsn.key hands it over and $CREDENTIALS_DIRECTORY/bsn.key is read instead. Never change it: hashes would no longer match."},
	{"security", "bounce_key", CFG_HEX, NULL, false, OFF(security_bounce_key), NOLIMIT,
	 "HMAC-SHA256 key (hex, at least 32 bytes) for the tags in VERP addresses and DSN envelope ids; prefer bounce_key_file. Empty: derived from the BSN key."},
	{"security", "bounce_key_file", CFG_PATH, NULL, false, OFF(security_bounce_key_file),
	 NOLIMIT,
	 "File holding the bounce tag key in hex (e.g. a systemd credential). Changing it makes DSNs of mails sent before unattributable."},
	{"security", "token_cache_ttl", CFG_DURATION, "30s", false,
	 OFF(security_token_cache_ttl_ms), 0, AUTH_CACHE_TTL_MAX_MS,
	 "How long the daemon trusts a bearer token it has looked up (at most 30s; 0s asks PostgreSQL on every request). A revoked token is refused within this time; an expired one at its expiry."},

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

const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);
