/*
 * test_uuid7.c - specification of common/uuid7: UUIDv7 layout, text form,
 * and strict ordering of the ids one process generates.
 *
 * needs: common/uuid7.c   (link: libcrypto, -pthread)
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uuid7.h"

enum {
    LOOP_IDS = 10000,
    THREAD_IDS = 10000,
    THREADS = 2,
    COUNTER_SPACE = 4096, /* 12-bit rand_a */
};

/* RFC 9562 Appendix A.6 example: 017F22E2-79B0-7CC3-98C4-DC0C0C07398F. */
static const int64_t RFC_TS_MS = 0x017F22E279B0;
static const uint8_t RFC_RND[UUID7_RANDOM_LEN] = {0x0C, 0xC3, 0x18, 0xC4, 0xDC,
                                                  0x0C, 0x0C, 0x07, 0x39, 0x8F};
static const char RFC_TEXT[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";

static const uint8_t ZERO_RND[UUID7_RANDOM_LEN] = {0};
static const uint8_t ONES_RND[UUID7_RANDOM_LEN] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                                   0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

static int cmp_uuid(const uuid_t7 *a, const uuid_t7 *b)
{
    return memcmp(a->b, b->b, sizeof a->b);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- layout ---------------------------------------------------------- */

Test(uuid7, builder_reproduces_rfc_9562_example)
{
    uuid_t7 u;
    char s[UUID_STR_LEN];
    uuid7_from_unix_ms(&u, RFC_TS_MS, RFC_RND);
    uuid_format(&u, s);
    cr_assert_str_eq(s, RFC_TEXT);
}

Test(uuid7, generated_id_has_version_7)
{
    uuid_t7 u;
    cr_assert(uuid7_generate(&u));
    cr_assert_eq(u.b[6] >> 4, 7);
}

Test(uuid7, generated_id_has_rfc_variant_10)
{
    uuid_t7 u;
    cr_assert(uuid7_generate(&u));
    cr_assert_eq(u.b[8] & 0xC0, 0x80);
}

Test(uuid7, builder_sets_version_and_variant_whatever_the_random_bytes)
{
    uuid_t7 lo, hi;
    uuid7_from_unix_ms(&lo, 0, ZERO_RND);
    uuid7_from_unix_ms(&hi, 0, ONES_RND);
    cr_assert_eq(lo.b[6], 0x70);
    cr_assert_eq(lo.b[8], 0x80);
    cr_assert_eq(hi.b[6], 0x7F);
    cr_assert_eq(hi.b[8], 0xBF);
    cr_assert(uuid_is_v7(&lo));
    cr_assert(uuid_is_v7(&hi));
}

Test(uuid7, stores_timestamp_big_endian_in_first_six_bytes)
{
    uuid_t7 u;
    const uint8_t want[6] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
    uuid7_from_unix_ms(&u, 0x010203040506LL, ZERO_RND);
    cr_assert_arr_eq(u.b, want, sizeof want);
}

Test(uuid7, extracts_the_timestamp_it_was_built_with)
{
    uuid_t7 u;
    uuid7_from_unix_ms(&u, 1795983373123LL, RFC_RND);
    cr_assert_eq(uuid7_unix_ms(&u), 1795983373123LL);
}

Test(uuid7, builder_clamps_negative_timestamp_to_zero)
{
    uuid_t7 u;
    uuid7_from_unix_ms(&u, -5, RFC_RND);
    cr_assert_eq(uuid7_unix_ms(&u), 0);
}

Test(uuid7, generated_timestamp_is_current_time)
{
    const int64_t before = now_ms();
    uuid_t7 u;
    cr_assert(uuid7_generate(&u));
    const int64_t after = now_ms();
    /* generate may run ahead of the clock by a few ms after bursts */
    cr_assert_geq(uuid7_unix_ms(&u), before);
    cr_assert_leq(uuid7_unix_ms(&u), after + 1000);
}

Test(uuid7, is_v7_rejects_version_4)
{
    uuid_t7 u;
    uuid7_from_unix_ms(&u, RFC_TS_MS, RFC_RND);
    u.b[6] = (uint8_t)((u.b[6] & 0x0F) | 0x40);
    cr_assert_not(uuid_is_v7(&u));
}

Test(uuid7, is_v7_rejects_non_rfc_variant)
{
    uuid_t7 u;
    uuid7_from_unix_ms(&u, RFC_TS_MS, RFC_RND);
    u.b[8] = (uint8_t)((u.b[8] & 0x3F) | 0xC0); /* Microsoft variant 110x */
    cr_assert_not(uuid_is_v7(&u));
}

/* ---- text form ------------------------------------------------------- */

Test(uuid7, formats_lowercase_8_4_4_4_12)
{
    uuid_t7 u;
    char s[UUID_STR_LEN];
    uuid7_from_unix_ms(&u, 0xFFFFFFFFFFFFLL, ONES_RND);
    uuid_format(&u, s);
    cr_assert_str_eq(s, "ffffffff-ffff-7fff-bfff-ffffffffffff");
    cr_assert_eq(strlen(s), UUID_STR_LEN - 1);
}

Test(uuid7, string_round_trip_preserves_all_bytes)
{
    for (int i = 0; i < 100; i++) {
        uuid_t7 u, back;
        char s[UUID_STR_LEN];
        cr_assert(uuid7_generate(&u));
        uuid_format(&u, s);
        cr_assert(uuid_parse(s, &back), "parse of %s", s);
        cr_assert_eq(cmp_uuid(&u, &back), 0);
    }
}

Test(uuid7, parse_accepts_uppercase_hex)
{
    uuid_t7 u;
    char s[UUID_STR_LEN];
    cr_assert(uuid_parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", &u));
    uuid_format(&u, s);
    cr_assert_str_eq(s, RFC_TEXT);
}

Test(uuid7, parse_accepts_other_versions)
{
    uuid_t7 u;
    cr_assert(uuid_parse("f47ac10b-58cc-4372-a567-0e02b2c3d479", &u));
    cr_assert_not(uuid_is_v7(&u));
}

Test(uuid7, parse_rejects_malformed_text)
{
    static const char *const bad[] = {
        "",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398",   /* 35 chars */
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0", /* 37 chars */
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398f ", /* trailing space */
        " 017f22e2-79b0-7cc3-98c4-dc0c0c07398f", /* leading space */
        "017f22e279b07cc398c4dc0c0c07398f",      /* no hyphens */
        "017f22e2-79b07-cc3-98c4-dc0c0c07398f",  /* hyphen misplaced */
        "017f22e2_79b0_7cc3_98c4_dc0c0c07398f",  /* wrong separator */
        "017f22g2-79b0-7cc3-98c4-dc0c0c07398f",  /* non-hex */
        "{017f22e2-79b0-7cc3-98c4-dc0c0c0739}",  /* braces */
        "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c", /* urn prefix */
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uuid_t7 u;
        cr_assert_not(uuid_parse(bad[i], &u), "accepted \"%s\"", bad[i]);
    }
}

Test(uuid7, parse_rejects_null)
{
    uuid_t7 u;
    cr_assert_not(uuid_parse(NULL, &u));
}

Test(uuid7, parse_leaves_output_untouched_on_failure)
{
    uuid_t7 u, before;
    memset(&u, 0xAB, sizeof u);
    before = u;
    cr_assert_not(uuid_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398x", &u));
    cr_assert_eq(cmp_uuid(&u, &before), 0);
}

/* ---- ordering -------------------------------------------------------- */

Test(uuid7, ids_from_a_tight_loop_are_strictly_increasing)
{
    uuid_t7 *ids = malloc(LOOP_IDS * sizeof *ids);
    cr_assert_not_null(ids);
    for (int i = 0; i < LOOP_IDS; i++)
        cr_assert(uuid7_generate(&ids[i]));
    for (int i = 1; i < LOOP_IDS; i++)
        cr_assert_lt(cmp_uuid(&ids[i - 1], &ids[i]), 0, "id %d not after id %d", i, i - 1);
    free(ids);
}

Test(uuid7, text_of_increasing_ids_sorts_the_same_way)
{
    uuid_t7 a, b;
    char sa[UUID_STR_LEN], sb[UUID_STR_LEN];
    cr_assert(uuid7_generate(&a));
    cr_assert(uuid7_generate(&b));
    uuid_format(&a, sa);
    uuid_format(&b, sb);
    cr_assert_lt(strcmp(sa, sb), 0);
}

static void *generate_many(void *arg)
{
    uuid_t7 *ids = arg;
    for (int i = 0; i < THREAD_IDS; i++)
        if (!uuid7_generate(&ids[i]))
            return (void *)1;
    return NULL;
}

static int qsort_uuid(const void *a, const void *b)
{
    return cmp_uuid(a, b);
}

Test(uuid7, ids_from_two_threads_are_increasing_per_thread_and_all_distinct)
{
    uuid_t7 *ids = malloc((size_t)THREADS * THREAD_IDS * sizeof *ids);
    cr_assert_not_null(ids);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, generate_many, ids + (size_t)t * THREAD_IDS), 0);
    for (int t = 0; t < THREADS; t++) {
        void *rc;
        cr_assert_eq(pthread_join(th[t], &rc), 0);
        cr_assert_null(rc);
    }
    for (int t = 0; t < THREADS; t++)
        for (int i = 1; i < THREAD_IDS; i++)
            cr_assert_lt(cmp_uuid(&ids[t * THREAD_IDS + i - 1], &ids[t * THREAD_IDS + i]), 0);

    qsort(ids, (size_t)THREADS * THREAD_IDS, sizeof *ids, qsort_uuid);
    for (int i = 1; i < THREADS * THREAD_IDS; i++)
        cr_assert_neq(cmp_uuid(&ids[i - 1], &ids[i]), 0, "duplicate id");
    free(ids);
}

/* ---- the generator core with a controlled clock ---------------------- */

Test(uuid7, next_counts_up_within_one_millisecond)
{
    struct uuid7_clock st = {0};
    uuid_t7 a, b;
    uuid7_next(&st, 1000, ZERO_RND, &a);
    uuid7_next(&st, 1000, ONES_RND, &b);
    cr_assert_eq(uuid7_unix_ms(&b), 1000);
    const int ca = (a.b[6] & 0x0F) << 8 | a.b[7];
    const int cb = (b.b[6] & 0x0F) << 8 | b.b[7];
    cr_assert_eq(cb, ca + 1);
}

Test(uuid7, next_seeds_counter_with_top_bit_clear)
{
    struct uuid7_clock st = {0};
    uuid_t7 u;
    uuid7_next(&st, 1000, ONES_RND, &u);
    cr_assert_eq(u.b[6] & 0x08, 0, "counter must leave room for >= 2048 ids per ms");
}

Test(uuid7, next_uses_the_new_millisecond_when_the_clock_advances)
{
    struct uuid7_clock st = {0};
    uuid_t7 a, b;
    uuid7_next(&st, 1000, ONES_RND, &a);
    uuid7_next(&st, 1001, ZERO_RND, &b);
    cr_assert_eq(uuid7_unix_ms(&b), 1001);
    cr_assert_lt(cmp_uuid(&a, &b), 0);
}

Test(uuid7, next_stays_increasing_when_the_clock_goes_backwards)
{
    struct uuid7_clock st = {0};
    uuid_t7 a, b;
    uuid7_next(&st, 5000, ONES_RND, &a);
    uuid7_next(&st, 4000, ZERO_RND, &b);
    cr_assert_eq(uuid7_unix_ms(&b), 5000);
    cr_assert_lt(cmp_uuid(&a, &b), 0);
}

Test(uuid7, next_advances_timestamp_by_one_ms_when_the_counter_overflows)
{
    struct uuid7_clock st = {0};
    uuid_t7 prev, cur;
    uuid7_next(&st, 1000, ZERO_RND, &prev); /* counter starts at 0 */
    for (int i = 1; i < COUNTER_SPACE; i++) {
        uuid7_next(&st, 1000, ONES_RND, &cur);
        cr_assert_eq(uuid7_unix_ms(&cur), 1000);
        cr_assert_lt(cmp_uuid(&prev, &cur), 0);
        prev = cur;
    }
    uuid7_next(&st, 1000, ONES_RND, &cur);
    cr_assert_eq(uuid7_unix_ms(&cur), 1001);
    cr_assert_lt(cmp_uuid(&prev, &cur), 0);
}

Test(uuid7, next_sets_version_and_variant)
{
    struct uuid7_clock st = {0};
    uuid_t7 u;
    uuid7_next(&st, RFC_TS_MS, ONES_RND, &u);
    cr_assert(uuid_is_v7(&u));
}
