/*
 * outage.c - see outage.h.
 */
#include "common/outage.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

void outage_init(struct outage *o, const char *service, const char *name)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	o->service = service;
	o->name = name;
}

void outage_destroy(struct outage *o)
{
	pthread_mutex_destroy(&o->lock);
}

void outage_fail(struct outage *o, const char *reason, long long deferred, int64_t now_ms)
{
	char msg[128];

	pthread_mutex_lock(&o->lock);
	snprintf(o->reason, sizeof(o->reason), "%s", reason ? reason : "");
	if (!o->down) {
		o->down = true;
		o->since_ms = o->noted_ms = now_ms;
		o->failures = 1;
		o->deferred = deferred;
		snprintf(msg, sizeof(msg), "%s unreachable", o->name);
		log_kv(LOG_WARN, msg, LOG_STR("service", o->service), LOG_STR("reason", o->reason));
	} else {
		o->failures++;
		o->deferred += deferred;
		if (now_ms - o->noted_ms >= OUTAGE_REMIND_MS) {
			o->noted_ms = now_ms;
			snprintf(msg, sizeof(msg), "%s still unreachable", o->name);
			log_kv(LOG_WARN, msg, LOG_STR("service", o->service),
			       LOG_STR("reason", o->reason),
			       LOG_INT("down_ms", now_ms - o->since_ms),
			       LOG_INT("failures", o->failures), LOG_INT("deferred", o->deferred));
		}
	}
	pthread_mutex_unlock(&o->lock);
}

void outage_ok(struct outage *o, int64_t now_ms)
{
	char msg[128];

	pthread_mutex_lock(&o->lock);
	if (o->down) {
		o->down = false;
		snprintf(msg, sizeof(msg), "%s reachable again", o->name);
		log_kv(LOG_INFO, msg, LOG_STR("service", o->service),
		       LOG_INT("down_ms", now_ms - o->since_ms), LOG_INT("failures", o->failures),
		       LOG_INT("deferred", o->deferred), LOG_STR("reason", o->reason));
	}
	pthread_mutex_unlock(&o->lock);
}

void outage_defer(struct outage *o, long long deferred)
{
	pthread_mutex_lock(&o->lock);
	if (o->down)
		o->deferred += deferred;
	pthread_mutex_unlock(&o->lock);
}

bool outage_is_down(struct outage *o)
{
	pthread_mutex_lock(&o->lock);
	bool down = o->down;
	pthread_mutex_unlock(&o->lock);
	return down;
}
