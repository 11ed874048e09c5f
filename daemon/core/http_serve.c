/*
 * http_serve.c - one request of either listener (http.h, http_impl.h): its
 * id, the standard headers, routing, authentication and the client
 * certificate, then the handler.
 *
 * Flow of one request:
 *   evhttp -> http_on_request: add standard headers, match the route
 *   (404/405 as problems), then authenticate (async, auth.c) if the route
 *   wants a role, parse the JSON body if it wants one (http_input.c), and
 *   call the handler.
 *
 * Every response of either listener, errors and unknown routes included,
 * carries API-Version, the security headers of the Dutch API Design Rules
 * and X-Request-ID.
 *
 * The request id is the client's X-Request-ID when it is usable (1 to 64
 * printable ASCII characters, no blank, nothing that looks like an e-mail
 * address or a BSN, since it goes into every log line), else one of ours:
 * a random prefix per process and a sequence number. While the request's
 * code runs the logger adds it to each line (log_set_request_id); the
 * access line is written with the reply (problem.c).
 */
#include "core/http.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/auth.h"
#include "core/framing.h"
#include "common/bsn.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/log.h"
#include "core/http_impl.h"
#include "core/roles.h"
#include "core/route.h"
#include "core/tls.h"

static atomic_ullong request_seq;
static char request_prefix[17]; /* random per process: ids differ across restarts */

void http_request_ids_seed(void)
{
	uint8_t rnd[8];

	if (!crypto_random_bytes(rnd, sizeof(rnd)))
		memset(rnd, 0, sizeof(rnd)); /* still unique within the process */
	/* letters only, two a byte ('a' + nibble): no run of digits in an id could
	 * be mistaken for a BSN by anyone reading the log (or its scanner) */
	for (size_t i = 0; i < sizeof(rnd); i++) {
		request_prefix[2 * i] = (char)('a' + (rnd[i] >> 4));
		request_prefix[2 * i + 1] = (char)('a' + (rnd[i] & 15));
	}
}

const char *http_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return NULL;
	}
}

/* A run of exactly 9 digits that passes the eleven-check, anywhere in s. */
static bool holds_bsn(const char *s)
{
	for (const char *p = s; *p;) {
		size_t n = strspn(p, "0123456789");
		if (n == BSN_LEN) {
			char bsn[BSN_LEN + 1];
			memcpy(bsn, p, BSN_LEN);
			bsn[BSN_LEN] = '\0';
			if (bsn_valid(bsn))
				return true;
		}
		p += n ? n : 1;
	}
	return false;
}

bool http_request_id_ok(const char *v)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > LOG_REQUEST_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
			return false;
	return strchr(v, '@') == NULL && !holds_bsn(v);
}

