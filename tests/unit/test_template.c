/*
 * test_template.c - specification of common/template: the template file
 * format, its error messages (with line numbers) and placeholder rendering.
 * Template files are written to /tmp and removed again.
 *
 * needs: common/template.c
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "template.h"

enum { ERR_LEN = 256 };

static char tmp_path[64];

/* Writes content (len bytes) to a fresh file under /tmp; sets tmp_path. */
static void write_file_n(const char *content, size_t len)
{
    strcpy(tmp_path, "/tmp/berichtd-template-XXXXXX");
    const int fd = mkstemp(tmp_path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
}

static void write_file(const char *content)
{
    write_file_n(content, strlen(content));
}

static void remove_file(void)
{
    if (tmp_path[0] != '\0')
        unlink(tmp_path);
    tmp_path[0] = '\0';
}

/* Loads content expecting failure; checks err == "<path>:<line>: ..." and
 * that reason appears in it. */
static void assert_load_fails(const char *content, int line, const char *reason)
{
    write_file(content);
    struct template t;
    char err[ERR_LEN];
    cr_assert_not(template_load(tmp_path, &t, err, sizeof err), "loaded: %s", content);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s:%d: ", tmp_path, line);
    cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "want \"%s...\", got \"%s\"", prefix, err);
    cr_assert_not_null(strstr(err, reason), "want reason \"%s\", got \"%s\"", reason, err);
    cr_assert_null(t.subject);
    cr_assert_null(t.body);
}

TestSuite(template, .fini = remove_file);

/* ---- loading ----------------------------------------------------------- */

Test(template, loads_subject_and_body)
{
    write_file("Subject: Uw aanvraag {{zaak}}\n\nBeste {{naam}},\n\nGroet.\n");
    struct template t;
    char err[ERR_LEN];
    cr_assert(template_load(tmp_path, &t, err, sizeof err), "%s", err);
    cr_assert_str_eq(t.subject, "Uw aanvraag {{zaak}}");
    cr_assert_str_eq(t.body, "Beste {{naam}},\n\nGroet.\n");
    template_free(&t);
}

Test(template, trims_whitespace_around_the_subject)
{
    write_file("Subject:   Hallo  \t\n\nbody\n");
    struct template t;
    cr_assert(template_load(tmp_path, &t, NULL, 0));
    cr_assert_str_eq(t.subject, "Hallo");
    template_free(&t);
}

Test(template, accepts_crlf_line_endings)
{
    write_file("Subject: Hallo\r\n\r\nregel 1\r\nregel 2\r\n");
    struct template t;
    char err[ERR_LEN];
    cr_assert(template_load(tmp_path, &t, err, sizeof err), "%s", err);
    cr_assert_str_eq(t.subject, "Hallo");
    cr_assert_str_eq(t.body, "regel 1\r\nregel 2\r\n");
    template_free(&t);
}

Test(template, keeps_utf8_text)
{
    write_file("Subject: Één bericht – café\n\nGroeten uit Súdwest-Fryslân\n");
    struct template t;
    cr_assert(template_load(tmp_path, &t, NULL, 0));
    cr_assert_str_eq(t.subject, "Één bericht – café");
    cr_assert_str_eq(t.body, "Groeten uit Súdwest-Fryslân\n");
    template_free(&t);
}

Test(template, allows_an_empty_body)
{
    write_file("Subject: Alleen een onderwerp\n\n");
    struct template t;
    cr_assert(template_load(tmp_path, &t, NULL, 0));
    cr_assert_str_eq(t.body, "");
    template_free(&t);
}

Test(template, missing_file_error_names_the_path)
{
    struct template t;
    char err[ERR_LEN];
    cr_assert_not(template_load("/tmp/berichtd-no-such-template.txt", &t, err, sizeof err));
    cr_assert_eq(strncmp(err, "/tmp/berichtd-no-such-template.txt: ", 36), 0, "%s", err);
}

Test(template, rejects_missing_subject_line_on_line_1)
{
    assert_load_fails("Onderwerp: Hallo\n\nbody\n", 1, "Subject");
}

Test(template, rejects_empty_file_on_line_1)
{
    assert_load_fails("", 1, "Subject");
}

Test(template, rejects_empty_subject)
{
    assert_load_fails("Subject:   \n\nbody\n", 1, "empty subject");
}

Test(template, rejects_control_character_in_subject)
{
    assert_load_fails("Subject: Hallo\x1b[0m\n\nbody\n", 1, "control character");
}

Test(template, rejects_missing_blank_line_on_line_2)
{
    assert_load_fails("Subject: Hallo\nBeste inwoner,\n", 2, "blank line");
}

Test(template, rejects_file_with_only_a_subject_line)
{
    assert_load_fails("Subject: Hallo", 2, "blank line");
}

Test(template, rejects_unterminated_placeholder_with_its_line)
{
    assert_load_fails("Subject: Hallo\n\nregel 3\nregel 4\nBeste {{naam,\n", 5, "unterminated {{");
}

Test(template, rejects_placeholder_split_over_two_lines)
{
    assert_load_fails("Subject: Hallo\n\nBeste {{na\nam}}\n", 3, "unterminated {{");
}

Test(template, rejects_unterminated_placeholder_in_subject)
{
    assert_load_fails("Subject: Zaak {{zaak\n\nbody\n", 1, "unterminated {{");
}

Test(template, rejects_invalid_placeholder_name)
{
    assert_load_fails("Subject: Hallo\n\nBeste {{Naam}}\n", 3, "invalid placeholder");
}

Test(template, rejects_placeholder_with_spaces)
{
    assert_load_fails("Subject: Hallo\n\nBeste {{ naam }}\n", 3, "invalid placeholder");
}

