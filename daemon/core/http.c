/*
 * http.c - the HTTP front's two listeners (http.h): evhttp setup, TLS and
 * the framing layer's connection limits, stopping and freeing.
 *
 * Two listeners on the same event base, each an evhttp with its own route
 * tables: [http] listen for agencies, the portal and the relay, and [ops]
 * listen for operators (/healthz, /readyz, /metrics). What happens to a
 * request once evhttp has it is http_serve.c.
 */
#include "core/http.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "core/framing.h"
#include "common/config.h"
#include "common/log.h"
#include "core/http_impl.h"
#include "core/tls.h"

#define HOST_MAX 256

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
	if (side->api && side->front->tls)
		evhttp_set_bevcb(side->evh, tls_bev, side->front->tls); /* framing inside */
	else if (side->api ? side->front->framing : side->front->ops_framing)
		evhttp_set_bevcb(side->evh, framing_bev,
				 side->api ? side->front->framing : side->front->ops_framing);
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
	/* accepted sockets inherit it: a response written in several TLS records
	 * must not wait for the client's delayed ACK (40 ms each under Nagle) */
	int one = 1;
	if (setsockopt(evhttp_bound_socket_get_fd(side->sock), IPPROTO_TCP, TCP_NODELAY, &one,
		       sizeof(one)) != 0)
		log_warn("%s: cannot set TCP_NODELAY", side->name);
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
	http_request_ids_seed();
	app->http = f;
	f->app = app;
	struct framing_limits lim = {app->cfg->http_header_timeout_ms,
				     app->cfg->http_request_timeout_ms,
				     (int)app->cfg->http_max_connections};
	f->framing = framing_new(app->base, app->cfg->http_max_body, &lim);
	lim.max_connections = 0;
	f->ops_framing = framing_new(app->base, app->cfg->http_max_body, &lim);
	if (!f->framing)
		log_warn("http: out of memory; malformed requests get libevent's own pages");
	char err[256];
	f->tls = tls_new(app->cfg, f->framing, err, sizeof(err));
	if (!f->tls && err[0]) {
		log_error("http: %s", err);
		return false;
	}
	if (f->tls)
		log_info("http: TLS on %s (client certificates: %s)", app->cfg->http_listen,
			 app->cfg->tls_client_auth);
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
	framing_free(f->ops_framing);
	tls_free(f->tls);
	free(f);
	app->http = NULL;
}

bool http_reload_tls(struct app *app, const struct config *fresh, char *err, size_t errlen)
{
	err[0] = '\0';
	if (!app->http || !app->http->tls)
		return true; /* switching TLS on or off needs a restart (config_reload says so) */
	return tls_reload(app->http->tls, fresh, err, errlen);
}

void http_connection_stats(struct app *app, struct framing_stats *out)
{
	framing_stats(app->http ? app->http->framing : NULL, out);
}
