/*
 * test_config.c - specification of common/config: the table-driven INI
 * parser, its defaults, its error messages ("file:line: section.key: reason",
 * one line per problem), the value parsers and the generated example file.
 *
 * needs: common/config.c common/crypto.c (libcrypto)
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

/* 32 bytes: the shortest key that is accepted. */
#define KEY32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* 31 bytes: one too short. */
#define KEY31 "5ec2e7f00d5ec2e7f00d5ec2e7f00d5ec2e7f00d5ec2e7f00d5ec2e7f00d5e"
/* 64 bytes: the longest key that fits struct config's bsn_key. */
#define KEY64 KEY32 KEY32

#define SECURITY "[security]\nbsn_key = " KEY32 "\n"

/* ---- helpers ------------------------------------------------------------ */

/* Writes text to a fresh file under /tmp; returns its malloc'd path. */
static char *write_temp(const char *text)
{
	char *path = strdup("/tmp/berichtd-test-config-XXXXXX");
	cr_assert_not_null(path);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp failed");
	FILE *f = fdopen(fd, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	return path;
}

/* Writes text to dir/name; returns the malloc'd path. */
static char *write_in_dir(const char *dir, const char *name, const char *text)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char *path = malloc(n);
	cr_assert_not_null(path);
	snprintf(path, n, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "cannot create %s", path);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	return path;
}

