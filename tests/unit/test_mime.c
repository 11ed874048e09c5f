/*
 * test_mime.c - specification of common/mime: the exact shape of the mail
 * berichtd sends, header-injection safety, RFC 2047 header encoding and the
 * quoted-printable body. The test decodes what mime_build wrote with its
 * own small decoders and compares with the input.
 *
 * needs: common/mime.c
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

static const int64_t DATE_2026_11_29 = 1795983373; /* Sun, 29 Nov 2026 20:16:13 UTC */
static const int64_t DATE_2026_01_01 = 1767225600; /* Thu, 01 Jan 2026 00:00:00 UTC */
static const char EW_PREFIX[] = "=?UTF-8?B?";

static struct mime_mail base_mail(void)
{
    struct mime_mail m = {
        .from_name = "Gemeente Utrecht",
        .from_addr = "noreply@berichten.utrecht.nl",
        .to_addr = "inwoner@example.nl",
        .subject = "Uw aanvraag is ontvangen",
        .body = "Beste inwoner,\n\nWe hebben uw aanvraag ontvangen.\n",
        .message_id = "<0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@utrecht.nl>",
        .date_unix = DATE_2026_11_29,
        .language = "nl",
    };
    return m;
}

static char *build_ok(const struct mime_mail *m)
{
    size_t len = 0;
    char *msg = mime_build(m, &len);
    cr_assert_not_null(msg, "mime_build refused a valid mail");
    cr_assert_eq(len, strlen(msg));
    return msg;
}

static void assert_rejected(const struct mime_mail *m)
{
    char *msg = mime_build(m, NULL);
    cr_assert_null(msg, "mime_build accepted an invalid mail:\n%s", msg ? msg : "");
}

/* ---- test-side decoders ---------------------------------------------- */

static size_t header_block_len(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    cr_assert_not_null(end, "no blank line after the headers");
    return (size_t)(end - msg) + 2; /* keep the last header's CRLF */
}

static const char *body_of(const char *msg)
{
    return strstr(msg, "\r\n\r\n") + 4;
}

/* Raw value of header `name` (folds included), malloc'd; NULL if absent. */
static char *header_raw(const char *msg, const char *name)
{
    const size_t hlen = header_block_len(msg);
    const size_t nlen = strlen(name);
    const char *line = msg;
    while ((size_t)(line - msg) < hlen) {
        const char *eol = strstr(line, "\r\n");
        if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            if (*v == ' ')
                v++;
            const char *end = eol;
            while (end[2] == ' ' || end[2] == '\t')
                end = strstr(end + 2, "\r\n");
            return strndup(v, (size_t)(end - v));
        }
        line = eol + 2;
    }
    return NULL;
}

static char *unfold(const char *raw)
{
    char *out = malloc(strlen(raw) + 1);
    size_t n = 0;
    for (const char *p = raw; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n')
            p++;
        else
            out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(alpha, c);
    return (c != '\0' && p != NULL) ? (int)(p - alpha) : -1;
}

/* Decodes base64 s[0..n) to out, returns the byte count. */
static size_t b64_decode(const char *s, size_t n, unsigned char *out)
{
    cr_assert_eq(n % 4, 0, "base64 length %zu not a multiple of 4", n);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            int d = 0;
            if (s[i + j] == '=')
                pad++;
            else
                d = b64_value(s[i + j]);
            cr_assert_geq(d, 0, "bad base64 char");
            v = v << 6 | (uint32_t)d;
        }
        out[o++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)v;
    }
    return o;
}

