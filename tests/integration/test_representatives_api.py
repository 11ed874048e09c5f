"""Representatives, the portal/agency API half of issue 11: the
representation routes (create, replace, get, delete, both lists), every
invalid field at once, the rules of passing on (ketenmachtiging), the
zaakkenmerk on messages and the opening of a message by a representative,
all against the real PostgreSQL (the notifications are the other half's
tests)."""
import datetime
import uuid

import pytest

from harness import assert_problem, make_agency, make_citizen, post

H = "/v1/accounts/%s/vertegenwoordigers/%s"


def iso(days=0, hours=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days, hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def env(daemon):
    return {"d": daemon, "portal": daemon.token("portal")}


def account(env, new_bsn):
    r = env["d"].request("POST", "/v1/accounts", token=env["portal"], json={"bsn": new_bsn()})
    assert r.status == 201, r.text
    return r.json()["accountId"]


def put(env, holder, rep, **body):
    b = {"soort": "machtiging", "geldigVanaf": iso(-1), "weergavenaam": "J. Jansen"}
    b.update(body)
    b = {k: v for k, v in b.items() if v is not None}
    return env["d"].request("PUT", H % (holder, rep), token=env["portal"], json=b)


def names(problem):
    return {p["name"]: p["code"] for p in problem["invalidParams"]}


# ------------------------------------------------------------------ routes

def test_create_replace_get_delete_and_revive(env, new_bsn):
    d, portal = env["d"], env["portal"]
    holder, rep = account(env, new_bsn), account(env, new_bsn)
    agency = make_agency(d)
    r = put(env, holder, rep, soort="curatele", organisaties=[agency["oin"]],
            geldigTot=iso(30), zaakkenmerk="Z-2026/17")
    assert r.status == 201, r.text
    got = r.json()
    assert got == {"accountId": holder, "vertegenwoordigerAccountId": rep, "soort": "curatele",
                   "geldigVanaf": got["geldigVanaf"], "geldigTot": got["geldigTot"],
                   "organisaties": [agency["oin"]], "zaakkenmerk": "Z-2026/17",
                   "weergavenaam": "J. Jansen", "betrokkeneOokNotificeren": True,
                   "doorgegevenDoor": None, "diepte": 1, "inWerking": True}
    assert d.request("GET", H % (holder, rep), token=portal).json() == got

    r = put(env, holder, rep, soort="nabestaande", weergavenaam="wijlen J. Jansen")
    assert r.status == 200, r.text
    assert r.json()["soort"] == "nabestaande"
    assert r.json()["betrokkeneOokNotificeren"] is False, "the default of a nabestaande"
    assert r.json()["organisaties"] is None and r.json()["geldigTot"] is None

    assert d.request("DELETE", H % (holder, rep), token=portal).status == 204
    assert d.request("DELETE", H % (holder, rep), token=portal).status == 204
    assert_problem(d.request("GET", H % (holder, rep), token=portal), 404)
    assert d.request("GET", "/v1/accounts/%s/vertegenwoordigers" % holder,
                     token=portal).json() == {"vertegenwoordigers": []}
    [(deleted,)] = d.services.psql(
        "SELECT deleted_at IS NOT NULL FROM representations WHERE account_id = %s", (holder,))
    assert deleted

    r = put(env, holder, rep)
    assert r.status == 201, "a PUT brings a deleted one back: %s" % r.text
    assert d.request("GET", H % (holder, rep), token=portal).status == 200


def test_lists_in_both_directions(env, new_bsn):
    d, portal = env["d"], env["portal"]
    child1, child2, parent, other = (account(env, new_bsn) for _ in range(4))
    assert put(env, child1, parent, soort="ouder", weergavenaam="Kind Een").status == 201
    assert put(env, child2, parent, soort="ouder", weergavenaam="Kind Twee").status == 201
    assert put(env, child1, other, geldigVanaf=iso(1), weergavenaam="Kind Een").status == 201
    assert put(env, child2, other).status == 201
    assert d.request("DELETE", H % (child2, other), token=portal).status == 204

    mine = d.request("GET", "/v1/accounts/%s/vertegenwoordigingen" % parent, token=portal)
    assert mine.status == 200, mine.text
    items = mine.json()["vertegenwoordigingen"]
    assert [(i["accountId"], i["weergavenaam"]) for i in items] == [
        (child1, "Kind Een"), (child2, "Kind Twee")]
    reps = d.request("GET", "/v1/accounts/%s/vertegenwoordigers" % child1,
                     token=portal).json()["vertegenwoordigers"]
    assert [(i["vertegenwoordigerAccountId"], i["inWerking"]) for i in reps] == [
        (parent, True), (other, False)], "not yet in force: inWerking false"
    assert d.request("GET", H % (child1, parent), token=portal).json() == reps[0]
    assert_problem(d.request("GET", "/v1/accounts/%s/vertegenwoordigers" % uuid.uuid4(),
                             token=portal), 404)
    assert_problem(d.request("GET", "/v1/accounts/%s/vertegenwoordigingen" % uuid.uuid4(),
                             token=portal), 404)


def test_unknown_accounts_and_roles(env, new_bsn):
    d, portal = env["d"], env["portal"]
    holder = account(env, new_bsn)
    assert_problem(put(env, holder, str(uuid.uuid4())), 404)
    assert_problem(put(env, str(uuid.uuid4()), holder), 404)
    assert_problem(put(env, holder, "geen-uuid"), 404)
    assert_problem(d.request("DELETE", H % (holder, uuid.uuid4()), token=portal), 404)
    agency = make_agency(d)
    r = d.request("GET", "/v1/accounts/%s/vertegenwoordigers" % holder, token=agency["token"])
    assert r.status == 403, r.text


def test_every_invalid_field_at_once(env, new_bsn):
    holder, rep = account(env, new_bsn), account(env, new_bsn)
    r = env["d"].request("PUT", H % (holder, rep), token=env["portal"], json={
        "soort": "buurman", "geldigVanaf": "gisteren", "geldigTot": 5,
        "organisaties": ["123", 7], "zaakkenmerk": "x" * 41, "weergavenaam": "",
        "betrokkeneOokNotificeren": "ja", "doorgegevenDoor": "iemand", "bsn": "111222333"})
    p = assert_problem(r, 400)
    assert names(p) == {"soort": "enum", "geldigVanaf": "dateTime", "geldigTot": "string",
                        "organisaties[0]": "oin", "organisaties[1]": "oin",
                        "zaakkenmerk": "length", "weergavenaam": "length",
                        "betrokkeneOokNotificeren": "boolean", "doorgegevenDoor": "uuid",
                        "bsn": "unknownField"}
    r = env["d"].request("PUT", H % (holder, rep), token=env["portal"], json={})
    assert names(assert_problem(r, 400)) == {"soort": "required", "geldigVanaf": "required",
                                             "weergavenaam": "required"}
    # the store's checks come with the body's own
    p = assert_problem(put(env, holder, rep, organisaties=["0" * 20], geldigVanaf=iso(1),
                           geldigTot=iso(0), zaakkenmerk="a\tb"), 400)
    assert names(p) == {"organisaties[0]": "unknownOrganisation", "geldigTot": "range",
                        "zaakkenmerk": "length"}
    p = assert_problem(put(env, holder, holder), 400)
    assert names(p) == {"vertegenwoordigerAccountId": "self"}
    assert not env["d"].services.psql(
        "SELECT 1 FROM representations WHERE account_id = %s", (holder,))


@pytest.mark.parametrize("name", ["123456782", "Jansen 1234.56.782", "BSN 123-456-782"])
def test_weergavenaam_never_holds_a_bsn(env, new_bsn, name):
    holder, rep = account(env, new_bsn), account(env, new_bsn)
    p = assert_problem(put(env, holder, rep, weergavenaam=name), 400)
    assert names(p) == {"weergavenaam": "bsn"}
    assert name not in str(p)


def test_no_bsn_in_any_answer(env, new_bsn):
    d, portal = env["d"], env["portal"]
    b1, b2 = new_bsn(), new_bsn()
    h = d.request("POST", "/v1/accounts", token=portal, json={"bsn": b1}).json()["accountId"]
    v = d.request("POST", "/v1/accounts", token=portal, json={"bsn": b2}).json()["accountId"]
    texts = [put(env, h, v).text, d.request("GET", H % (h, v), token=portal).text,
             d.request("GET", "/v1/accounts/%s/vertegenwoordigers" % h, token=portal).text,
             d.request("GET", "/v1/accounts/%s/vertegenwoordigingen" % v, token=portal).text]
    for t in texts:
        assert b1 not in t and b2 not in t
    log = d.log_text()
    assert b1 not in log and b2 not in log


# ------------------------------------------------------------ ketenmachtiging

@pytest.fixture
def chain(env, new_bsn):
    """holder A, source representation A <- B (limited), and C, D, E."""
    d = env["d"]
    ag1, ag2 = make_agency(d), make_agency(d)
    a, b, c, dd, e = (account(env, new_bsn) for _ in range(5))
    r = put(env, a, b, geldigVanaf=iso(-10), geldigTot=iso(30),
            organisaties=[ag1["oin"], ag2["oin"]], zaakkenmerk="ZAAK-1")
    assert r.status == 201, r.text
    return {"a": a, "b": b, "c": c, "d": dd, "e": e, "ag1": ag1, "ag2": ag2,
            "src": r.json()}


def derived(env, ch, rep=None, **kw):
    body = {"geldigVanaf": iso(-5), "geldigTot": iso(20), "organisaties": [ch["ag1"]["oin"]],
            "zaakkenmerk": "ZAAK-1", "doorgegevenDoor": ch["b"]}
    body.update(kw)
    return put(env, ch["a"], rep or ch["c"], **body)


def test_a_narrower_derived_one_is_stored_with_its_depth(env, chain):
    r = derived(env, chain)
    assert r.status == 201, r.text
    assert r.json()["doorgegevenDoor"] == chain["b"] and r.json()["diepte"] == 2
    assert r.json()["inWerking"] is True
    # exactly as wide as the source is fine too
    r = derived(env, chain, rep=chain["d"], geldigVanaf=chain["src"]["geldigVanaf"],
                geldigTot=chain["src"]["geldigTot"],
                organisaties=[chain["ag2"]["oin"], chain["ag1"]["oin"]])
    assert r.status == 201, r.text


@pytest.mark.parametrize("change,field,code", [
    ({"organisaties": None}, "organisaties", "widerThanSource"),
    ({"organisaties": "other"}, "organisaties", "widerThanSource"),
    ({"zaakkenmerk": None}, "zaakkenmerk", "widerThanSource"),
    ({"zaakkenmerk": "ZAAK-2"}, "zaakkenmerk", "widerThanSource"),
    ({"geldigVanaf": iso(-11)}, "geldigVanaf", "widerThanSource"),
    ({"geldigTot": iso(31)}, "geldigTot", "widerThanSource"),
    ({"geldigTot": None}, "geldigTot", "widerThanSource"),
])
def test_a_derived_one_wider_than_its_source_is_refused(env, chain, change, field, code):
    if change.get("organisaties") == "other":
        change = {"organisaties": [make_agency(env["d"])["oin"]]}
    p = assert_problem(derived(env, chain, **change), 400)
    assert names(p) == {field: code}
    assert not env["d"].services.psql(
        "SELECT 1 FROM representations WHERE rep_account_id = %s", (chain["c"],))


def test_every_wider_field_at_once(env, chain):
    p = assert_problem(derived(env, chain, organisaties=None, zaakkenmerk=None,
                               geldigVanaf=iso(-11), geldigTot=None), 400)
    assert names(p) == {"organisaties": "widerThanSource", "zaakkenmerk": "widerThanSource",
                        "geldigVanaf": "widerThanSource", "geldigTot": "widerThanSource"}


def test_a_source_with_no_limits_allows_anything_narrower(env, new_bsn):
    a, b, c = (account(env, new_bsn) for _ in range(3))
    assert put(env, a, b, geldigVanaf=iso(-3)).status == 201
    r = put(env, a, c, doorgegevenDoor=b, geldigVanaf=iso(-2))
    assert r.status == 201, r.text


def test_a_deleted_or_foreign_or_missing_source_is_refused(env, chain, new_bsn):
    d, portal = env["d"], env["portal"]
    # a source of another account: E represents someone else, not A
    other = account(env, new_bsn)
    assert put(env, other, chain["e"]).status == 201
    p = assert_problem(derived(env, chain, doorgegevenDoor=chain["e"]), 400)
    assert names(p) == {"doorgegevenDoor": "unknownSource"}
    p = assert_problem(derived(env, chain, doorgegevenDoor=str(uuid.uuid4())), 400)
    assert names(p) == {"doorgegevenDoor": "unknownSource"}
    p = assert_problem(derived(env, chain, doorgegevenDoor=chain["c"]), 400)
    assert names(p) == {"doorgegevenDoor": "self"}
    assert d.request("DELETE", H % (chain["a"], chain["b"]), token=portal).status == 204
    p = assert_problem(derived(env, chain), 400)
    assert names(p) == {"doorgegevenDoor": "sourceDeleted"}


def test_depth_over_the_limit_is_refused(env, chain):
    assert derived(env, chain).status == 201  # A <- B <- C: depth 2, the default limit
    p = assert_problem(derived(env, chain, rep=chain["d"], doorgegevenDoor=chain["c"]), 400)
    assert names(p) == {"doorgegevenDoor": "maxDepth"}


def test_depth_one_means_never_passed_on(make_daemon, new_bsn):
    d = make_daemon("flat", **{"representatives.max_depth": 1})
    env = {"d": d, "portal": d.token("portal")}
    a, b, c = (account(env, new_bsn) for _ in range(3))
    assert put(env, a, b).status == 201
    p = assert_problem(put(env, a, c, doorgegevenDoor=b), 400)
    assert names(p) == {"doorgegevenDoor": "maxDepth"}


def test_a_derived_one_ends_with_its_source(env, chain):
    d, portal = env["d"], env["portal"]
    assert derived(env, chain).status == 201
    # the source is narrowed in time to have ended: the derived one is no longer in force
    r = put(env, chain["a"], chain["b"], geldigVanaf=iso(-10), geldigTot=iso(-6),
            organisaties=[chain["ag1"]["oin"]], zaakkenmerk="ZAAK-1")
    assert r.status == 200, r.text
    got = d.request("GET", H % (chain["a"], chain["c"]), token=portal).json()
    assert got["inWerking"] is False and got["geldigTot"] is not None
    # a representation passed on further keeps its source
    p = assert_problem(put(env, chain["a"], chain["b"], doorgegevenDoor=chain["d"]), 400)
    assert "doorgegevenDoor" in names(p)
