/*
 * pgval.c - PostgreSQL text values (pgval.h).
 */
#include "core/pgval.h"

#include <stdlib.h>

bool pg_bool(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}

int64_t pg_bigint(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}