/* Structural UTF-8 check (lead byte announces the length). */
static bool utf8_complete(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t len = s[i] < 0x80 ? 1 : s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : s[i] >= 0xC0 ? 2 : 0;
        if (len == 0 || i + len > n)
            return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

/*
 * Decodes an unfolded header value: B encoded-words are decoded, the
 * whitespace between two adjacent encoded-words dropped (RFC 2047 §6.2),
 * other text kept. Checks every encoded-word is <= 75 chars and holds
 * whole UTF-8 characters. malloc'd.
 */
static char *decode_words(const char *v)
{
    char *out = malloc(strlen(v) + 1);
    size_t n = 0;
    bool after_word = false;
    const char *p = v;
    while (*p) {
        if (strncmp(p, EW_PREFIX, strlen(EW_PREFIX)) == 0) {
            const char *b64 = p + strlen(EW_PREFIX);
            const char *end = strstr(b64, "?=");
            cr_assert_not_null(end, "unterminated encoded-word");
            const size_t wlen = (size_t)(end + 2 - p);
            cr_assert_leq(wlen, MIME_ENCODED_WORD_MAX, "encoded-word of %zu chars", wlen);
            const size_t k = b64_decode(b64, (size_t)(end - b64), (unsigned char *)out + n);
            cr_assert(utf8_complete((unsigned char *)out + n, k),
                      "encoded-word splits a UTF-8 character");
            n += k;
            p = end + 2;
            after_word = true;
        } else if (*p == ' ' || *p == '\t') {
            const char *q = p;
            while (*q == ' ' || *q == '\t')
                q++;
            const bool next_is_word = strncmp(q, EW_PREFIX, strlen(EW_PREFIX)) == 0;
            if (!(after_word && next_is_word)) {
                memcpy(out + n, p, (size_t)(q - p));
                n += (size_t)(q - p);
            }
            p = q;
        } else {
            out[n++] = *p++;
            after_word = false;
        }
    }
    out[n] = '\0';
    return out;
}

static char *header_decoded(const char *msg, const char *name)
{
    char *raw = header_raw(msg, name);
    cr_assert_not_null(raw, "no %s header", name);
    char *un = unfold(raw);
    char *dec = decode_words(un);
    free(raw);
    free(un);
    return dec;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* RFC 2045 wants uppercase from encoders */
}

/* Decodes a quoted-printable body; CRLF becomes "\n". malloc'd. */
static char *qp_decode(const char *body)
{
    char *out = malloc(strlen(body) + 1);
    size_t n = 0;
    for (const char *p = body; *p;) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=') {
            const int hi = hex_value(p[1]);
            const int lo = hi < 0 ? -1 : hex_value(p[2]);
            cr_assert(hi >= 0 && lo >= 0, "bad QP escape near \"%.10s\"", p);
            out[n++] = (char)(hi << 4 | lo);
            p += 3;
        } else if (p[0] == '\r') {
            cr_assert_eq(p[1], '\n', "bare CR in body");
            out[n++] = '\n';
            p += 2;
        } else {
            cr_assert_neq(p[0], '\n', "bare LF in body");
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

/* Longest line in s[0..n) (lines end in CRLF). */
static size_t longest_line(const char *s, size_t n)
{
    size_t best = 0, cur = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            if (cur > best)
                best = cur;
            cur = 0;
            i++;
        } else {
            cur++;
        }
    }
    return cur > best ? cur : best;
}

static void assert_header_lines_fit(const char *msg)
{
    const size_t longest = longest_line(msg, header_block_len(msg));
    cr_assert_leq(longest, MIME_HEADER_LINE_MAX, "header line of %zu chars:\n%s", longest, msg);
}

static void assert_body_lines_fit(const char *msg)
{
    const char *body = body_of(msg);
    const size_t longest = longest_line(body, strlen(body));
    cr_assert_leq(longest, MIME_QP_LINE_MAX, "body line of %zu chars", longest);
}

/* ---- overall shape --------------------------------------------------- */

Test(mime, writes_headers_in_the_specified_order)
{
    struct mime_mail m = base_mail();
    char *msg = build_ok(&m);
    static const char *const order[] = {
        "Date:", "From:", "To:", "Subject:", "Message-ID:", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: quoted-printable", "Content-Language: nl",
        "Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: All",
    };
    const char *line = msg;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        cr_assert_eq(strncmp(line, order[i], strlen(order[i])), 0,
                     "expected \"%s\" at:\n%s", order[i], line);
        line = strstr(line, "\r\n") + 2;
    }
    cr_assert_eq(strncmp(line, "\r\n", 2), 0, "blank line must follow the last header");
    free(msg);
}

