/*
 * test_render.c - specification of daemon/notify/render: claimed rows are
 * grouped into mails, and a mail names each sender once ("A", "A en B",
 * "A, B en C", "and" in English) with no control characters.
 *
 * needs: daemon/notify/render.c (and libcommon)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/notify/render.h"

static struct claimed rows[8];

static const struct claimed *senders(int n, const char *const *names)
{
    memset(rows, 0, sizeof(rows));
    for (int i = 0; i < n; i++)
        snprintf(rows[i].agency, sizeof(rows[i].agency), "%s", names[i]);
    return rows;
}

static void expect(int n, const char *const *names, enum mail_lang lang, const char *want,
                   int want_distinct)
{
    char out[SENDERS_MAX];
    int distinct = -1;
    render_join_senders(senders(n, names), n, lang, out, sizeof(out), &distinct);
    cr_assert_str_eq(out, want);
    cr_assert_eq(distinct, want_distinct);
}

Test(join_senders, one_sender)
{
    expect(1, (const char *[]){"Belastingdienst"}, LANG_NL, "Belastingdienst", 1);
}

Test(join_senders, two_senders_with_en)
{
    expect(2, (const char *[]){"RDW", "DUO"}, LANG_NL, "RDW en DUO", 2);
}

Test(join_senders, three_senders_with_commas_and_en)
{
    expect(3, (const char *[]){"RDW", "DUO", "SVB"}, LANG_NL, "RDW, DUO en SVB", 3);
}

Test(join_senders, english_uses_and)
{
    expect(2, (const char *[]){"RDW", "DUO"}, LANG_EN, "RDW and DUO", 2);
    expect(3, (const char *[]){"RDW", "DUO", "SVB"}, LANG_EN, "RDW, DUO and SVB", 3);
}

Test(join_senders, each_sender_once_in_first_seen_order)
{
    expect(5, (const char *[]){"DUO", "RDW", "DUO", "DUO", "RDW"}, LANG_NL, "DUO en RDW", 2);
    expect(3, (const char *[]){"SVB", "SVB", "SVB"}, LANG_NL, "SVB", 1);
}

Test(join_senders, control_characters_become_spaces)
{
    expect(2, (const char *[]){"Evil\r\nBcc: x@y", "Tab\there\x7f"}, LANG_NL,
           "Evil  Bcc: x@y en Tab here ", 2);
}

Test(join_senders, output_is_cut_at_its_capacity)
{
    char out[8];
    int distinct = 0;
    render_join_senders(senders(2, (const char *[]){"Gemeente Amsterdam", "DUO"}), 2, LANG_NL,
                        out, sizeof(out), &distinct);
    cr_assert_eq(strlen(out), 7);
    cr_assert_eq(strncmp(out, "Gemeent", 7), 0);
}

static int group_ids(const int64_t *mail_ids, int n, struct group *g)
{
    static struct claimed cl[16];
    memset(cl, 0, sizeof(cl));
    for (int i = 0; i < n; i++) {
        cl[i].id = i + 1;
        cl[i].mail_id = mail_ids[i];
    }
    return render_make_groups(cl, n, g);
}

Test(make_groups, nothing_claimed_no_mails)
{
    struct group g[1];
    cr_assert_eq(group_ids(NULL, 0, g), 0);
}

Test(make_groups, one_row_per_mail)
{
    struct group g[3];
    cr_assert_eq(group_ids((const int64_t[]){7, 8, 9}, 3, g), 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(g[i].first, i);
        cr_assert_eq(g[i].count, 1);
    }
}

Test(make_groups, a_digest_is_the_run_of_rows_with_one_mail_id)
{
    struct group g[6];
    int k = group_ids((const int64_t[]){3, 3, 3, 5, 9, 9}, 6, g);
    cr_assert_eq(k, 3);
    cr_assert_eq(g[0].first, 0);
    cr_assert_eq(g[0].count, 3);
    cr_assert_eq(g[1].first, 3);
    cr_assert_eq(g[1].count, 1);
    cr_assert_eq(g[2].first, 4);
    cr_assert_eq(g[2].count, 2);
}

Test(make_groups, all_rows_of_one_mail)
{
    struct group g[4];
    cr_assert_eq(group_ids((const int64_t[]){42, 42, 42, 42}, 4, g), 1);
    cr_assert_eq(g[0].count, 4);
}
