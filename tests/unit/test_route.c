/*
 * test_route.c - specification of daemon/core/route: path patterns with {}
 * segments and the "{?a,b}" list of query parameters a route accepts.
 *
 * needs: daemon/core/route.c, common/utf8.c
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/core/route.h"

static bool match(const char *pattern, const char *path, const char **params, int *n,
		  char *buf, size_t size)
{
	snprintf(buf, size, "%s", path);
	*n = -1;
	return route_match(pattern, buf, params, n);
}

Test(route, a_literal_path_matches_only_itself)
{
	char buf[128];
	const char *p[ROUTE_MAX_PARAMS];
	int n;
	cr_assert(match("/v1/berichten", "/v1/berichten", p, &n, buf, sizeof(buf)));
	cr_assert_eq(n, 0);
	cr_assert_not(match("/v1/berichten", "/v1/bericht", p, &n, buf, sizeof(buf)));
	cr_assert_not(match("/v1/berichten", "/v1/berichtenx", p, &n, buf, sizeof(buf)));
	cr_assert_not(match("/v1/berichten", "/", p, &n, buf, sizeof(buf)));
}

Test(route, braces_capture_one_non_empty_segment)
{
	char buf[128];
	const char *p[ROUTE_MAX_PARAMS];
	int n;
	cr_assert(match("/v1/accounts/{}/abonnementen/{}", "/v1/accounts/abc/abonnementen/123", p,
			&n, buf, sizeof(buf)));
	cr_assert_eq(n, 2);
	cr_assert_str_eq(p[0], "abc");
	cr_assert_str_eq(p[1], "123");
	cr_assert_not(match("/v1/accounts/{}", "/v1/accounts/", p, &n, buf, sizeof(buf)));
	cr_assert_not(match("/v1/accounts/{}", "/v1/accounts/a/b", p, &n, buf, sizeof(buf)));
	cr_assert_not(match("/v1/accounts/{}/x", "/v1/accounts//x", p, &n, buf, sizeof(buf)));
	cr_assert(match("/v1/berichten/{}/openingen", "/v1/berichten/id/openingen", p, &n, buf,
			sizeof(buf)));
	cr_assert_str_eq(p[0], "id");
}

Test(route, a_trailing_slash_is_another_path)
{
	char buf[128];
	const char *p[ROUTE_MAX_PARAMS];
	int n;
	cr_assert_not(match("/v1/berichten", "/v1/berichten/", p, &n, buf, sizeof(buf)));
	cr_assert_not(match("/v1/accounts/{}", "/v1/accounts/a/", p, &n, buf, sizeof(buf)));
	cr_assert(match("/v1/x/", "/v1/x/", p, &n, buf, sizeof(buf)));
}

Test(route, more_captures_than_params_do_not_match)
{
	char buf[128];
	const char *p[ROUTE_MAX_PARAMS];
	int n;
	cr_assert(match("/{}/{}/{}/{}", "/a/b/c/d", p, &n, buf, sizeof(buf)));
	cr_assert_eq(n, 4);
	cr_assert_not(match("/{}/{}/{}/{}/{}", "/a/b/c/d/e", p, &n, buf, sizeof(buf)));
}

Test(route, the_query_list_is_not_part_of_the_path)
{
	char buf[128];
	const char *p[ROUTE_MAX_PARAMS];
	int n;
	cr_assert(match("/v1/berichten{?van,tot}", "/v1/berichten", p, &n, buf, sizeof(buf)));
	cr_assert(match("/v1/accounts/{}/berichten{?pagina}", "/v1/accounts/a/berichten", p, &n,
			buf, sizeof(buf)));
	cr_assert_str_eq(p[0], "a");
	cr_assert_not(match("/v1/berichten{?van}", "/v1/berichten{?van}", p, &n, buf,
			    sizeof(buf)));
}

Test(route, query_lists)
{
	cr_assert(route_has_query_list("/v1/x{?a}"));
	cr_assert(route_has_query_list("/v1/x{?}"));
	cr_assert_not(route_has_query_list("/v1/x/{}"));
	cr_assert(route_query_listed("/v1/x{?jaar,maand}", "jaar"));
	cr_assert(route_query_listed("/v1/x{?jaar,maand}", "maand"));
	cr_assert_not(route_query_listed("/v1/x{?jaar,maand}", "jaa"));
	cr_assert_not(route_query_listed("/v1/x{?jaar,maand}", "jaar,maand"));
	cr_assert_not(route_query_listed("/v1/x{?jaar,maand}", ""));
	cr_assert_not(route_query_listed("/v1/x", "jaar"));
	cr_assert_not(route_query_listed("/v1/x{?}", "jaar"));
}

Test(route, only_short_printable_names_are_echoed)
{
	char longname[80];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert(route_name_echoable("pagina"));
	cr_assert(route_name_echoable("na\xc3\xaf" "ef"));
	cr_assert_not(route_name_echoable(""));
	cr_assert_not(route_name_echoable("a\nb"));
	cr_assert_not(route_name_echoable("a\x7f"));
	cr_assert_not(route_name_echoable("\xff\xfe"));
	cr_assert_not(route_name_echoable(longname));
}