/* The client's X-Request-ID if usable, else a new one; echoed in the reply. */
static void request_id_take(struct http_req *r)
{
	const char *given =
		evhttp_find_header(evhttp_request_get_input_headers(r->ev), "X-Request-ID");

	if (http_request_id_ok(given))
		snprintf(r->id, sizeof(r->id), "%s", given);
	else
		snprintf(r->id, sizeof(r->id), "%s-%llx", request_prefix,
			 (unsigned long long)++request_seq);
	evhttp_add_header(evhttp_request_get_output_headers(r->ev), "X-Request-ID", r->id);
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

static void on_auth(const struct auth_result *res, void *arg);
static bool certificate_allows(struct http_req *r, const struct auth_result *res);

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
		if (!http_query_problems(r, route, invalid, true)) {
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

static void authorized(const struct auth_result *res, struct http_req *r,
		       const struct http_route *route);

static void on_auth(const struct auth_result *res, void *arg)
{
	struct pending_auth *pa = arg;
	struct http_req *r = pa->r;
	const struct http_route *route = pa->route;
	free(pa);

	log_set_request_id(r->id);
	authorized(res, r, route);
	log_set_request_id(NULL); /* r may be gone: answered and freed */
}

static void authorized(const struct auth_result *res, struct http_req *r,
		       const struct http_route *route)
{
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
	r->role = (enum role)res->role; /* the access line names it, also for a 403 */
	if (!(route->roles & res->role)) {
		http_problem(r, 403, "geen-toegang", "Geen toegang",
			     "Dit token mag deze operatie niet uitvoeren.");
		return;
	}
	if (!certificate_allows(r, res))
		return;
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
				const char *m = http_method_name(rt->method);
				size_t used = strlen(allow);
				if (m && used + strlen(m) + 3 < allow_size)
					snprintf(allow + used, allow_size - used, "%s%s",
						 used ? ", " : "", m);
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

static void serve(const struct http_side *side, struct http_req *r);

void http_on_request(struct evhttp_request *ev, void *arg)
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
	r->start_us = clock_mono_us();
	r->listener = side->name;
	request_id_take(r);
	if (side->api)
		atomic_fetch_add(&app->metrics.http_requests, 1);
	log_set_request_id(r->id);
	serve(side, r);
	log_set_request_id(NULL); /* r may be gone: answered and freed */
}

/* The synchronous part of a request: routing, then the handler or the auth lookup. */
static void serve(const struct http_side *side, struct http_req *r)
{
	struct evhttp_request *ev = r->ev;
	struct app *app = side->front->app;

	/* framing.c refused the request (or its body) before evhttp saw it */
	const char *fault =
		evhttp_find_header(evhttp_request_get_input_headers(ev), FRAMING_HEADER);
	if (fault) {
		http_problem_framing(r, fault);
		return;
	}
	/* SIGTERM: the listener stays open while running requests finish, so no
	 * client is reset; what comes in meanwhile is told to go elsewhere */
	if (app->shutting_down && side->api) {
		evhttp_add_header(evhttp_request_get_output_headers(ev), "Connection", "close");
		http_problem_unavailable(r, "De dienst wordt afgesloten; probeer het opnieuw.");
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
	r->route = found; /* for the access line, also of a 401 (r->path is cut up now) */
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

/* The certificates a role's tokens are bound to ([tls] portal_certs, ...), or NULL. */
static const char *bound_certs(const struct config *cfg, unsigned role)
{
	const char *list = NULL;
	if (role == ROLE_PORTAL)
		list = cfg->tls_portal_certs;
	else if (role == ROLE_MINISTRY)
		list = cfg->tls_ministry_certs;
	else if (role == ROLE_RELAY)
		list = cfg->tls_relay_certs;
	return list && *list ? list : NULL;
}

/*
 * What the connection's client certificate allows, after the token: an
 * agency's certificate must carry the token's OIN; under client_auth =
 * require an agency needs one; a role bound to certificates needs one of
 * them. False when a problem was answered.
 */
static bool certificate_allows(struct http_req *r, const struct auth_result *res)
{
	const struct http_front *f = r->app->http;
	if (!f || !f->tls)
		return true;
	const char *bound = res->role == ROLE_AGENCY ? NULL : bound_certs(r->app->cfg, res->role);
	if (res->role != ROLE_AGENCY && !bound)
		return true;
	X509 *cert = tls_peer_cert(r->ev);
	bool ok = true;
	if (!cert) {
		if (bound || tls_client_auth(f->tls) == TLS_CLIENT_REQUIRE) {
			http_problem(
				r, 401, "certificaat-nodig", "Clientcertificaat nodig",
				"Deze operatie vraagt een geldig clientcertificaat (PKIoverheid).");
			ok = false;
		}
	} else if (res->role == ROLE_AGENCY) {
		char oin[TLS_OIN_LEN + 1];
		if (!tls_cert_oin(cert, oin) || strcmp(oin, res->oin) != 0) {
			http_problem(r, 403, "certificaat-oin",
				     "Certificaat past niet bij het token",
				     "Het OIN in het clientcertificaat (serialNumber) is niet dat "
				     "van de organisatie van het token.");
			ok = false;
		}
	} else {
		char fp[TLS_FINGERPRINT_LEN + 1];
		tls_cert_fingerprint(cert, fp);
		if (!tls_fingerprint_listed(bound, fp)) {
			http_problem(r, 403, "certificaat-niet-toegestaan",
				     "Certificaat niet toegestaan",
				     "Dit clientcertificaat is niet aan deze rol gebonden.");
			ok = false;
		}
	}
	X509_free(cert);
	return ok;
}
