"""Role matrix (issue 15): every route of both listeners, asked with no
token, a malformed one, a valid token of each role, and a revoked and an
expired one, against the real daemon. MATRIX below is the one table of what
each must answer.

A route the daemon registers (the tables daemon/routes.c lists) without a
row here fails test_matrix_covers_every_route: adding an endpoint means
adding its row, copied from one with the same roles.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from harness import assert_problem, new_oin, wait_until
from route_tables import route_entries

OK = "ok"  # the route does its work: any answer but 401/403 (and no 5xx)

NO, BAD, AGENCY, PORTAL, MINISTRY, RELAY, REVOKED, EXPIRED = COLUMNS = (
    "no token", "malformed", "agency", "portal", "ministry", "relay", "revoked", "expired")
ROLES = (AGENCY, PORTAL, MINISTRY, RELAY)

PUBLIC = (OK, OK, OK, OK, OK, OK, OK, OK)
# the route pattern exactly as in its C route table ({} is one segment)
MATRIX = [
    # listener, method, pattern,
    #    no token, malformed, agency, portal, ministry, relay, revoked, expired
    ("api", "GET", "/healthz", *PUBLIC),
    ("api", "GET", "/v1/openapi.json", *PUBLIC),
    ("api", "POST", "/v1/berichten", 401, 401, OK, 403, 403, 403, 401, 401),
    ("api", "POST", "/v1/batches", 401, 401, OK, 403, 403, 403, 401, 401),
    ("api", "POST", "/v1/ontvangers/_zoek", 401, 401, OK, 403, 403, 403, 401, 401),
    ("api", "GET", "/v1/berichten/{}", 401, 401, OK, 403, 403, 403, 401, 401),
    ("api", "GET", "/v1/statistieken/openingspercentages{?jaar,totEnMetMaand}",
     401, 401, OK, 403, 403, 403, 401, 401),
    ("api", "POST", "/v1/accounts", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "PATCH", "/v1/accounts/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "DELETE", "/v1/accounts/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "POST", "/v1/accounts/{}/emailverificaties", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "POST", "/v1/accounts/{}/emailverificaties/_bevestig",
     401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}/meldingen", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "POST", "/v1/accounts/{}/meldingen/{}/_afgehandeld",
     401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}/vertegenwoordigers", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}/vertegenwoordigingen", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}/vertegenwoordigers/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "PUT", "/v1/accounts/{}/vertegenwoordigers/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "DELETE", "/v1/accounts/{}/vertegenwoordigers/{}",
     401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}/abonnementen", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}/abonnementen/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "PUT", "/v1/accounts/{}/abonnementen/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/accounts/{}/berichten{?pagina,paginaGrootte}",
     401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "POST", "/v1/berichten/{}/openingen", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "DELETE", "/v1/berichten/{}", 401, 401, 403, OK, 403, 403, 401, 401),
    ("api", "GET", "/v1/rapportages/openingspercentages{?jaar,maand}",
     401, 401, 403, 403, OK, 403, 401, 401),
    ("api", "GET", "/v1/rapportages/notificaties{?jaar}", 401, 401, 403, 403, OK, 403, 401, 401),
    ("api", "POST", "/v1/bounces", 401, 401, 403, 403, 403, OK, 401, 401),
    ("ops", "GET", "/healthz", *PUBLIC),
    ("ops", "GET", "/readyz", *PUBLIC),
    ("ops", "GET", "/metrics", *PUBLIC),
]

# a value for the {} after each segment (a route's own id: anything that parses)
SAMPLE = {"accounts": lambda: str(uuid.uuid4()), "berichten": lambda: str(uuid.uuid4()),
          "abonnementen": new_oin, "meldingen": lambda: "1"}

# what a malformed Authorization header looks like: none of them authenticates
MALFORMED = ("Bearer not-a-token", "Bearer ", "Basic YWdlbmN5OnNlY3JldA==", "bearer" + "x" * 300,
             "Bearer " + "a" * 300)

def registered_routes():
    """(listener, method, pattern) of every route the daemon registers."""
    return {(listener, method, pattern) for listener, method, pattern, _ in route_entries()}


def test_matrix_covers_every_route():
    rows = {(listener, method, pattern) for listener, method, pattern, *_ in MATRIX}
    assert len(rows) == len(MATRIX), "a route has two rows"
    routes = registered_routes()
    assert len(routes) > 20, "the route tables were not read: %r" % routes
    missing = sorted(routes - rows)
    assert not missing, ("routes without a row in MATRIX (add one each):\n"
                         + "\n".join('    ("%s", "%s", "%s", ...),' % r for r in missing))
    assert not sorted(rows - routes), "rows for routes the daemon does not have: %r" % sorted(
        rows - routes)


def test_matrix_rows_follow_the_rules():
    """401 for no, malformed, revoked and expired tokens exactly where some
    role may call; a route is public or has at least one role."""
    for row in MATRIX:
        listener, method, pattern, *want = row
        assert len(want) == len(COLUMNS), row
        got = dict(zip(COLUMNS, want))
        allowed = [c for c in ROLES if got[c] == OK]
        assert allowed, row
        public = len(allowed) == len(ROLES)
        for c in (NO, BAD, REVOKED, EXPIRED):
            assert got[c] == (OK if public else 401), row
        for c in ROLES:
            assert got[c] in (OK, 403) and (got[c] == OK or not public), row


def sample_path(pattern):
    path = pattern.split("{?", 1)[0]
    segs = path.split("/")
    for i, s in enumerate(segs):
        if s == "{}":
            segs[i] = SAMPLE.get(segs[i - 1], lambda: str(uuid.uuid4()))()
    return "/".join(segs)


@pytest.fixture
def tokens(daemon):
    """A valid, a revoked and an expired token of each role."""
    svc = daemon.services
    oin = new_oin()
    out = {"valid": {}, "revoked": {}, "expired": {}}
    until = (datetime.now(timezone.utc) + timedelta(seconds=10)).replace(microsecond=0)
    for role in ROLES:  # first, so that they are still in the future when made
        kw = {"oin": oin} if role == AGENCY else {}
        out["expired"][role] = daemon.token(role, geldig_tot=until.isoformat(), **kw)
    for role in ROLES:
        kw = {"oin": oin} if role == AGENCY else {}
        out["valid"][role] = daemon.token(role, **kw)
        token, tid = daemon.token_with_id(role, **kw)
        p = daemon.cli("token", "revoke", tid)
        assert p.returncode == 0, p.stderr
        out["revoked"][role] = token
    # never used before they expire, so nothing of them is in the daemon's cache
    wait_until(lambda: svc.psql("SELECT now() > %s", (until,))[0][0], timeout=30,
               what="the tokens' expiry")
    return out


def ask(daemon, listener, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    body = None if method in ("GET", "DELETE") else b"{}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    if listener == "ops":
        return daemon.ops_request(method, path, headers=headers)
    return daemon.request(method, path, body=body, headers=headers)


def test_role_matrix(daemon, tokens):
    failures = []
    for listener, method, pattern, *want in MATRIX:
        expect = dict(zip(COLUMNS, want))
        allowed = [c for c in ROLES if expect[c] == OK]
        path = sample_path(pattern)
        auths = {NO: [None], BAD: list(MALFORMED)}
        for role in ROLES:
            auths[role] = ["Bearer " + tokens["valid"][role]]
        # revoked and expired tokens of a role that may call the route
        auths[REVOKED] = ["Bearer " + tokens["revoked"][allowed[0]]]
        auths[EXPIRED] = ["Bearer " + tokens["expired"][allowed[0]]]
        for column in COLUMNS:
            for authz in auths[column]:
                r = ask(daemon, listener, method, path, authz)
                status = expect[column]
                if status == OK:
                    good = r.status not in (401, 403) and r.status < 500
                else:
                    good = r.status == status
                    if good:
                        assert_problem(r, status)
                        if status == 401:
                            assert r.headers.get("WWW-Authenticate") == "Bearer", r.headers
                if not good:
                    failures.append("%s %s %s, %s: got %d, want %s (%s)" % (
                        listener, method, pattern, column, r.status, status, r.text[:120]))
    assert not failures, "%d cells wrong:\n%s" % (len(failures), "\n".join(failures))