Test(mime, uses_crlf_line_endings_only)
{
    struct mime_mail m = base_mail();
    m.body = "one\ntwo\r\nthree\rfour\n";
    char *msg = build_ok(&m);
    for (const char *p = msg; *p; p++) {
        if (*p == '\r')
            cr_assert_eq(p[1], '\n', "bare CR at offset %td", p - msg);
        if (*p == '\n')
            cr_assert(p > msg && p[-1] == '\r', "bare LF at offset %td", p - msg);
    }
    free(msg);
}

Test(mime, reports_length_without_the_nul)
{
    struct mime_mail m = base_mail();
    size_t len = 0;
    char *msg = mime_build(&m, &len);
    cr_assert_not_null(msg);
    cr_assert_eq(len, strlen(msg));
    free(msg);
}

Test(mime, accepts_null_length_pointer)
{
    struct mime_mail m = base_mail();
    char *msg = mime_build(&m, NULL);
    cr_assert_not_null(msg);
    free(msg);
}

Test(mime, ends_the_message_with_crlf)
{
    struct mime_mail m = base_mail();
    m.body = "no newline at the end";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "no newline at the end\r\n");
    free(msg);
}

Test(mime, body_ending_in_newline_gets_no_extra_empty_line)
{
    struct mime_mail m = base_mail();
    m.body = "line\n";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "line\r\n");
    free(msg);
}

Test(mime, empty_body_is_one_empty_line)
{
    struct mime_mail m = base_mail();
    m.body = "";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "\r\n");
    free(msg);
}

/* ---- Date ------------------------------------------------------------ */

Test(mime, date_is_rfc_5322_in_utc)
{
    struct mime_mail m = base_mail();
    char *msg = build_ok(&m);
    cr_assert_eq(strncmp(msg, "Date: Sun, 29 Nov 2026 20:16:13 +0000\r\n", 39), 0, "%s", msg);
    free(msg);
}

Test(mime, date_pads_day_and_time_with_zeros)
{
    struct mime_mail m = base_mail();
    m.date_unix = DATE_2026_01_01;
    char *msg = build_ok(&m);
    cr_assert_eq(strncmp(msg, "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n", 39), 0, "%s", msg);
    free(msg);
}

Test(mime, rejects_date_before_1900)
{
    struct mime_mail m = base_mail();
    m.date_unix = -2208988801LL; /* 31 Dec 1899 23:59:59 */
    assert_rejected(&m);
}

/* ---- From / To ------------------------------------------------------- */

Test(mime, from_without_name_is_the_bare_address)
{
    struct mime_mail m = base_mail();
    m.from_name = NULL;
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nFrom: noreply@berichten.utrecht.nl\r\n"));
    free(msg);
}

Test(mime, from_with_empty_name_is_the_bare_address)
{
    struct mime_mail m = base_mail();
    m.from_name = "";
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nFrom: noreply@berichten.utrecht.nl\r\n"));
    free(msg);
}

Test(mime, ascii_display_name_is_written_as_is)
{
    struct mime_mail m = base_mail();
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nFrom: Gemeente Utrecht <noreply@berichten.utrecht.nl>\r\n"));
    free(msg);
}

Test(mime, display_name_with_specials_is_quoted)
{
    struct mime_mail m = base_mail();
    m.from_name = "Utrecht, Gemeente (Burgerzaken)";
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nFrom: \"Utrecht, Gemeente (Burgerzaken)\" "
                                   "<noreply@berichten.utrecht.nl>\r\n"), "%s", msg);
    free(msg);
}

Test(mime, quoted_display_name_escapes_quote_and_backslash)
{
    struct mime_mail m = base_mail();
    m.from_name = "Team \"BZ\" \\ Utrecht";
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "From: \"Team \\\"BZ\\\" \\\\ Utrecht\" <"), "%s", msg);
    free(msg);
}

