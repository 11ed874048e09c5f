"""The running daemon answers as docs/openapi.yaml says, and the spec has
exactly the routes the daemon registers.

test_spec_lists_exactly_the_routes_of_the_tables holds the spec against the
C route tables (daemon/routes.c, read as test_role_matrix.py reads them):
every API route is a path and method of the spec, with the roles of its
table as its security and the query parameters of its "{?...}" list; the
spec has nothing else, and nothing of the operators' listener.

The conformance tests call every operation at least once with success and
once with an error, and validate each answer against the spec: the status
is documented, with the documented content type and headers (API-Version
on every response), and a JSON body must validate against the documented
schema (python3-jsonschema, OpenAPI 3.0 mapped onto draft 2020-12) with no
field the schema does not name. The JSON body of a request that succeeds
must validate against the documented request schema too. The spec is read
with python3-yaml."""
import json
import re
import secrets

import jsonschema
import pytest
import yaml

from harness import REPO_ROOT, SECRETS, dsn_text, make_agency, make_citizen
from route_tables import route_entries, split_pattern

SPEC = yaml.safe_load((REPO_ROOT / "docs" / "openapi.yaml").read_text())
PREFIX = "/v1"
METHODS = ("get", "post", "put", "patch", "delete")
# OpenAPI 3.0 keywords that JSON Schema does not have (or that assert nothing)
NOT_JSON_SCHEMA = ("nullable", "example", "examples", "description", "discriminator", "xml",
                   "externalDocs", "deprecated", "readOnly", "writeOnly")


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def json_schema(node, closed=True):
    """An OpenAPI 3.0 schema as JSON Schema (draft 2020-12), $refs inlined.
    nullable becomes a null type; an object schema that does not say
    otherwise is closed (unevaluatedProperties false), so that a field the
    spec does not name fails; the branches of an allOf are not closed
    themselves, the allOf is."""
    node = resolve(node)
    out = {}
    for k, v in node.items():
        if k in NOT_JSON_SCHEMA:
            continue
        if k == "properties":
            out[k] = {name: json_schema(sub) for name, sub in v.items()}
        elif k in ("items", "not") or (k == "additionalProperties" and isinstance(v, dict)):
            out[k] = json_schema(v)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [json_schema(sub, closed=False) for sub in v]
        else:
            out[k] = v
    if closed and "additionalProperties" not in node and ("properties" in node or "allOf" in node):
        out["unevaluatedProperties"] = False
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def validate(value, schema, where):
    v = jsonschema.Draft202012Validator(json_schema(schema),
                                        format_checker=jsonschema.FormatChecker())
    errors = sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))
    assert not errors, "%s: %s" % (where, "; ".join(
        "%s: %s" % ("/".join(map(str, e.absolute_path)) or "(body)", e.message[:200])
        for e in errors))


def full_path(template, item):
    return template if "servers" in item else PREFIX + template


def find_operation(method, path):
    """(template, operation) of the spec for a concrete request path."""
    for template, item in SPEC["paths"].items():
        full = full_path(template, item)
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(full)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None, None


covered = set()  # (template, method, "ok" or "error")
# a batch is judged item by item: an invalid item is a result of its 200, not a 400
ITEMWISE = {"postBatch"}


def conforms(r, method, path, json_body=None):
    """Asserts that response r to METHOD path is documented; returns r."""
    template, op = find_operation(method, path.split("?")[0])
    assert op, "%s %s is not in docs/openapi.yaml" % (method, path)
    covered.add((template, method.lower(), "ok" if r.status < 400 else "error"))
    responses = op["responses"]
    assert str(r.status) in responses, "%s %s: status %d not documented (%s)" % (
        method, path, r.status, sorted(responses))
    resp = resolve(responses[str(r.status)])
    for h in resp.get("headers", {}):
        assert h in r.headers, "%s %s %d: documented header %s missing" % (
            method, path, r.status, h)
    assert "API-Version" in r.headers
    where = "%s %s %d" % (method, path, r.status)
    if json_body is not None and r.status < 400 and op["operationId"] not in ITEMWISE:
        body = resolve(op.get("requestBody", {})).get("content", {}).get("application/json")
        assert body, "%s: a JSON body sent, but the spec takes none" % where
        validate(json_body, body["schema"], where + " (request)")
    content = resp.get("content")
    if not content:
        assert not r.body, "%s: undocumented body" % where
        return r
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype in content, "%s: content type %s not in %s" % (where, ctype, sorted(content))
    if ctype.endswith("json"):
        validate(r.json(), content[ctype]["schema"], where)
    return r