static char *make_temp_dir(void)
{
	char *dir = strdup("/tmp/berichtd-test-config-dir-XXXXXX");
	cr_assert_not_null(dir);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
	return dir;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* Loads text that must be accepted. */
static void load_ok(const char *text, struct config *cfg)
{
	char err[CONFIG_ERR_MAX];
	bool ok = config_load_string("berichtd.conf", text, cfg, err, sizeof(err));
	cr_assert(ok, "expected the config to load, got:\n%s", err);
	cr_assert_str_empty(err);
}

/* Loads text that must be rejected; the error text lands in err. */
static void load_fails(const char *text, char *err, size_t errlen)
{
	struct config cfg;
	bool ok = config_load_string("berichtd.conf", text, &cfg, err, errlen);
	config_free(&cfg);
	cr_assert_not(ok, "expected the config to be rejected:\n%s", text);
	cr_assert_str_not_empty(err, "a rejected config must say why");
}

/* Asserts that err contains needle. */
static void assert_has(const char *err, const char *needle)
{
	cr_assert_not_null(strstr(err, needle), "expected \"%s\" in the error text:\n%s", needle,
			   err);
}

/* ---- a complete file ------------------------------------------------------ */

static const char complete[] =
	"# berichtd test configuration\n"
	"[http]\n"
	"listen = 0.0.0.0:9090\n"
	"max_body = 16m\n"
	"timeout = 90s\n"
	"\n"
	"[postgres]\n"
	"conninfo = host=db.internal dbname=bericht user=berichtd\n"
	"pool_size = 8\n"
	"\n"
	"[redis]\n"
	"host = redis.internal\n"
	"port = 6380\n"
	"key_prefix = test:\n"
	"\n"
	"[smtp]\n"
	"host = mail.internal\n"
	"port = 587\n"
	"from = Berichtenbox Test <noreply@test.example>\n"
	"bounce_domain = bounce.test.example\n"
	"helo = berichtd.test.example\n"
	"timeout = 10m\n"
	"\n"
	"[delivery]\n"
	"workers = 4\n"
	"batch = 100\n"
	"rate_limit = 20\n"
	"retry_span = 14d\n"
	"visibility_timeout = 10m\n"
	"reconcile_interval = 90s\n"
	"poll_interval = 500ms\n"
	"\n"
	"[notify]\n"
	"digest_window = 10m\n"
	"quiet_hours = 23:30-06:15\n"
	"timezone = Europe/Berlin\n"
	"repeat_after = 14d\n"
	"repeat_before_deadline = 3d\n"
	"max_repeats = 3\n"
	"\n"
	"[security]\n"
	"bsn_key = " KEY32 "\n"
	"\n"
	"[templates]\n"
	"dir = /srv/berichtd/templates\n"
	"\n"
	"[log]\n"
	"level = debug\n"
	"file = /var/log/berichtd.log\n";

Test(config, complete_file_loads_from_disk_without_error)
{
	char *path = write_temp(complete);
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	bool ok = config_load(path, &cfg, err, sizeof(err));
	cr_expect(ok, "%s", err);
	cr_expect_str_empty(err);
	cr_expect_str_eq(cfg.path, path);
	config_free(&cfg);
	unlink(path);
	free(path);
}

Test(config, complete_file_sets_every_http_value)
{
	struct config cfg;
	load_ok(complete, &cfg);
	cr_expect_str_eq(cfg.http_listen, "0.0.0.0:9090");
	cr_expect_eq(cfg.http_max_body, 16LL * 1024 * 1024);
	cr_expect_eq(cfg.http_timeout_ms, 90000);
	config_free(&cfg);
}

Test(config, complete_file_sets_every_postgres_and_redis_value)
{
	struct config cfg;
	load_ok(complete, &cfg);
	/* a value may itself contain '=': only the first one splits key from value */
	cr_expect_str_eq(cfg.pg_conninfo, "host=db.internal dbname=bericht user=berichtd");
	cr_expect_eq(cfg.pg_pool_size, 8);
	cr_expect_str_eq(cfg.redis_host, "redis.internal");
	cr_expect_eq(cfg.redis_port, 6380);
	cr_expect_str_eq(cfg.redis_key_prefix, "test:");
	config_free(&cfg);
}

Test(config, complete_file_sets_every_smtp_value)
{
	struct config cfg;
	load_ok(complete, &cfg);
	cr_expect_str_eq(cfg.smtp_host, "mail.internal");
	cr_expect_eq(cfg.smtp_port, 587);
	cr_expect_str_eq(cfg.smtp_from, "Berichtenbox Test <noreply@test.example>");
	cr_expect_str_eq(cfg.smtp_bounce_domain, "bounce.test.example");
	cr_expect_str_eq(cfg.smtp_helo, "berichtd.test.example");
	cr_expect_eq(cfg.smtp_timeout_ms, 10LL * 60 * 1000);
	config_free(&cfg);
}

Test(config, complete_file_sets_every_delivery_value)
{
	struct config cfg;
	load_ok(complete, &cfg);
	cr_expect_eq(cfg.delivery_workers, 4);
	cr_expect_eq(cfg.delivery_batch, 100);
	cr_expect_eq(cfg.delivery_rate_limit, 20);
	cr_expect_eq(cfg.delivery_retry_span_ms, 14LL * 24 * 3600 * 1000);
	cr_expect_eq(cfg.delivery_visibility_ms, 600000);
	cr_expect_eq(cfg.delivery_reconcile_ms, 90000);
	cr_expect_eq(cfg.delivery_poll_ms, 500);
	config_free(&cfg);
}

Test(config, complete_file_sets_every_notify_value)
{
	struct config cfg;
	load_ok(complete, &cfg);
	cr_expect_eq(cfg.notify_digest_window_ms, 600000);
	cr_expect_str_eq(cfg.notify_quiet_hours, "23:30-06:15");
	cr_expect_str_eq(cfg.notify_timezone, "Europe/Berlin");
	cr_expect_eq(cfg.notify_repeat_after_ms, 14LL * 24 * 3600 * 1000);
	cr_expect_eq(cfg.notify_repeat_before_deadline_ms, 3LL * 24 * 3600 * 1000);
	cr_expect_eq(cfg.notify_max_repeats, 3);
	config_free(&cfg);
}

Test(config, complete_file_decodes_the_bsn_key)
{
	struct config cfg;
	load_ok(complete, &cfg);
	cr_expect_str_eq(cfg.security_bsn_key, KEY32);
	cr_assert_eq(cfg.bsn_key_len, 32);
	for (size_t i = 0; i < 32; i++)
		cr_expect_eq(cfg.bsn_key[i], i, "byte %zu", i);
	config_free(&cfg);
}

Test(config, complete_file_sets_templates_and_log)
{
	struct config cfg;
	load_ok(complete, &cfg);
	cr_expect_str_eq(cfg.templates_dir, "/srv/berichtd/templates");
	cr_expect_str_eq(cfg.log_level, "debug");
	cr_expect_str_eq(cfg.log_file, "/var/log/berichtd.log");
	config_free(&cfg);
}

Test(config, whitespace_around_keys_and_values_is_ignored)
{
	struct config cfg;
	load_ok("  [delivery]  \n\t workers\t=\t7  \r\n" SECURITY, &cfg);
	cr_expect_eq(cfg.delivery_workers, 7);
	config_free(&cfg);
}

Test(config, a_later_line_overrides_an_earlier_one_for_the_same_key)
{
	struct config cfg;
	load_ok("[smtp]\nhost = first\nhost = second\n" SECURITY, &cfg);
	cr_expect_str_eq(cfg.smtp_host, "second");
	config_free(&cfg);
}

Test(config, a_section_may_appear_twice)
{
	struct config cfg;
	load_ok("[redis]\nport = 7000\n" SECURITY "[redis]\nhost = r2\n", &cfg);
	cr_expect_eq(cfg.redis_port, 7000);
	cr_expect_str_eq(cfg.redis_host, "r2");
	config_free(&cfg);
}

/* ---- defaults ------------------------------------------------------------- */

Test(config, defaults_apply_to_http_postgres_and_redis)
{
	struct config cfg;
	load_ok(SECURITY, &cfg);
	cr_expect_str_eq(cfg.http_listen, "127.0.0.1:8080");
	cr_expect_eq(cfg.http_max_body, 16LL * 1024 * 1024);
	cr_expect_eq(cfg.http_timeout_ms, 30000);
	cr_expect_str_eq(cfg.pg_conninfo, "dbname=berichtd");
	cr_expect_eq(cfg.pg_pool_size, 4);
	cr_expect_str_eq(cfg.redis_host, "127.0.0.1");
	cr_expect_eq(cfg.redis_port, 6379);
	cr_expect_str_eq(cfg.redis_key_prefix, "berichtd:");
	config_free(&cfg);
}

Test(config, ops_listener_defaults_to_loopback_and_must_differ_from_the_api)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	load_ok(SECURITY, &cfg);
	cr_expect_str_eq(cfg.ops_listen, "127.0.0.1:9090");
	config_free(&cfg);
	load_ok("[ops]\nlisten = 10.1.2.3:9100\n" SECURITY, &cfg);
	cr_expect_str_eq(cfg.ops_listen, "10.1.2.3:9100");
	config_free(&cfg);
	load_fails("[http]\nlisten = 127.0.0.1:9090\n" SECURITY, err, sizeof(err));
	assert_has(err, "ops.listen: must differ from http.listen");
	load_fails("[ops]\nlisten = nowhere\n" SECURITY, err, sizeof(err));
	assert_has(err, "ops.listen");
}

