/*
 * config.c - the INI parser of the configuration table (see config.h): the
 * file's sections and lines, the errors, the keys, the rules across keys.
 * One key's value by its type is config_value.c's.
 *
 * STYLE.md habit 4: config is a table. Each row names the section, the key,
 * its type, its default, whether a SIGHUP reload may change it, where it is
 * stored, and one line of documentation. Everything else (defaults, parsing,
 * the example file) is derived from the rows, so they cannot drift apart.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config_impl.h"
#include "crypto.h"

#define NKEYS config_nkeys

struct errbuf {
	char *buf;
	size_t len, cap;
	int count;
};

__attribute__((format(printf, 2, 3))) static void err_add(struct errbuf *e, const char *fmt, ...)
{
	e->count++;
	if (!e->buf || e->len + 1 >= e->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	e->len += (size_t)n;
	if (e->len >= e->cap)
		e->len = e->cap - 1;
	if (e->len + 1 < e->cap) {
		e->buf[e->len++] = '\n';
		e->buf[e->len] = '\0';
	}
}

static const struct config_key *find_key(const char *section, const char *key, bool *section_known)
{
	*section_known = false;
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) != 0)
			continue;
		*section_known = true;
		if (strcmp(config_keys[i].key, key) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * A secret in hex, given inline (hex) or in a file (path). Decodes into
 * out (outcap bytes at most, MIN_KEY at least). Returns 1 when a key was
 * loaded, 0 when neither was given, -1 on an error (reported).
 */
static int load_hex_key(struct config *cfg, struct errbuf *e, const char *name, const char *hex,
			const char *path, uint8_t *out, size_t outcap, size_t *outlen)
{
	char *filebuf = NULL;

	char cred[4096];
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	/* systemd's LoadCredential=NAME.key hands the same file over, readable by the daemon */
	if ((!hex || !*hex) && path && *path && dir && *dir &&
	    (size_t)snprintf(cred, sizeof(cred), "%s/%s.key", dir,
			     strcmp(name, "bsn_key") == 0 ? "bsn" : "bounce") < sizeof(cred) &&
	    access(cred, R_OK) == 0)
		path = cred;
	if ((!hex || !*hex) && path && *path) {
		FILE *f = fopen(path, "r");
		if (!f) {
			err_add(e,
				"%s: security.%s_file: cannot open %s: %s (make one with: "
				"openssl rand -hex 32 > %s; chmod 600 %s)",
				cfg->path, name, path, strerror(errno), path, path);
			return -1;
		}
		filebuf = calloc(1, 1024);
		size_t n = filebuf ? fread(filebuf, 1, 1023, f) : 0;
		fclose(f);
		if (!filebuf)
			return -1;
		filebuf[n] = '\0';
		hex = trim(filebuf);
	}
	if (!hex || !*hex) {
		free(filebuf);
		return 0;
	}
	bool ok = crypto_hex_decode(hex, out, outcap, outlen) && *outlen >= MIN_BSN_KEY;
	if (!ok)
		err_add(e, "%s: security: %s key must be 32 to 64 bytes of hex", cfg->path,
			strcmp(name, "bsn_key") == 0 ? "BSN" : "bounce");
	if (filebuf) {
		OPENSSL_cleanse(filebuf, 1024);
		free(filebuf);
	}
	return ok ? 1 : -1;
}

/*
 * [smtp] starttls, and AUTH: a user needs a password file (read here, so
 * check-config finds a missing one) and TLS, or the password would cross
 * the network in clear.
 */