Test(mime, non_ascii_display_name_is_encoded_and_decodes_back)
{
    struct mime_mail m = base_mail();
    m.from_name = "Gemeente Súdwest-Fryslân";
    char *msg = build_ok(&m);
    char *raw = header_raw(msg, "From");
    cr_assert_eq(strncmp(raw, EW_PREFIX, strlen(EW_PREFIX)), 0, "%s", raw);
    char *dec = header_decoded(msg, "From");
    cr_assert_str_eq(dec, "Gemeente Súdwest-Fryslân <noreply@berichten.utrecht.nl>");
    free(dec);
    free(raw);
    free(msg);
}

Test(mime, long_non_ascii_display_name_folds_within_78_columns)
{
    struct mime_mail m = base_mail();
    m.from_name = "Gemeente Súdwest-Fryslân – Afdeling Burgerzaken, Publiekszaken en "
                  "Dienstverlening aan Inwoners";
    char *msg = build_ok(&m);
    assert_header_lines_fit(msg);
    char *dec = header_decoded(msg, "From");
    char want[256];
    snprintf(want, sizeof want, "%s <%s>", m.from_name, m.from_addr);
    cr_assert_str_eq(dec, want);
    free(dec);
    free(msg);
}

Test(mime, to_is_the_bare_address)
{
    struct mime_mail m = base_mail();
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nTo: inwoner@example.nl\r\n"));
    free(msg);
}

/* ---- Subject ---------------------------------------------------------- */

Test(mime, ascii_subject_is_written_as_is)
{
    struct mime_mail m = base_mail();
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nSubject: Uw aanvraag is ontvangen\r\n"));
    free(msg);
}

Test(mime, long_ascii_subject_is_folded_at_whitespace_and_unfolds_to_the_original)
{
    struct mime_mail m = base_mail();
    m.subject = "Herinnering: uw afspraak voor het ophalen van uw paspoort en identiteitskaart "
                "bij de balie van het stadskantoor";
    char *msg = build_ok(&m);
    assert_header_lines_fit(msg);
    char *raw = header_raw(msg, "Subject");
    cr_assert_not_null(strstr(raw, "\r\n "), "expected a fold:\n%s", raw);
    cr_assert_null(strstr(raw, "=?"), "ASCII subject should not be encoded");
    char *un = unfold(raw);
    cr_assert_str_eq(un, m.subject);
    free(un);
    free(raw);
    free(msg);
}

Test(mime, non_ascii_subject_is_encoded_and_decodes_back)
{
    struct mime_mail m = base_mail();
    m.subject = "Uw aanvraag is ontvangen – reactie binnen één week";
    char *msg = build_ok(&m);
    char *raw = header_raw(msg, "Subject");
    cr_assert_eq(strncmp(raw, EW_PREFIX, strlen(EW_PREFIX)), 0, "%s", raw);
    char *dec = header_decoded(msg, "Subject");
    cr_assert_str_eq(dec, m.subject);
    free(dec);
    free(raw);
    free(msg);
}

Test(mime, long_non_ascii_subject_uses_several_words_within_78_columns)
{
    struct mime_mail m = base_mail();
    m.subject = "Bevestiging: uw melding over de straatverlichting in de Ĳsselstraat is "
                "doorgestuurd naar de afdeling Openbare Ruimte – wij reageren binnen één week";
    char *msg = build_ok(&m);
    assert_header_lines_fit(msg);
    char *raw = header_raw(msg, "Subject");
    cr_assert_not_null(strstr(raw, "?=\r\n =?UTF-8?B?"), "expected folded words:\n%s", raw);
    char *dec = header_decoded(msg, "Subject"); /* also checks <= 75 per word */
    cr_assert_str_eq(dec, m.subject);
    free(dec);
    free(raw);
    free(msg);
}

