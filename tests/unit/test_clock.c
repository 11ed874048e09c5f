/*
 * test_clock.c - specification of common/clock: the monotonic clock and
 * the one jittered backoff. The random value is passed in, so the bounds
 * are tested at both ends.
 *
 * needs: common/clock.c
 */
#include <criterion/criterion.h>

#include "common/clock.h"

#define RND_MIN 0
#define RND_MAX UINT64_MAX

Test(clock, monotonic_ms_never_goes_back)
{
    int64_t a = clock_mono_ms();
    int64_t b = clock_mono_ms();
    cr_assert_geq(b, a);
    cr_assert_gt(a, 0);
}

Test(backoff, first_attempt_lies_between_half_and_the_base)
{
    for (uint64_t r = 0; r < 2000; r++) {
        int64_t d = backoff_jitter_ms(1000, 60000, 1, r);
        cr_assert(d >= 500 && d <= 1000, "rnd %llu gave %lld", (unsigned long long)r,
                  (long long)d);
    }
    cr_assert_eq(backoff_jitter_ms(1000, 60000, 1, RND_MIN), 500);
    cr_assert_eq(backoff_jitter_ms(1000, 60000, 1, 500), 1000);
}

Test(backoff, doubles_with_every_attempt)
{
    /* rnd 0 gives the lower bound d/2 exactly */
    cr_assert_eq(backoff_jitter_ms(100, 1000000, 1, RND_MIN), 50);
    cr_assert_eq(backoff_jitter_ms(100, 1000000, 2, RND_MIN), 100);
    cr_assert_eq(backoff_jitter_ms(100, 1000000, 3, RND_MIN), 200);
    cr_assert_eq(backoff_jitter_ms(100, 1000000, 5, RND_MIN), 800);
}

Test(backoff, is_capped_at_max_however_many_attempts)
{
    for (int a = 1; a < 200; a++) {
        int64_t d = backoff_jitter_ms(50, 1000, a, RND_MAX);
        cr_assert_leq(d, 1000, "attempt %d gave %lld", a, (long long)d);
        cr_assert_geq(d, 25);
    }
    /* a huge attempt number does not overflow */
    int64_t d = backoff_jitter_ms(1000, 3600000, 1000000, RND_MIN);
    cr_assert_eq(d, 1800000);
}

Test(backoff, a_max_below_the_base_caps_the_first_delay_too)
{
    cr_assert_eq(backoff_jitter_ms(1000, 400, 1, RND_MIN), 200);
}

Test(backoff, no_base_or_no_max_means_no_delay)
{
    cr_assert_eq(backoff_jitter_ms(0, 1000, 3, 12345), 0);
    cr_assert_eq(backoff_jitter_ms(-5, 1000, 3, 12345), 0);
    cr_assert_eq(backoff_jitter_ms(100, 0, 3, 12345), 0);
}
