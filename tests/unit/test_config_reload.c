/*
 * test_config_reload.c - specification of common/config_reload.c: which
 * keys differ between two configs (named, never valued), and the next
 * generation of a running config on SIGHUP: reloadable keys from the new
 * file, the rest as they run, a held key as it runs.
 *
 * needs: common/config.c common/config_reload.c common/crypto.c (libcrypto)
 */
#include <criterion/criterion.h>

#include <string.h>

#include "common/config.h"

#define KEY32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY32B "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void load(const char *text, struct config *c)
{
	char err[CONFIG_ERR_MAX];
	cr_assert(config_load_string("/etc/berichtd/t.conf", text, c, err, sizeof(err)), "%s",
		  err);
}

struct seen {
	char names[16][64];
	bool reloadable[16];
	int n;
};

static void note(const char *section, const char *key, bool reloadable, void *arg)
{
	struct seen *s = arg;
	if (s->n < 16) {
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s.%s", section, key);
		s->reloadable[s->n++] = reloadable;
	}
}

static const char OLD[] = "[security]\nbsn_key = " KEY32 "\n"
			  "[ratelimit]\nrate = 100\n"
			  "[delivery]\nworkers = 2\nrate_limit = 5\n"
			  "[log]\nlevel = info\n";
static const char NEW[] = "[security]\nbsn_key = " KEY32B "\n"
			  "[ratelimit]\nrate = 7\n"
			  "[delivery]\nworkers = 4\nrate_limit = 5\n"
			  "[log]\nlevel = debug\n";

Test(config_reload, changes_name_each_changed_key_in_table_order)
{
	struct config a, b;
	struct seen s = {0};
	load(OLD, &a);
	load(NEW, &b);
	cr_assert_eq(config_changes(&a, &b, note, &s), 4);
	cr_assert_str_eq(s.names[0], "ratelimit.rate");
	cr_assert(s.reloadable[0]);
	cr_assert_str_eq(s.names[1], "delivery.workers");
	cr_assert_not(s.reloadable[1]);
	cr_assert_str_eq(s.names[2], "security.bsn_key");
	cr_assert_not(s.reloadable[2]);
	cr_assert_str_eq(s.names[3], "log.level");
	cr_assert(s.reloadable[3]);
	cr_assert_eq(config_changes(&a, &a, NULL, NULL), 0);
	config_free(&a);
	config_free(&b);
}

Test(config_reload, next_generation_takes_reloadable_keys_only)
{
	struct config a, b, g;
	load(OLD, &a);
	load(NEW, &b);
	cr_assert(config_next_generation(&a, &b, NULL, NULL, &g));
	cr_assert_eq(g.ratelimit_rate, 7);
	cr_assert_str_eq(g.log_level, "debug");
	cr_assert_eq(g.delivery_workers, 2, "workers need a restart");
	cr_assert_eq(memcmp(g.bsn_key, a.bsn_key, a.bsn_key_len), 0, "the running key stays");
	cr_assert_str_eq(g.path, a.path);
	cr_assert_neq(g.log_level, b.log_level, "strings are copies");
	config_free(&b); /* the generation outlives the file it came from */
	cr_assert_str_eq(g.log_level, "debug");
	config_free(&a);
	config_free(&g);
}

static bool hold_log(const char *section, const char *key, void *arg)
{
	(void)key;
	(void)arg;
	return strcmp(section, "log") == 0;
}

Test(config_reload, a_held_key_keeps_its_running_value)
{
	struct config a, b, g;
	load(OLD, &a);
	load(NEW, &b);
	cr_assert(config_next_generation(&a, &b, hold_log, NULL, &g));
	cr_assert_str_eq(g.log_level, "info");
	cr_assert_eq(g.ratelimit_rate, 7);
	config_free(&a);
	config_free(&b);
	config_free(&g);
}
