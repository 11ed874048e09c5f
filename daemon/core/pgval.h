/*
 * pgval.h - reading values of a PostgreSQL result in text format.
 * Pure: any thread.
 */
#ifndef BERICHTD_PGVAL_H
#define BERICHTD_PGVAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* A boolean column: true only for "t" (false for NULL and "f"). */
bool pg_bool(const PGresult *res, int row, int col);

/*
 * An integer column in decimal (bigint and smaller); 0 for NULL. (Not
 * pg_int64: libpq has a type of that name.)
 */
int64_t pg_bigint(const PGresult *res, int row, int col);

#endif