static void check_smtp_security(struct config *cfg, struct errbuf *e)
{
	const char *tls = cfg->smtp_starttls ? cfg->smtp_starttls : "";
	if (strcmp(tls, "off") != 0 && strcmp(tls, "opportunistic") != 0 &&
	    strcmp(tls, "require") != 0)
		err_add(e, "%s: smtp.starttls: must be off, opportunistic or require", cfg->path);
	bool user = cfg->smtp_user && *cfg->smtp_user;
	bool file = cfg->smtp_password_file && *cfg->smtp_password_file;
	if (user != file) {
		err_add(e, "%s: smtp: user and password_file go together", cfg->path);
		return;
	}
	if (!user)
		return;
	if (strcmp(tls, "require") != 0)
		err_add(e,
			"%s: smtp.user: AUTH needs starttls = require (the password never goes in clear)",
			cfg->path);
	FILE *f = fopen(cfg->smtp_password_file, "r");
	if (!f) {
		err_add(e, "%s: smtp.password_file: cannot open %s", cfg->path,
			cfg->smtp_password_file);
		return;
	}
	size_t n = fread(cfg->smtp_password, 1, sizeof(cfg->smtp_password) - 1, f);
	fclose(f);
	cfg->smtp_password[n] = '\0';
	while (n > 0 && (cfg->smtp_password[n - 1] == '\n' || cfg->smtp_password[n - 1] == '\r'))
		cfg->smtp_password[--n] = '\0';
	if (n == 0)
		err_add(e, "%s: smtp.password_file: %s is empty", cfg->path,
			cfg->smtp_password_file);
}

static bool readable(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f)
		fclose(f);
	return f != NULL;
}

/* [tls]: what start needs, so check-config finds it first */
static void check_tls(struct config *cfg, struct errbuf *e)
{
	const char *ca = cfg->tls_client_auth ? cfg->tls_client_auth : "";
	if (strcmp(ca, "off") != 0 && strcmp(ca, "optional") != 0 && strcmp(ca, "require") != 0)
		err_add(e, "%s: tls.client_auth: must be off, optional or require", cfg->path);
	bool on = cfg->tls_cert_file && *cfg->tls_cert_file;
	if (!on) {
		if (strcmp(ca, "off") != 0)
			err_add(e, "%s: tls.client_auth: needs tls.cert_file", cfg->path);
		return;
	}
	if (!readable(cfg->tls_cert_file))
		err_add(e, "%s: tls.cert_file: cannot open %s", cfg->path, cfg->tls_cert_file);
	if (cfg->tls_key_file && *cfg->tls_key_file && !readable(cfg->tls_key_file))
		err_add(e, "%s: tls.key_file: cannot open %s", cfg->path, cfg->tls_key_file);
	if (strcmp(ca, "off") != 0 && !(cfg->tls_client_ca_file && *cfg->tls_client_ca_file &&
					readable(cfg->tls_client_ca_file)))
		err_add(e, "%s: tls.client_ca_file: needed and readable with client_auth %s",
			cfg->path, ca);
}

static bool load_bsn_key(struct config *cfg, struct errbuf *e)
{
	int got = load_hex_key(cfg, e, "bsn_key", cfg->security_bsn_key, cfg->security_bsn_key_file,
			       cfg->bsn_key, sizeof(cfg->bsn_key), &cfg->bsn_key_len);
	if (got == 0)
		err_add(e, "%s: security: bsn_key or bsn_key_file is required", cfg->path);
	return got == 1;
}

/*
 * The bounce tag key: its own when given, else derived from the BSN key
 * (HMAC with a fixed label), so that the two never share key material and
 * an existing configuration keeps working.
 */
static void load_bounce_key(struct config *cfg, struct errbuf *e)
{
	static const char label[] = "berichtd bounce tag key v1";
	char hex[CRYPTO_HEX256_LEN];
	int got = load_hex_key(cfg, e, "bounce_key", cfg->security_bounce_key,
			       cfg->security_bounce_key_file, cfg->bounce_key,
			       sizeof(cfg->bounce_key), &cfg->bounce_key_len);
	if (got != 0 || cfg->bsn_key_len == 0)
		return;
	if (crypto_hmac_sha256_hex(cfg->bsn_key, cfg->bsn_key_len, label, strlen(label), hex) &&
	    crypto_hex_decode(hex, cfg->bounce_key, sizeof(cfg->bounce_key), &cfg->bounce_key_len))
		cfg->bounce_key_derived = true;
	else
		err_add(e, "%s: security: cannot derive the bounce key", cfg->path);
	OPENSSL_cleanse(hex, sizeof(hex));
}

