/*
 * test_log.c - specification of common/log (logfmt lines, fields, the
 * request id) and common/outage (one line per outage).
 *
 * needs: common/log.c, common/outage.c
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "outage.h"

static char path[64];

static void to_file(enum log_level level)
{
	snprintf(path, sizeof(path), "/tmp/berichtd-test-log-%d", (int)getpid());
	unlink(path);
	cr_assert(log_open(level, path));
}

/* The whole file; the caller frees. */
static char *logged(void)
{
	FILE *f = fopen(path, "r");
	static char none[] = "";
	if (!f)
		return strdup(none);
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The text after "ts=... " (the first blank), for comparing. */
static const char *after_ts(const char *line)
{
	cr_assert(strncmp(line, "ts=", 3) == 0, "%s", line);
	const char *p = strchr(line, ' ');
	cr_assert(p);
	return p + 1;
}

static void done(void)
{
	log_close();
	unlink(path);
}

Test(log, a_plain_message_is_bare_and_the_line_starts_with_a_utc_timestamp, .fini = done)
{
	to_file(LOG_INFO);
	log_info("started");
	char *s = logged();
	cr_assert_eq(strlen(s), strlen("ts=2026-12-02T03:04:05.123Z level=info msg=started\n"), "%s",
		     s);
	cr_assert_eq(s[26], 'Z', "%s", s);
	cr_assert_str_eq(after_ts(s), "level=info msg=started\n");
	free(s);
}

Test(log, blanks_quotes_newlines_and_control_bytes_are_quoted_and_escaped, .fini = done)
{
	to_file(LOG_INFO);
	log_warn("config:\n line 3: \"x\" = \\ \x01");
	char *s = logged();
	cr_assert_str_eq(after_ts(s),
			 "level=warn msg=\"config:\\n line 3: \\\"x\\\" = \\\\ \\x01\"\n");
	free(s);
}

Test(log, fields_follow_the_message_and_the_request_id_comes_last, .fini = done)
{
	to_file(LOG_DEBUG);
	log_set_request_id("req-1");
	log_kv(LOG_ERROR, "access", LOG_STR("path", "/v1/accounts/{}"), LOG_INT("status", 404),
	       LOG_STR("query", ""), LOG_STR("reason", "Connection refused"),
	       LOG_MS("duration_ms", 1.5));
	log_set_request_id(NULL);
	log_debug("after");
	char *s = logged();
	char *second = strchr(s, '\n') + 1;
	second[-1] = '\0';
	cr_assert_str_eq(after_ts(s), "level=error msg=access path=/v1/accounts/{} status=404 "
				      "query=\"\" reason=\"Connection refused\" "
				      "duration_ms=1.500 request_id=req-1");
	cr_assert_str_eq(after_ts(second), "level=debug msg=after\n");
	free(s);
}

Test(log, lines_below_the_level_are_not_written, .fini = done)
{
	to_file(LOG_WARN);
	log_info("no");
	log_debug("no");
	cr_assert(!log_enabled(LOG_INFO));
	cr_assert(log_enabled(LOG_ERROR));
	char *s = logged();
	cr_assert_str_eq(s, "");
	free(s);
}

Test(log, a_long_message_stays_one_line_with_its_closing_quote_and_fields, .fini = done)
{
	char *big = malloc(10001);
	memset(big, 'a', 10000);
	big[0] = ' ';
	big[10000] = '\0';
	to_file(LOG_INFO);
	log_kv(LOG_INFO, big, LOG_INT("n", 7));
	char *s = logged();
	size_t n = strlen(s);
	cr_assert(n < 4096, "%zu", n);
	cr_assert_eq(strchr(s, '\n'), s + n - 1);
	cr_assert(strstr(s, "a\" n=7\n") != NULL, "%s", s + n - 40);
	free(s);
	free(big);
}

Test(log, a_request_id_is_per_thread_and_cut_at_64, .fini = done)
{
	char id[100];
	memset(id, 'r', 99);
	id[99] = '\0';
	log_set_request_id(id);
	cr_assert_eq(strlen(log_request_id()), LOG_REQUEST_ID_MAX);
	log_set_request_id("");
	cr_assert_str_eq(log_request_id(), "");
}

/* ---- outage --------------------------------------------------------- */

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p++)
		n++;
	return n;
}

Test(outage, one_line_down_a_reminder_a_minute_and_one_summary, .fini = done)
{
	struct outage o;
	to_file(LOG_DEBUG);
	outage_init(&o, "smtp", "SMTP relay");
	outage_ok(&o, 0); /* up: nothing to say */
	for (int i = 0; i < 1000; i++)
		outage_fail(&o, "Connection refused", 3, 1000 + i * 10); /* 10 s of failures */
	cr_assert(outage_is_down(&o));
	outage_fail(&o, "Connection timed out", 3, 1000 + OUTAGE_REMIND_MS); /* a minute on */
	outage_fail(&o, "Connection timed out", 3, 2000 + OUTAGE_REMIND_MS);
	outage_ok(&o, 11000 + OUTAGE_REMIND_MS);
	outage_ok(&o, 12000 + OUTAGE_REMIND_MS);
	cr_assert(!outage_is_down(&o));
	outage_destroy(&o);
	char *s = logged();
	cr_assert_eq(count(s, "\n"), 3, "%s", s);
	cr_assert(strstr(s, "level=warn msg=\"SMTP relay unreachable\" service=smtp "
			    "reason=\"Connection refused\"\n"),
		  "%s", s);
	cr_assert(strstr(s, "level=warn msg=\"SMTP relay still unreachable\" service=smtp "
			    "reason=\"Connection timed out\" down_ms=60000 failures=1001 "
			    "deferred=3003\n"),
		  "%s", s);
	cr_assert(strstr(s, "level=info msg=\"SMTP relay reachable again\" service=smtp "
			    "down_ms=70000 failures=1002 deferred=3006 "
			    "reason=\"Connection timed out\"\n"),
		  "%s", s);
	free(s);
}
