/*
 * test_sentinel_parse.c - the pure parts of the Redis Sentinel support:
 * the [redis] sentinels list (common/config_parse.c), what a ROLE reply
 * and a -READONLY error mean (daemon/core/queue.c), and the config keys.
 *
 * needs: common/config_parse.c common/config.c daemon/core/queue.c
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "core/queue.h"

struct seen {
	char hosts[4][64];
	int ports[4];
	int n;
};

static bool collect(const char *host, int port, void *arg)
{
	struct seen *s = arg;
	snprintf(s->hosts[s->n], sizeof(s->hosts[0]), "%s", host);
	s->ports[s->n++] = port;
	return s->n < 4;
}

Test(sentinels, list_gives_each_host_and_port_in_order_spaces_allowed)
{
	struct seen s = {0};
	cr_assert(config_hostports_each("10.0.0.1:26379, sentinel-b:26380 ,[::1]:5", collect, &s));
	cr_assert_eq(s.n, 3);
	cr_expect_str_eq(s.hosts[0], "10.0.0.1");
	cr_expect_eq(s.ports[0], 26379);
	cr_expect_str_eq(s.hosts[1], "sentinel-b");
	cr_expect_eq(s.ports[1], 26380);
	cr_expect_str_eq(s.hosts[2], "::1");
	cr_expect_eq(s.ports[2], 5);
}

Test(sentinels, bad_lists_are_refused)
{
	const char *bad[] = {"", "host", "a:1,", ",a:1", "a:1,,b:2", "a:0", "a:1 b:2", "a:x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect(!config_hostports_each(bad[i], NULL, NULL), "accepted \"%s\"", bad[i]);
}

Test(sentinels, the_callback_stops_the_walk)
{
	struct seen s = {.n = 3};
	cr_expect(!config_hostports_each("a:1,b:2", collect, &s)); /* full after one */
	cr_expect_eq(s.n, 4);
}

Test(sentinels, config_keys_and_their_defaults)
{
	struct config cfg;
	char err[512];
	cr_assert(config_load_string("t.conf",
				     "[security]\nbsn_key = "
				     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
				     "[redis]\nsentinels = 127.0.0.1:26379,127.0.0.1:26380\n",
				     &cfg, err, sizeof(err)),
		  "%s", err);
	cr_expect_str_eq(cfg.redis_sentinels, "127.0.0.1:26379,127.0.0.1:26380");
	cr_expect_str_eq(cfg.redis_master_name, "berichtd");
	config_free(&cfg);
	cr_expect(!config_load_string("t.conf", "[redis]\nsentinels = 127.0.0.1\n", &cfg, err,
				      sizeof(err)));
	cr_expect(strstr(err, "sentinels") != NULL, "%s", err);
	config_free(&cfg);
}

Test(sentinels, role_master_and_readonly_replies)
{
	redisReply master_s = {.type = REDIS_REPLY_STRING, .str = "master", .len = 6};
	redisReply slave_s = {.type = REDIS_REPLY_STRING, .str = "slave", .len = 5};
	redisReply *m_el[] = {&master_s}, *s_el[] = {&slave_s};
	redisReply master = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = m_el};
	redisReply slave = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = s_el};
	redisReply empty = {.type = REDIS_REPLY_ARRAY, .elements = 0};
	cr_expect(queue_role_is_master(&master));
	cr_expect(!queue_role_is_master(&slave));
	cr_expect(!queue_role_is_master(&empty));
	cr_expect(!queue_role_is_master(NULL));

	redisReply ro = {.type = REDIS_REPLY_ERROR,
			 .str = "READONLY You can't write against a read only replica."};
	redisReply other = {.type = REDIS_REPLY_ERROR, .str = "ERR wrong number of arguments"};
	cr_expect(queue_reply_readonly(&ro));
	cr_expect(!queue_reply_readonly(&other));
	cr_expect(!queue_reply_readonly(&master_s));
	cr_expect(!queue_reply_readonly(NULL));
}