Test(config, defaults_apply_to_smtp)
{
	struct config cfg;
	load_ok(SECURITY, &cfg);
	cr_expect_str_eq(cfg.smtp_host, "127.0.0.1");
	cr_expect_eq(cfg.smtp_port, 25);
	cr_expect_str_eq(cfg.smtp_from, "Berichtenbox <noreply@berichtenbox.example>");
	cr_expect_str_eq(cfg.smtp_bounce_domain, "berichtenbox.example");
	cr_assert_not_null(cfg.smtp_helo, "a key without default is the empty string, not NULL");
	cr_expect_str_empty(cfg.smtp_helo);
	cr_expect_eq(cfg.smtp_timeout_ms, 30000);
	config_free(&cfg);
}

Test(config, defaults_apply_to_delivery)
{
	struct config cfg;
	load_ok(SECURITY, &cfg);
	cr_expect_eq(cfg.delivery_workers, 2);
	cr_expect_eq(cfg.delivery_batch, 50);
	cr_expect_eq(cfg.delivery_rate_limit, 0);
	cr_expect_eq(cfg.delivery_retry_span_ms, 48LL * 3600 * 1000);
	cr_expect_eq(cfg.delivery_visibility_ms, 5 * 60 * 1000);
	cr_expect_eq(cfg.delivery_reconcile_ms, 30000);
	cr_expect_eq(cfg.delivery_poll_ms, 100);
	config_free(&cfg);
}

Test(config, defaults_apply_to_notify)
{
	struct config cfg;
	load_ok(SECURITY, &cfg);
	cr_expect_eq(cfg.notify_digest_window_ms, 5 * 60 * 1000);
	cr_expect_str_eq(cfg.notify_quiet_hours, "22:00-07:00");
	cr_expect_str_eq(cfg.notify_timezone, "Europe/Amsterdam");
	cr_expect_eq(cfg.notify_repeat_after_ms, 14LL * 24 * 3600 * 1000);
	cr_expect_eq(cfg.notify_repeat_before_deadline_ms, 7LL * 24 * 3600 * 1000);
	cr_expect_eq(cfg.notify_max_repeats, 1);
	config_free(&cfg);
}

Test(config, defaults_apply_to_templates_and_log)
{
	struct config cfg;
	load_ok(SECURITY, &cfg);
	/* the name "berichtd.conf" has no directory part, so "templates" stays relative */
	cr_expect_str_eq(cfg.templates_dir, "templates");
	cr_expect_str_eq(cfg.log_level, "info");
	cr_assert_not_null(cfg.log_file);
	cr_expect_str_empty(cfg.log_file);
	cr_assert_not_null(cfg.security_bsn_key_file);
	cr_expect_str_empty(cfg.security_bsn_key_file);
	config_free(&cfg);
}

Test(config, an_absent_key_keeps_its_default_next_to_a_present_one)
{
	struct config cfg;
	load_ok("[http]\nlisten = 10.0.0.1:80\n" SECURITY, &cfg);
	cr_expect_str_eq(cfg.http_listen, "10.0.0.1:80");
	cr_expect_eq(cfg.http_timeout_ms, 30000);
	cr_expect_eq(cfg.http_max_body, 16LL * 1024 * 1024);
	config_free(&cfg);
}

/* ---- unknown sections and keys -------------------------------------------- */

Test(config, unknown_key_names_file_line_and_section_key)
{
	char *path = write_temp("# comment\n"
				"[http]\n"
				"listen = 127.0.0.1:8080\n"
				"tiemout = 30s\n" SECURITY);
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	char where[512];

	cr_assert_not(config_load(path, &cfg, err, sizeof(err)));
	snprintf(where, sizeof(where), "%s:4:", path);
	assert_has(err, where);
	assert_has(err, "http.tiemout");
	assert_has(err, "unknown key");
	cr_expect_eq(count_lines(err), 1, "one problem, one line:\n%s", err);
	config_free(&cfg);
	unlink(path);
	free(path);
}

Test(config, key_of_another_section_is_unknown_here)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nworkers = 2\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "http.workers");
}

Test(config, keys_are_case_sensitive)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nListen = 127.0.0.1:8080\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "http.Listen");
}

Test(config, unknown_section_names_file_line_and_section)
{
	char err[CONFIG_ERR_MAX];
	load_fails(SECURITY "\n[htpp]\nlisten = 127.0.0.1:8080\n", err, sizeof(err));
	assert_has(err, "berichtd.conf:4:");
	assert_has(err, "[htpp]");
	assert_has(err, "unknown section");
}

Test(config, keys_under_an_unknown_section_are_not_reported_again)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[htpp]\nlisten = 127.0.0.1:8080\ntimeout = 30s\n" SECURITY, err, sizeof(err));
	cr_expect_eq(count_lines(err), 1, "only the section is reported:\n%s", err);
}

Test(config, malformed_section_header_is_an_error_with_line)
{
	char err[CONFIG_ERR_MAX];
	load_fails(SECURITY "[http\n", err, sizeof(err));
	assert_has(err, "berichtd.conf:3:");
	assert_has(err, "section");
}

Test(config, empty_section_header_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails(SECURITY "[]\n", err, sizeof(err));
	assert_has(err, "berichtd.conf:3:");
}

Test(config, line_without_equals_sign_is_an_error_with_line)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nlisten 127.0.0.1:8080\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "key = value");
}

Test(config, key_outside_any_section_is_an_error_with_line)
{
	char err[CONFIG_ERR_MAX];
	load_fails("\nworkers = 2\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "workers");
	assert_has(err, "section");
}

/* ---- bad values ----------------------------------------------------------- */

Test(config, non_integer_workers_is_an_error_naming_file_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[delivery]\nworkers = many\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "delivery.workers");
	assert_has(err, "many");
}

Test(config, integer_with_trailing_text_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[delivery]\nworkers = 2 # two\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "delivery.workers");
}

Test(config, bad_duration_unit_is_an_error_naming_file_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[notify]\ndigest_window = 5x\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "notify.digest_window");
	assert_has(err, "5x");
}

