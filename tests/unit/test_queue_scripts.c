/*
 * test_queue_scripts.c - specification of the Redis Lua scripts in
 * daemon/core/queue.c (take, ack, retry, requeue of expired, schedule,
 * depth), run through the workers' own blocking functions against a real
 * Redis.
 *
 * Needs a Redis: BERICHTD_REDIS_PORT names its port on 127.0.0.1. Without
 * it (plain `make unit`) every test is skipped; the integration run
 * (tests/integration/test_queue_scripts.py) runs them against the test
 * Redis and sets BERICHTD_QUEUE_TESTS_REQUIRED, so a Redis that does not
 * answer fails instead of skipping. Each test works under a prefix of its
 * own and deletes its keys.
 *
 * needs: daemon/core/queue.c, hiredis
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/core/queue.h"

static redisContext *rc;
static char prefix[96];

static void setup(void)
{
	const char *port = getenv("BERICHTD_REDIS_PORT");
	if (!port || !*port) {
		if (getenv("BERICHTD_QUEUE_TESTS_REQUIRED"))
			cr_assert_fail("BERICHTD_REDIS_PORT is not set");
		cr_skip_test("no test Redis (BERICHTD_REDIS_PORT unset)");
	}
	rc = queue_sync_connect("127.0.0.1", atoi(port), NULL, 0);
	cr_assert_not_null(rc, "no Redis on port %s", port);
	snprintf(prefix, sizeof(prefix), "qtest:%ld:%d:", (long)getpid(), rand());
}

static void teardown(void)
{
	if (!rc)
		return;
	redisReply *r = redisCommand(rc, "EVAL %s 0 %s",
				     "for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do "
				     "redis.call('DEL', k) end return 1",
				     prefix);
	if (r)
		freeReplyObject(r);
	redisFree(rc);
	rc = NULL;
}

TestSuite(queue_scripts, .init = setup, .fini = teardown);

/* An integer reply of a command on a key under the test's prefix. */
static long long ask(const char *cmd, const char *key, const char *arg)
{
	char k[160];
	snprintf(k, sizeof(k), "%s%s", prefix, key);
	redisReply *r = arg ? redisCommand(rc, "%s %s %s", cmd, k, arg) : redisCommand(rc, "%s %s", cmd, k);
	cr_assert_not_null(r);
	long long v = -1;
	if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	freeReplyObject(r);
	return v;
}

static void schedule(int64_t lane, int64_t first_id, int n, int64_t due_ms)
{
	struct queue_item it[64];
	int64_t due[64];
	cr_assert_leq(n, 64);
	for (int i = 0; i < n; i++) {
		it[i] = (struct queue_item){first_id + i, lane};
		due[i] = due_ms;
	}
	cr_assert(queue_sync_schedule(rc, prefix, it, due, (size_t)n));
}

Test(queue_scripts, take_moves_due_ids_to_inflight_with_their_deadline)
{
	struct queue_item it[10];
	schedule(5, 1, 2, 1000);
	schedule(5, 3, 1, 9000);
	int n = queue_sync_take(rc, prefix, 2500, 100, it, 10);
	cr_assert_eq(n, 2);
	cr_assert_eq(it[0].lane, 5);
	cr_assert_eq(it[0].id + it[1].id, 3); /* ids 1 and 2 */
	cr_assert_eq(ask("ZCARD", "due:5", NULL), 1);
	cr_assert_eq(ask("ZSCORE", "inflight", "5:1"), 2600);
	cr_assert_eq(ask("ZSCORE", "inflight", "5:2"), 2600);
	cr_assert_eq(queue_sync_depth(rc, prefix), 3);
}

Test(queue_scripts, take_stops_at_max)
{
	struct queue_item it[3];
	schedule(1, 100, 10, 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 3), 3);
	cr_assert_eq(ask("ZCARD", "due:1", NULL), 7);
	cr_assert_eq(ask("ZCARD", "inflight", NULL), 3);
}

Test(queue_scripts, take_hands_out_one_lane_at_a_time_and_rotates_the_start)
{
	struct queue_item it[4];
	schedule(1, 100, 10, 0);
	schedule(2, 200, 10, 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 4);
	/* a backlog in one lane cannot crowd out the other: they alternate */
	for (int i = 1; i < 4; i++)
		cr_assert_neq(it[i].lane, it[i - 1].lane, "item %d", i);
	int64_t first = it[0].lane;
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 4);
	cr_assert_neq(it[0].lane, first, "the next take starts at the other lane");
}

