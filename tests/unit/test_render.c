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

/* ---------------------------------------- a representative's mail (issue 11) */

static struct claimed reps[64];

/* n rows: rep_ids[i] with person names[i] and agency agencies[i] */
static void rep_rows(int n, const int64_t *rep_ids, const char *const *names,
                     const char *const *agencies)
{
    memset(reps, 0, sizeof(reps));
    for (int i = 0; i < n; i++) {
        reps[i].rep_id = rep_ids[i];
        snprintf(reps[i].person, sizeof(reps[i].person), "%s", names[i]);
        snprintf(reps[i].agency, sizeof(reps[i].agency), "%s", agencies[i]);
    }
}

static void expect_rep(int n, enum mail_lang lang, bool reminder, const char *want_overview,
                       const char *want_persons)
{
    char overview[REP_OVERVIEW_MAX], persons[REP_PERSONS_MAX];
    cr_assert(render_rep_summary(reps, n, lang, reminder, overview, sizeof(overview), persons,
                                 sizeof(persons)));
    cr_assert_str_eq(overview, want_overview);
    cr_assert_str_eq(persons, want_persons);
}

Test(rep_summary, the_example_of_the_issue)
{
    rep_rows(3, (const int64_t[]){1, 2, 1}, (const char *[]){"J. Jansen", "P. de Vries", "J. Jansen"},
             (const char *[]){"Belastingdienst", "Gemeente Utrecht", "Belastingdienst"});
    expect_rep(3, LANG_NL, false, "3 nieuwe berichten voor 2 personen",
               "J. Jansen (Belastingdienst), P. de Vries (Gemeente Utrecht)");
}

Test(rep_summary, one_message_one_person_singular)
{
    rep_rows(1, (const int64_t[]){7}, (const char *[]){"Kim"}, (const char *[]){"DUO"});
    expect_rep(1, LANG_NL, false, "1 nieuw bericht voor 1 persoon", "Kim (DUO)");
    expect_rep(1, LANG_EN, false, "1 new message for 1 person", "Kim (DUO)");
    expect_rep(1, LANG_NL, true, "1 ongelezen bericht voor 1 persoon", "Kim (DUO)");
    expect_rep(1, LANG_EN, true, "1 unread message for 1 person", "Kim (DUO)");
}

Test(rep_summary, each_person_once_with_each_agency_once)
{
    rep_rows(5, (const int64_t[]){4, 4, 4, 9, 4}, (const char *[]){"Sam", "Sam", "Sam", "Kim", "Sam"},
             (const char *[]){"SVB", "DUO", "SVB", "RDW", "CAK"});
    expect_rep(5, LANG_NL, false, "5 nieuwe berichten voor 2 personen", "Sam (CAK, DUO en SVB), Kim (RDW)");
    expect_rep(5, LANG_EN, true, "5 unread messages for 2 people", "Sam (CAK, DUO and SVB), Kim (RDW)");
}

Test(rep_summary, two_people_with_the_same_name_are_two)
{
    rep_rows(2, (const int64_t[]){1, 2}, (const char *[]){"J. Jansen", "J. Jansen"},
             (const char *[]){"DUO", "DUO"});
    expect_rep(2, LANG_NL, false, "2 nieuwe berichten voor 2 personen", "J. Jansen (DUO), J. Jansen (DUO)");
}

Test(rep_summary, at_most_twenty_people_then_the_rest_counted)
{
    int n = REP_PERSONS_SHOWN + 2;
    int64_t ids[64];
    const char *names[64], *ags[64];
    for (int i = 0; i < n; i++) {
        ids[i] = i + 1;
        names[i] = "X";
        ags[i] = "A";
    }
    rep_rows(n, ids, names, ags);
    char overview[REP_OVERVIEW_MAX], persons[REP_PERSONS_MAX];
    cr_assert(render_rep_summary(reps, n, LANG_NL, false, overview, sizeof(overview), persons,
                                 sizeof(persons)));
    cr_assert_str_eq(overview, "22 nieuwe berichten voor 22 personen");
    cr_assert(strstr(persons, "X (A), X (A)") == persons);
    cr_assert(strlen(persons) > 4 && strcmp(persons + strlen(persons) - 13, " en 2 anderen") == 0,
              "%s", persons);
    rep_rows(REP_PERSONS_SHOWN + 1, ids, names, ags);
    cr_assert(render_rep_summary(reps, REP_PERSONS_SHOWN + 1, LANG_EN, false, overview,
                                 sizeof(overview), persons, sizeof(persons)));
    cr_assert(strstr(persons, " and 1 other") && !strstr(persons, "others"), "%s", persons);
}

Test(rep_summary, control_characters_become_spaces_and_output_is_cut)
{
    rep_rows(1, (const int64_t[]){1}, (const char *[]){"Evil\r\nBcc: x"}, (const char *[]){"D\tUO"});
    expect_rep(1, LANG_NL, false, "1 nieuw bericht voor 1 persoon", "Evil  Bcc: x (D UO)");
    char overview[8], persons[6];
    cr_assert(render_rep_summary(reps, 1, LANG_NL, false, overview, sizeof(overview), persons,
                                 sizeof(persons)));
    cr_assert_str_eq(persons, "Evil ");
    cr_assert_eq(strlen(overview), 7);
}
