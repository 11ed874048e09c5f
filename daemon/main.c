/*
 * main.c - the berichtd command line: picks the subcommand, loads the
 * config, and hands over. `run` (the default) is the daemon; the rest are
 * operator commands.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify/bounce.h"
#include "notify/delivery.h"
#include "admin/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "core/sentinel.h"
#include "admin/migrate.h"
#include "server.h"
#include "admin/stats_cli.h"

#define DEFAULT_CONFIG "/etc/berichtd/berichtd.conf"
#define VERSION "0.1.0"

static const char *const help_run =
	"usage: berichtd run [-c FILE]\n"
	"Runs the daemon in the foreground (systemd Type=notify). SIGTERM/SIGINT stop it\n"
	"cleanly; SIGHUP re-reads the config file (a bad file keeps the old config).\n";
static const char *const help_migrate =
	"usage: berichtd migrate [-c FILE] [--dir DIR]\n"
	"Applies DIR/NNNN_name.sql in order, each in one transaction, recorded in the\n"
	"table schema_migrations. Running it again changes nothing.\n"
	"DIR defaults to the migrations/ folder next to the binary, else\n"
	"/usr/share/berichtd/migrations.\n";
static const char *const help_check =
	"usage: berichtd check-config [-c FILE]\n"
	"Exits 0 when the file is valid; otherwise prints one line per problem\n"
	"(file:line: section.key: reason) and exits 1.\n";
static const char *const help_example =
	"usage: berichtd config-example\n"
	"Prints the documented example config (every key with its default).\n";
static const char *const help_token =
	"usage: berichtd token create [-c FILE] --role agency|portal|ministry|relay\n"
	"                             [--oin OIN] [--name NAME] [--geldig-tot DATE|TIME]\n"
	"       berichtd token list [-c FILE] [--oin OIN] [--json]\n"
	"       berichtd token revoke [-c FILE] ID\n"
	"create prints a new random token once on stdout (its id on stderr); only its\n"
	"SHA-256 is stored. Role agency needs --oin (20 digits). A new agency is\n"
	"created with NAME as its display name (the name in mails); an existing one\n"
	"is never changed (NAME then names the token only; rename it with `agency\n"
	"set --name`). --geldig-tot: the token is refused from then on; a date means\n"
	"00:00 Europe/Amsterdam of that day, or give an RFC 3339 time. Several tokens\n"
	"of one agency may be valid at once (rotation: create, switch, revoke).\n"
	"list shows id, role, OIN, status, created, last used (to the minute),\n"
	"expires and name, never the secret. revoke ID: running daemons refuse it\n"
	"within [security] token_cache_ttl (at most 30 s).\n";

static const char *const help_type =
	"usage: berichtd berichttype add [-c FILE] --oin OIN --code CODE [--herinnering DURATION]\n"
	"       berichtd berichttype list [-c FILE] [--oin OIN]\n"
	"Registers a message type (1-8 of A-Z a-z 0-9 _ -) for an agency; messages of\n"
	"unregistered types are refused. --herinnering overrides the reminder interval\n"
	"for this type (e.g. 14d). The running daemon picks changes up at once.\n";

static const char *const help_bounce =
	"usage: berichtd bounce [-c FILE] < message\n"
	"Reads a delivery status notification (RFC 3464) routed back to the VERP\n"
	"address bounce+<id>@<bounce_domain>, e.g. from an MTA pipe. A hard bounce\n"
	"marks the address; delayed and temporary reports are ignored.\n";
static const char *const help_agency =
	"usage: berichtd agency set [-c FILE] --oin OIN [--mandatory yes|no] [--name NAME]\n"
	"       berichtd agency list [-c FILE] [--json]\n"
	"--mandatory yes: citizens cannot turn this agency off in the portal (its\n"
	"messages always reach an active box); no: they can (the default for new\n"
	"agencies). --name renames it (the name in mails). The agency must exist (token\n"
	"create makes it). list shows every agency with its berichttypes and active tokens.\n";
static const char *const help_stats =
	"usage: berichtd stats rebuild [-c FILE] [--van DATE --tot DATE] [--force]\n"
	"Recomputes the open-rate rollups of the cohorts (publication days in\n"
	"Europe/Amsterdam) van <= day < tot (YYYY-MM-DD; default: all) from the raw\n"
	"message rows, e.g. after a restore. The result equals what the triggers keep\n"
	"incrementally. Writes to messages wait meanwhile. Refuses when raw rows of a\n"
	"cohort in the range were purged by retention (--force rebuilds anyway).\n"
	"Prints the number of messages and rows/s.\n";

static const char *const help_report =
	"usage: berichtd report [-c FILE] --jaar YYYY [--maand M] --format csv|json|html\n"
	"                       --out FILE\n"
	"Writes the ministry's open-rate report (per agency, berichttype and paper copy,\n"
	"with the change against the previous year) from the rollups. html is one\n"
	"self-contained printable page with a table and a chart; --out - is stdout.\n";

struct opts {
	const char *config;
	const char *dir;
	const char *role;
	const char *oin;
	const char *name;
	const char *code;
	const char *herinnering;
	const char *mandatory;
	const char *geldig_tot;
	const char *arg; /* the one positional argument (token revoke ID) */
	const char *van, *tot, *jaar, *maand, *format, *out;
	bool force;
	bool json;
	bool help;
};

