"""TLS on the API listener and client certificates as Digikoppeling asks
(issue 15). The test makes its own PKI with the openssl command line: a CA
standing in for PKIoverheid, the listener's certificate, an agency
certificate with the agency's 20-digit OIN in the subject's serialNumber,
one for another OIN, one without a serialNumber, an expired one, one from
another CA, and a second listener certificate for the reload.

A real TLS client (Python's ssl) talks to the daemon over loopback."""
import http.client
import json
import signal
import socket
import ssl
import subprocess
import uuid

import pytest

import harness
from harness import make_agency, problem_type, wait_until

CA_CONF = """[ca]
default_ca = d
[d]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = p
unique_subject = no
copy_extensions = copy
[p]
commonName = supplied
"""


def openssl(*args, cwd, input=None):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, input=input)


def make_cert(d, name, subj, ca="ca", san=None, dates=None):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
            name + ".csr", "-subj", subj, cwd=d)
    ext = d / (name + ".ext")
    ext.write_text("subjectAltName=%s\n" % san if san else "basicConstraints=CA:FALSE\n")
    if dates:
        (d / "index.txt").write_text("")
        (d / "serial").write_text("%s\n" % uuid.uuid4().hex[:16])
        (d / "ca.cnf").write_text(CA_CONF.format(dir=d))
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem", "-keyfile",
                ca + ".key", "-in", name + ".csr", "-out", name + ".pem", "-startdate", dates[0],
                "-enddate", dates[1], "-extfile", name + ".ext", "-notext", cwd=d)
    else:
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext.name,
                cwd=d)


def fingerprint(path):
    out = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-fingerprint",
                          "-sha256"], check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1]


@pytest.fixture(scope="module")
def pki(services):
    d = services.run_dir / ("tls-pki-%s" % uuid.uuid4().hex[:6])
    d.mkdir()
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out",
                ca + ".pem", "-days", "2", "-subj", "/CN=berichtd test %s" % ca, cwd=d)
    oin, other_oin = harness.new_oin(), harness.new_oin()
    make_cert(d, "server", "/CN=127.0.0.1", san="IP:127.0.0.1,DNS:localhost")
    make_cert(d, "server2", "/CN=127.0.0.1 second", san="IP:127.0.0.1,DNS:localhost")
    make_cert(d, "agency", "/O=Gemeente Test/serialNumber=%s/CN=Gemeente Test" % oin)
    make_cert(d, "otheroin", "/O=Gemeente Anders/serialNumber=%s/CN=Anders" % other_oin)
    make_cert(d, "noserial", "/O=Gemeente Test/CN=Zonder OIN")
    make_cert(d, "expired", "/O=Gemeente Test/serialNumber=%s/CN=Verlopen" % oin,
              dates=("20200101000000Z", "20200201000000Z"))
    make_cert(d, "foreign", "/O=Gemeente Test/serialNumber=%s/CN=Vreemd" % oin, ca="otherca")
    make_cert(d, "portal", "/O=Portaal/CN=portaal")
    return {"dir": d, "oin": oin}


def tls_daemon(make_daemon, pki, name, **overrides):
    d = pki["dir"]
    cfg = {"tls.cert_file": str(d / "server.pem"), "tls.key_file": str(d / "server.key")}
    cfg.update(overrides)
    daemon = make_daemon(name, start=False, **cfg)
    daemon.pki = pki
    return daemon


def start(daemon):
    """Starts and waits for /healthz over TLS (the harness polls plain HTTP)."""
    daemon.start(wait=False)
    wait_until(lambda: _healthz(daemon), timeout=20,
               what=lambda: "berichtd over TLS\n" + daemon.log_tail())
    return daemon