Test(config, bad_size_is_an_error_naming_file_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nmax_body = lots\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "http.max_body");
}

Test(config, impossible_quiet_hours_is_an_error_naming_file_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[notify]\nquiet_hours = 25:00-07:00\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "notify.quiet_hours");
}

Test(config, quiet_hours_off_is_accepted)
{
	struct config cfg;
	load_ok("[notify]\nquiet_hours = off\n" SECURITY, &cfg);
	cr_expect_str_eq(cfg.notify_quiet_hours, "off");
	config_free(&cfg);
}

Test(config, unknown_timezone_is_an_error_naming_file_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[notify]\ntimezone = Mars/Base\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "notify.timezone");
	assert_has(err, "Mars/Base");
}

Test(config, timezone_utc_is_accepted)
{
	struct config cfg;
	load_ok("[notify]\ntimezone = UTC\n" SECURITY, &cfg);
	cr_expect_str_eq(cfg.notify_timezone, "UTC");
	config_free(&cfg);
}

Test(config, timezone_that_is_a_directory_or_escapes_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[notify]\ntimezone = Europe\n" SECURITY, err, sizeof(err));
	assert_has(err, "notify.timezone");
	load_fails("[notify]\ntimezone = ../../etc/passwd\n" SECURITY, err, sizeof(err));
	assert_has(err, "notify.timezone");
	load_fails("[notify]\ntimezone = /etc/localtime\n" SECURITY, err, sizeof(err));
	assert_has(err, "notify.timezone");
}

Test(config, redis_port_above_65535_is_an_error_naming_file_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[redis]\nport = 70000\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "redis.port");
	assert_has(err, "out of range");
}

Test(config, smtp_port_zero_is_out_of_range)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[smtp]\nport = 0\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "smtp.port");
}

Test(config, listen_port_out_of_range_is_an_error_naming_file_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nlisten = 127.0.0.1:65536\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "http.listen");
}

Test(config, listen_without_port_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nlisten = localhost\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "http.listen");
}

Test(config, listen_accepts_bracketed_ipv6)
{
	struct config cfg;
	load_ok("[http]\nlisten = [::1]:8080\n" SECURITY, &cfg);
	cr_expect_str_eq(cfg.http_listen, "[::1]:8080");
	config_free(&cfg);
}

Test(config, workers_may_be_zero_but_not_negative_or_above_256)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	load_ok("[delivery]\nworkers = 0\n" SECURITY, &cfg);
	cr_expect_eq(cfg.delivery_workers, 0);
	config_free(&cfg);
	load_fails("[delivery]\nworkers = -1\n" SECURITY, err, sizeof(err));
	assert_has(err, "delivery.workers");
	load_fails("[delivery]\nworkers = 257\n" SECURITY, err, sizeof(err));
	assert_has(err, "delivery.workers");
}

Test(config, max_body_below_1k_is_out_of_range)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nmax_body = 512\n" SECURITY, err, sizeof(err));
	assert_has(err, "http.max_body");
	assert_has(err, "out of range");
}

Test(config, smtp_timeout_below_one_second_is_out_of_range)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[smtp]\ntimeout = 500ms\n" SECURITY, err, sizeof(err));
	assert_has(err, "smtp.timeout");
	assert_has(err, "out of range");
}

Test(config, unknown_log_level_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[log]\nlevel = verbose\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "log.level");
}

Test(config, every_bad_line_is_reported_at_once_one_line_each)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[delivery]\n"             /* 1 */
		   "workers = many\n"         /* 2 */
		   "[notify]\n"               /* 3 */
		   "digest_window = 5x\n"     /* 4 */
		   "timezone = Mars/Base\n"   /* 5 */
		   "[redis]\n"                /* 6 */
		   "port = 70000\n"           /* 7 */
		   "colour = blue\n" SECURITY, /* 8 */
		   err, sizeof(err));
	cr_expect_eq(count_lines(err), 5, "five problems, five lines:\n%s", err);
	assert_has(err, "berichtd.conf:2: delivery.workers");
	assert_has(err, "berichtd.conf:4: notify.digest_window");
	assert_has(err, "berichtd.conf:5: notify.timezone");
	assert_has(err, "berichtd.conf:7: redis.port");
	assert_has(err, "berichtd.conf:8: redis.colour");
}

Test(config, error_text_is_cut_at_errlen_and_terminated)
{
	char err[24];
	memset(err, 'x', sizeof(err));
	load_fails("[delivery]\nworkers = many\nbatch = lots\n" SECURITY, err, sizeof(err));
	cr_expect_lt(strlen(err), sizeof(err));
	cr_expect_eq(strncmp(err, "berichtd.conf:2:", 16), 0, "%s", err);
}

Test(config, missing_file_is_an_error_naming_it)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	cr_assert_not(config_load("/tmp/berichtd-test-no-such-dir/none.conf", &cfg, err,
				  sizeof(err)));
	assert_has(err, "/tmp/berichtd-test-no-such-dir/none.conf");
	config_free(&cfg);
}

/* ---- comments and line numbers --------------------------------------------- */

Test(config, comments_and_blank_lines_are_skipped_but_counted)
{
	char err[CONFIG_ERR_MAX];
	load_fails("# hash comment\n"        /* 1 */
		   "; semicolon comment\n"    /* 2 */
		   "\n"                       /* 3 */
		   "   \t \n"                 /* 4 */
		   "[http]\n"                 /* 5 */
		   "   # indented = comment\n" /* 6 */
		   "  ; listen = nonsense\n"  /* 7 */
		   "bogus = 1\n" SECURITY,    /* 8 */
		   err, sizeof(err));
	cr_expect_eq(count_lines(err), 1, "comments are not parsed:\n%s", err);
	assert_has(err, "berichtd.conf:8:");
	assert_has(err, "http.bogus");
}

