/*
 * log.h - leveled logging for the daemon and its CLI.
 *
 * One line per event, written with a single write(2) so lines from the
 * event loop and the delivery threads never interleave. When stderr is
 * connected to journald (JOURNAL_STREAM set) each line carries the sd-daemon
 * "<N>" priority prefix instead of a timestamp.
 *
 * Privacy rule (DESIGN.md section 7): callers never pass a BSN, an e-mail
 * address or a token to these functions. Log ids (request id, account id,
 * notification id) instead.
 */
#ifndef BERICHTD_LOG_H
#define BERICHTD_LOG_H

#include <stdbool.h>

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

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