Test(queue_scripts, an_empty_lane_leaves_the_set_of_lanes)
{
	struct queue_item it[4];
	schedule(7, 1, 1, 0);
	cr_assert_eq(ask("SISMEMBER", "lanes", "7"), 1);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 1);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 0);
	cr_assert_eq(ask("SISMEMBER", "lanes", "7"), 0);
}

Test(queue_scripts, a_lane_with_only_later_ids_stays)
{
	struct queue_item it[4];
	schedule(8, 1, 1, 5000);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 0);
	cr_assert_eq(ask("SISMEMBER", "lanes", "8"), 1);
}

Test(queue_scripts, ack_drops_from_inflight)
{
	struct queue_item it[4];
	schedule(3, 1, 3, 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 3);
	cr_assert(queue_sync_ack(rc, prefix, it, 2));
	cr_assert_eq(ask("ZCARD", "inflight", NULL), 1);
	cr_assert(queue_sync_ack(rc, prefix, &it[2], 1));
	cr_assert_eq(queue_sync_depth(rc, prefix), 0);
}

Test(queue_scripts, retry_moves_back_to_its_own_lane_at_the_new_due_time)
{
	struct queue_item it[4];
	schedule(4, 42, 1, 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 1);
	cr_assert(queue_sync_retry(rc, prefix, &it[0], 5000));
	cr_assert_eq(ask("ZCARD", "inflight", NULL), 0);
	cr_assert_eq(ask("ZSCORE", "due:4", "42"), 5000);
	cr_assert_eq(ask("SISMEMBER", "lanes", "4"), 1);
	cr_assert_eq(queue_sync_take(rc, prefix, 4999, 100, it, 4), 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 5000, 100, it, 4), 1);
}

Test(queue_scripts, retry_readds_a_lane_that_had_left_the_set)
{
	struct queue_item it[4];
	schedule(9, 1, 1, 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, it, 4), 1);
	cr_assert_eq(queue_sync_take(rc, prefix, 10, 100, &it[1], 3), 0); /* lane 9 gone */
	cr_assert(queue_sync_retry(rc, prefix, &it[0], 20));
	cr_assert_eq(ask("SISMEMBER", "lanes", "9"), 1);
}

Test(queue_scripts, requeue_returns_only_expired_ids_to_their_lanes)
{
	struct queue_item it[4];
	schedule(6, 1, 1, 0);
	schedule(2, 2, 1, 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 1000, 100, it, 4), 2); /* deadline 1100 */
	cr_assert_eq(queue_sync_requeue_expired(rc, prefix, 1099), 0);
	cr_assert_eq(ask("ZCARD", "inflight", NULL), 2);
	cr_assert_eq(queue_sync_requeue_expired(rc, prefix, 1200), 2);
	cr_assert_eq(ask("ZCARD", "inflight", NULL), 0);
	cr_assert_eq(ask("ZSCORE", "due:6", "1"), 1200);
	cr_assert_eq(ask("ZSCORE", "due:2", "2"), 1200);
	cr_assert_eq(ask("SISMEMBER", "lanes", "6"), 1);
}

Test(queue_scripts, requeue_keeps_a_due_time_the_id_already_has)
{
	struct queue_item it[4];
	schedule(6, 1, 1, 0);
	cr_assert_eq(queue_sync_take(rc, prefix, 1000, 100, it, 4), 1);
	schedule(6, 1, 1, 7777); /* scheduled again meanwhile (the reconciler) */
	cr_assert_eq(queue_sync_requeue_expired(rc, prefix, 2000), 1);
	cr_assert_eq(ask("ZSCORE", "due:6", "1"), 7777);
}

Test(queue_scripts, schedule_keeps_the_first_due_time_and_splits_by_lane)
{
	struct queue_item items[] = {{1, 3}, {2, 4}, {3, 3}};
	int64_t due[] = {100, 200, 300};
	cr_assert(queue_sync_schedule(rc, prefix, items, due, 3));
	int64_t later[] = {900, 900, 900};
	cr_assert(queue_sync_schedule(rc, prefix, items, later, 3));
	cr_assert_eq(ask("ZSCORE", "due:3", "1"), 100);
	cr_assert_eq(ask("ZSCORE", "due:3", "3"), 300);
	cr_assert_eq(ask("ZSCORE", "due:4", "2"), 200);
	cr_assert_eq(ask("SCARD", "lanes", NULL), 2);
	cr_assert_eq(queue_sync_depth(rc, prefix), 3);
}