Test(config, crlf_line_endings_keep_line_numbers)
{
	char err[CONFIG_ERR_MAX];
	load_fails("# c\r\n\r\n[http]\r\nbogus = 1\r\n" SECURITY, err, sizeof(err));
	assert_has(err, "berichtd.conf:4:");
}

Test(config, commented_out_key_keeps_its_default)
{
	struct config cfg;
	load_ok("[delivery]\n# workers = 9\n;batch = 9\n" SECURITY, &cfg);
	cr_expect_eq(cfg.delivery_workers, 2);
	cr_expect_eq(cfg.delivery_batch, 50);
	config_free(&cfg);
}

Test(config, empty_text_fails_only_for_the_missing_bsn_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("", err, sizeof(err));
	cr_expect_eq(count_lines(err), 1, "%s", err);
	assert_has(err, "bsn_key");
}

/* ---- the BSN key ----------------------------------------------------------- */

Test(config, missing_bsn_key_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[http]\nlisten = 127.0.0.1:8080\n", err, sizeof(err));
	assert_has(err, "berichtd.conf");
	assert_has(err, "bsn_key");
}

Test(config, empty_bsn_key_and_empty_key_file_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[security]\nbsn_key =\nbsn_key_file =\n", err, sizeof(err));
	assert_has(err, "bsn_key");
}

Test(config, bsn_key_of_exactly_32_bytes_is_accepted)
{
	struct config cfg;
	load_ok(SECURITY, &cfg);
	cr_expect_eq(cfg.bsn_key_len, 32);
	config_free(&cfg);
}

Test(config, bsn_key_in_uppercase_hex_is_accepted)
{
	struct config cfg;
	load_ok("[security]\nbsn_key = 000102030405060708090A0B0C0D0E0F"
		"101112131415161718191A1B1C1D1E1F\n",
		&cfg);
	cr_expect_eq(cfg.bsn_key_len, 32);
	cr_expect_eq(cfg.bsn_key[31], 0x1f);
	config_free(&cfg);
}

Test(config, bsn_key_of_64_bytes_is_accepted)
{
	struct config cfg;
	load_ok("[security]\nbsn_key = " KEY64 "\n", &cfg);
	cr_expect_eq(cfg.bsn_key_len, 64);
	config_free(&cfg);
}

Test(config, bsn_key_shorter_than_32_bytes_is_an_error_naming_line_and_key)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[security]\nbsn_key = " KEY31 "\n", err, sizeof(err));
	assert_has(err, "berichtd.conf:2:");
	assert_has(err, "security.bsn_key");
	assert_has(err, "32");
}

Test(config, short_bsn_key_never_appears_in_the_error_text)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[security]\nbsn_key = " KEY31 "\n", err, sizeof(err));
	cr_expect_null(strstr(err, KEY31), "secret leaked:\n%s", err);
	/* not even a recognisable piece of it */
	cr_expect_null(strstr(err, "5ec2e7f00d"), "secret leaked:\n%s", err);
}

Test(config, non_hex_bsn_key_is_an_error_without_the_secret)
{
	static const char secret[] = "correct horse battery staple correct horse battery staple!!";
	char err[CONFIG_ERR_MAX];
	load_fails("[security]\nbsn_key = correct horse battery staple correct horse battery "
		   "staple!!\n",
		   err, sizeof(err));
	assert_has(err, "security.bsn_key");
	cr_expect_null(strstr(err, secret), "secret leaked:\n%s", err);
	cr_expect_null(strstr(err, "horse"), "secret leaked:\n%s", err);
}

Test(config, bsn_key_longer_than_64_bytes_is_an_error_without_the_secret)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[security]\nbsn_key = " KEY64 "ff\n", err, sizeof(err));
	assert_has(err, "berichtd.conf:2: security.bsn_key: key longer than 64 bytes");
	cr_expect_null(strstr(err, "required"), "one error, not two:\n%s", err);
	cr_expect_null(strstr(err, KEY32), "secret leaked:\n%s", err);
}

Test(config, bsn_key_file_relative_to_the_config_directory_is_read)
{
	char *dir = make_temp_dir();
	char *keyfile = write_in_dir(dir, "bsn.key", KEY32 "\n");
	char *conf = write_in_dir(dir, "berichtd.conf", "[security]\nbsn_key_file = bsn.key\n");
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	bool ok = config_load(conf, &cfg, err, sizeof(err));
	cr_expect(ok, "%s", err);
	cr_expect_str_eq(cfg.security_bsn_key_file, keyfile);
	cr_expect_eq(cfg.bsn_key_len, 32);
	cr_expect_eq(cfg.bsn_key[31], 0x1f);
	config_free(&cfg);
	unlink(conf);
	unlink(keyfile);
	rmdir(dir);
	free(conf);
	free(keyfile);
	free(dir);
}

Test(config, unreadable_bsn_key_file_is_an_error)
{
	char err[CONFIG_ERR_MAX];
	load_fails("[security]\nbsn_key_file = /tmp/berichtd-test-no-such-dir/bsn.key\n", err,
		   sizeof(err));
	assert_has(err, "bsn_key_file");
	assert_has(err, "/tmp/berichtd-test-no-such-dir/bsn.key");
}

