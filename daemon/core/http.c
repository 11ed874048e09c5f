/*
 * http.c - evhttp server, routing, authentication and responses (http.h).
 *
 * Flow of one request:
 *   evhttp -> http_on_request: add standard headers, match the route
 *   (404/405 as problems), then authenticate (async, auth.c) if the route
 *   wants a role, parse the JSON body if it wants one, and call the handler.
 *
 * Two listeners on the same event base, each an evhttp with its own route
 * tables: [http] listen for agencies, the portal and the relay, and [ops]
 * listen for operators (/healthz, /readyz, /metrics). Every response of
 * either, errors and unknown routes included, carries API-Version and the
 * security headers of the Dutch API Design Rules.
 */
#include "core/http.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/auth.h"
#include "core/framing.h"
#include "common/config.h"
#include "common/log.h"
#include "core/http_impl.h"
#include "core/route.h"

#define HOST_MAX 256

/* One listening evhttp: its routes, and whether it is the API. */
struct http_side {
	struct http_front *front;
	const char *name; /* for log lines: the config section */
	const struct http_routes *routes;
	bool api; /* counted in berichtd_http_requests_total */
	struct evhttp *evh;
	struct evhttp_bound_socket *sock;
};

struct http_front {
	struct app *app;
	struct framing *framing; /* shared by both sides' connections */
	struct http_side api, ops;
};

static atomic_ullong request_seq;

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_DELETE: return "DELETE";
	default: return NULL;
	}
}

static void add_standard_headers(struct evhttp_request *ev)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
	evhttp_add_header(h, "API-Version", API_VERSION);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Content-Security-Policy", "frame-ancestors 'none'");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

/*
 * Appends to invalid a problem for each query parameter the route does not
 * list (unknownParameter) and each listed one given twice (duplicate); a
 * query string that does not parse is reported (syntax) only when
 * `syntax`. Returns false when it found anything.
 */
static bool query_problems(const struct http_req *r, const struct http_route *route,
			   json_t *invalid, bool syntax)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	bool ok = true;

	if (!qs || !*qs)
		return true;
	if (evhttp_parse_query_str(qs, &q) != 0) {
		if (syntax)
			http_invalid_add(
				invalid, "query", "syntax",
				"De query-string is ongeldig (naam=waarde, gescheiden door &).");
		evhttp_clear_headers(&q);
		return !syntax;
	}
	for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
		const char *name = route_name_echoable(kv->key) ? kv->key : "query";
		if (!route_query_listed(route->pattern, kv->key)) {
			http_invalid_add(invalid, name, "unknownParameter",
					 "Deze operatie kent deze query-parameter niet.");
			ok = false;
			continue;
		}
		for (struct evkeyval *e = q.tqh_first; e != kv; e = e->next.tqe_next) {
			if (strcmp(e->key, kv->key) == 0) {
				http_invalid_add(invalid, name, "duplicate",
						 "Geef deze parameter maar een keer.");
				ok = false;
				break;
			}
		}
	}
	evhttp_clear_headers(&q);
	return ok;
}

void http_query_check(struct http_req *r, json_t *invalid)
{
	if (r->route)
		query_problems(r, r->route, invalid, false);
}

static void on_auth(const struct auth_result *res, void *arg);

static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * The request's one Content-Type is application/json, optionally with
 * parameters (RFC 9110 8.3.1: type "/" subtype *( OWS ";" OWS [ parameter ] )).
 * Not a prefix: application/jsonx or application/json-seq are other types.
 * A charset, if given, must be UTF-8 (RFC 8259 8.1).
 */
static bool is_json_content_type(struct evkeyvalq *headers)
{
	static const char want[] = "application/json";
	const char *ctype = NULL;

	for (struct evkeyval *kv = headers->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Content-Type") != 0)
			continue;
		if (ctype)
			return false; /* two of them: which one would a proxy have checked? */
		ctype = kv->value;
	}
	if (!ctype || strncasecmp(ctype, want, sizeof(want) - 1) != 0)
		return false;
	const char *p = skip_ows(ctype + sizeof(want) - 1);
	while (*p) {
		if (*p != ';')
			return false;
		p = skip_ows(p + 1);
		if (*p == ';' || *p == '\0')
			continue; /* an empty parameter is allowed */
		const char *name = p;
		while (is_tchar((unsigned char)*p))
			p++;
		size_t nlen = (size_t)(p - name);
		if (nlen == 0 || *p != '=')
			return false;
		const char *val = ++p;
		size_t vlen;
		if (*p == '"') {
			val = ++p;
			while (*p && *p != '"')
				p += (*p == '\\' && p[1]) ? 2 : 1;
			if (*p != '"')
				return false;
			vlen = (size_t)(p - val);
			p++;
		} else {
			while (is_tchar((unsigned char)*p))
				p++;
			vlen = (size_t)(p - val);
			if (vlen == 0)
				return false;
		}
		if (nlen == strlen("charset") && strncasecmp(name, "charset", nlen) == 0 &&
		    !(vlen == strlen("utf-8") && strncasecmp(val, "utf-8", vlen) == 0))
			return false;
		p = skip_ows(p);
	}
	return true;
}