static bool apply_defaults(struct config *cfg, struct errbuf *e)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *reason = config_set_value(cfg, k, cfg->path, k->def ? k->def : "");
		if (reason && k->def) {
			/* a broken default is a bug in the table, not the operator's */
			err_add(e, "internal: default of %s.%s: %s", k->section, k->key, reason);
			return false;
		}
	}
	return true;
}

/* The state of one pass over a file. */
struct parse {
	struct config *cfg;
	struct errbuf *e;
	const char *name;
	char section[64];
	int lineno;
	bool key_reported; /* a key's own value was refused: do not also say it is missing */
};

/* "[section]": the section the following keys belong to. */
static void parse_section(struct parse *p, const char *s)
{
	const char *rb = strchr(s, ']');
	if (!rb || rb[1] != '\0' || rb - s - 1 <= 0 || (size_t)(rb - s - 1) >= sizeof(p->section)) {
		err_add(p->e, "%s:%d: malformed section header", p->name, p->lineno);
		p->section[0] = '\0';
		return;
	}
	snprintf(p->section, sizeof(p->section), "%.*s", (int)(rb - s - 1), s + 1);
	bool known = false;
	find_key(p->section, "", &known);
	char hint[160];
	if (!known && config_suggest(p->section, NULL, hint, sizeof(hint)))
		err_add(p->e, "%s:%d: [%s]: unknown section; did you mean %s?", p->name, p->lineno,
			p->section, hint);
	else if (!known)
		err_add(p->e, "%s:%d: [%s]: unknown section", p->name, p->lineno, p->section);
}

/* "key = value" in the current section. */
static void parse_assignment(struct parse *p, char *s)
{
	char *eq = strchr(s, '=');
	if (!eq) {
		err_add(p->e, "%s:%d: expected key = value", p->name, p->lineno);
		return;
	}
	*eq = '\0';
	char *key = trim(s);
	char *value = trim(eq + 1);
	if (!*p->section) {
		err_add(p->e, "%s:%d: %s: key outside of a [section]", p->name, p->lineno, key);
		return;
	}
	bool known;
	const struct config_key *k = find_key(p->section, key, &known);
	if (!known) {
		/* checked by nobody, so each is a problem of its own */
		err_add(p->e, "%s:%d: %s.%s: key under the unknown section [%s]", p->name,
			p->lineno, p->section, key, p->section);
		return;
	}
	char hint[160];
	if (!k && config_suggest(p->section, key, hint, sizeof(hint))) {
		err_add(p->e, "%s:%d: %s.%s: unknown key; did you mean %s?", p->name, p->lineno,
			p->section, key, hint);
		return;
	}
	if (!k) {
		err_add(p->e, "%s:%d: %s.%s: unknown key", p->name, p->lineno, p->section, key);
		return;
	}
	const char *reason = config_set_value(p->cfg, k, p->name, value);
	if (reason)
		err_add(p->e, "%s:%d: %s.%s: %s: '%s'", p->name, p->lineno, p->section, key, reason,
			k->type == CFG_HEX ? "(secret)" : value);
	if (reason && k->type == CFG_HEX)
		p->key_reported = true;
}

/* "scheme:rest" (RFC 3986 3.1), printable ASCII without spaces, short enough for a type URI */
static bool uri_base_ok(const char *s)
{
	if (!s || !isalpha((unsigned char)s[0]) || strlen(s) > 200)
		return false;
	const char *p = s;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':' || !p[1])
		return false;
	for (; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
			return false;
	return true;
}

