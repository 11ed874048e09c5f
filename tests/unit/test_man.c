/*
 * test_man.c - specification of common/roff (text into man page input) and
 * common/config_man (berichtd.conf(5) from the key table): every key of the
 * table is in the page once, under its section, with its default and bounds.
 *
 * needs: common/roff.c common/config_man.c common/config_keys.c
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/config_impl.h"
#include "common/roff.h"

static char *roff_of(const char *text)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert(f);
	roff_text(f, text);
	fclose(f);
	return buf;
}

static char *man5(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert(f);
	config_write_man(f);
	fclose(f);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

Test(roff, a_line_that_would_be_a_request_prints_as_text)
{
	char *s = roff_of(".TH x\n'br\nfine. 'too'");
	cr_assert_str_eq(s, "\\&.TH x\n\\&'br\nfine. 'too'\n");
	free(s);
}

Test(roff, backslashes_and_dashes_print_as_typed)
{
	char *s = roff_of("--dir C:\\tmp\n");
	cr_assert_str_eq(s, "\\-\\-dir C:\\etmp\n");
	free(s);
}

Test(config_man, every_key_is_in_the_page_once_under_its_section)
{
	char *page = man5();
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		char section[128], tag[128];
		snprintf(section, sizeof(section), ".SS [%s]\n", k->section);
		cr_assert_eq(count(page, section), 1, "section %s", k->section);
		/* the key's tag line, with its default when it has one */
		if (k->def && !strchr(k->def, '-'))
			snprintf(tag, sizeof(tag), ".TP\n\\fB%s\\fR = \\fI%s\\fR\n", k->key, k->def);
		else
			snprintf(tag, sizeof(tag), ".TP\n\\fB%s\\fR", k->key);
		const char *at = strstr(strstr(page, section), tag);
		/* in its own section: before the next section starts */
		const char *next = strstr(strstr(page, section) + strlen(section), ".SS ");
		cr_assert(at && (!next || at < next), "key %s.%s", k->section, k->key);
	}
	free(page);
}

Test(config_man, bounds_are_written_in_the_units_of_the_file)
{
	char *page = man5();
	cr_assert(strstr(page, "\\fBmax_body\\fR = \\fI16m\\fR\n(size, 1k to 256m)"));
	cr_assert(strstr(page, "\\fBtoken_cache_ttl\\fR = \\fI30s\\fR\n(duration, 0s to 30s)"));
	cr_assert(strstr(page, "\\fBagency_epsilon\\fR = \\fI1.0\\fR\n(decimal, at most 3 "
			       "decimals, 0.001 to 100)"));
	cr_assert(strstr(page, "\\fBhelo\\fR\n(string; empty by default)"));
	free(page);
}

Test(config_man, reloadable_keys_say_so)
{
	char *page = man5();
	const char *level = strstr(page, "\\fBlevel\\fR");
	cr_assert(level);
	const char *next = strstr(level + 1, ".TP\n");
	const char *says = strstr(level, "Changed by a reload (SIGHUP).");
	cr_assert(says && (!next || says < next));
	free(page);
}
