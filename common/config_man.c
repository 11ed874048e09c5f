/*
 * config_man.c - berichtd.conf(5), written from the key table
 * (config_keys.c) by `berichtd man 5`, so the manual names every key with
 * its type, default, bounds and documentation as the parser knows them.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "config_impl.h"
#include "install.h"
#include "roff.h"

#define MS_SECOND 1000LL
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define MILLI 1000

static const char *type_name(enum config_type t)
{
	switch (t) {
	case CFG_STRING: return "string";
	case CFG_PATH: return "path, relative to the directory of this file";
	case CFG_INT: return "integer";
	case CFG_DURATION: return "duration";
	case CFG_SIZE: return "size";
	case CFG_HOSTPORT: return "host:port";
	case CFG_HOSTPORTS: return "host:port,... (a list)";
	case CFG_QUIET: return "HH:MM-HH:MM or off";
	case CFG_TIMEZONE: return "time zone";
	case CFG_LOGLEVEL: return "log level";
	case CFG_HEX: return "secret key in hex";
	case CFG_REDIS_URL: return "redis URL";
	case CFG_BOOL: return "true or false";
	case CFG_MILLI: return "decimal, at most 3 decimals";
	}
	return "value";
}

/* A bound in the unit the file is written in: 90s, 16m (bytes), 0.001. */
static void write_bound(FILE *out, enum config_type t, int64_t v)
{
	static const struct {
		int64_t unit;
		const char *suffix;
	} durations[] = {{MS_DAY, "d"}, {MS_HOUR, "h"}, {MS_MINUTE, "m"}, {MS_SECOND, "s"}},
	  sizes[] = {{GIB, "g"}, {MIB, "m"}, {KIB, "k"}};

	if (t == CFG_MILLI) {
		fprintf(out, "%" PRId64, v / MILLI);
		int frac = (int)(v % MILLI);
		if (frac)
			fputc('.', out);
		/* the thousandths' digits up to the last that is not 0 */
		for (int digit = MILLI / 10; frac; digit /= 10) {
			fputc('0' + frac / digit, out);
			frac %= digit;
		}
		return;
	}
	if (t == CFG_DURATION && v != 0) {
		for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
			if (v % durations[i].unit == 0) {
				fprintf(out, "%" PRId64 "%s", v / durations[i].unit,
					durations[i].suffix);
				return;
			}
		fprintf(out, "%" PRId64 "ms", v);
		return;
	}
	if (t == CFG_DURATION) {
		fputs("0s", out);
		return;
	}
	if (t == CFG_SIZE && v != 0)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			if (v % sizes[i].unit == 0) {
				fprintf(out, "%" PRId64 "%s", v / sizes[i].unit, sizes[i].suffix);
				return;
			}
	fprintf(out, "%" PRId64, v);
}

static void write_key(FILE *out, const struct config_key *k)
{
	fputs(".TP\n\\fB", out);
	roff_span(out, k->key, strlen(k->key));
	fputs("\\fR", out);
	if (k->def) {
		fputs(" = \\fI", out);
		roff_span(out, k->def, strlen(k->def));
		fputs("\\fR", out);
	}
	fputs("\n(", out);
	roff_span(out, type_name(k->type), strlen(type_name(k->type)));
	if (k->min != 0 || k->max != 0) {
		fputs(", ", out);
		write_bound(out, k->type, k->min);
		fputs(" to ", out);
		write_bound(out, k->type, k->max);
	}
	fputs(k->def ? ")\n" : "; empty by default)\n", out);
	roff_text(out, k->doc);
	fputs(k->reloadable ? "Changed by a reload (SIGHUP).\n" : "", out);
}

static const char *const head =
	".TH BERICHTD.CONF 5 \"\" \"berichtd " BERICHTD_VERSION "\" \"File Formats Manual\"\n"
	".SH NAME\n"
	"berichtd.conf \\- configuration file of berichtd\n"
	".SH SYNOPSIS\n" BERICHTD_CONFIG_FILE "\n"
	".SH DESCRIPTION\n"
	".BR berichtd (8)\n"
	"reads one INI file, " BERICHTD_CONFIG_FILE " unless \\fB\\-c\\fR \\fIFILE\\fR names "
	"another. A line \\fB[\\fIsection\\fB]\\fR starts a section, \\fIkey\\fR \\fB=\\fR "
	"\\fIvalue\\fR sets one of its keys, and a line starting with \\fB#\\fR or \\fB;\\fR is "
	"a comment (on a line of its own only). A key left out has its default. Unknown "
	"sections and keys are errors, with the nearest known name suggested, so a typo never "
	"falls back to a default. Relative paths are resolved against the directory of the "
	"file.\n"
	".PP\n"
	"\\fBberichtd check\\-config \\-c\\fR \\fIFILE\\fR checks a file (one line per problem: "
	"file:line: section.key: reason); \\fBberichtd config\\-example\\fR prints every key "
	"with its default and documentation, generated from the same table as this page. A "
	"few keys take effect on a reload (SIGHUP, \\fBsystemctl reload berichtd\\fR), said "
	"below; the others need a restart. A reload with a bad file keeps the configuration "
	"running.\n"
	".SH VALUES\n"
	".TP\n"
	".B duration\n"
	"A number and a unit: 500ms, 90s, 10m, 48h, 14d (a bare number means seconds).\n"
	".TP\n"
	".B size\n"
	"Bytes, or a number with k, m or g (1024, 1024\\(ha2, 1024\\(ha3): 512k, 16m.\n"
	".TP\n"
	".B host:port\n"
	"127.0.0.1:8080, or [::1]:8080 for IPv6.\n"
	".TP\n"
	".B time zone\n"
	"A name of the tz database (/usr/share/zoneinfo), e.g. Europe/Amsterdam, or UTC.\n"
	".TP\n"
	".B secret key in hex\n"
	"32 to 64 random bytes in hex (openssl rand \\-hex 32); better kept in a file of its "
	"own (the _file keys) or a systemd credential than in this file.\n"
	".SH KEYS\n";

static const char *const tail =
	".SH FILES\n"
	".TP\n" BERICHTD_CONFIG_FILE "\n"
	"This file. The package installs the example of \\fBberichtd config\\-example\\fR "
	"there, with [templates] dir set to the packaged templates.\n"
	".TP\n"
	"/etc/berichtd/bsn.key\n"
	"The BSN hashing key, made once by the administrator (openssl rand \\-hex 32 > "
	"/etc/berichtd/bsn.key; chmod 600); handed to the daemon as the systemd credential "
	"bsn.key.\n"
	".TP\n" BERICHTD_DATADIR "/templates\n"
	"The mail templates of the package.\n"
	".SH SEE ALSO\n"
	".BR berichtd (8),\n"
	".BR systemd.exec (5)\n";

void config_write_man(FILE *out)
{
	fputs(head, out);
	/* the table keeps a section's keys apart at times: each section once, in first order */
	for (size_t i = 0; i < config_nkeys; i++) {
		const char *section = config_keys[i].section;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(config_keys[j].section, section) == 0;
		if (seen)
			continue;
		fprintf(out, ".SS [%s]\n", section);
		for (size_t j = i; j < config_nkeys; j++)
			if (strcmp(config_keys[j].section, section) == 0)
				write_key(out, &config_keys[j]);
	}
	fputs(tail, out);
}
