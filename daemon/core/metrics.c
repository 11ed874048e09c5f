/*
 * metrics.c - histograms, the per-route HTTP table and the Prometheus text
 * format (see metrics.h). Names follow the Prometheus conventions: base
 * units (seconds, bytes), _total for counters; `promtool check metrics`
 * has no complaint about the output (tests/integration/test_metrics.py).
 */
#include "core/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 ms .. 30 s: a request, or a message from arrival to its commit's answer */
const struct hist_spec HIST_DURATION = {13,
					{1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
					 500000, 1000000, 2500000, 10000000, 30000000},
					1e6};
/* 0.1 s .. 1 h: late by a backoff, an outage, a backlog */
const struct hist_spec HIST_LAG = {
	13,
	{100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000, 900000, 1800000, 3600000},
	1e3};
/* 1 .. 10,000 items: single messages go in groups of about 32, batches up to 10,000 */
const struct hist_spec HIST_SIZE = {10, {1, 2, 5, 10, 25, 50, 100, 250, 1000, 10000}, 1};

void hist_observe(struct hist *h, const struct hist_spec *spec, int64_t v)
{
	int i = 0;
	if (v < 0)
		v = 0;
	while (i < spec->n && v > spec->bounds[i])
		i++;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum, v);
}

static int status_class(int status)
{
	int c = status / 100 - 1;
	return c < 0 || c >= HTTP_CLASSES ? HTTP_CLASS_5XX : c;
}

void metrics_http_observe(struct metrics_http *m, const void *route, const char *pattern,
			  const char *method, int status, int64_t duration_us)
{
	struct metrics_route *slot = &m->other;
	for (int i = 0; route && i < METRICS_ROUTES_MAX; i++) {
		struct metrics_route *s = &m->routes[i];
		if (!s->route) {
			s->route = route;
			s->pattern = pattern;
			s->method = method;
		}
		if (s->route == route) {
			slot = s;
			break;
		}
	}
	slot->requests[status_class(status)]++;
	hist_observe(&slot->duration, &HIST_DURATION, duration_us);
}

void mtext_printf(struct mtext *t, const char *fmt, ...)
{
	for (;;) {
		if (t->failed)
			return;
		va_list ap;
		va_start(ap, fmt);
		size_t room = t->cap - t->len;
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 16384;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *b = realloc(t->buf, cap);
		if (!b) {
			t->failed = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
}

void mtext_family(struct mtext *t, const char *name, const char *type, const char *help)
{
	mtext_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void mtext_single(struct mtext *t, const char *name, const char *type, const char *help,
		  long long v)
{
	mtext_family(t, name, type, help);
	mtext_printf(t, "%s %lld\n", name, v);
}

void mtext_hist(struct mtext *t, const char *name, const char *labels, const struct hist *h,
		const struct hist_spec *spec)
{
	const char *l = labels ? labels : "";
	const char *sep = *l ? "," : "";
	long long cum = 0;
	for (int i = 0; i <= spec->n; i++) {
		cum += atomic_load(&h->bucket[i]);
		if (i < spec->n)
			mtext_printf(t, "%s_bucket{%s%sle=\"%g\"} %lld\n", name, l, sep,
				     (double)spec->bounds[i] / spec->scale, cum);
		else
			mtext_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", name, l, sep, cum);
	}
	/* count after the buckets: a scrape racing an observation may see
	 * +Inf below count, never above it */
	const char *open = *l ? "{" : "", *close = *l ? "}" : "";
	mtext_printf(t, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %lld\n", name, open, l, close,
		     (double)atomic_load(&h->sum) / spec->scale, name, open, l, close, cum);
}

static void http_route_labels(const struct metrics_route *s, char *out, size_t size)
{
	const char *p = s->route ? s->pattern : "other";
	/* the pattern without its query list ("{?pagina,...}"), as in the access line */
	const char *q = strstr(p, "{?");
	int n = q ? (int)(q - p) : (int)strlen(p);
	snprintf(out, size, "route=\"%.*s\",method=\"%s\"", n, p, s->method ? s->method : "other");
}

/* The route slot i, skipping the free ones to the catch-all (the last, i = METRICS_ROUTES_MAX). */
static const struct metrics_route *next_route(const struct metrics_http *m, int *i)
{
	if (*i < METRICS_ROUTES_MAX && !m->routes[*i].route)
		*i = METRICS_ROUTES_MAX;
	return *i < METRICS_ROUTES_MAX ? &m->routes[*i] : &m->other;
}

void mtext_http(struct mtext *t, const struct metrics_http *m)
{
	static const char *const classes[HTTP_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	char labels[256];
	mtext_family(t, "berichtd_http_requests_total", "counter",
		     "Requests answered on the API listener, by route pattern, method and status "
		     "class.");
	for (int i = 0; i <= METRICS_ROUTES_MAX; i++) {
		const struct metrics_route *s = next_route(m, &i);
		http_route_labels(s, labels, sizeof(labels));
		for (int c = 0; c < HTTP_CLASSES; c++)
			/* 2xx, 4xx and 5xx always, so a rate over them is never absent */
			if (s->requests[c] || c == HTTP_CLASS_2XX || c == HTTP_CLASS_4XX ||
			    c == HTTP_CLASS_5XX)
				mtext_printf(t,
					     "berichtd_http_requests_total{%s,code=\"%s\"} %lld\n",
					     labels, classes[c], s->requests[c]);
	}
	mtext_family(t, "berichtd_http_request_duration_seconds", "histogram",
		     "Time from a request's arrival to its answer on the API listener, by route "
		     "pattern and method.");
	for (int i = 0; i <= METRICS_ROUTES_MAX; i++) {
		const struct metrics_route *s = next_route(m, &i);
		http_route_labels(s, labels, sizeof(labels));
		mtext_hist(t, "berichtd_http_request_duration_seconds", labels, &s->duration,
			   &HIST_DURATION);
	}
}

/* VmRSS of /proc/self/status, in bytes; -1 if unknown. */
static long long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* Entries of /proc/self/fd, without the directory's own descriptor. */
static long long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	long long n = 0;
	if (!d)
		return -1;
	for (const struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Seconds since the epoch at the process's start: /proc/stat's btime plus field 22 of /proc/self/stat. */
static double start_time(void)
{
	char buf[1024];
	long long btime = -1, ticks = -1;
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	f = fopen("/proc/self/stat", "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after the command name in parentheses (which may hold blanks): field 3 on */
	const char *p = strrchr(buf, ')');
	if (p && sscanf(p + 1,
			" %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			"%*d %*d %lld",
			&ticks) != 1)
		ticks = -1;
	long hz = sysconf(_SC_CLK_TCK);
	if (btime < 0 || ticks < 0 || hz <= 0)
		return -1;
	return (double)btime + (double)ticks / (double)hz;
}

void mtext_process(struct mtext *t)
{
	double start = start_time();
	if (start >= 0) {
		mtext_family(t, "process_start_time_seconds", "gauge",
			     "Start time of the process since unix epoch in seconds.");
		mtext_printf(t, "process_start_time_seconds %.2f\n", start);
	}
	long long rss = rss_bytes(), fds = open_fds();
	if (rss >= 0)
		mtext_single(t, "process_resident_memory_bytes", "gauge",
			     "Resident memory size in bytes.", rss);
	if (fds >= 0)
		mtext_single(t, "process_open_fds", "gauge", "Number of open file descriptors.",
			     fds);
	long max = sysconf(_SC_OPEN_MAX);
	if (max > 0)
		mtext_single(t, "process_max_fds", "gauge",
			     "Maximum number of open file descriptors.", max);
}
