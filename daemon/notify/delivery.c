/*
 * delivery.c - start and stop of the delivery workers (see delivery.h).
 *
 * The work itself is split by concern (delivery_impl.h lists the files):
 * worker.c runs the loop, claim.c claims, render.c builds the mails,
 * throttle.c and retry.c hold the rate limits and the retry policy, and
 * record.c handles each outcome of a send and records it.
 *
 * A mail is built once (migrations/0009_mails.sql): the claim that first
 * takes a notification also fixes its mail, with its members (a digest
 * takes every other scheduled notification of the same account and kind
 * that falls due within the digest window), its random ref (Message-ID,
 * VERP address, envelope id), its recipient and its date. Whatever is sent
 * again of it (a retry after a 4xx, a resend after a crash) is that same
 * mail, rendered from the same rows, and its rows are never regrouped.
 */
#include "notify/delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mime.h"
#include "notify/delivery_impl.h"
#include "notify/render.h"
#include "notify/smtp.h"

/* "Name <address>" or "address" into its parts; false if invalid or unsafe in a header. */
static bool split_from(const char *from, char *name, char *addr)
{
	const char *lt = strchr(from, '<');
	name[0] = '\0';
	if (!lt) {
		snprintf(addr, ADDR_MAX, "%s", from);
	} else {
		const char *gt = strchr(lt, '>');
		if (!gt || gt[1] != '\0')
			return false;
		size_t nl = (size_t)(lt - from);
		while (nl > 0 && from[nl - 1] == ' ')
			nl--;
		snprintf(name, ADDR_MAX, "%.*s", (int)nl, from);
		snprintf(addr, ADDR_MAX, "%.*s", (int)(gt - lt - 1), lt + 1);
	}
	return mime_addr_valid(addr) && mime_header_safe(name);
}

int delivery_check(const struct config *cfg, FILE *out)
{
	char name[ADDR_MAX], addr[ADDR_MAX];
	int problems = render_check_templates(cfg->templates_dir, out);
	if (!split_from(cfg->smtp_from, name, addr)) {
		fprintf(out, "smtp.from: not \"Name <address>\" or an address: '%s'\n",
			cfg->smtp_from);
		problems++;
	}
	return problems;
}

struct delivery_gen *delivery_gen_new(const struct config *cfg, char *err, size_t errlen)
{
	struct delivery_gen *g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory\n");
		return NULL;
	}
	g->cfg = cfg;
	/* every problem of every template, one line each, as check-config writes them */
	FILE *lines = fmemopen(err, errlen, "w");
	int problems = lines ? render_check_templates(cfg->templates_dir, lines) : 0;
	if (lines)
		fclose(lines);
	if (problems > 0 || !render_load_templates(cfg->templates_dir, g->tmpl, err, errlen)) {
		render_free_templates(g->tmpl);
		free(g);
		return NULL;
	}
	if (!config_parse_quiet_hours(cfg->notify_quiet_hours, &g->quiet_enabled, &g->quiet_start,
				      &g->quiet_end)) {
		snprintf(err, errlen, "notify.quiet_hours is invalid\n");
		delivery_gen_free(g);
		return NULL;
	}
	return g;
}

void delivery_gen_free(struct delivery_gen *g)
{
	while (g) {
		struct delivery_gen *older = g->older;
		render_free_templates(g->tmpl);
		free(g);
		g = older;
	}
}

void delivery_reload(struct delivery *d, struct delivery_gen *g)
{
	g->older = atomic_load(&d->gen);
	atomic_store(&d->gen, g);
	throttle_set(&d->throttle, g->cfg->delivery_rate_limit, g->cfg->delivery_domain_rate_limit);
}

struct delivery *delivery_start(struct app *app, char *err, size_t errlen)
{
	const struct config *cfg = app->cfg;
	struct delivery *d = calloc(1, sizeof(*d));

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->app = app;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->lost_lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	throttle_init(&d->throttle, cfg->delivery_rate_limit, cfg->delivery_domain_rate_limit,
		      clock_mono_ms());
	outage_init(&d->relay, "smtp", "SMTP relay");
	outage_init(&d->pg, "postgres", "PostgreSQL (delivery)");
	outage_init(&d->redis, "redis", "Redis (delivery)");
	struct delivery_gen *g = delivery_gen_new(cfg, err, errlen);
	if (!g) {
		delivery_stop(d);
		return NULL;
	}
	atomic_init(&d->gen, g);
	if (!split_from(cfg->smtp_from, d->from_name, d->from_addr)) {
		snprintf(err, errlen, "smtp.from is not \"Name <address>\" or an address");
		delivery_stop(d);
		return NULL;
	}
	smtp_init();
	if (smtp_tls_mode(cfg->smtp_starttls) != SMTP_TLS_OFF &&
	    !(d->smtp_tls = smtp_tls_context(cfg->smtp_ca_file, err, errlen))) {
		delivery_stop(d);
		return NULL;
	}
	d->threads = calloc((size_t)cfg->delivery_workers + 1, sizeof(*d->threads));
	d->beats = calloc((size_t)cfg->delivery_workers + 1, sizeof(*d->beats));
	/* the workers claim nothing until the lifeline holds its lock */
	if (!d->threads || !d->beats || (cfg->delivery_workers > 0 && !lifeline_start(d))) {
		delivery_stop(d);
		return NULL;
	}
	for (int i = 0; i < cfg->delivery_workers; i++) {
		struct worker *w = calloc(1, sizeof(*w));
		if (w) {
			w->d = d; /* before the thread starts: it reads them at once */
			w->index = i;
			atomic_init(&d->beats[i], clock_mono_ms());
		}
		atomic_fetch_add(&d->running, 1);
		if (!w || pthread_create(&d->threads[i], NULL, worker_main, w) != 0) {
			atomic_fetch_sub(&d->running, 1);
			free(w);
			snprintf(err, errlen, "cannot start delivery thread");
			delivery_stop(d);
			return NULL;
		}
		d->nthreads++;
	}
	log_info("delivery: %d workers", d->nthreads);
	return d;
}

void delivery_ask_stop(struct delivery *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	atomic_store(&d->stop, true);
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

int delivery_running(struct delivery *d)
{
	return d ? atomic_load(&d->running) : 0;
}

void delivery_stop(struct delivery *d)
{
	if (!d)
		return;
	delivery_ask_stop(d);
	for (int i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	/* last: the workers recorded what they sent while it still held the lock */
	lifeline_stop(d);
	free(d->threads);
	free(d->beats);
	delivery_gen_free(atomic_load(&d->gen));
	SSL_CTX_free(d->smtp_tls);
	throttle_destroy(&d->throttle);
	outage_destroy(&d->relay);
	outage_destroy(&d->pg);
	outage_destroy(&d->redis);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->lost_lock);
	free(d);
}

int delivery_stalled(const struct delivery *d, int64_t now_ms, int64_t limit_ms, int64_t *age_ms)
{
	int worst = -1;
	*age_ms = 0;
	for (int i = 0; d && i < d->nthreads; i++) {
		int64_t age = now_ms - atomic_load(&d->beats[i]);
		if (age > *age_ms) {
			*age_ms = age;
			worst = i;
		}
	}
	return *age_ms > limit_ms ? worst : -1;
}
