"""SMTP relay security (issue 15): STARTTLS ([smtp] starttls = off |
opportunistic | require, with certificate verification) and AUTH with a
password from a credential file, through libESMTP.

The relay is a real SMTP server on loopback (aiosmtpd) that offers STARTTLS
with a certificate made here with the openssl command line (our own CA; one
from another CA; one for another host name) and AUTH PLAIN/LOGIN after TLS.
The mails are verification mails (the portal setting an address), which go
out at any hour. For each mail the server records whether it came over TLS
and who authenticated. Every wait is a poll with a deadline."""
import subprocess
import threading
import uuid

import pytest

import harness
from harness import Daemon, free_port, wait_until

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

USER, PASSWORD = "berichtd", "s3cret-relay-pw"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(services):
    """ca.pem, relay.pem/relay.key (SAN 127.0.0.1, by ca), other.pem/other.key
    (by another CA), wrongname.pem/.key (by ca, for another host)."""
    d = services.run_dir / ("smtp-pki-%s" % uuid.uuid4().hex[:6])
    d.mkdir()
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key",
                "-out", ca + ".pem", "-days", "2", "-subj", "/CN=berichtd test %s" % ca, cwd=d)
    for name, ca, san in (("relay", "ca", "DNS:127.0.0.1"), ("other", "otherca", "DNS:127.0.0.1"),
                          ("wrongname", "ca", "DNS:relay.elsewhere.example")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=%s" % san.split(":")[1], cwd=d)
        (d / (name + ".ext")).write_text("subjectAltName=%s\n" % san)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                name + ".ext", cwd=d)
    pw = d / "smtp-password"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    return d


class Recorder:
    def __init__(self):
        self.mails = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.mails.append({"rcpt": list(envelope.rcpt_tos),
                               "tls": session.ssl is not None,
                               "login": getattr(session, "berichtd_login", None)
                               if session.authenticated else None})
        return "250 2.0.0 Ok: queued"

    def to(self, address):
        with self.lock:
            return [m for m in self.mails if address in m["rcpt"]]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER
          and auth_data.password.decode() == PASSWORD)
    if ok:
        session.berichtd_login = USER  # who logged in on this session
    return AuthResult(success=ok, handled=False)


def tls_context(pki, name):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / (name + ".pem")), str(pki / (name + ".key")))
    return ctx


@pytest.fixture
def relay(pki):
    """relay(cert="relay"|"other"|"wrongname"|None, auth=False): a started
    server; cert None offers no STARTTLS."""
    started = []

    def make(cert="relay", auth=False):
        rec = Recorder()
        port = free_port()
        kw = {}
        if cert:
            kw["tls_context"] = tls_context(pki, cert)
        if auth:
            kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        c = aiosmtpd_controller.Controller(rec, hostname="127.0.0.1", port=port, **kw)
        c.start()
        started.append(c)
        rec.port = port
        return rec

    yield make
    for c in started:
        c.stop()


@pytest.fixture
def daemon_for(make_daemon):
    """daemon_for(rec, pki, **overrides): a started daemon whose relay is rec
    (stopped, and checked to exit 0, at teardown)."""
    def make(rec, pki, **overrides):
        return _daemon_for(make_daemon, rec, pki, **overrides)
    return make


def _daemon_for(make_daemon, rec, pki, **overrides):
    # smtp.timeout 2s: aiosmtpd's STARTTLS now and then loses a ClientHello
    # that arrives with its 220 (the handshake then hangs); the session times
    # out and the retry goes through, instead of waiting the 30 s default
    cfg = {"smtp.host": "127.0.0.1", "smtp.port": rec.port, "smtp.ca_file": str(pki / "ca.pem"),
           "smtp.timeout": "2s",
           "delivery.workers": "1", "delivery.poll_interval": "20ms",
           "delivery.retry_base": "200ms", "delivery.retry_max": "1s"}
    cfg.update(overrides)
    return make_daemon("smtp-sec", **cfg)


def verification_mail_to(d, address):
    """Sets a new account's address: a verification mail goes out. Returns
    the account id."""
    portal = d.token("portal")
    r = d.request("POST", "/v1/accounts", token=portal, json={"bsn": harness.new_bsn()})
    assert r.status in (200, 201), r.text
    account = r.json()["accountId"]
    r = d.request("PATCH", "/v1/accounts/%s" % account, token=portal, json={"emailadres": address})
    assert r.status == 200, r.text
    return account


def retried_with(d, account, text):
    """The verification notification went back to 'scheduled' (a retry)
    with last_error containing text."""
    rows = d.services.psql(
        "SELECT state, attempts, coalesce(last_error, '') FROM notifications "
        "WHERE kind = 'verify' AND account_id = %s", (account,))
    return rows and rows[0][0] == "scheduled" and rows[0][1] > 0 and text in rows[0][2]


