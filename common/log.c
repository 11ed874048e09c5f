/*
 * log.c - see log.h. Thread-safe: the level and fd are read with relaxed
 * atomics; a line is formatted into a stack buffer and written at once.
 */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static atomic_int log_level_cur = LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static bool log_journal;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* sd-daemon priorities: err, warning, info, debug */
static const int level_prio[] = {3, 4, 6, 7};

bool log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOG_ERROR; i <= LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

bool log_open(enum log_level level, const char *path)
{
	int fd = STDERR_FILENO;

	if (path && *path) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return false;
	}
	int old = atomic_exchange(&log_fd, fd);
	if (old != STDERR_FILENO)
		close(old);
	atomic_store(&log_level_cur, (int)level);
	log_journal = fd == STDERR_FILENO && getenv("JOURNAL_STREAM") != NULL;
	return true;
}

void log_close(void)
{
	int old = atomic_exchange(&log_fd, STDERR_FILENO);

	if (old != STDERR_FILENO)
		close(old);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;

	if ((int)level > atomic_load(&log_level_cur))
		return;

	if (log_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", level_prio[level]);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
				      ts.tv_nsec / 1000000, level_names[level]);
	}

	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (w < 0)
		return;
	n += (size_t)w;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';

	ssize_t r = write(atomic_load(&log_fd), line, n);
	(void)r; /* nowhere left to report a failing log write */
}
