/*
 * fuzz_route.c - daemon/core/route.c: request paths against every route
 * pattern the daemon has (and, after a '\x1f', patterns of the input's
 * own). A match must capture non-empty segments inside the path.
 */
#include <string.h>

#include "core/route.h"
#include "fuzz.h"

static const char *const PATTERNS[] = {
	"/healthz",
	"/v1/berichten",
	"/v1/berichten/{}",
	"/v1/berichten/{}/openingen",
	"/v1/batches",
	"/v1/ontvangers/_zoek",
	"/v1/accounts",
	"/v1/accounts/{}",
	"/v1/accounts/{}/berichten{?pagina,paginaGrootte}",
	"/v1/accounts/{}/meldingen",
	"/v1/accounts/{}/meldingen/{}/_afgehandeld",
	"/v1/accounts/{}/abonnementen/{}",
	"/v1/accounts/{}/emailverificaties/_bevestig",
	"/v1/rapportages/openingspercentages{?jaar,maand}",
	"/v1/statistieken/openingspercentages{?jaar}",
	"/v1/openapi.json",
	"/v1/{}/{}/{}/{}{?}",
};

static void try(const char *pattern, const char *path)
{
	size_t n = strlen(path);
	char *copy = malloc(n + 1);
	if (!copy)
		abort();
	memcpy(copy, path, n + 1);
	const char *params[ROUTE_MAX_PARAMS];
	int np = -1;
	if (route_match(pattern, copy, params, &np)) {
		if (np < 0 || np > ROUTE_MAX_PARAMS)
			abort();
		for (int i = 0; i < np; i++)
			if (params[i] < copy || params[i] >= copy + n || !*params[i] ||
			    strchr(params[i], '/'))
				abort();
	}
	(void)route_has_query_list(pattern);
	(void)route_query_listed(pattern, path);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	char *f[2];
	fuzz_fields(s, f, 2);
	for (size_t i = 0; i < sizeof(PATTERNS) / sizeof(PATTERNS[0]); i++)
		try(PATTERNS[i], f[0]);
	if (*f[1])
		try(f[1], f[0]);
	(void)route_name_echoable(f[0]);
	free(s);
	return 0;
}