Test(config, short_key_in_bsn_key_file_is_an_error_without_the_secret)
{
	char *keyfile = write_temp(KEY31 "\n");
	char text[512];
	char err[CONFIG_ERR_MAX];

	snprintf(text, sizeof(text), "[security]\nbsn_key_file = %s\n", keyfile);
	load_fails(text, err, sizeof(err));
	assert_has(err, "BSN key");
	cr_expect_null(strstr(err, "5ec2e7f00d"), "secret leaked:\n%s", err);
	unlink(keyfile);
	free(keyfile);
}

/* ---- relative paths -------------------------------------------------------- */

Test(config, relative_templates_dir_is_resolved_against_the_config_directory)
{
	char *dir = make_temp_dir();
	char *conf = write_in_dir(dir, "berichtd.conf", "[templates]\ndir = mail\n" SECURITY);
	char expected[512];
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	snprintf(expected, sizeof(expected), "%s/mail", dir);
	bool ok = config_load(conf, &cfg, err, sizeof(err));
	cr_expect(ok, "%s", err);
	cr_expect_str_eq(cfg.templates_dir, expected);
	config_free(&cfg);
	unlink(conf);
	rmdir(dir);
	free(conf);
	free(dir);
}

Test(config, default_templates_dir_is_resolved_against_the_config_directory)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	bool ok = config_load_string("/etc/berichtd/berichtd.conf", SECURITY, &cfg, err,
				     sizeof(err));
	cr_expect(ok, "%s", err);
	cr_expect_str_eq(cfg.templates_dir, "/etc/berichtd/templates");
	config_free(&cfg);
}

Test(config, absolute_templates_dir_is_kept)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	bool ok = config_load_string("/etc/berichtd/berichtd.conf",
				     "[templates]\ndir = /srv/tpl\n" SECURITY, &cfg, err, sizeof(err));
	cr_expect(ok, "%s", err);
	cr_expect_str_eq(cfg.templates_dir, "/srv/tpl");
	config_free(&cfg);
}

Test(config, relative_log_file_is_resolved_against_the_config_directory)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	bool ok = config_load_string("/etc/berichtd/berichtd.conf",
				     "[log]\nfile = log/berichtd.log\n" SECURITY, &cfg, err,
				     sizeof(err));
	cr_expect(ok, "%s", err);
	cr_expect_str_eq(cfg.log_file, "/etc/berichtd/log/berichtd.log");
	config_free(&cfg);
}

Test(config, plain_strings_are_not_treated_as_paths)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	bool ok = config_load_string("/etc/berichtd/berichtd.conf",
				     "[redis]\nkey_prefix = a/b\n" SECURITY, &cfg, err, sizeof(err));
	cr_expect(ok, "%s", err);
	cr_expect_str_eq(cfg.redis_key_prefix, "a/b");
	config_free(&cfg);
}

/* ---- config_parse_duration -------------------------------------------------- */

Test(config, duration_units_ms_s_m_h_d)
{
	int64_t ms = -1;
	cr_expect(config_parse_duration("500ms", &ms));
	cr_expect_eq(ms, 500);
	cr_expect(config_parse_duration("90s", &ms));
	cr_expect_eq(ms, 90000);
	cr_expect(config_parse_duration("10m", &ms));
	cr_expect_eq(ms, 600000);
	cr_expect(config_parse_duration("48h", &ms));
	cr_expect_eq(ms, 172800000);
	cr_expect(config_parse_duration("14d", &ms));
	cr_expect_eq(ms, 1209600000);
}

Test(config, duration_bare_number_means_seconds)
{
	int64_t ms = -1;
	cr_expect(config_parse_duration("90", &ms));
	cr_expect_eq(ms, 90000);
}

Test(config, duration_zero_is_accepted)
{
	int64_t ms = -1;
	cr_expect(config_parse_duration("0", &ms));
	cr_expect_eq(ms, 0);
	cr_expect(config_parse_duration("0ms", &ms));
	cr_expect_eq(ms, 0);
}

Test(config, duration_rejects_malformed_input)
{
	int64_t ms = 0;
	cr_expect_not(config_parse_duration("", &ms));
	cr_expect_not(config_parse_duration("s", &ms));
	cr_expect_not(config_parse_duration("5x", &ms));
	cr_expect_not(config_parse_duration("-5s", &ms));
	cr_expect_not(config_parse_duration("+5s", &ms));
	cr_expect_not(config_parse_duration(" 5s", &ms));
	cr_expect_not(config_parse_duration("5 s", &ms));
	cr_expect_not(config_parse_duration("1.5h", &ms));
	cr_expect_not(config_parse_duration("5mss", &ms));
	cr_expect_not(config_parse_duration("5sm", &ms));
	cr_expect_not(config_parse_duration(NULL, &ms));
}

Test(config, duration_rejects_overflow)
{
	int64_t ms = 0;
	cr_expect_not(config_parse_duration("99999999999999999999", &ms));
	cr_expect_not(config_parse_duration("9223372036854775807d", &ms));
	cr_expect_not(config_parse_duration("9223372036854776s", &ms));
	cr_expect(config_parse_duration("9223372036854775807ms", &ms));
	cr_expect_eq(ms, INT64_MAX);
}

/* ---- config_parse_size ------------------------------------------------------ */

Test(config, size_units_k_m_g)
{
	int64_t b = -1;
	cr_expect(config_parse_size("512", &b));
	cr_expect_eq(b, 512);
	cr_expect(config_parse_size("64k", &b));
	cr_expect_eq(b, 65536);
	cr_expect(config_parse_size("1m", &b));
	cr_expect_eq(b, 1048576);
	cr_expect(config_parse_size("16m", &b));
	cr_expect_eq(b, 16777216);
	cr_expect(config_parse_size("1g", &b));
	cr_expect_eq(b, 1073741824);
}

