"""The routes the daemon registers, read from the C sources: the tables
daemon/routes.c lists for each listener (api_tables, ops_tables), each
found by name in daemon/**/*.c. One parser for the tests that hold the
route tables against something else (the role matrix, the OpenAPI spec)."""
import re

from harness import REPO_ROOT

# {EVHTTP_REQ_GET, "/v1/accounts/{}", ROLE_PORTAL, false, handler}
ROUTE_ENTRY = re.compile(r'\{\s*EVHTTP_REQ_(\w+)\s*,\s*"([^"]+)"\s*,\s*([^,]+?)\s*,')
ROLE_NAMES = {"ROLE_AGENCY": "agency", "ROLE_PORTAL": "portal", "ROLE_MINISTRY": "ministry",
              "ROLE_RELAY": "relay"}


def _roles(expr):
    """The role names of a route's roles field ("ROLE_A | ROLE_B", "0")."""
    parts = [p.strip() for p in expr.split("|")]
    if parts == ["0"] or parts == ["ROLE_NONE"]:
        return frozenset()
    unknown = [p for p in parts if p not in ROLE_NAMES]
    assert not unknown, "roles field %r not understood" % expr
    return frozenset(ROLE_NAMES[p] for p in parts)


def route_entries():
    """(listener, method, pattern, roles) of every route the daemon
    registers; pattern as in its C table ({} is one segment, a trailing
    {?a,b} the query parameters it takes), roles a frozenset of role names,
    empty for a route without authentication."""
    src = (REPO_ROOT / "daemon" / "routes.c").read_text()
    files = {p: p.read_text() for p in (REPO_ROOT / "daemon").rglob("*.c")}
    out = set()
    for listener, array in (("api", "api_tables"), ("ops", "ops_tables")):
        m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % array, src, re.S)
        assert m, "no %s in daemon/routes.c" % array
        names = re.findall(r"\w+", m.group(1))
        assert names, array
        for name in names:
            table = None
            for text in files.values():
                t = re.search(r"struct http_route %s\[\]\s*=\s*\{(.*?)\n\};" % name, text, re.S)
                if t:
                    table = t.group(1)
                    break
            assert table is not None, "route table %s (in %s) not found" % (name, array)
            for method, pattern, roles in ROUTE_ENTRY.findall(table):
                out.add((listener, method, pattern, _roles(roles)))
    return out


def split_pattern(pattern):
    """"/v1/a/{}{?x,y}" -> ("/v1/a/{}", ["x", "y"])."""
    path, _, query = pattern.partition("{?")
    return path, [q for q in query.rstrip("}").split(",") if q]
