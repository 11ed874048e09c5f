/*
 * reload.h - SIGHUP: the config file read again, checked as check-config
 * checks it, and every reloadable key applied (docs/operations.md "Reload
 * and drain").
 *
 * A file with problems changes nothing: each problem is logged as a line
 * of its own. Otherwise each changed key is logged, with `applied` or
 * `needs restart` (its name only, never its value), and app->cfg becomes a
 * new generation: the running config with every reloadable key taken from
 * the file. Generations are kept until reload_free (at exit), since a
 * delivery worker may still read an older one. Loop thread.
 */
#ifndef BERICHTD_RELOAD_H
#define BERICHTD_RELOAD_H

#include "core/app.h"

struct reload;

struct reload *reload_new(struct app *app);
/* Reads app->cfg->path again and applies what it may; false when the file was refused. */
bool reload_run(struct reload *rl);
/* After the workers are joined: frees every generation it made. */
void reload_free(struct reload *rl);

#endif