/* What follows from the keys together: the Redis URL, the keys, cross-key rules. */
static void finish(struct config *cfg, struct errbuf *e, const char *name, bool key_reported)
{
	if (cfg->redis_url && *cfg->redis_url) {
		char host[256];
		int port;
		if (config_parse_redis_url(cfg->redis_url, host, sizeof(host), &port)) {
			char *h = strdup(host);
			if (h) {
				free(cfg->redis_host);
				cfg->redis_host = h;
				cfg->redis_port = port;
			}
		}
	}
	/* reported together with any other problem, so one run shows them all */
	if (!key_reported && load_bsn_key(cfg, e))
		load_bounce_key(cfg, e);
	if (!(cfg->retention_min_days <= cfg->retention_default_days &&
	      cfg->retention_default_days <= cfg->retention_max_days))
		err_add(e, "%s: retention: need min_days <= default_days <= max_days", name);
	if (cfg->retention_agency_record_days < cfg->retention_max_days)
		err_add(e, "%s: retention: agency_record_days must be at least max_days", name);
	check_smtp_security(cfg, e);
	check_tls(cfg, e);
	if (cfg->delivery_stall_ms <= cfg->smtp_timeout_ms)
		err_add(e, "%s: delivery: stall_timeout must be longer than smtp.timeout", name);
	if (!uri_base_ok(cfg->http_problem_base))
		err_add(e,
			"%s: http.problem_base: not an absolute URI (scheme:...) of printable ASCII",
			name);
	if (cfg->ops_listen && cfg->http_listen && strcmp(cfg->ops_listen, cfg->http_listen) == 0)
		err_add(e, "%s: ops.listen: must differ from http.listen", name);
}

bool config_load_string(const char *name, const char *text, struct config *cfg, char *err,
			size_t errlen)
{
	struct errbuf e = {err, 0, errlen, 0};
	struct parse p = {.cfg = cfg, .e = &e, .name = name};

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	cfg->path = strdup(name);
	if (!cfg->path || !apply_defaults(cfg, &e))
		return false;

	char *copy = strdup(text);
	if (!copy)
		return false;
	char *save = NULL;
	/* strtok_r would skip empty lines and so lose line numbers: walk by hand */
	for (char *line = copy; line; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = '\0';
		p.lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[')
			parse_section(&p, s);
		else
			parse_assignment(&p, s);
	}
	free(copy);
	finish(cfg, &e, name, p.key_reported);
	return e.count == 0;
}

bool config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: cannot open: %s\n", path, strerror(errno));
		return false;
	}
	char *text = NULL;
	size_t cap = 0, len = 0;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *t = realloc(text, cap);
			if (!t) {
				free(text);
				fclose(f);
				return false;
			}
			text = t;
		}
		memcpy(text + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (!text) {
		text = strdup("");
		if (!text)
			return false;
	}
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: contains a NUL byte\n", path);
		return false;
	}
	bool ok = config_load_string(path, text, cfg, err, errlen);
	free(text);
	return ok;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (config_type_is_string(config_keys[i].type)) {
			char **slot = config_str_slot(cfg, &config_keys[i]);
			free(*slot);
			*slot = NULL;
		}
	}
	free(cfg->path);
	cfg->path = NULL;
	memset(cfg->bsn_key, 0, sizeof(cfg->bsn_key));
	OPENSSL_cleanse(cfg->bounce_key, sizeof(cfg->bounce_key));
	OPENSSL_cleanse(cfg->smtp_password, sizeof(cfg->smtp_password));
}

void config_write_example(FILE *out)
{
	const char *section = "";

	fputs("# berichtd.conf - documented example, generated from the key table in\n"
	      "# common/config_keys.c by `berichtd config-example`. Every key is shown with its\n"
	      "# default. Keys marked (reload) take effect on SIGHUP; the others need a\n"
	      "# restart. Unknown keys are errors. Durations: 500ms, 90s, 10m, 48h, 14d.\n",
	      out);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		if (strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "# %s%s\n", k->doc, k->reloadable ? " (reload)" : "");
		if (k->def)
			fprintf(out, "%s = %s\n", k->key, k->def);
		else
			fprintf(out, "#%s =\n", k->key);
	}
}