Test(config, size_units_are_case_insensitive)
{
	int64_t b = -1;
	cr_expect(config_parse_size("64K", &b));
	cr_expect_eq(b, 65536);
	cr_expect(config_parse_size("16M", &b));
	cr_expect_eq(b, 16777216);
	cr_expect(config_parse_size("2G", &b));
	cr_expect_eq(b, 2147483648LL);
}

Test(config, size_rejects_malformed_input)
{
	int64_t b = 0;
	cr_expect_not(config_parse_size("", &b));
	cr_expect_not(config_parse_size("k", &b));
	cr_expect_not(config_parse_size("16x", &b));
	cr_expect_not(config_parse_size("-1", &b));
	cr_expect_not(config_parse_size("1.5m", &b));
	cr_expect_not(config_parse_size("16mm", &b));
	cr_expect_not(config_parse_size(" 16m", &b));
	cr_expect_not(config_parse_size("16 m", &b));
	cr_expect_not(config_parse_size(NULL, &b));
}

Test(config, size_rejects_overflow)
{
	int64_t b = 0;
	cr_expect_not(config_parse_size("99999999999999999999", &b));
	cr_expect_not(config_parse_size("9999999999g", &b));
}

/* ---- config_parse_quiet_hours ----------------------------------------------- */

Test(config, quiet_hours_window_over_midnight_in_minutes)
{
	bool en = false;
	int a = -1, b = -1;
	cr_assert(config_parse_quiet_hours("22:00-07:00", &en, &a, &b));
	cr_expect(en);
	cr_expect_eq(a, 22 * 60);
	cr_expect_eq(b, 7 * 60);
}

Test(config, quiet_hours_window_within_a_day_in_minutes)
{
	bool en = false;
	int a = -1, b = -1;
	cr_assert(config_parse_quiet_hours("00:00-23:59", &en, &a, &b));
	cr_expect(en);
	cr_expect_eq(a, 0);
	cr_expect_eq(b, 23 * 60 + 59);
}

Test(config, quiet_hours_off_disables)
{
	bool en = true;
	int a = -1, b = -1;
	cr_assert(config_parse_quiet_hours("off", &en, &a, &b));
	cr_expect_not(en);
	cr_expect_eq(a, 0);
	cr_expect_eq(b, 0);
}