Test(template, rejects_empty_placeholder)
{
    assert_load_fails("Subject: Hallo\n\n{{}}\n", 3, "invalid placeholder");
}

Test(template, rejects_invalid_utf8_with_its_line)
{
    assert_load_fails("Subject: Hallo\n\nregel 3\ncaf\xe9\n", 4, "invalid UTF-8");
}

Test(template, rejects_nul_byte_with_its_line)
{
    static const char content[] = "Subject: Hallo\n\nab\0cd\n";
    write_file_n(content, sizeof content - 1);
    struct template t;
    char err[ERR_LEN];
    cr_assert_not(template_load(tmp_path, &t, err, sizeof err));
    char want[128];
    snprintf(want, sizeof want, "%s:3: NUL byte", tmp_path);
    cr_assert_str_eq(err, want);
}

Test(template, rejects_file_larger_than_the_limit)
{
    const size_t len = TEMPLATE_MAX_BYTES + 1;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, 'x', len);
    memcpy(big, "Subject: groot\n\n", 16);
    write_file_n(big, len);
    free(big);
    struct template t;
    char err[ERR_LEN];
    cr_assert_not(template_load(tmp_path, &t, err, sizeof err));
    cr_assert_not_null(strstr(err, "too large"), "%s", err);
}

Test(template, truncates_error_to_the_buffer_given)
{
    write_file("geen onderwerp\n");
    struct template t;
    char err[8];
    cr_assert_not(template_load(tmp_path, &t, err, sizeof err));
    cr_assert_eq(strlen(err), sizeof err - 1);
}

Test(template, free_zeroes_and_tolerates_repeat_and_null)
{
    write_file("Subject: x\n\ny\n");
    struct template t;
    cr_assert(template_load(tmp_path, &t, NULL, 0));
    template_free(&t);
    cr_assert_null(t.subject);
    cr_assert_null(t.body);
    template_free(&t);
    template_free(NULL);
}

/* ---- rendering ------------------------------------------------------------ */

Test(template_render, replaces_each_placeholder_with_its_value)
{
    const struct template_var vars[] = {{"naam", "J. de Vries"}, {"zaak", "Z-2026-001"}};
    char *s = template_render("Beste {{naam}}, zaak {{zaak}}.", vars, 2);
    cr_assert_str_eq(s, "Beste J. de Vries, zaak Z-2026-001.");
    free(s);
}

Test(template_render, replaces_repeated_placeholder_every_time)
{
    const struct template_var vars[] = {{"x", "ab"}};
    char *s = template_render("{{x}}-{{x}}{{x}}", vars, 1);
    cr_assert_str_eq(s, "ab-abab");
    free(s);
}

Test(template_render, inserts_values_verbatim_without_expanding_them)
{
    const struct template_var vars[] = {{"a", "{{b}} & <é>"}, {"b", "NO"}};
    char *s = template_render("[{{a}}]", vars, 2);
    cr_assert_str_eq(s, "[{{b}} & <é>]");
    free(s);
}

Test(template_render, copies_text_without_placeholders)
{
    char *s = template_render("Geen variabelen } { }} hier.", NULL, 0);
    cr_assert_str_eq(s, "Geen variabelen } { }} hier.");
    free(s);
}

Test(template_render, renders_empty_text_as_empty_string)
{
    char *s = template_render("", NULL, 0);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(template_render, accepts_empty_value)
{
    const struct template_var vars[] = {{"tussenvoegsel", ""}};
    char *s = template_render("Jan {{tussenvoegsel}}Vries", vars, 1);
    cr_assert_str_eq(s, "Jan Vries");
    free(s);
}

Test(template_render, first_var_with_a_name_wins)
{
    const struct template_var vars[] = {{"naam", "eerste"}, {"naam", "tweede"}};
    char *s = template_render("{{naam}}", vars, 2);
    cr_assert_str_eq(s, "eerste");
    free(s);
}

Test(template_render, does_not_match_a_var_by_prefix)
{
    const struct template_var vars[] = {{"naam_kort", "x"}, {"naa", "y"}};
    cr_assert_null(template_render("{{naam}}", vars, 2));
}

Test(template_render, fails_on_missing_var)
{
    const struct template_var vars[] = {{"naam", "Jan"}};
    cr_assert_null(template_render("Beste {{naam}}, zaak {{zaak}}", vars, 1));
}

Test(template_render, fails_on_null_value)
{
    const struct template_var vars[] = {{"naam", NULL}};
    cr_assert_null(template_render("{{naam}}", vars, 1));
}

Test(template_render, fails_on_malformed_placeholder)
{
    const struct template_var vars[] = {{"naam", "Jan"}};
    cr_assert_null(template_render("Beste {{naam", vars, 1));
    cr_assert_null(template_render("Beste {{Naam}}", vars, 1));
}

Test(template_render, fails_on_null_text)
{
    cr_assert_null(template_render(NULL, NULL, 0));
}

Test(template_render, renders_loaded_template)
{
    write_file("Subject: Zaak {{zaak}}\n\nBeste {{naam}},\n");
    struct template t;
    cr_assert(template_load(tmp_path, &t, NULL, 0));
    const struct template_var vars[] = {{"naam", "Jan"}, {"zaak", "Z-1"}};
    char *subject = template_render(t.subject, vars, 2);
    char *body = template_render(t.body, vars, 2);
    cr_assert_str_eq(subject, "Zaak Z-1");
    cr_assert_str_eq(body, "Beste Jan,\n");
    free(subject);
    free(body);
    template_free(&t);
    remove_file();
}
