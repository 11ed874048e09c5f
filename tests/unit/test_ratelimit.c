/*
 * test_ratelimit.c - specification of daemon/ratelimit: per-agency token
 * buckets counted in messages. Time is passed in, so no test sleeps.
 *
 * needs: daemon/ratelimit.c
 */
#include <criterion/criterion.h>

#include "daemon/core/ratelimit.h"

#define T0 1000000

Test(ratelimit, off_when_rate_is_zero)
{
    struct ratelimit *rl = ratelimit_new(0, 1);
    int64_t retry = -1;
    for (int i = 0; i < 1000; i++)
        cr_assert(ratelimit_take(rl, 1, 100, T0, &retry));
    cr_assert_eq(retry, -1);
    ratelimit_free(rl);
}

Test(ratelimit, a_full_bucket_allows_burst_then_refuses_with_retry_after)
{
    struct ratelimit *rl = ratelimit_new(10, 30);
    int64_t retry = 0;
    cr_assert(ratelimit_take(rl, 7, 30, T0, &retry));
    cr_assert_not(ratelimit_take(rl, 7, 1, T0, &retry));
    cr_assert_eq(retry, 1);
    /* 100 ms later one token is back */
    cr_assert(ratelimit_take(rl, 7, 1, T0 + 100, &retry));
    ratelimit_free(rl);
}

Test(ratelimit, counts_messages_and_a_big_batch_leaves_debt)
{
    struct ratelimit *rl = ratelimit_new(100, 50);
    int64_t retry = 0;
    /* 1,000 messages > burst: allowed with a full bucket, leaves 950 of debt */
    cr_assert(ratelimit_take(rl, 1, 1000, T0, &retry));
    cr_assert_not(ratelimit_take(rl, 1, 1, T0, &retry));
    /* needs 951 tokens at 100/s: 10 whole seconds */
    cr_assert_eq(retry, 10);
    cr_assert_not(ratelimit_take(rl, 1, 1, T0 + 9000, &retry));
    cr_assert(ratelimit_take(rl, 1, 1, T0 + 9600, &retry));
    ratelimit_free(rl);
}

Test(ratelimit, agencies_have_their_own_buckets_and_the_table_grows)
{
    struct ratelimit *rl = ratelimit_new(1, 2);
    int64_t retry = 0;
    for (int64_t a = 1; a <= 500; a++)
        cr_assert(ratelimit_take(rl, a, 2, T0, &retry), "agency %lld", (long long)a);
    for (int64_t a = 1; a <= 500; a++)
        cr_assert_not(ratelimit_take(rl, a, 1, T0, &retry), "agency %lld", (long long)a);
    ratelimit_free(rl);
}

Test(ratelimit, refill_is_capped_at_burst)
{
    struct ratelimit *rl = ratelimit_new(1000, 5);
    int64_t retry = 0;
    cr_assert(ratelimit_take(rl, 3, 5, T0, &retry));
    /* an hour idle still gives only 5 */
    cr_assert(ratelimit_take(rl, 3, 5, T0 + 3600 * 1000, &retry));
    cr_assert_not(ratelimit_take(rl, 3, 1, T0 + 3600 * 1000, &retry));
    ratelimit_free(rl);
}

Test(ratelimit, set_changes_rate_and_burst_of_every_bucket)
{
    struct ratelimit *rl = ratelimit_new(1000, 1000);
    int64_t retry = 0;
    cr_assert(ratelimit_take(rl, 7, 10, T0, &retry));
    ratelimit_set(rl, 1, 1); /* SIGHUP: the bucket keeps its 990, capped at 1 on refill */
    cr_assert(ratelimit_take(rl, 7, 1, T0 + 1, &retry));
    cr_assert_not(ratelimit_take(rl, 7, 1, T0 + 2, &retry));
    cr_assert_eq(retry, 1);
    ratelimit_set(rl, 0, 1); /* and off again */
    cr_assert(ratelimit_take(rl, 7, 1000, T0 + 3, &retry));
    ratelimit_free(rl);
}