Test(config, quiet_hours_rejects_impossible_times)
{
	bool en;
	int a, b;
	cr_expect_not(config_parse_quiet_hours("25:00-07:00", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("24:00-07:00", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("22:60-07:00", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("22:00-07:99", &en, &a, &b));
}

Test(config, quiet_hours_rejects_an_empty_window)
{
	bool en;
	int a, b;
	cr_expect_not(config_parse_quiet_hours("22:00-22:00", &en, &a, &b));
}

Test(config, quiet_hours_rejects_malformed_input)
{
	bool en;
	int a, b;
	cr_expect_not(config_parse_quiet_hours("", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("22:00", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("2200-0700", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("22:00-7:00", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("22:00 - 07:00", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("22:00/07:00", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("22:00-07:00x", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("aa:bb-cc:dd", &en, &a, &b));
	cr_expect_not(config_parse_quiet_hours("of", &en, &a, &b));
}

/* ---- config_split_hostport -------------------------------------------------- */

Test(config, hostport_splits_ipv4)
{
	char host[64] = "";
	int port = 0;
	cr_assert(config_split_hostport("127.0.0.1:8080", host, sizeof(host), &port));
	cr_expect_str_eq(host, "127.0.0.1");
	cr_expect_eq(port, 8080);
}

Test(config, hostport_splits_name)
{
	char host[64] = "";
	int port = 0;
	cr_assert(config_split_hostport("mail.example.nl:25", host, sizeof(host), &port));
	cr_expect_str_eq(host, "mail.example.nl");
	cr_expect_eq(port, 25);
}

Test(config, hostport_splits_bracketed_ipv6)
{
	char host[64] = "";
	int port = 0;
	cr_assert(config_split_hostport("[::1]:8080", host, sizeof(host), &port));
	cr_expect_str_eq(host, "::1");
	cr_expect_eq(port, 8080);
}

Test(config, hostport_accepts_port_range_limits)
{
	char host[64];
	int port = 0;
	cr_expect(config_split_hostport("h:1", host, sizeof(host), &port));
	cr_expect_eq(port, 1);
	cr_expect(config_split_hostport("h:65535", host, sizeof(host), &port));
	cr_expect_eq(port, 65535);
}

Test(config, hostport_rejects_missing_port)
{
	char host[64];
	int port;
	cr_expect_not(config_split_hostport("localhost", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("localhost:", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("[::1]", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("[::1]:", host, sizeof(host), &port));
}

Test(config, hostport_rejects_port_zero_and_out_of_range)
{
	char host[64];
	int port;
	cr_expect_not(config_split_hostport("localhost:0", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("localhost:65536", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("localhost:-1", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("localhost:99999999999999999999", host,
					    sizeof(host), &port));
}

Test(config, hostport_rejects_non_numeric_port)
{
	char host[64];
	int port;
	cr_expect_not(config_split_hostport("localhost:http", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("localhost:80x", host, sizeof(host), &port));
}

Test(config, hostport_rejects_empty_host)
{
	char host[64];
	int port;
	cr_expect_not(config_split_hostport(":8080", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("[]:8080", host, sizeof(host), &port));
}

Test(config, hostport_rejects_malformed_ipv6)
{
	char host[64];
	int port;
	cr_expect_not(config_split_hostport("[::1:8080", host, sizeof(host), &port));
	cr_expect_not(config_split_hostport("[::1]8080", host, sizeof(host), &port));
}

Test(config, hostport_rejects_host_longer_than_the_buffer)
{
	char host[8] = "unused";
	int port;
	cr_expect_not(config_split_hostport("12345678:80", host, sizeof(host), &port));
	cr_expect_str_eq(host, "unused", "the buffer is not written on failure");
	cr_expect(config_split_hostport("1234567:80", host, sizeof(host), &port));
	cr_expect_str_eq(host, "1234567");
}

/* ---- the example file -------------------------------------------------------- */

/* The example as a malloc'd string. */
static char *example_text(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	config_write_example(f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_not_null(buf);
	return buf;
}

/* The example with "bsn_key = KEY64" inserted right after "[security]". */
static char *example_with_key(void)
{
	static const char header[] = "\n[security]\n";
	static const char keyline[] = "bsn_key = " KEY32 "\n";
	char *ex = example_text();
	char *at = strstr(ex, header);
	cr_assert_not_null(at, "the example has no [security] section:\n%s", ex);
	at += strlen(header);
	size_t head = (size_t)(at - ex);
	size_t n = strlen(ex) + strlen(keyline) + 1;
	char *out = malloc(n);
	cr_assert_not_null(out);
	snprintf(out, n, "%.*s%s%s", (int)head, ex, keyline, at);
	free(ex);
	return out;
}

Test(config, example_has_every_section)
{
	static const char *const sections[] = {"[http]",     "[postgres]",  "[redis]",
					       "[smtp]",     "[delivery]",  "[notify]",
					       "[security]", "[templates]", "[log]"};
	char *ex = example_text();
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		assert_has(ex, sections[i]);
	free(ex);
}

Test(config, example_leaves_the_bsn_key_commented_out)
{
	char *ex = example_text();
	assert_has(ex, "\n#bsn_key =\n");
	assert_has(ex, "\n#bsn_key_file =\n");
	free(ex);
}

Test(config, example_without_a_key_fails_only_for_the_missing_bsn_key)
{
	char *ex = example_text();
	char err[CONFIG_ERR_MAX];
	load_fails(ex, err, sizeof(err));
	cr_expect_eq(count_lines(err), 1, "%s", err);
	assert_has(err, "bsn_key");
	free(ex);
}

Test(config, example_with_a_key_written_to_disk_loads_without_error)
{
	char *text = example_with_key();
	char *path = write_temp(text);
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	bool ok = config_load(path, &cfg, err, sizeof(err));
	cr_expect(ok, "the example no longer loads:\n%s", err);
	cr_expect_str_empty(err);
	cr_expect_eq(cfg.bsn_key_len, 32);
	config_free(&cfg);
	unlink(path);
	free(path);
	free(text);
}

Test(config, example_values_equal_the_defaults)
{
	char *text = example_with_key();
	struct config ex, def;
	load_ok(text, &ex);
	load_ok(SECURITY, &def);
	cr_expect_str_eq(ex.http_listen, def.http_listen);
	cr_expect_eq(ex.http_max_body, def.http_max_body);
	cr_expect_str_eq(ex.pg_conninfo, def.pg_conninfo);
	cr_expect_str_eq(ex.smtp_from, def.smtp_from);
	cr_expect_str_eq(ex.smtp_helo, def.smtp_helo);
	cr_expect_eq(ex.delivery_retry_span_ms, def.delivery_retry_span_ms);
	cr_expect_eq(ex.delivery_poll_ms, def.delivery_poll_ms);
	cr_expect_str_eq(ex.notify_quiet_hours, def.notify_quiet_hours);
	cr_expect_str_eq(ex.notify_timezone, def.notify_timezone);
	cr_expect_eq(ex.notify_repeat_after_ms, def.notify_repeat_after_ms);
	cr_expect_str_eq(ex.templates_dir, def.templates_dir);
	cr_expect_str_eq(ex.log_level, def.log_level);
	config_free(&ex);
	config_free(&def);
	free(text);
}

Test(config, redis_url_replaces_host_and_port)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	cr_assert(config_load_string("b.conf",
				     "[redis]\nurl = redis://10.1.2.3:6380/0\n"
				     "[security]\nbsn_key = " KEY32 "\n",
				     &cfg, err, sizeof(err)),
		  "%s", err);
	cr_assert_str_eq(cfg.redis_host, "10.1.2.3");
	cr_assert_eq(cfg.redis_port, 6380);
	config_free(&cfg);
}

Test(config, redis_url_without_port_uses_6379)
{
	char host[64];
	int port;
	cr_assert(config_parse_redis_url("redis://localhost", host, sizeof(host), &port));
	cr_assert_str_eq(host, "localhost");
	cr_assert_eq(port, 6379);
}

Test(config, redis_url_with_credentials_or_other_database_is_an_error)
{
	char host[64];
	int port;
	cr_assert_not(config_parse_redis_url("redis://user:pw@localhost:6379", host, sizeof(host), &port));
	cr_assert_not(config_parse_redis_url("redis://localhost:6379/3", host, sizeof(host), &port));
	cr_assert_not(config_parse_redis_url("http://localhost:6379", host, sizeof(host), &port));
}

Test(config, representatives_max_depth_defaults_to_2_and_is_bounded)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	load_ok(SECURITY, &cfg);
	cr_expect_eq(cfg.representatives_max_depth, 2);
	config_free(&cfg);
	load_ok("[representatives]\nmax_depth = 1\n" SECURITY, &cfg);
	cr_expect_eq(cfg.representatives_max_depth, 1);
	config_free(&cfg);
	load_fails("[representatives]\nmax_depth = 0\n" SECURITY, err, sizeof(err));
	assert_has(err, "representatives.max_depth");
	load_fails("[representatives]\nmax_depth = 17\n" SECURITY, err, sizeof(err));
	assert_has(err, "out of range");
}