bool http_read_json_body(struct http_req *r, bool optional)
{
	struct evhttp_request *ev = r->ev;
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	size_t len = evbuffer_get_length(in);
	if (optional && len == 0)
		return true;
	if (!is_json_content_type(evhttp_request_get_input_headers(ev))) {
		http_problem(r, 415, "niet-ondersteund-mediatype", "Niet ondersteund mediatype",
			     "Stuur de body als application/json (UTF-8), met Content-Type: "
			     "application/json.");
		return false;
	}
	const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	json_error_t jerr;
	r->body = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!r->body || !json_is_object(r->body)) {
		char detail[256];
		snprintf(detail, sizeof(detail), "De body is geen geldig JSON-object%s%s.",
			 r->body ? "" : ": ", r->body ? "" : jerr.text);
		http_problem(r, 400, "ongeldige-json", "Ongeldige JSON", detail);
		return false;
	}
	return true;
}

static void dispatch(struct http_req *r, const struct http_route *route)
{
	r->route = route;
	/*
	 * A route without a "{?...}" list takes no query parameters: refused
	 * here. One with a list validates its values itself and adds these
	 * problems through http_query_check, so that all are listed at once.
	 */
	if (!route_has_query_list(route->pattern)) {
		json_t *invalid = json_array();
		if (!query_problems(r, route, invalid, true)) {
			http_problem_invalid(r, invalid);
			return;
		}
		json_decref(invalid);
	}
	if (route->json_body && !http_read_json_body(r, false))
		return;
	route->handler(r);
}

struct pending_auth {
	struct http_req *r;
	const struct http_route *route;
};

static void on_auth(const struct auth_result *res, void *arg)
{
	struct pending_auth *pa = arg;
	struct http_req *r = pa->r;
	const struct http_route *route = pa->route;
	free(pa);

	if (res->unavailable) {
		http_problem_unavailable(r, "De database is niet bereikbaar.");
		return;
	}
	if (!res->ok) {
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "WWW-Authenticate",
				  "Bearer");
		http_problem(r, 401, "niet-geauthenticeerd", "Niet geauthenticeerd",
			     "Een geldig bearer-token is nodig.");
		return;
	}
	if (!(route->roles & res->role)) {
		http_problem(r, 403, "geen-toegang", "Geen toegang",
			     "Dit token mag deze operatie niet uitvoeren.");
		return;
	}
	r->role = (enum role)res->role;
	r->agency_id = res->agency_id;
	dispatch(r, route);
}

/*
 * The route for r->path and method among the tables. The methods of every
 * route the path matches are listed in allow (for a 405) and *path_known
 * set; on a match r->path is replaced by the copy the captures point into.
 */
static const struct http_route *find_route(const struct http_routes *routes, struct http_req *r,
					   enum evhttp_cmd_type method, char *allow,
					   size_t allow_size, bool *path_known)
{
	const struct http_route *found = NULL;
	char *found_path = NULL;

	for (size_t t = 0; t < routes->n; t++)
		for (const struct http_route *rt = routes->tables[t]; rt->pattern; rt++) {
			char *copy = strdup(r->path);
			const char *params[HTTP_MAX_PARAMS];
			int n = 0;
			if (!copy)
				break;
			if (route_match(rt->pattern, copy, params, &n)) {
				*path_known = true;
				const char *m = method_name(rt->method);
				if (m && strlen(allow) + strlen(m) + 3 < allow_size) {
					if (*allow)
						strcat(allow, ", ");
					strcat(allow, m);
				}
				if (rt->method == method && !found) {
					found = rt;
					found_path = copy; /* the captures point into it */
					memcpy(r->params, params, sizeof(params));
					continue;
				}
			}
			free(copy);
		}
	if (found_path) {
		free(r->path);
		r->path = found_path;
	}
	return found;
}

