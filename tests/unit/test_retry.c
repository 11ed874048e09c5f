/*
 * test_retry.c - specification of daemon/notify/retry: a 4xx or a
 * connection error is retried after retry_base doubling to retry_max, with
 * 50-100 % jitter, until retry_span after the notification was created.
 *
 * needs: daemon/notify/retry.c, common/clock.c
 */
#include <criterion/criterion.h>

#include "daemon/notify/retry.h"

#define MIN 60000LL
#define HOUR (60 * MIN)

static const struct retry_policy policy = {5 * MIN, 4 * HOUR, 48 * HOUR};

Test(retry, first_retry_after_half_to_all_of_the_base)
{
    cr_assert_eq(retry_delay_ms(&policy, 1, 0), 150000);
    for (uint64_t r = 0; r < 5000; r += 7) {
        int64_t d = retry_delay_ms(&policy, 1, r * 2654435761u);
        cr_assert(d >= 150000 && d <= 300000, "gave %lld", (long long)d);
    }
}

Test(retry, delay_grows_with_attempts_and_stops_at_the_max)
{
    int64_t prev = 0;
    for (int a = 1; a <= 6; a++) {
        int64_t lo = retry_delay_ms(&policy, a, 0);
        cr_assert_gt(lo, prev, "attempt %d", a);
        prev = lo;
    }
    /* 5 min * 2^6 = 320 min > 4 h: capped from the 7th attempt on */
    for (int a = 7; a <= 50; a++) {
        cr_assert_eq(retry_delay_ms(&policy, a, 0), 2 * HOUR);
        cr_assert_leq(retry_delay_ms(&policy, a, UINT64_MAX), 4 * HOUR);
    }
}

Test(retry, given_up_only_past_the_span)
{
    int64_t created = 1700000000000LL;
    cr_assert_not(retry_expired(&policy, created, created + 48 * HOUR));
    cr_assert(retry_expired(&policy, created, created + 48 * HOUR + 1));
    cr_assert_not(retry_expired(&policy, created, created + MIN));
}