Test(mime, encoded_words_never_split_a_multibyte_character)
{
    /* Runs of 2-, 3- and 4-byte characters at every offset against the
     * 45-byte word capacity; decode_words checks each word on its own. */
    static const char *const chars[] = {"é", "€", "😀", "aé", "a€", "ab😀"};
    for (size_t c = 0; c < sizeof chars / sizeof chars[0]; c++) {
        for (size_t reps = 1; reps < 60; reps++) {
            char subject[512] = ""; /* at most 59 * 6 bytes */
            for (size_t r = 0; r < reps; r++)
                strcat(subject, chars[c]);
            struct mime_mail m = base_mail();
            m.subject = subject;
            char *msg = build_ok(&m);
            assert_header_lines_fit(msg);
            char *dec = header_decoded(msg, "Subject");
            cr_assert_str_eq(dec, subject);
            free(dec);
            free(msg);
        }
    }
}

Test(mime, subject_of_any_length_fits_78_columns_and_decodes_back)
{
    static const char *const pieces[] = {"a", " ", "é", "word ", "€", "-", "😀", "x",
                                         "langewoordzonderspaties", "\t", "ü "};
    uint32_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        char subject[4096] = ""; /* 99 pieces of at most 23 bytes */
        size_t len = 0;
        const int count = round % 100;
        for (int i = 0; i < count; i++) {
            seed = seed * 1103515245U + 12345U;
            const char *piece = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
            cr_assert_lt(len + strlen(piece), sizeof subject);
            memcpy(subject + len, piece, strlen(piece) + 1);
            len += strlen(piece);
        }
        struct mime_mail m = base_mail();
        m.subject = subject;
        char *msg = build_ok(&m);
        assert_header_lines_fit(msg);
        char *dec = header_decoded(msg, "Subject");
        cr_assert_str_eq(dec, subject);
        free(dec);
        free(msg);
    }
}

Test(mime, ascii_subject_with_a_word_too_long_to_fold_is_encoded)
{
    struct mime_mail m = base_mail();
    m.subject = "Link: https://example.nl/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    char *msg = build_ok(&m);
    assert_header_lines_fit(msg);
    char *dec = header_decoded(msg, "Subject");
    cr_assert_str_eq(dec, m.subject);
    free(dec);
    free(msg);
}

Test(mime, subject_that_looks_like_an_encoded_word_is_encoded)
{
    struct mime_mail m = base_mail();
    m.subject = "=?UTF-8?B?aGFjaw==?=";
    char *msg = build_ok(&m);
    char *dec = header_decoded(msg, "Subject");
    cr_assert_str_eq(dec, m.subject);
    free(dec);
    free(msg);
}

Test(mime, empty_subject_is_allowed)
{
    struct mime_mail m = base_mail();
    m.subject = "";
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nSubject:\r\n"));
    free(msg);
}

/* ---- Message-ID, Content-Language, fixed headers ---------------------- */

Test(mime, writes_message_id_verbatim)
{
    struct mime_mail m = base_mail();
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nMessage-ID: <0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@utrecht.nl>\r\n"));
    free(msg);
}

Test(mime, writes_content_language_when_set)
{
    struct mime_mail m = base_mail();
    m.language = "en-GB";
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nContent-Language: en-GB\r\n"));
    free(msg);
}

Test(mime, omits_content_language_when_null)
{
    struct mime_mail m = base_mail();
    m.language = NULL;
    char *msg = build_ok(&m);
    cr_assert_null(strstr(msg, "Content-Language"));
    free(msg);
}

Test(mime, marks_mail_as_auto_generated)
{
    struct mime_mail m = base_mail();
    char *msg = build_ok(&m);
    cr_assert_not_null(strstr(msg, "\r\nAuto-Submitted: auto-generated\r\n"));
    cr_assert_not_null(strstr(msg, "\r\nX-Auto-Response-Suppress: All\r\n"));
    free(msg);
}

/* ---- header injection -------------------------------------------------- */