def test_spec_lists_exactly_the_routes_of_the_tables():
    """Without a daemon: the spec and the C route tables say the same."""
    routes = route_entries()
    assert len(routes) > 20, "the route tables were not read: %r" % routes
    spec = {}
    for template, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                spec[(method.upper(), re.sub(r"\{[^}]+\}", "{}", full_path(template, item)))] = (
                    template, item[method])
    api = {}
    for listener, method, pattern, roles in routes:
        path, query = split_pattern(pattern)
        if listener == "api":
            api[(method, path)] = (roles, query)
    missing = sorted(set(api) - set(spec))
    assert not missing, "routes of daemon/routes.c not in docs/openapi.yaml: %s" % missing
    extra = sorted(set(spec) - set(api))
    assert not extra, "paths in docs/openapi.yaml that no API route table serves: %s" % extra
    for key, (template, op) in spec.items():
        roles, query = api[key]
        security = op.get("security", SPEC.get("security", []))
        schemes = {name for req in security for name in req}
        assert schemes == set(roles), "%s %s: security %s, the table's roles %s" % (
            key[0], template, sorted(schemes), sorted(roles))
        for name in schemes:
            assert name in SPEC["components"]["securitySchemes"], name
        params = [resolve(p) for p in op.get("parameters", [])]
        assert sorted(p["name"] for p in params if p["in"] == "query") == sorted(query), (
            "%s %s: query parameters differ from the route's {?...} list %s" % (
                key[0], template, query))
        assert sorted(p["name"] for p in params if p["in"] == "path") == sorted(
            re.findall(r"\{([^}]+)\}", template)), "%s %s: path parameters" % key
        for status, resp in op["responses"].items():
            for ctype in resolve(resp).get("content", {}):
                if int(status) >= 400:
                    assert ctype == "application/problem+json", (key, status, ctype)
    # the operators' listener is documented in docs/operations.md, never here
    for listener, method, pattern, _ in routes:
        if listener == "ops" and pattern != "/healthz":
            assert (method, pattern) not in spec, pattern