static void http_on_request(struct evhttp_request *ev, void *arg)
{
	const struct http_side *side = arg;
	struct app *app = side->front->app;
	struct http_req *r = calloc(1, sizeof(*r));

	add_standard_headers(ev);
	if (!r) {
		evhttp_send_error(ev, 500, NULL);
		return;
	}
	r->app = app;
	r->ev = ev;
	snprintf(r->id, sizeof(r->id), "%llx", (unsigned long long)++request_seq);
	if (side->api)
		atomic_fetch_add(&app->metrics.http_requests, 1);

	/* framing.c refused the request (or its body) before evhttp saw it */
	const char *fault =
		evhttp_find_header(evhttp_request_get_input_headers(ev), FRAMING_HEADER);
	if (fault) {
		http_problem_framing(r, fault);
		return;
	}

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const char *rawpath = uri ? evhttp_uri_get_path(uri) : NULL;
	r->path = evhttp_uridecode(rawpath ? rawpath : "/", 0, NULL);
	if (!r->path) {
		http_problem(r, 400, "ongeldig-pad", "Ongeldig pad", NULL);
		return;
	}
	enum evhttp_cmd_type method = evhttp_request_get_command(ev);
	log_debug("http %s: %d %s", r->id, (int)method, rawpath ? rawpath : "/");

	char allow[128] = "";
	bool path_known = false;
	const struct http_route *found =
		find_route(side->routes, r, method, allow, sizeof(allow), &path_known);
	if (!found) {
		if (path_known) {
			evhttp_add_header(evhttp_request_get_output_headers(ev), "Allow", allow);
			http_problem(r, 405, "methode-niet-toegestaan", "Methode niet toegestaan",
				     NULL);
		} else {
			http_problem_not_found(r, "Deze resource bestaat niet.");
		}
		return;
	}
	if (found->roles == 0) {
		dispatch(r, found);
		return;
	}

	const char *authz =
		evhttp_find_header(evhttp_request_get_input_headers(ev), "Authorization");
	if (!authz || strncasecmp(authz, "Bearer ", 7) != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(ev), "WWW-Authenticate",
				  "Bearer");
		http_problem(r, 401, "niet-geauthenticeerd", "Niet geauthenticeerd",
			     "Een geldig bearer-token is nodig.");
		return;
	}
	struct pending_auth *pa = malloc(sizeof(*pa));
	if (!pa) {
		http_problem_internal(r);
		return;
	}
	pa->r = r;
	pa->route = found;
	auth_lookup(app->auth, authz + 7, on_auth, pa);
}

static bool side_start(struct http_side *side, const char *listen)
{
	struct app *app = side->front->app;
	char host[HOST_MAX];
	int port;

	if (!config_split_hostport(listen, host, sizeof(host), &port))
		return false;
	side->evh = evhttp_new(app->base);
	if (!side->evh)
		return false;
	evhttp_set_allowed_methods(side->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						      EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
						      EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	/*
	 * framing.c checks every request head and body length before evhttp
	 * does, so evhttp never answers with its own HTML pages (framing.h).
	 * Its own limit and lingering close stay as the fallback for a
	 * connection framing.c could not allocate for.
	 */
	if (side->front->framing)
		evhttp_set_bevcb(side->evh, framing_bev, side->front->framing);
	evhttp_set_max_body_size(side->evh, (ev_ssize_t)app->cfg->http_max_body);
	if (evhttp_set_flags(side->evh, EVHTTP_SERVER_LINGERING_CLOSE) != 0)
		log_warn("%s: no lingering close; clients may miss a 413", side->name);
	evhttp_set_timeout(side->evh, (int)(app->cfg->http_timeout_ms / 1000));
	evhttp_set_gencb(side->evh, http_on_request, side);
	side->sock = evhttp_bind_socket_with_handle(side->evh, host, (ev_uint16_t)port);
	if (!side->sock) {
		log_error("%s: cannot listen on %s", side->name, listen);
		return false;
	}
	log_info("%s: listening on %s", side->name, listen);
	return true;
}

static void side_stop_accepting(struct http_side *side)
{
	if (side->evh && side->sock) {
		evhttp_del_accept_socket(side->evh, side->sock);
		side->sock = NULL;
	}
}

bool http_start(struct app *app, const struct http_routes *api, const struct http_routes *ops)
{
	struct http_front *f = calloc(1, sizeof(*f));

	if (!f)
		return false;
	app->http = f;
	f->app = app;
	f->framing = framing_new(app->base, app->cfg->http_max_body);
	if (!f->framing)
		log_warn("http: out of memory; malformed requests get libevent's own pages");
	f->api = (struct http_side){f, "http", api, true, NULL, NULL};
	f->ops = (struct http_side){f, "ops", ops, false, NULL, NULL};
	return side_start(&f->api, app->cfg->http_listen) &&
	       side_start(&f->ops, app->cfg->ops_listen);
}

void http_stop_accepting(struct app *app)
{
	if (!app->http)
		return;
	side_stop_accepting(&app->http->api);
	side_stop_accepting(&app->http->ops);
}

void http_stop(struct app *app)
{
	struct http_front *f = app->http;

	if (!f)
		return;
	if (f->api.evh)
		evhttp_free(f->api.evh);
	if (f->ops.evh)
		evhttp_free(f->ops.evh);
	framing_free(f->framing); /* after both: it releases the connections they left */
	free(f);
	app->http = NULL;
}