/* Parses -c/--config and the options of one subcommand; false on bad usage. */
static bool parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"dir", required_argument, NULL, 'd'},
		{"role", required_argument, NULL, 'r'},
		{"oin", required_argument, NULL, 'o'},
		{"name", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{"code", required_argument, NULL, 't'},
		{"herinnering", required_argument, NULL, 'e'},
		{"mandatory", required_argument, NULL, 'M'},
		{"van", required_argument, NULL, 'V'},
		{"tot", required_argument, NULL, 'T'},
		{"jaar", required_argument, NULL, 'j'},
		{"maand", required_argument, NULL, 'm'},
		{"format", required_argument, NULL, 'f'},
		{"out", required_argument, NULL, 'O'},
		{"force", no_argument, NULL, 'F'},
		{"geldig-tot", required_argument, NULL, 'G'},
		{"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'd': o->dir = optarg; break;
		case 'r': o->role = optarg; break;
		case 'o': o->oin = optarg; break;
		case 'n': o->name = optarg; break;
		case 't': o->code = optarg; break;
		case 'e': o->herinnering = optarg; break;
		case 'M': o->mandatory = optarg; break;
		case 'V': o->van = optarg; break;
		case 'T': o->tot = optarg; break;
		case 'j': o->jaar = optarg; break;
		case 'm': o->maand = optarg; break;
		case 'f': o->format = optarg; break;
		case 'O': o->out = optarg; break;
		case 'F': o->force = true; break;
		case 'G': o->geldig_tot = optarg; break;
		case 'J': o->json = true; break;
		case 'h': o->help = true; break;
		default: return false;
		}
	}
	if (optind < argc)
		o->arg = argv[optind++];
	return optind == argc;
}

