/*
 * migrate.c - schema migrations (see migrate.h).
 */
#include "admin/migrate.h"

#include <dirent.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/install.h"
#include "common/log.h"
#include "core/pgpool.h"

#define MIGRATION_LOCK_KEY "7260414" /* arbitrary, fixed: one lock for all instances */
#define MAX_MIGRATIONS 1000
#define PATH_LEN 4096
#define INSTALLED_DIR BERICHTD_DATADIR "/migrations"

static char default_dir[PATH_LEN];

const char *migrate_default_dir(void)
{
	char exe[PATH_LEN];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;

	if (n > 0) {
		exe[n] = '\0';
		snprintf(default_dir, sizeof(default_dir), "%s/../migrations", dirname(exe));
		if (stat(default_dir, &st) == 0 && S_ISDIR(st.st_mode))
			return default_dir;
	}
	return INSTALLED_DIR;
}

/* NNNN_name.sql */
static bool is_migration(const char *name)
{
	size_t len = strlen(name);
	if (len < 10 || strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
		return false;
	for (int i = 0; i < 4; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
	if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[len] = '\0';
	fclose(f);
	return buf;
}

static bool exec_ok(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "migrate: %s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static bool applied(PGconn *c, const char *version, bool *yes)
{
	const char *params[] = {version};
	PGresult *r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
				   params, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	*yes = ok && PQntuples(r) == 1;
	PQclear(r);
	return ok;
}

static bool apply_one(PGconn *c, const char *dir, const char *name)
{
	char path[PATH_LEN], version[5];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(version, sizeof(version), "%.4s", name);

	char *sql = read_file(path);
	if (!sql) {
		fprintf(stderr, "migrate: cannot read %s\n", path);
		return false;
	}
	bool ok = exec_ok(c, "BEGIN", "begin") && exec_ok(c, sql, name);
	free(sql);
	if (ok) {
		const char *params[] = {version, name};
		PGresult *r = PQexecParams(c,
					   "INSERT INTO schema_migrations (version, name) "
					   "VALUES ($1, $2)",
					   2, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			fprintf(stderr, "migrate: record %s: %s", name, PQresultErrorMessage(r));
		PQclear(r);
	}
	if (ok && exec_ok(c, "COMMIT", "commit")) {
		printf("applied %s\n", name);
		return true;
	}
	exec_ok(c, "ROLLBACK", "rollback");
	return false;
}

int migrate_run(const struct config *cfg, const char *dir)
{
	char *names[MAX_MIGRATIONS];
	int n = 0, rc = 1;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "migrate: cannot open %s\n", dir);
		return 1;
	}
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_MIGRATIONS)
		if (is_migration(e->d_name))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);

	PGconn *c = pgconn_open(cfg->pg_conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "migrate: %s", PQerrorMessage(c));
		goto out;
	}
	if (!exec_ok(c, "SET client_min_messages = warning", "settings") ||
	    !exec_ok(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", "lock") ||
	    !exec_ok(c,
		     "CREATE TABLE IF NOT EXISTS schema_migrations ("
		     " version text PRIMARY KEY, name text NOT NULL,"
		     " applied_at timestamptz NOT NULL DEFAULT now())",
		     "schema_migrations"))
		goto out;

	int done = 0;
	for (int i = 0; i < n; i++) {
		char version[5];
		bool yes;
		snprintf(version, sizeof(version), "%.4s", names[i]);
		if (!applied(c, version, &yes))
			goto out;
		if (yes)
			continue;
		if (!apply_one(c, dir, names[i]))
			goto out;
		done++;
	}
	printf("migrate: %d applied, %d already there\n", done, n - done);
	rc = 0;
out:
	PQfinish(c);
	for (int i = 0; i < n; i++)
		free(names[i]);
	return rc;
}