Test(mime, rejects_crlf_in_from_name)
{
    struct mime_mail m = base_mail();
    m.from_name = "Gemeente\r\nBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_crlf_in_from_addr)
{
    struct mime_mail m = base_mail();
    m.from_addr = "noreply@utrecht.nl\r\nBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_crlf_in_to_addr)
{
    struct mime_mail m = base_mail();
    m.to_addr = "inwoner@example.nl\r\nBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_crlf_in_subject)
{
    struct mime_mail m = base_mail();
    m.subject = "Hallo\r\nBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_bare_lf_in_subject)
{
    struct mime_mail m = base_mail();
    m.subject = "Hallo\nBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_bare_cr_in_subject)
{
    struct mime_mail m = base_mail();
    m.subject = "Hallo\rBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_crlf_in_message_id)
{
    struct mime_mail m = base_mail();
    m.message_id = "<a@b>\r\nBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_crlf_in_language)
{
    struct mime_mail m = base_mail();
    m.language = "nl\r\nBcc: victim@example.nl";
    assert_rejected(&m);
}

Test(mime, rejects_other_control_characters_in_subject)
{
    struct mime_mail m = base_mail();
    m.subject = "Hallo\x1b[31m";
    assert_rejected(&m);
}

Test(mime, rejects_control_characters_in_from_name)
{
    struct mime_mail m = base_mail();
    m.from_name = "Gemeente\x7f";
    assert_rejected(&m);
}

/* ---- other invalid input ------------------------------------------------ */

Test(mime, rejects_invalid_utf8_in_subject)
{
    struct mime_mail m = base_mail();
    m.subject = "caf\xe9"; /* Latin-1 é */
    assert_rejected(&m);
}

Test(mime, rejects_invalid_utf8_in_from_name)
{
    struct mime_mail m = base_mail();
    m.from_name = "Gemeente \xc3";
    assert_rejected(&m);
}

Test(mime, rejects_invalid_utf8_in_body)
{
    struct mime_mail m = base_mail();
    m.body = "Beste \xff\n";
    assert_rejected(&m);
}

Test(mime, rejects_overlong_utf8)
{
    struct mime_mail m = base_mail();
    m.body = "slash \xc0\xaf\n";
    assert_rejected(&m);
}

Test(mime, rejects_utf8_encoded_surrogate)
{
    struct mime_mail m = base_mail();
    m.subject = "\xed\xa0\x80";
    assert_rejected(&m);
}

Test(mime, rejects_invalid_recipient_address)
{
    struct mime_mail m = base_mail();
    m.to_addr = "Jan <jan@example.nl>";
    assert_rejected(&m);
}

Test(mime, rejects_invalid_sender_address)
{
    struct mime_mail m = base_mail();
    m.from_addr = "noreply";
    assert_rejected(&m);
}

Test(mime, rejects_message_id_without_angle_brackets)
{
    struct mime_mail m = base_mail();
    m.message_id = "abc@utrecht.nl";
    assert_rejected(&m);
}

Test(mime, rejects_message_id_without_at_sign)
{
    struct mime_mail m = base_mail();
    m.message_id = "<abc.utrecht.nl>";
    assert_rejected(&m);
}

Test(mime, rejects_message_id_with_space)
{
    struct mime_mail m = base_mail();
    m.message_id = "<a b@utrecht.nl>";
    assert_rejected(&m);
}

Test(mime, rejects_malformed_language_tag)
{
    struct mime_mail m = base_mail();
    m.language = "nl; x=1";
    assert_rejected(&m);
}

Test(mime, rejects_missing_required_fields)
{
    struct mime_mail m = base_mail();
    m.subject = NULL;
    assert_rejected(&m);
    m = base_mail();
    m.body = NULL;
    assert_rejected(&m);
    m = base_mail();
    m.message_id = NULL;
    assert_rejected(&m);
    cr_assert_null(mime_build(NULL, NULL));
}

/* ---- quoted-printable body ----------------------------------------------- */

Test(mime, body_round_trips_through_quoted_printable)
{
    struct mime_mail m = base_mail();
    m.body = "Saldo = 0 euro\n"
             "trailing spaces   \n"
             "trailing tab\t\n"
             "Café Ĳssel – één\n"
             ".begins with a dot\n"
             "From the desk of the mayor\n"
             "Deze regel is met opzet veel langer dan zesenzeventig tekens, zodat de "
             "encoder zachte regelafbrekingen moet invoegen, met é en = erin verspreid "
             "over de hele lengte: ééééééééééééééééééééééééééééééééééééééééééé=========\n"
             "\n"
             "end\n";
    char *msg = build_ok(&m);
    assert_body_lines_fit(msg);
    char *dec = qp_decode(body_of(msg));
    cr_assert_str_eq(dec, m.body);
    free(dec);
    free(msg);
}

Test(mime, body_lines_are_at_most_76_chars)
{
    char body[2048];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    struct mime_mail m = base_mail();
    m.body = body;
    char *msg = build_ok(&m);
    assert_body_lines_fit(msg);
    char *dec = qp_decode(body_of(msg));
    cr_assert_eq(strlen(dec), sizeof body); /* plus the final newline */
    free(dec);
    free(msg);
}

Test(mime, encodes_equals_sign_as_3D)
{
    struct mime_mail m = base_mail();
    m.body = "a=b\n";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "a=3Db\r\n");
    free(msg);
}

Test(mime, encodes_trailing_whitespace_before_a_line_break)
{
    struct mime_mail m = base_mail();
    m.body = "a  \nb\t\n";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "a =20\r\nb=09\r\n");
    free(msg);
}

Test(mime, encodes_non_ascii_bytes_as_uppercase_hex)
{
    struct mime_mail m = base_mail();
    m.body = "é\n";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "=C3=A9\r\n");
    free(msg);
}

Test(mime, normalises_lf_cr_and_crlf_to_crlf)
{
    struct mime_mail m = base_mail();
    m.body = "a\nb\r\nc\rd\n";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "a\r\nb\r\nc\r\nd\r\n");
    free(msg);
}

Test(mime, soft_line_break_keeps_lines_within_76_chars)
{
    char body[100];
    memset(body, 'y', 80);
    body[80] = '\0';
    struct mime_mail m = base_mail();
    m.body = body;
    char *msg = build_ok(&m);
    const char *b = body_of(msg);
    cr_assert_eq(strncmp(b + 75, "=\r\n", 3), 0, "%s", b);
    free(msg);
}

Test(mime, line_of_exactly_76_chars_needs_no_soft_break)
{
    char body[100];
    memset(body, 'z', 76);
    body[76] = '\0';
    struct mime_mail m = base_mail();
    m.body = body;
    char *msg = build_ok(&m);
    cr_assert_null(strstr(body_of(msg), "=\r\n"));
    free(msg);
}

Test(mime, encodes_dot_and_from_at_line_start)
{
    struct mime_mail m = base_mail();
    m.body = ".\nFrom here\n";
    char *msg = build_ok(&m);
    cr_assert_str_eq(body_of(msg), "=2E\r\n=46rom here\r\n");
    free(msg);
}

/* ---- mime_header_safe ----------------------------------------------------- */

Test(mime_header_safe, accepts_printable_text_and_tab)
{
    cr_assert(mime_header_safe("Hallo\twereld é"));
}

Test(mime_header_safe, rejects_cr_and_lf)
{
    cr_assert_not(mime_header_safe("a\rb"));
    cr_assert_not(mime_header_safe("a\nb"));
}

Test(mime_header_safe, rejects_other_c0_controls_and_del)
{
    cr_assert_not(mime_header_safe("a\x01"));
    cr_assert_not(mime_header_safe("a\x1f"));
    cr_assert_not(mime_header_safe("a\x7f"));
}

Test(mime_header_safe, rejects_null)
{
    cr_assert_not(mime_header_safe(NULL));
}

/* ---- mime_addr_valid ------------------------------------------------------ */

Test(mime_addr, accepts_ordinary_addresses)
{
    cr_assert(mime_addr_valid("jan@example.nl"));
    cr_assert(mime_addr_valid("jan.de.vries+bericht@mail.gemeente-utrecht.nl"));
    cr_assert(mime_addr_valid("o'brien@example.com"));
}

Test(mime_addr, accepts_single_label_domain)
{
    cr_assert(mime_addr_valid("test@localhost"));
}

Test(mime_addr, rejects_missing_or_repeated_at_sign)
{
    cr_assert_not(mime_addr_valid("jan.example.nl"));
    cr_assert_not(mime_addr_valid("jan@vries@example.nl"));
}

Test(mime_addr, rejects_empty_local_part_or_domain)
{
    cr_assert_not(mime_addr_valid("@example.nl"));
    cr_assert_not(mime_addr_valid("jan@"));
}

Test(mime_addr, rejects_space_and_specials)
{
    static const char *const bad[] = {
        "jan de@example.nl", "<jan@example.nl>", "jan(x)@example.nl", "jan,p@example.nl",
        "jan;p@example.nl", "jan:p@example.nl", "\"jan\"@example.nl", "jan\\p@example.nl",
        "jan[1]@example.nl", "jan@exa mple.nl", "jan@example.nl\t",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(mime_addr_valid(bad[i]), "accepted %s", bad[i]);
}

Test(mime_addr, rejects_non_ascii)
{
    cr_assert_not(mime_addr_valid("josé@example.nl"));
    cr_assert_not(mime_addr_valid("jan@exämple.nl"));
}

Test(mime_addr, rejects_bad_dots)
{
    cr_assert_not(mime_addr_valid(".jan@example.nl"));
    cr_assert_not(mime_addr_valid("jan.@example.nl"));
    cr_assert_not(mime_addr_valid("j..an@example.nl"));
    cr_assert_not(mime_addr_valid("jan@example..nl"));
    cr_assert_not(mime_addr_valid("jan@.example.nl"));
    cr_assert_not(mime_addr_valid("jan@example.nl."));
}

Test(mime_addr, rejects_bad_domain_characters)
{
    cr_assert_not(mime_addr_valid("jan@exa_mple.nl"));
    cr_assert_not(mime_addr_valid("jan@-example.nl"));
    cr_assert_not(mime_addr_valid("jan@example-.nl"));
    cr_assert_not(mime_addr_valid("jan@[127.0.0.1]"));
}

/* "aaaaaaaaaa@" + labels of up to 50 'b's joined by dots, `total` chars long. */
static void make_addr(char *out, size_t total)
{
    size_t n = 0, label = 0;
    memcpy(out, "aaaaaaaaaa@", 11);
    n = 11;
    while (n < total) {
        const bool dot_ok = (label == 50);
        if (dot_ok && n + 1 < total) {
            out[n++] = '.';
            label = 0;
        } else {
            out[n++] = 'b';
            label++;
        }
    }
    out[n] = '\0';
}

Test(mime_addr, accepts_address_of_exactly_254)
{
    char addr[300];
    make_addr(addr, MIME_ADDR_MAX);
    cr_assert_eq(strlen(addr), MIME_ADDR_MAX);
    cr_assert(mime_addr_valid(addr), "%s", addr);
}

Test(mime_addr, rejects_address_longer_than_254)
{
    char addr[300];
    make_addr(addr, MIME_ADDR_MAX + 1);
    cr_assert_not(mime_addr_valid(addr), "%s", addr);
}

Test(mime_addr, rejects_local_part_longer_than_64)
{
    char addr[100];
    memset(addr, 'a', 65);
    strcpy(addr + 65, "@example.nl");
    cr_assert_not(mime_addr_valid(addr));
    strcpy(addr + 64, "@example.nl");
    cr_assert(mime_addr_valid(addr));
}

Test(mime_addr, rejects_null)
{
    cr_assert_not(mime_addr_valid(NULL));
}