def addr():
    return "sec-%s@example.org" % uuid.uuid4().hex[:8]


def test_require_with_auth_sends_over_tls_as_the_user(daemon_for, relay, pki):
    rec = relay("relay", auth=True)
    d = daemon_for(rec, pki, **{"smtp.starttls": "require", "smtp.user": USER,
                                          "smtp.password_file": str(pki / "smtp-password")})
    a = addr()
    verification_mail_to(d, a)
    [m] = wait_until(lambda: rec.to(a), timeout=30, what="the mail over TLS")
    assert m["tls"] is True and m["login"] == USER
    assert PASSWORD not in d.log_text()


def test_require_refuses_a_relay_without_starttls(daemon_for, relay, pki):
    rec = relay(None)
    d = daemon_for(rec, pki, **{"smtp.starttls": "require"})
    a = addr()
    account = verification_mail_to(d, a)
    wait_until(lambda: retried_with(d, account, "STARTTLS"), timeout=30,
               what=lambda: "a retry naming STARTTLS\n" + d.log_tail())
    assert rec.to(a) == []


def test_opportunistic_sends_in_clear_when_no_starttls_is_offered(daemon_for, relay, pki):
    rec = relay(None)
    d = daemon_for(rec, pki, **{"smtp.starttls": "opportunistic"})
    a = addr()
    verification_mail_to(d, a)
    [m] = wait_until(lambda: rec.to(a), timeout=30, what="the mail in clear")
    assert m["tls"] is False


def test_opportunistic_uses_tls_when_offered(daemon_for, relay, pki):
    rec = relay("relay")
    d = daemon_for(rec, pki, **{"smtp.starttls": "opportunistic"})
    a = addr()
    verification_mail_to(d, a)
    [m] = wait_until(lambda: rec.to(a), timeout=30, what="the mail over TLS")
    assert m["tls"] is True


@pytest.mark.parametrize("cert,why", [("other", "relay certificate not valid"),
                                      ("wrongname", "relay certificate is for")])
@pytest.mark.parametrize("mode", ["opportunistic", "require"])
def test_a_bad_certificate_gets_no_mail(daemon_for, relay, pki, cert, why, mode):
    rec = relay(cert)
    d = daemon_for(rec, pki, **{"smtp.starttls": mode})
    a = addr()
    account = verification_mail_to(d, a)
    wait_until(lambda: retried_with(d, account, why), timeout=30,
               what=lambda: "a retry naming %r\n%s" % (why, d.log_tail()))
    assert rec.to(a) == []


def test_off_never_starts_tls(daemon_for, relay, pki):
    rec = relay("other")  # a certificate that would be refused
    d = daemon_for(rec, pki, **{"smtp.starttls": "off"})
    a = addr()
    verification_mail_to(d, a)
    [m] = wait_until(lambda: rec.to(a), timeout=30, what="the mail in clear")
    assert m["tls"] is False


def test_a_wrong_password_is_retried_and_names_the_relay_answer(daemon_for, relay, pki):
    rec = relay("relay", auth=True)
    bad = pki / "bad-password"
    bad.write_text("not-it\n")
    d = daemon_for(rec, pki, **{"smtp.starttls": "require", "smtp.user": USER,
                                          "smtp.password_file": str(bad)})
    a = addr()
    account = verification_mail_to(d, a)
    wait_until(lambda: retried_with(d, account, "53"), timeout=30,
               what=lambda: "a retry with the relay's 53x\n" + d.log_tail())
    assert rec.to(a) == []


def test_check_config_refuses_auth_without_required_tls(services, pki):
    d = Daemon(services, "smtp-sec-cfg", migrate=False, **{
        "smtp.starttls": "opportunistic", "smtp.user": USER,
        "smtp.password_file": str(pki / "smtp-password")})
    p = d.cli("check-config")
    assert p.returncode != 0
    assert "AUTH needs starttls = require" in p.stdout + p.stderr
    d2 = Daemon(services, "smtp-sec-cfg2", migrate=False, **{
        "smtp.starttls": "require", "smtp.user": USER,
        "smtp.password_file": str(pki / "missing")})
    p = d2.cli("check-config")
    assert p.returncode != 0 and "password_file: cannot open" in p.stdout + p.stderr
    d3 = Daemon(services, "smtp-sec-cfg3", migrate=False, **{"smtp.starttls": "sometimes"})
    p = d3.cli("check-config")
    assert p.returncode != 0 and "must be off, opportunistic or require" in p.stdout + p.stderr
