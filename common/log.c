/*
 * log.c - see log.h. Thread-safe: the level and fd are read with relaxed
 * atomics; a line is formatted into a stack buffer and written at once.
 * The request id is thread-local.
 */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
/* room kept after the message for the fields and the request id */
#define LOG_FIELDS_ROOM 768

static atomic_int log_level_cur = LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static atomic_bool log_journal;
static _Thread_local char log_rid[LOG_REQUEST_ID_MAX + 1];

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

/*
 * systemd sets JOURNAL_STREAM to "device:inode" of the stream it connected
 * to stderr; a process whose stderr was redirected since (a shell started
 * by a unit) keeps the variable but not the stream, and must not prefix.
 */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
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
	atomic_store(&log_journal, fd == STDERR_FILENO && stderr_is_journal());
	return true;
}

void log_close(void)
{
	int old = atomic_exchange(&log_fd, STDERR_FILENO);

	if (old != STDERR_FILENO)
		close(old);
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level_cur);
}

void log_set_request_id(const char *id)
{
	snprintf(log_rid, sizeof(log_rid), "%s", id ? id : "");
}

const char *log_request_id(void)
{
	return log_rid;
}

/* ----------------------------------------------------------- the line */

struct lbuf {
	char *p;
	size_t n, cap;
};

static void put(struct lbuf *b, const char *s, size_t len)
{
	if (len > b->cap - b->n)
		len = b->cap - b->n;
	memcpy(b->p + b->n, s, len);
	b->n += len;
}

static void puts_(struct lbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static bool needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return true;
	return false;
}

/* v as a logfmt value, bare or quoted; never more than limit bytes (quotes included) */
static void put_value(struct lbuf *b, const char *v, size_t limit)
{
	size_t cap = b->cap;

	if (limit < cap - b->n)
		b->cap = b->n + limit;
	if (!needs_quotes(v)) {
		puts_(b, v);
		b->cap = cap;
		return;
	}
	put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[8];
		size_t len = 2;
		esc[0] = '\\';
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (*p < ' ' || *p == 0x7f)
				len = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
			else {
				esc[0] = (char)*p;
				len = 1;
			}
		}
		if (b->n + len + 1 > b->cap)
			break; /* cut short, but keep the closing quote */
		put(b, esc, len);
	}
	if (b->n == b->cap) /* a quote that did not fit, so the last byte gives way */
		b->n--;
	put(b, "\"", 1);
	b->cap = cap;
}

static void put_field(struct lbuf *b, const struct log_field *f)
{
	char num[48];

	put(b, " ", 1);
	puts_(b, f->key);
	put(b, "=", 1);
	switch (f->type) {
	case LOG_FIELD_INT:
		snprintf(num, sizeof(num), "%lld", f->num);
		puts_(b, num);
		break;
	case LOG_FIELD_MS:
		snprintf(num, sizeof(num), "%.3f", f->ms);
		puts_(b, num);
		break;
	case LOG_FIELD_STR: put_value(b, f->str ? f->str : "", b->cap - b->n); break;
	}
}

static void emit(enum log_level level, const char *msg, const struct log_field *f, size_t n)
{
	char line[LOG_LINE_MAX];
	struct lbuf b = {line, 0, sizeof(line) - 1}; /* the last byte for the newline */
	struct timespec ts;
	struct tm tm;
	char stamp[48];

	if (atomic_load(&log_journal)) {
		snprintf(stamp, sizeof(stamp), "<%d>", level_prio[level]);
		puts_(&b, stamp);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t sl = strftime(stamp, sizeof(stamp), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + sl, sizeof(stamp) - sl, ".%03ldZ level=%s msg=", ts.tv_nsec / 1000000,
		 level_names[level]);
	puts_(&b, stamp);
	put_value(&b, msg, b.cap - b.n - LOG_FIELDS_ROOM);
	for (size_t i = 0; i < n; i++)
		put_field(&b, &f[i]);
	if (log_rid[0]) {
		struct log_field rid = LOG_STR("request_id", log_rid);
		put_field(&b, &rid);
	}
	line[b.n++] = '\n';

	ssize_t r = write(atomic_load(&log_fd), line, b.n);
	(void)r; /* nowhere left to report a failing log write */
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char text[LOG_LINE_MAX];

	if (!log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (w < 0)
		return;
	emit(level, text, NULL, 0);
}

void log_fields(enum log_level level, const char *msg, const struct log_field *f, size_t n)
{
	if (log_enabled(level))
		emit(level, msg, f, n);
}
