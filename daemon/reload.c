/*
 * reload.c - SIGHUP (see reload.h).
 *
 * The order makes a reload all or nothing: first everything that can
 * fail without changing anything (parse and check the file as
 * check-config does, templates included; build the next generation and
 * the workers' generation with its templates), then the TLS context (its
 * swap is the first change, and nothing before it needs undoing), then
 * what cannot fail: app->cfg, the agencies' rate limit, the workers'
 * generation and delivery rates, the log settings.
 */
#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "core/http.h"
#include "core/ratelimit.h"
#include "notify/delivery.h"

struct generation {
	struct config cfg;
	struct generation *older;
};

struct reload {
	struct app *app;
	struct generation *gens; /* newest first; the first config is main.c's */
};

struct reload *reload_new(struct app *app)
{
	struct reload *rl = calloc(1, sizeof(*rl));
	if (rl)
		rl->app = app;
	return rl;
}

void reload_free(struct reload *rl)
{
	if (!rl)
		return;
	while (rl->gens) {
		struct generation *g = rl->gens;
		rl->gens = g->older;
		config_free(&g->cfg);
		free(g);
	}
	free(rl);
}

/* Each line of text as a log line of its own. */
static void log_problems(const char *text)
{
	const char *p = text;
	while (p && *p) {
		size_t n = strcspn(p, "\n");
		if (n > 0) {
			char line[1024];
			snprintf(line, sizeof(line), "%.*s", (int)n, p);
			log_kv(LOG_ERROR, "reload: refused, the running config stays",
			       LOG_STR("problem", line));
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}

static bool tls_on(const struct config *c)
{
	return c->tls_cert_file && *c->tls_cert_file;
}

struct pair {
	const struct config *old, *fresh;
	int applied, restart;
};

/*
 * TLS switched on or off needs a restart (the listener is built for one
 * or the other), and so do its certificates then; the client CA waits for
 * client_auth, which is not reloadable.
 */
static bool hold(const char *section, const char *key, void *arg)
{
	const struct pair *p = arg;
	if (strcmp(section, "tls") != 0)
		return false;
	bool switched = tls_on(p->old) != tls_on(p->fresh);
	if (strcmp(key, "cert_file") == 0 || strcmp(key, "key_file") == 0)
		return switched;
	if (strcmp(key, "client_ca_file") == 0)
		return switched || strcmp(p->old->tls_client_auth, p->fresh->tls_client_auth) != 0;
	return false;
}

static void log_change(const char *section, const char *key, bool reloadable, void *arg)
{
	struct pair *p = arg;
	char name[128];
	snprintf(name, sizeof(name), "%s.%s", section, key);
	if (reloadable && !hold(section, key, p)) {
		p->applied++;
		log_kv(LOG_INFO, "reload: key changed", LOG_STR("key", name),
		       LOG_STR("effect", "applied"));
	} else {
		p->restart++;
		log_kv(LOG_WARN, "reload: key changed", LOG_STR("key", name),
		       LOG_STR("effect", "needs restart"));
	}
}

/* Whatever start needs of the file besides the services, as check-config asks it. */
static bool checked(const struct config *fresh)
{
	char lines[CONFIG_ERR_MAX] = "";
	FILE *f = fmemopen(lines, sizeof(lines) - 1, "w");
	if (!f) {
		log_problems("out of memory");
		return false;
	}
	int problems = delivery_check(fresh, f);
	fclose(f);
	if (problems > 0)
		log_problems(lines);
	return problems == 0;
}

/* The next generation and the workers' one built from it; false (logged) on a problem. */
static struct generation *prepare(struct reload *rl, struct config *fresh, struct pair *p,
				  struct delivery_gen **dg)
{
	char err[CONFIG_ERR_MAX];
	struct generation *g = calloc(1, sizeof(*g));
	if (!g || !config_next_generation(rl->app->cfg, fresh, hold, p, &g->cfg)) {
		free(g);
		log_problems("out of memory");
		return NULL;
	}
	*dg = NULL;
	if (rl->app->delivery && !(*dg = delivery_gen_new(&g->cfg, err, sizeof(err)))) {
		log_problems(err);
		config_free(&g->cfg);
		free(g);
		return NULL;
	}
	return g;
}

/* The TLS context from the next generation (certificates read again even when
 * their names stayed: that is how a renewed certificate comes in). */
static bool swap_tls(struct reload *rl, const struct config *next)
{
	char tlserr[256], line[320];
	if (!http_reload_tls(rl->app, next, tlserr, sizeof(tlserr))) {
		snprintf(line, sizeof(line), "TLS: %s; keeping the old certificate", tlserr);
		log_problems(line);
		return false;
	}
	if (tls_on(rl->app->cfg) && tls_on(next))
		log_info("reload: TLS certificate and key read again");
	return true;
}

static void apply(struct reload *rl, struct generation *g, struct delivery_gen *dg)
{
	struct app *app = rl->app;
	const struct config *c = &g->cfg;
	g->older = rl->gens;
	rl->gens = g;
	app->cfg = &g->cfg; /* the loop's readers; the workers take dg */
	ratelimit_set(app->ratelimit, c->ratelimit_rate, c->ratelimit_burst);
	if (dg) {
		delivery_reload(app->delivery, dg);
		log_info("reload: templates read again");
	}
	enum log_level lvl = LOG_INFO;
	log_level_parse(c->log_level, &lvl);
	if (!log_open(lvl, c->log_file))
		log_error("reload: cannot open the log file; the old one stays");
}

bool reload_run(struct reload *rl)
{
	struct config fresh;
	char err[CONFIG_ERR_MAX];

	if (!config_load(rl->app->cfg->path, &fresh, err, sizeof(err))) {
		log_problems(err);
		config_free(&fresh);
		return false;
	}
	struct pair p = {rl->app->cfg, &fresh, 0, 0};
	struct delivery_gen *dg = NULL;
	struct generation *g = checked(&fresh) ? prepare(rl, &fresh, &p, &dg) : NULL;
	if (!g || !swap_tls(rl, &g->cfg)) {
		if (g) {
			delivery_gen_free(dg);
			config_free(&g->cfg);
			free(g);
		}
		config_free(&fresh);
		return false;
	}
	/* said before the log settings change, at the levels the old ones let through */
	config_changes(rl->app->cfg, &fresh, log_change, &p);
	apply(rl, g, dg);
	log_kv(LOG_INFO, "reload: done", LOG_INT("applied", p.applied),
	       LOG_INT("needs_restart", p.restart));
	config_free(&fresh);
	return true;
}
