/*
 * fuzz_config.c - common/config.c, config_value.c and config_parse.c: any
 * text as a config file (config_load_string), and the value parsers on the
 * same input. A failed load must say why; a loaded config must have the keys
 * start needs.
 */
#include <stdbool.h>
#include <string.h>

#include "common/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	bool ok = config_load_string("/nonexistent/fuzz.conf", text, &cfg, err, sizeof(err));
	if (!ok && cfg.path && !err[0])
		abort();
	if (ok && (!cfg.http_listen || !cfg.pg_conninfo || cfg.bsn_key_len < 32))
		abort();
	config_free(&cfg);

	int64_t v;
	bool on;
	int a, b, port;
	char host[256];
	if (config_parse_duration(text, &v) && v < 0)
		abort();
	if (config_parse_size(text, &v) && v < 0)
		abort();
	if (config_parse_quiet_hours(text, &on, &a, &b) && on &&
	    (a < 0 || a >= 24 * 60 || b < 0 || b >= 24 * 60))
		abort();
	if (config_parse_redis_url(text, host, sizeof(host), &port) &&
	    (port <= 0 || port > 65535 || strlen(host) >= sizeof(host)))
		abort();
	if (config_split_hostport(text, host, sizeof(host), &port) &&
	    (port < 0 || port > 65535 || strlen(host) >= sizeof(host)))
		abort();
	free(text);
	return 0;
}
