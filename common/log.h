/*
 * log.h - leveled logging for the daemon and its CLI, as logfmt.
 *
 * One line per event, written with a single write(2) so lines from the
 * event loop and the delivery threads never interleave:
 *
 *   ts=2026-12-02T03:04:05.123Z level=info msg="pg[0]: connected" key=value request_id=...
 *
 * A value is written bare when it has no blank, '"', '=', '\' or control
 * character, else in double quotes with '"', '\', newline, CR and tab
 * escaped as \" \\ \n \r \t and other control bytes as \xNN; so a message
 * with a newline stays one line. When stderr is connected to journald
 * (JOURNAL_STREAM names the device and inode of our stderr) each line also
 * starts with the sd-daemon "<N>" priority prefix, which journald strips.
 *
 * Fields: log_kv(level, msg, LOG_STR("key", s), LOG_INT("key", n), ...).
 * A thread may name the request it works for (log_set_request_id): every
 * line it writes meanwhile carries request_id=. http_serve.c sets it while a
 * request's code runs, pgpool.c around the callback of a query queued by
 * one.
 *
 * Privacy rule (DESIGN.md section 7): callers never pass a BSN, an e-mail
 * address, a token or a verification code to these functions. Log ids
 * (request id, account id, notification id) instead. The integration suite
 * scans every daemon log it wrote for them (tests/integration/logscan.py).
 */
#ifndef BERICHTD_LOG_H
#define BERICHTD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Parses "error", "warn", "info", "debug". */
bool log_level_parse(const char *s, enum log_level *out);

/*
 * Sets the level and the destination. path NULL or "" means stderr. Called
 * once at start-up (and on reload) from the main thread, before the workers
 * run. Returns false if the file cannot be opened (the old one stays).
 */
bool log_open(enum log_level level, const char *path);
void log_close(void);

/* Whether a line of this level would be written (to skip costly formatting). */
bool log_enabled(enum log_level level);

/* A free-text event: msg="<printf text>". */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum log_field_type { LOG_FIELD_STR, LOG_FIELD_INT, LOG_FIELD_MS };

struct log_field {
	const char *key; /* a logfmt key: letters, digits, '_' */
	enum log_field_type type;
	const char *str; /* LOG_FIELD_STR; NULL is written as "" */
	long long num;   /* LOG_FIELD_INT */
	double ms;       /* LOG_FIELD_MS: written with 3 decimals */
};

#define LOG_STR(k, v) ((struct log_field){(k), LOG_FIELD_STR, (v), 0, 0})
#define LOG_INT(k, v) ((struct log_field){(k), LOG_FIELD_INT, NULL, (long long)(v), 0})
#define LOG_MS(k, v) ((struct log_field){(k), LOG_FIELD_MS, NULL, 0, (double)(v)})

/* An event with fields: msg="<msg>" then key=value for each of the n fields. */
void log_fields(enum log_level level, const char *msg, const struct log_field *f, size_t n);

#define log_kv(level, msg, ...)                                                                    \
	log_fields((level), (msg), (const struct log_field[]){__VA_ARGS__},                        \
		   sizeof((const struct log_field[]){__VA_ARGS__}) / sizeof(struct log_field))

/*
 * The request the calling thread works for: id (copied, at most
 * LOG_REQUEST_ID_MAX bytes) is added as request_id= to every line the
 * thread writes until it is set again; NULL or "" clears it. log_request_id
 * returns the current one ("" for none).
 */
#define LOG_REQUEST_ID_MAX 64
void log_set_request_id(const char *id);
const char *log_request_id(void);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