static bool load(const struct opts *o, struct config *cfg)
{
	char err[CONFIG_ERR_MAX];

	if (!config_load(o->config, cfg, err, sizeof(err))) {
		fputs(err, stderr);
		config_free(cfg);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ the commands */

static int cmd_run(struct config *cfg, const struct opts *o, const char *action)
{
	(void)o;
	(void)action;
	enum log_level lvl = LOG_INFO;
	log_level_parse(cfg->log_level, &lvl);
	/* quiet hours are local time: set the zone once, before any thread */
	setenv("TZ", cfg->notify_timezone, 1);
	tzset();
	if (!log_open(lvl, cfg->log_file)) {
		fprintf(stderr, "berichtd: cannot open log file %s\n", cfg->log_file);
		return 1;
	}
	int rc = server_run(cfg);
	log_close();
	return rc;
}

static int cmd_migrate(struct config *cfg, const struct opts *o, const char *action)
{
	(void)action;
	return migrate_run(cfg, o->dir ? o->dir : migrate_default_dir());
}

/* Loading the file checked its keys; then what start needs of them besides the services. */
static int cmd_check(struct config *cfg, const struct opts *o, const char *action)
{
	(void)o;
	(void)action;
	int problems = delivery_check(cfg, stderr);
	sentinel_config_warn(cfg, stderr);
	if (problems > 0) {
		fprintf(stderr, "%s: %d problem(s): start would fail\n", cfg->path, problems);
		return 1;
	}
	return 0;
}

static int cmd_example(struct config *cfg, const struct opts *o, const char *action)
{
	(void)cfg;
	(void)o;
	(void)action;
	config_write_example(stdout);
	return 0;
}

static int cmd_token(struct config *cfg, const struct opts *o, const char *action)
{
	if (strcmp(action, "list") == 0)
		return cli_token_list(cfg, o->oin, o->json);
	if (strcmp(action, "revoke") == 0)
		return cli_token_revoke(cfg, o->arg);
	return cli_token_create(cfg, o->role, o->oin, o->name, o->geldig_tot);
}

static int cmd_type(struct config *cfg, const struct opts *o, const char *action)
{
	return strcmp(action, "add") == 0
		       ? cli_berichttype_add(cfg, o->oin, o->code, o->herinnering)
		       : cli_berichttype_list(cfg, o->oin);
}

static int cmd_bounce(struct config *cfg, const struct opts *o, const char *action)
{
	(void)o;
	(void)action;
	return bounce_cli(cfg, stdin);
}

static int cmd_agency(struct config *cfg, const struct opts *o, const char *action)
{
	if (strcmp(action, "list") == 0)
		return cli_agency_list(cfg, o->json);
	return cli_agency_set(cfg, o->oin, o->mandatory, o->name);
}

static int cmd_stats(struct config *cfg, const struct opts *o, const char *action)
{
	(void)action;
	return stats_cli_rebuild(cfg, o->van, o->tot, o->force);
}

static int cmd_report(struct config *cfg, const struct opts *o, const char *action)
{
	(void)action;
	return stats_cli_report(cfg, o->jaar, o->maand, o->format, o->out);
}

enum cmd_kind {
	CMD_CONFIG,    /* options, then the config file, then the handler */
	CMD_NO_CONFIG, /* options, then the handler (cfg is NULL) */
	CMD_AT_ONCE,   /* the handler before anything else (version, help) */
};

struct command {
	const char *name;
	const char *synopsis;       /* the usage line's left column; NULL: not listed */
	const char *summary;        /* the usage line's right column */
	const char *help;           /* `COMMAND --help`, and on bad usage (to stderr) */
	const char *const *actions; /* the second word it needs (NULL-ended), or NULL */
	enum cmd_kind kind;
	int (*handler)(struct config *cfg, const struct opts *o, const char *action);
	const char *arg_action; /* the action that takes one positional argument, or NULL */
};

static const char *const token_actions[] = {"create", "list", "revoke", NULL};
static const char *const type_actions[] = {"add", "list", NULL};
static const char *const agency_actions[] = {"set", "list", NULL};
static const char *const stats_actions[] = {"rebuild", NULL};

static int cmd_version(struct config *cfg, const struct opts *o, const char *action);
static int cmd_help(struct config *cfg, const struct opts *o, const char *action);

static const struct command commands[] = {
	{"run", "run", "run the daemon (the default)", help_run, NULL, CMD_CONFIG, cmd_run, NULL},
	{"migrate", "migrate", "apply database migrations", help_migrate, NULL, CMD_CONFIG,
	 cmd_migrate, NULL},
	{"check-config", "check-config", "validate the config file", help_check, NULL, CMD_CONFIG,
	 cmd_check, NULL},
	{"config-example", "config-example", "print the documented example config", help_example,
	 NULL, CMD_NO_CONFIG, cmd_example, NULL},
	{"token", "token create|list|revoke", "API tokens: create (printed once), list, revoke",
	 help_token, token_actions, CMD_CONFIG, cmd_token, "revoke"},
	{"berichttype", "berichttype add|list", "register an agency's message types", help_type,
	 type_actions, CMD_CONFIG, cmd_type, NULL},
	{"bounce", "bounce", "read a delivery status notification from stdin", help_bounce, NULL,
	 CMD_CONFIG, cmd_bounce, NULL},
	{"agency", "agency set|list", "rename an agency, mark it mandatory; list them", help_agency,
	 agency_actions, CMD_CONFIG, cmd_agency, NULL},
	{"stats", "stats rebuild", "recompute the statistics rollups from the raw messages",
	 help_stats, stats_actions, CMD_CONFIG, cmd_stats, NULL},
	{"report", "report", "write the annual open-rate report (csv, json or html)", help_report,
	 NULL, CMD_CONFIG, cmd_report, NULL},
	{"version", "version", "print the version", NULL, NULL, CMD_AT_ONCE, cmd_version, NULL},
	{"help", NULL, NULL, NULL, NULL, CMD_AT_ONCE, cmd_help, NULL},
};

#define USAGE_COLUMN 15

static void usage(FILE *out)
{
	fputs("usage: berichtd [COMMAND] [-c FILE] [options]\n\ncommands:\n", out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		if (!c->synopsis)
			continue;
		int len = (int)strlen(c->synopsis);
		fprintf(out, "  %s%*s%s\n", c->synopsis,
			len < USAGE_COLUMN ? USAGE_COLUMN - len : 2, "", c->summary);
	}
	fputs("\n"
	      "`berichtd COMMAND --help` describes each command.\n"
	      "-c FILE defaults to " DEFAULT_CONFIG ".\n",
	      out);
}

static int cmd_version(struct config *cfg, const struct opts *o, const char *action)
{
	(void)cfg;
	(void)o;
	(void)action;
	printf("berichtd %s\n", VERSION);
	return 0;
}

static int cmd_help(struct config *cfg, const struct opts *o, const char *action)
{
	(void)cfg;
	(void)o;
	(void)action;
	usage(stdout);
	return 0;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static bool is_action(const struct command *c, const char *word)
{
	for (const char *const *a = c->actions; *a; a++)
		if (strcmp(*a, word) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct opts o = {.config = DEFAULT_CONFIG};
	const char *name = "run";
	const char *action = "";
	int skip = 1;

	if (argc > 1 && argv[1][0] != '-') {
		name = argv[1];
		skip = 2;
	} else if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	const struct command *c = find_command(name);
	if (!c) {
		fprintf(stderr, "berichtd: unknown command '%s'\n", name);
		usage(stderr);
		return 2;
	}
	if (c->kind == CMD_AT_ONCE)
		return c->handler(NULL, &o, action);
	if (c->actions) {
		/* `COMMAND ACTION [options]`, or `COMMAND --help` */
		if (argc < 3 || (!is_action(c, argv[2]) && strcmp(argv[2], "--help") != 0)) {
			fputs(c->help, stderr);
			return 2;
		}
		if (strcmp(argv[2], "--help") != 0) {
			action = argv[2];
			skip = 3;
		}
	}

	/* getopt sees argv[0] then the subcommand's own arguments */
	if (!parse_opts(argc - skip + 1, argv + skip - 1, &o) ||
	    (o.arg && !(c->arg_action && strcmp(action, c->arg_action) == 0))) {
		fputs(c->help, stderr);
		return 2;
	}
	if (o.help) {
		fputs(c->help, stdout);
		return 0;
	}
	if (c->kind == CMD_NO_CONFIG)
		return c->handler(NULL, &o, action);

	struct config cfg;
	if (!load(&o, &cfg))
		return 1;
	int rc = c->handler(&cfg, &o, action);
	config_free(&cfg);
	return rc;
}
