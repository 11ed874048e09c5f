/*
 * test_token_bucket.c - specification of the token bucket in
 * daemon/core/ratelimit (shared by the agency limit and the delivery
 * throttle) and of daemon/notify/throttle on top of it. Time is passed in.
 *
 * needs: daemon/core/ratelimit.c, daemon/notify/throttle.c, common/clock.c
 */
#include <criterion/criterion.h>

#include "daemon/core/ratelimit.h"
#include "daemon/notify/throttle.h"

#define T0 5000000

Test(token_bucket, refills_at_rate_and_is_capped_at_burst)
{
    struct token_bucket b;
    token_bucket_init(&b, 10, T0);
    cr_assert(token_bucket_take(&b, 10, 10));
    cr_assert_float_eq(b.tokens, 0.0, 1e-9);
    token_bucket_refill(&b, 20, 10, T0 + 250); /* 20/s for 250 ms */
    cr_assert_float_eq(b.tokens, 5.0, 1e-9);
    token_bucket_refill(&b, 20, 10, T0 + 3600000);
    cr_assert_float_eq(b.tokens, 10.0, 1e-9);
}

Test(token_bucket, time_going_back_adds_nothing)
{
    struct token_bucket b;
    token_bucket_init(&b, 0, T0);
    token_bucket_refill(&b, 100, 100, T0 - 1000);
    cr_assert_float_eq(b.tokens, 0.0, 1e-9);
    cr_assert_eq(b.last_ms, T0);
}

Test(token_bucket, a_take_needs_need_and_may_leave_debt)
{
    struct token_bucket b;
    token_bucket_init(&b, 5, T0);
    cr_assert_not(token_bucket_take(&b, 6, 6));
    cr_assert_float_eq(b.tokens, 5.0, 1e-9); /* nothing taken */
    cr_assert(token_bucket_take(&b, 5, 20));
    cr_assert_float_eq(b.tokens, -15.0, 1e-9);
    /* debt is paid back by the refill: 16 tokens at 4/s = 4 s */
    cr_assert_eq(token_bucket_wait_ms(&b, 1, 4), 4001);
    token_bucket_refill(&b, 4, 5, T0 + 3900);
    cr_assert_not(token_bucket_take(&b, 1, 1));
    token_bucket_refill(&b, 4, 5, T0 + 4001);
    cr_assert(token_bucket_take(&b, 1, 1));
}

Test(token_bucket, take_upto_takes_whole_tokens_only)
{
    struct token_bucket b;
    token_bucket_init(&b, 3.7, T0);
    cr_assert_eq(token_bucket_take_upto(&b, 10), 3);
    cr_assert_float_eq(b.tokens, 0.7, 1e-9);
    cr_assert_eq(token_bucket_take_upto(&b, 10), 0);
    token_bucket_init(&b, 50, T0);
    cr_assert_eq(token_bucket_take_upto(&b, 8), 8);
}

Test(token_bucket, a_refund_gives_back_what_was_not_used)
{
    struct token_bucket b;
    token_bucket_init(&b, 10, T0);
    cr_assert_eq(token_bucket_take_upto(&b, 10), 10);
    token_bucket_refund(&b, 7);
    cr_assert_float_eq(b.tokens, 7.0, 1e-9);
}

Test(throttle, global_starts_empty_and_fills_within_a_second)
{
    struct throttle t;
    int64_t wait = 0;
    throttle_init(&t, 100, 0, T0);
    cr_assert_eq(throttle_take(&t, 50, T0, &wait), 0);
    cr_assert_eq(wait, 11); /* 1000 / 100 + 1 */
    cr_assert_eq(throttle_take(&t, 50, T0 + 200, &wait), 20);
    cr_assert_eq(throttle_take(&t, 500, T0 + 5000, &wait), 100); /* one second's worth */
    throttle_refund(&t, 30);
    cr_assert_eq(throttle_take(&t, 500, T0 + 5000, &wait), 30);
    throttle_destroy(&t);
}

Test(throttle, no_limit_gives_what_is_asked)
{
    struct throttle t;
    int64_t wait = -1;
    throttle_init(&t, 0, 0, T0);
    cr_assert_eq(throttle_take(&t, 123, T0, &wait), 123);
    cr_assert(throttle_domain_try(&t, "a@example.nl", T0, &wait));
    cr_assert_eq(wait, -1);
    throttle_destroy(&t);
}

Test(throttle, each_domain_has_its_own_bucket_case_insensitive)
{
    struct throttle t;
    int64_t wait = 0;
    throttle_init(&t, 0, 2, T0);
    cr_assert(throttle_domain_try(&t, "a@Example.NL", T0, &wait));
    cr_assert(throttle_domain_try(&t, "b@example.nl", T0, &wait));
    cr_assert_not(throttle_domain_try(&t, "c@EXAMPLE.nl", T0, &wait));
    cr_assert_eq(wait, 501); /* one token at 2/s */
    cr_assert(throttle_domain_try(&t, "c@other.example", T0, &wait));
    cr_assert(throttle_domain_try(&t, "c@example.nl", T0 + 500, &wait));
    cr_assert_eq(throttle_domain_hash("x@Example.nl"), throttle_domain_hash("example.NL"));
    throttle_destroy(&t);
}

Test(throttle, set_changes_the_rates_in_place)
{
    struct throttle t;
    int64_t wait = 0;
    throttle_init(&t, 0, 0, T0);
    cr_assert_eq(throttle_take(&t, 50, T0, &wait), 50);
    throttle_set(&t, 10, 1); /* SIGHUP */
    cr_assert_eq(throttle_take(&t, 50, T0 + 1000, &wait), 10);
    cr_assert(throttle_domain_try(&t, "a@example.nl", T0, &wait));
    cr_assert_not(throttle_domain_try(&t, "b@example.nl", T0, &wait));
    throttle_set(&t, 0, 0);
    cr_assert_eq(throttle_take(&t, 50, T0 + 1000, &wait), 50);
    throttle_destroy(&t);
}
