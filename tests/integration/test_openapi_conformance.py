"""The running daemon answers as docs/openapi.yaml says: for each endpoint,
the status codes it returns are documented there, with the documented
content type, the required fields of the documented schema and the
documented headers (API-Version on every response). Every operation in the
spec is exercised at least once, so a new endpoint cannot go undocumented
the other way round either. The spec is read with python3-yaml."""
import json
import re
import secrets

import pytest
import yaml

from harness import REPO_ROOT, make_agency, make_citizen

SPEC = yaml.safe_load((REPO_ROOT / "docs" / "openapi.yaml").read_text())
PREFIX = "/v1"


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def check_schema(value, schema, where):
    """Types, required fields, enums, arrays: enough to catch drift both ways."""
    schema = resolve(schema)
    if value is None:
        assert schema.get("nullable"), "%s: null but not nullable" % where
        return
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool,
             "integer": int, "number": (int, float)}
    if t:
        assert isinstance(value, types[t]), "%s: %r is not %s" % (where, value, t)
        if t == "integer":
            assert not isinstance(value, bool), where
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %s" % (where, value, schema["enum"])
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, "%s: required field %s missing" % (where, name)
        props = schema.get("properties", {})
        for name, v in value.items():
            if name in props:
                check_schema(v, props[name], "%s.%s" % (where, name))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            check_schema(v, schema["items"], "%s[%d]" % (where, i))


def find_operation(method, path):
    """(template, operation) of the spec for a concrete request path."""
    for template, item in SPEC["paths"].items():
        full = template if "servers" in item else PREFIX + template
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(full)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None, None


covered = set()


def conforms(r, method, path):
    """Asserts that response r to METHOD path is documented; returns r."""
    template, op = find_operation(method, path.split("?")[0])
    assert op, "%s %s is not in docs/openapi.yaml" % (method, path)
    covered.add((template, method.lower()))
    responses = op["responses"]
    assert str(r.status) in responses, "%s %s: status %d not documented (%s)" % (
        method, path, r.status, sorted(responses))
    resp = resolve(responses[str(r.status)])
    for h in resp.get("headers", {}):
        assert h in r.headers, "%s %s %d: documented header %s missing" % (
            method, path, r.status, h)
    assert "API-Version" in r.headers
    content = resp.get("content")
    if not content:
        assert not r.body, "%s %s %d: undocumented body" % (method, path, r.status)
        return r
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype in content, "%s %s %d: content type %s not in %s" % (
        method, path, r.status, ctype, sorted(content))
    if ctype.endswith("json"):
        check_schema(r.json(), content[ctype]["schema"], "%s %s %d" % (method, path, r.status))
    return r


@pytest.fixture
def api(daemon):
    a = make_agency(daemon)
    portal = daemon.token("portal")

    def call(method, path, token=None, **kw):
        return conforms(daemon.request(method, path, token=token, **kw), method, path)
    return a["token"], portal, call


def test_every_endpoint_answers_as_documented(daemon, api, new_bsn):
    agency, portal, call = api
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
    r = call("PATCH", "/v1/accounts/%s" % acc, portal,
             json={"emailadres": "spec-%s@example.nl" % secrets.token_hex(4)})
    assert r.status == 200
    assert call("PATCH", "/v1/accounts/%s" % acc, portal, json={"x": 1}).status == 400

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

    # documentation and operations
    r = call("GET", "/v1/openapi.json")
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(r.body) == SPEC
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
    assert call("GET", "/v1/accounts/%s/vertegenwoordigingen" % rep, portal).status == 200
    assert call("GET", "/v1/accounts/%s/vertegenwoordigingen?x=1" % rep, portal).status == 400
    opening = "/v1/berichten/%s/openingen" % bid
    assert call("POST", opening, portal, json={"doorAccountId": acc[:-1] + "0"
                                               if acc[-1] != "0" else acc[:-1] + "1"}
                ).status == 403
    assert call("POST", opening, portal, json={"doorAccountId": 1}).status == 400
    assert call("POST", opening, portal, json={"doorAccountId": rep}).status == 201
    assert call("POST", opening, portal).status == 200
    assert call("DELETE", one, portal).status == 204
    assert call("GET", one, portal).status == 404
    assert call("PUT", "/v1/accounts/%s/vertegenwoordigers/%s" % (acc, "0" * 8 + rep[8:]),
                portal, json=body).status == 404

    assert call("DELETE", "/v1/accounts/%s" % acc, portal).status == 204

    every = {(t, m) for t, item in SPEC["paths"].items() for m in item
             if m in ("get", "post", "put", "patch", "delete")}
    assert every - covered == set(), "operations never exercised: %s" % sorted(every - covered)


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
        return conforms(d.request(method, path, token=token, **kw), method, path)

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