def _healthz(daemon):
    try:
        return https(daemon, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def context(pki, client=None, maximum=None):
    ctx = ssl.create_default_context(cafile=str(pki["dir"] / "ca.pem"))
    if client:
        ctx.load_cert_chain(str(pki["dir"] / (client + ".pem")),
                            str(pki["dir"] / (client + ".key")))
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def port_of(daemon):
    return int(daemon.base_url.rsplit(":", 1)[1])


def https(daemon, method, path, pki=None, client=None, token=None, body=None, conn=None):
    """(status, json body or None, connection) over TLS."""
    if conn is None:
        conn = http.client.HTTPSConnection("127.0.0.1", port_of(daemon), timeout=10,
                                           context=context(pki or daemon.pki, client))
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return r.status, parsed, conn


@pytest.fixture
def optional(make_daemon, pki):
    d = tls_daemon(make_daemon, pki, "tls-optional", **{
        "tls.client_auth": "optional", "tls.client_ca_file": str(pki["dir"] / "ca.pem")})
    d.pki = pki
    start(d)
    d.agency = make_agency(d, oin=pki["oin"])
    yield d


@pytest.fixture
def required(make_daemon, pki):
    d = tls_daemon(make_daemon, pki, "tls-require", **{
        "tls.client_auth": "require", "tls.client_ca_file": str(pki["dir"] / "ca.pem"),
        "tls.portal_certs": fingerprint(pki["dir"] / "portal.pem")})
    d.pki = pki
    start(d)
    d.agency = make_agency(d, oin=pki["oin"])
    yield d


def unknown_message():
    return "/v1/berichten/%s" % uuid.uuid4()


def test_tls_only_1_2_and_up(make_daemon, pki):
    d = tls_daemon(make_daemon, pki, "tls-plain")
    d.pki = pki
    start(d)
    status, _, conn = https(d, "GET", "/healthz")
    assert status == 200
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLError):
        https(d, "GET", "/healthz", conn=http.client.HTTPSConnection(
            "127.0.0.1", port_of(d), timeout=10,
            context=context(pki, maximum=ssl.TLSVersion.TLSv1_1)))
    # plain HTTP on the TLS port gets no HTTP answer
    with socket.create_connection(("127.0.0.1", port_of(d)), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(100)
        except OSError:
            data = b""
    assert not data.startswith(b"HTTP/1.1 200")
    # the ops listener stays plain HTTP on loopback
    assert d.ops_request("GET", "/readyz").status == 200


def test_optional_certificate_must_carry_the_tokens_oin(optional):
    d, token = optional, optional.agency["token"]
    assert https(d, "GET", unknown_message(), token=token)[0] == 404  # none: fine
    assert https(d, "GET", unknown_message(), client="agency", token=token)[0] == 404
    for cert in ("otheroin", "noserial"):
        status, body, _ = https(d, "GET", unknown_message(), client=cert, token=token)
        assert status == 403, (cert, body)
        problem_type(body, "certificaat-oin")


def test_require_refuses_an_agency_without_certificate(required):
    d, token = required, required.agency["token"]
    status, body, _ = https(d, "GET", unknown_message(), token=token)
    assert status == 401
    problem_type(body, "certificaat-nodig")
    assert https(d, "GET", unknown_message(), client="agency", token=token)[0] == 404
    # a message posted with the certificate is stored as usual
    status, body, _ = https(d, "POST", "/v1/berichten", client="agency", token=token, body={
        "bsn": harness.new_bsn(), "berichttype": "T1",
        "referentie": "tls-%s" % uuid.uuid4().hex[:8]})
    assert status in (201, 422), body  # 422: no box for that BSN; either way authenticated


@pytest.mark.parametrize("cert", ["expired", "foreign"])
def test_an_expired_or_foreign_certificate_ends_the_handshake(required, cert):
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https(required, "GET", unknown_message(), client=cert, token=required.agency["token"])


def test_portal_token_bound_to_its_certificate(required):
    d = required
    portal = d.token("portal")
    r = https(d, "POST", "/v1/accounts", client="portal", token=portal,
              body={"bsn": harness.new_bsn()})
    assert r[0] in (200, 201), r[1]
    status, body, _ = https(d, "POST", "/v1/accounts", client="agency", token=portal,
                            body={"bsn": harness.new_bsn()})
    assert status == 403
    problem_type(body, "certificaat-niet-toegestaan")
    status, body, _ = https(d, "POST", "/v1/accounts", token=portal,
                            body={"bsn": harness.new_bsn()})
    assert status == 401
    problem_type(body, "certificaat-nodig")
    # ministry tokens are not bound in this config: no certificate needed
    assert https(d, "GET", "/v1/rapportages/openingspercentages?jaar=2026",
                 token=d.token("ministry"))[0] == 200


def test_sighup_reloads_the_certificate_without_dropping_connections(make_daemon, pki):
    live = pki["dir"] / ("live-%s" % uuid.uuid4().hex[:6])
    live.mkdir()
    (live / "cert.pem").write_bytes((pki["dir"] / "server.pem").read_bytes())
    (live / "key.pem").write_bytes((pki["dir"] / "server.key").read_bytes())
    d = tls_daemon(make_daemon, pki, "tls-reload", **{"tls.cert_file": str(live / "cert.pem"),
                                                     "tls.key_file": str(live / "key.pem")})
    d.pki = pki
    start(d)
    status, _, kept = https(d, "GET", "/healthz")
    assert status == 200
    first = kept.sock.getpeercert(binary_form=True)

    (live / "cert.pem").write_bytes((pki["dir"] / "server2.pem").read_bytes())
    (live / "key.pem").write_bytes((pki["dir"] / "server2.key").read_bytes())
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: TLS certificate and key read again" in d.log_text(),
               timeout=10, what="the reload")
    # the connection opened before the reload still works
    assert https(d, "GET", "/healthz", conn=kept)[0] == 200
    status, _, fresh = https(d, "GET", "/healthz")
    assert status == 200 and fresh.sock.getpeercert(binary_form=True) != first

    # a broken key keeps the running certificate
    (live / "key.pem").write_text("not a key\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "keeping the old certificate" in d.log_text(), timeout=10,
               what="the refused reload")
    assert https(d, "GET", "/healthz")[0] == 200