def spec_examples(node=None, where="#"):
    """(example, schema, where) of every example in the spec: a media type's
    or a parameter's against its schema, a schema's against itself."""
    node = SPEC if node is None else node
    if isinstance(node, dict):
        if "example" in node:
            if "schema" in node:
                yield node["example"], node["schema"], where
            elif any(k in node for k in ("type", "allOf", "$ref", "enum")):
                yield node["example"], node, where
        for k, v in node.items():
            if k != "example":
                yield from spec_examples(v, "%s/%s" % (where, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from spec_examples(v, "%s/%d" % (where, i))


def test_every_example_in_the_spec_fits_its_schema():
    found = list(spec_examples())
    assert len(found) > 20, found
    for example, schema, where in found:
        validate(example, schema, where)


@pytest.fixture
def api(daemon):
    a = make_agency(daemon)
    portal = daemon.token("portal")

    def call(method, path, token=None, **kw):
        return conforms(daemon.request(method, path, token=token, **kw), method, path,
                        kw.get("json"))
    return a["token"], portal, call, a["oin"]


def test_every_endpoint_answers_as_documented(daemon, api, new_bsn):
    agency, portal, call, a_oin = api
    citizen, nobody = new_bsn(), new_bsn()

    # portal: accounts
    r = call("POST", "/v1/accounts", portal, json={"bsn": citizen})
    assert r.status == 201
    acc = r.json()["accountId"]
    assert call("POST", "/v1/accounts", portal, json={"bsn": citizen}).status == 200
    assert call("POST", "/v1/accounts", portal, json={"bsn": "1"}).status == 400
    assert call("POST", "/v1/accounts", agency, json={"bsn": citizen}).status == 403
    assert call("GET", "/v1/accounts/%s" % acc, portal).status == 200
    assert call("GET", "/v1/accounts/not-an-id", portal).status == 404
    address = "spec-%s@example.nl" % secrets.token_hex(4)
    r = call("PATCH", "/v1/accounts/%s" % acc, portal,
             json={"emailadres": address, "emailNotificaties": True, "herhaalNotificaties": True,
                   "bewaartermijnDagen": 400, "taal": "nl"})
    assert r.status == 200 and r.json()["bewaartermijnDagen"] == 400
    assert call("PATCH", "/v1/accounts/%s" % acc, portal, json={"x": 1}).status == 400
    assert call("PATCH", "/v1/accounts/%s" % acc, portal, json={"taal": "fr"}).status == 400

    # portal: the address's verification
    verify = "/v1/accounts/%s/emailverificaties" % acc
    r = call("POST", verify, portal)
    assert r.status == 201 and r.json()["emailadres"] == address
    assert call("POST", "/v1/accounts/not-an-id/emailverificaties", portal).status == 404
    [(code,)] = daemon.services.psql(
        "SELECT payload->>'code' FROM notifications WHERE account_id = %s AND kind = 'verify' "
        "ORDER BY id DESC LIMIT 1", (acc,))
    SECRETS.add("code", code)
    wrong = "%06d" % ((int(code) + 1) % 1000000)
    assert call("POST", verify + "/_bevestig", portal, json={"code": wrong}).status == 422
    assert call("POST", verify + "/_bevestig", portal, json={"code": "12"}).status == 400
    r = call("POST", verify + "/_bevestig", portal, json={"code": code})
    assert r.status == 200 and r.json()["emailGeverifieerd"] is True
    assert call("POST", verify + "/_bevestig", portal, json={"code": code}).status == 409
    assert call("POST", verify, portal).status == 409  # nothing waits for a code now

    # portal: prompts
    prompts = "/v1/accounts/%s/meldingen" % acc
    assert call("GET", prompts, portal).status == 200
    assert call("GET", prompts + "?x=1", portal).status == 400
    assert call("POST", prompts + "/controleerEmail/_afgehandeld", portal).status == 204
    assert call("POST", prompts + "/onbekend/_afgehandeld", portal).status == 404

    # agency: single messages
    ref = "spec-%s" % secrets.token_hex(4)
    msg = {"bsn": citizen, "berichttype": "T1", "referentie": ref}
    r = call("POST", "/v1/berichten", agency, json=msg)
    assert r.status == 201
    bid = r.json()["berichtId"]
    assert call("POST", "/v1/berichten", agency, json=msg).status == 200
    assert call("POST", "/v1/berichten", agency, json=dict(msg, berichttype="T2")).status == 409
    assert call("POST", "/v1/berichten", agency,
                json=dict(msg, bsn=nobody, referentie=ref + "n")).status == 422
    assert call("POST", "/v1/berichten", agency, json={}).status == 400
    assert call("POST", "/v1/berichten", None, json=msg).status == 401
    assert call("POST", "/v1/berichten", portal, json=msg).status == 403
    assert call("POST", "/v1/berichten", agency, body=b"x",
                headers={"Content-Type": "text/plain"}).status == 415
    assert call("POST", "/v1/berichten", agency, body=b'{"bsn": "\xff"}',
                headers={"Content-Type": "application/json"}).status == 400
    assert call("GET", "/v1/berichten/%s" % bid, agency).status == 200
    assert call("GET", "/v1/berichten/%s?bsn=%s" % (bid, citizen), agency).status == 400
    assert call("GET", "/v1/berichten/%s" % bid, make_agency(daemon)["token"]).status == 404

    # portal: the citizen's box
    box = "/v1/accounts/%s/berichten" % acc
    r = call("GET", box, portal)
    assert r.status == 200 and [m["berichtId"] for m in r.json()["berichten"]] == [bid]
    assert call("GET", box + "?pagina=2&paginaGrootte=1", portal).status == 200
    assert call("GET", box + "?paginaGrootte=0", portal).status == 400
    assert call("GET", "/v1/accounts/01890000-0000-7000-8000-000000000000/berichten", portal).status == 404

    # portal: the agencies a citizen receives from
    subs = "/v1/accounts/%s/abonnementen" % acc
    r = call("GET", subs, portal)
    assert r.status == 200 and a_oin in [x["oin"] for x in r.json()["abonnementen"]]
    assert call("GET", subs, agency).status == 403
    assert call("GET", "%s/%s" % (subs, a_oin), portal).status == 200
    assert call("GET", "%s/%s" % (subs, "123"), portal).status == 404
    assert call("PUT", "%s/%s" % (subs, a_oin), portal, json={"actief": False}).status == 200
    assert call("PUT", "%s/%s" % (subs, a_oin), portal, json={"actief": True}).status == 200
    assert call("PUT", "%s/%s" % (subs, a_oin), portal, json={"actief": "ja"}).status == 400
    mandatory = make_agency(daemon, mandatory=True)["oin"]
    assert call("PUT", "%s/%s" % (subs, mandatory), portal, json={"actief": False}).status == 409

    # batches and recipients
    r = call("POST", "/v1/batches", agency,
             json={"berichten": [msg, dict(msg, referentie=ref + "b"), {"bsn": "1"}]})
    assert r.status == 200
    assert [x["status"] for x in r.json()["resultaten"]] == ["dubbel", "aangenomen", "ongeldig"]
    assert call("POST", "/v1/batches", agency, json={"berichten": []}).status == 400
    r = call("POST", "/v1/ontvangers/_zoek", agency, json={"bsns": [citizen, nobody]})
    assert [o["berichtenbox"] for o in r.json()["ontvangers"]] == [True, False]
    assert call("POST", "/v1/ontvangers/_zoek", agency, json={"bsns": []}).status == 400
    big = b" " * (16 * 1024 * 1024 + 1)  # the default [http] max_body is 16m
    assert call("POST", "/v1/ontvangers/_zoek", agency, body=big,
                headers={"Content-Type": "application/json"}).status == 413

    # the agency's own statistics (issue 10)
    stats = "/v1/statistieken/openingspercentages"
    r = call("GET", stats + "?jaar=2024&totEnMetMaand=6", agency)
    assert r.status == 200 and r.json()["privacy"]["maxBerichtenPerBurger"] >= 1
    assert call("GET", stats + "?jaar=1", agency).status == 400
    assert call("GET", stats + "?jaar=2024", portal).status == 403

    # the ministry's reports
    ministry = daemon.token("ministry")
    rates = "/v1/rapportages/openingspercentages"
    assert call("GET", rates + "?jaar=2026", ministry).status == 200
    assert call("GET", rates + "?jaar=2026&maand=12", ministry).status == 200
    r = call("GET", rates + "?jaar=2026", ministry, headers={"Accept": "text/csv"})
    assert r.status == 200 and r.text.startswith("niveau,oin,naam,")
    assert call("GET", rates + "?jaar=2026&maand=13", ministry).status == 400
    assert call("GET", rates + "?jaar=2026", agency).status == 403
    notif = "/v1/rapportages/notificaties"
    assert call("GET", notif + "?jaar=2026", ministry).status == 200
    assert call("GET", notif + "?jaar=2026&maand=1", ministry).status == 400

    # the relay's delivery status notifications
    relay = daemon.token("relay")
    rfc822 = {"Content-Type": "message/rfc822"}
    dsn = dsn_text(None, "spec-%s@example.nl" % secrets.token_hex(4),
                   message_id="<spec@berichtenbox.example>")
    r = call("POST", "/v1/bounces", relay, body=dsn, headers=rfc822)
    assert r.status == 202 and r.json() == {"status": "geweigerd", "reden": "unattributed",
                                            "adresGemarkeerd": False}
    assert call("POST", "/v1/bounces", relay, body=b"Subject: hi\r\n\r\nhello\r\n",
                headers=rfc822).status == 400
    assert call("POST", "/v1/bounces", agency, body=dsn, headers=rfc822).status == 403

    # documentation and operations
    r = call("GET", "/v1/openapi.json")
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(r.body) == SPEC
    assert call("GET", "/v1/openapi.json?x=1").status == 400
    assert call("GET", "/healthz").status == 200
    assert call("GET", "/healthz?verbose=1").status == 400
    # the operators' endpoints are on their own listener, not in this API
    for path in ("/readyz", "/metrics"):
        assert find_operation("GET", path) == (None, None)
        assert daemon.request("GET", path).status == 404

    # portal: representatives (issue 11) and the opening by one
    rep = call("POST", "/v1/accounts", portal, json={"bsn": nobody}).json()["accountId"]
    one = "/v1/accounts/%s/vertegenwoordigers/%s" % (acc, rep)
    body = {"soort": "machtiging", "geldigVanaf": "2026-01-01T00:00:00Z",
            "weergavenaam": "J. Jansen"}
    assert call("PUT", one, portal, json=body).status == 201
    assert call("PUT", one, portal, json=dict(body, geldigTot="2099-01-01T00:00:00Z")).status == 200
    assert call("PUT", one, portal, json={"soort": "buur"}).status == 400
    assert call("PUT", "/v1/accounts/%s/vertegenwoordigers/%s" % (acc, acc), portal,
                json=body).status == 400
    assert call("PUT", one, agency, json=body).status == 403
    assert call("PUT", one, portal, body=b"x", headers={"Content-Type": "text/plain"}).status == 415
    assert call("GET", one, portal).status == 200
    assert call("GET", "/v1/accounts/%s/vertegenwoordigers" % acc, portal).status == 200
    assert call("GET", "/v1/accounts/%s/vertegenwoordigers" % acc, agency).status == 403
    assert call("GET", "/v1/accounts/%s/vertegenwoordigingen" % rep, portal).status == 200
    assert call("GET", "/v1/accounts/%s/vertegenwoordigingen?x=1" % rep, portal).status == 400
    opening = "/v1/berichten/%s/openingen" % bid
    assert call("POST", opening, portal, json={"doorAccountId": acc[:-1] + "0"
                                               if acc[-1] != "0" else acc[:-1] + "1"}
                ).status == 403
    assert call("POST", opening, portal, json={"doorAccountId": 1}).status == 400
    assert call("POST", opening, portal, json={"doorAccountId": rep}).status == 201
    assert call("POST", opening, portal).status == 200
    assert call("DELETE", one, agency).status == 403
    assert call("DELETE", one, portal).status == 204
    assert call("GET", one, portal).status == 404
    assert call("PUT", "/v1/accounts/%s/vertegenwoordigers/%s" % (acc, "0" * 8 + rep[8:]),
                portal, json=body).status == 404

    # portal: the citizen deletes the message, then the account goes
    assert call("DELETE", "/v1/berichten/%s" % bid, portal).status == 204
    assert call("DELETE", "/v1/berichten/not-an-id", portal).status == 404
    assert call("DELETE", "/v1/accounts/%s" % acc, portal).status == 204
    assert call("DELETE", "/v1/accounts/not-an-id", portal).status == 404

    every = {(t, m, outcome) for t, item in SPEC["paths"].items() for m in item
             if m in METHODS for outcome in ("ok", "error")}
    assert every - covered == set(), "operations never exercised so: %s" % sorted(every - covered)


def test_unknown_routes_and_methods_carry_api_version_and_problem(daemon):
    for method, path, status in (("GET", "/v1/nergens", 404), ("DELETE", "/v1/batches", 405),
                                 ("GET", "/v1/ontvangers/_zoek", 405)):
        r = daemon.request(method, path)
        assert r.status == status
        assert r.headers["API-Version"] == SPEC["info"]["version"]
        assert r.headers["Content-Type"].startswith("application/problem+json")
    # CORS only for the spec
    r = daemon.request("GET", "/healthz")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_rate_limit_and_unavailable_answers_are_documented(make_daemon, services, new_bsn):
    d = make_daemon("spec-limits", **{"ratelimit.rate": 1, "ratelimit.burst": 1})
    agency = make_agency(d)["token"]
    portal = d.token("portal")
    citizen = new_bsn()
    make_citizen(d, portal, citizen)

    def call(method, path, token=None, **kw):
        return conforms(d.request(method, path, token=token, **kw), method, path, kw.get("json"))

    msg = {"bsn": citizen, "berichttype": "T1", "referentie": "lim-%s" % secrets.token_hex(4)}
    assert call("POST", "/v1/berichten", agency, json=msg).status == 201
    assert call("POST", "/v1/berichten", agency,
                json=dict(msg, referentie=msg["referentie"] + "x")).status == 429
    assert call("POST", "/v1/batches", agency,
                json={"berichten": [dict(msg, referentie=msg["referentie"] + "y")]}).status == 429
    assert call("POST", "/v1/ontvangers/_zoek", agency, json={"bsns": [citizen]}).status == 429
    other = make_agency(d)["token"]  # a full bucket, for the lookups while PostgreSQL is down
    services.pg_stop()
    try:
        for method, path, token, body in (
                ("POST", "/v1/ontvangers/_zoek", other, {"bsns": [citizen]}),
                ("GET", "/v1/berichten/01890000-0000-7000-8000-000000000000", other, None)):
            r = call(method, path, token, json=body)
            assert r.status == 503, (path, r.status)
    finally:
        services.pg_start()
