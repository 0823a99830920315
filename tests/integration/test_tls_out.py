"""smtp-out: outbound TLS (STARTTLS, policy levels, pins) and client AUTH.

Like test_smtp_out.py, each test runs master with smtpd, cleanup and
smtp-out but no qmgr, injects a message through smtpd and plays qmgr on
private/smtp. The receivers are aiosmtpd with STARTTLS (a test CA and a
server certificate for mx.example.net and 127.0.0.1, or a self-signed
one, all made here with openssl), aiosmtpd without STARTTLS, and a raw
socket server for a peer that misbehaves around STARTTLS. MX host names
come from tests/integration/dnsserver.py.
"""

import base64
import hashlib
import os
import pathlib
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading

import pytest

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from conftest import FULL_MASTER_CF, free_port, wait_for
from dnsserver import DnsServer
from test_smtp_out import (deliver, inject, log_line, no_crashes,  # noqa: F401
                           sandboxes,
                           smtp_out_mta)


# -- certificates ---------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA, a server certificate it signed, and a self-signed one."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=Sendarix Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=mx.example.net", cwd=d)
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:mx.example.net,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt",
             "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.crt",
             "-days", "2", "-extfile", "ext.cnf", cwd=d)
    _openssl("req", "-x509", *ec, "-keyout", "ss.key", "-out", "ss.crt",
             "-days", "2", "-subj", "/CN=selfsigned.example.org", cwd=d)
    return d


def fingerprint(certfile, what="cert"):
    """Postfix-style SHA-256 pin of a certificate or of its public key."""
    pem = open(certfile).read()
    if what == "cert":
        der = ssl.PEM_cert_to_DER_cert(pem)
    else:
        pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout",
                              "-in", str(certfile)], check=True,
                             capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform",
                              "DER"], input=pub, check=True,
                             capture_output=True).stdout
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


# -- receivers ------------------------------------------------------------

class Handler:
    """Keeps each message with whether it came under TLS and who logged in."""

    def __init__(self):
        self.messages = []
        self.xoauth2 = []
        self.sni = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({
                "tls": session.ssl is not None,
                "login": session.auth_data if session.authenticated
                else None,
                "content": envelope.original_content,
            })
        return "250 2.0.0 Ok: stored"

    async def auth_XOAUTH2(self, server, args):
        raw = base64.b64decode(args[1]) if len(args) > 1 else b""
        self.xoauth2.append(raw)
        parts = raw.split(b"\x01")
        ok = (len(parts) >= 2 and parts[0] == b"user=app@example.org"
              and parts[1] == b"auth=Bearer " + self.token)
        if ok:
            return AuthResult(success=True, auth_data=b"app@example.org")
        # RFC 7628 / Gmail: an error challenge, answered by an empty line.
        err = b'{"status":"401","schemes":"Bearer","scope":"mail"}'
        answer = await server.challenge_auth(err)
        self.xoauth2.append(b"answer:" + bytes(answer or b""))
        return AuthResult(success=False, handled=False)

    token = b"tok-1"


def receiver(pki=None, cert="srv", starttls=True, authenticator=None,
             auth_require_tls=True, exclude=None):
    """aiosmtpd on 127.0.0.1, with STARTTLS when a certificate is given."""
    h = Handler()
    kw = {}
    if starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(pki / (cert + ".crt")),
                            str(pki / (cert + ".key")))
        ctx.sni_callback = lambda sock, name, c: h.sni.append(name)
        kw["tls_context"] = ctx
        kw["require_starttls"] = False
    if authenticator:
        kw["authenticator"] = authenticator
        kw["auth_require_tls"] = auth_require_tls
        kw["auth_exclude_mechanism"] = exclude or []
    port = free_port()
    ctl = Controller(h, hostname="127.0.0.1", port=port,
                     server_hostname="mx.example.net", **kw)
    ctl.start()
    return ctl, h, port


@pytest.fixture
def receivers():
    made = []

    def make(*a, **kw):
        r = receiver(*a, **kw)
        made.append(r[0])
        return r

    yield make
    for c in made:
        c.stop()


def tls_mta(mta_factory, tmp_path, main=None, policy=None):
    params = {"smtp_connection_cache_time_limit": "0"}
    if policy is not None:
        pfile = tmp_path / "tls_policy"
        pfile.write_text(policy)
        os.chmod(str(pfile), 0o644)
        params["smtp_tls_policy_maps"] = "texthash:%s" % pfile
    params.update(main or {})
    return smtp_out_mta(mta_factory, params)


def nexthop(port):
    return "[127.0.0.1]:%d" % port


@pytest.fixture
def shared_dir():
    """A folder the mail owner can read (pytest's tmp_path is private)."""
    d = tempfile.mkdtemp(prefix="sendarix-tls-", dir="/tmp")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


# -- tests ----------------------------------------------------------------

def test_may_is_the_default_and_encrypts(mta_factory, tmp_path, pki,
                                         receivers):
    ctl, h, port = receivers(pki, cert="ss")
    mta = tls_mta(mta_factory, tmp_path, {"smtp_tls_loglevel": "2"})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert len(h.messages) == 1 and h.messages[0]["tls"] is True
    assert h.sni == [None]
    assert ("certificate sha256 fingerprint %s" % fingerprint(pki / "ss.crt")
            in mta.log())
    log = mta.log()
    assert ("Untrusted TLS connection established to 127.0.0.1[127.0.0.1]:%d: "
            "TLSv1.3 with cipher" % port) in log, log
    line = log_line(mta, "a@example.net")
    assert "status=sent" in line and ", tls=TLSv1.3:" in line, line
    assert line.endswith(":Untrusted"), line


def test_may_without_starttls_is_clear(mta_factory, tmp_path, receivers):
    ctl, h, port = receivers(starttls=False)
    mta = tls_mta(mta_factory, tmp_path)
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert h.messages[0]["tls"] is False
    assert log_line(mta, "a@example.net").endswith(", tls=none")


def test_none_never_starts_tls(mta_factory, tmp_path, pki, receivers):
    ctl, h, port = receivers(pki)
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_tls_security_level": "none"})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert h.messages[0]["tls"] is False


def test_encrypt_without_starttls_defers(mta_factory, tmp_path, receivers):
    ctl, h, port = receivers(starttls=False)
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_tls_security_level": "encrypt"})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "deferred", res
    assert res[0]["dsn"] == "4.7.4"
    assert res[0]["reply"] == ("TLS is required, but was not offered by "
                               "host 127.0.0.1[127.0.0.1]")
    assert h.messages == []
    assert ("status=deferred (TLS is required, but was not offered by host "
            "127.0.0.1[127.0.0.1])") in log_line(mta, "a@example.net")


def test_verify_untrusted_defers(mta_factory, tmp_path, pki, receivers):
    ctl, h, port = receivers(pki, cert="ss")
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_tls_security_level": "verify",
                   "smtp_tls_CAfile": str(pki / "ca.crt")})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "deferred", res
    assert res[0]["dsn"] == "4.7.5"
    assert res[0]["reply"] == "Server certificate not verified"
    assert h.messages == []


def test_verify_with_ca_and_name_delivers(mta_factory, tmp_path, pki,
                                          receivers):
    ctl, h, port = receivers(pki)
    zone = {"example.net": ["MX 10 mx.example.net."],
            "mx.example.net": ["A 127.0.0.1"],
            "other.example.net": ["MX 10 other-mx.example.net."],
            "other-mx.example.net": ["A 127.0.0.1"]}
    with DnsServer(zone) as dns:
        mta = tls_mta(mta_factory, tmp_path,
                      {"smtp_tls_security_level": "verify",
                       "smtp_tls_CAfile": str(pki / "ca.crt"),
                       "dns_resolver": dns.spec,
                       "smtp_default_port": str(port)})
        # The MX host name is in the certificate: Verified.
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"], "example.net")
        assert res[0]["status"] == "sent", res
        assert h.messages[-1]["tls"] is True
        assert ("Verified TLS connection established to "
                "mx.example.net[127.0.0.1]:%d: TLSv1.3" % port) in mta.log()
        # SNI is the MX host name; none for an address.
        assert h.sni[-1] == "mx.example.net"
        assert log_line(mta, "a@example.net").endswith(":Verified")
        # A trusted chain under another name is not enough.
        qid = inject(mta, ["b@other.example.net"])
        res = deliver(mta, qid, ["b@other.example.net"], "other.example.net")
        assert res[0]["status"] == "deferred", res
        assert res[0]["reply"] == "Server certificate not verified"
        assert len(h.messages) == 1


def test_secure_matches_the_nexthop_domain(mta_factory, tmp_path, pki,
                                           receivers):
    ctl, h, port = receivers(pki)
    zone = {"example.net": ["MX 10 mx.example.net."],
            "mx.example.net": ["A 127.0.0.1"],
            "example.com": ["MX 10 mx.example.net."]}
    policy = "example.net secure\n.com secure\n"
    with DnsServer(zone) as dns:
        mta = tls_mta(mta_factory, tmp_path,
                      {"smtp_tls_CAfile": str(pki / "ca.crt"),
                       "dns_resolver": dns.spec,
                       "smtp_default_port": str(port)}, policy=policy)
        # mx.example.net is a subdomain of the next hop: dot-nexthop.
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"], "example.net")
        assert res[0]["status"] == "sent", res
        assert log_line(mta, "a@example.net").endswith(":Verified")
        # example.com (".com" entry) points at a host outside its domain.
        qid = inject(mta, ["b@example.com"])
        res = deliver(mta, qid, ["b@example.com"], "example.com")
        assert res[0]["status"] == "deferred", res
        assert res[0]["reply"] == "Server certificate not verified"
        assert len(h.messages) == 1


def test_policy_map_per_destination(mta_factory, tmp_path, pki, receivers):
    ctl, h, port = receivers(pki)
    bare, hb, bport = receivers(starttls=False)
    policy = ("[127.0.0.1]:%d verify match=mx.example.net\n"
              "[127.0.0.1]:%d encrypt\n" % (port, bport))
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_tls_CAfile": str(pki / "ca.crt")}, policy=policy)
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert log_line(mta, "a@example.net").endswith(":Verified")
    qid = inject(mta, ["b@example.net"])
    res = deliver(mta, qid, ["b@example.net"], nexthop(bport))
    assert res[0]["status"] == "deferred", res
    assert res[0]["reply"].startswith("TLS is required, but was not offered")
    assert hb.messages == []


@pytest.mark.parametrize("what", ["cert", "pkey"])
def test_fingerprint_pins(mta_factory, tmp_path, pki, receivers, what):
    ctl, h, port = receivers(pki, cert="ss")
    good = fingerprint(pki / "ss.crt", what)
    wrong = fingerprint(pki / "srv.crt", what)
    policy = ("[127.0.0.1]:%d fingerprint match=%s|%s\n"
              % (port, wrong, good))
    mta = tls_mta(mta_factory, tmp_path, policy=policy)
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert h.messages[0]["tls"] is True
    assert log_line(mta, "a@example.net").endswith(":Verified")

    # A wrong pin (main.cf this time) defers and sends nothing.
    mta2 = tls_mta(mta_factory, tmp_path,
                   {"smtp_tls_security_level": "fingerprint",
                    "smtp_tls_fingerprint_cert_match": wrong.lower()})
    qid = inject(mta2, ["b@example.net"])
    res = deliver(mta2, qid, ["b@example.net"], nexthop(port))
    assert res[0]["status"] == "deferred", res
    assert res[0]["dsn"] == "4.7.5"
    assert res[0]["reply"] == "Server certificate fingerprint mismatch"
    assert len(h.messages) == 1


def test_dane_level_without_dnssec(mta_factory, tmp_path, pki, receivers):
    # No DNSSEC (an address next hop, no trust anchor): "dane" is
    # opportunistic TLS, as in Postfix; "dane-only" defers.
    # The DANE cases with a signed zone are in test_dane_out.py.
    ctl, h, port = receivers(pki)
    mta = tls_mta(mta_factory, tmp_path, policy="[127.0.0.1]:%d dane\n" % port)
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert len(h.messages) == 1
    mta.stop()
    mta = tls_mta(mta_factory, tmp_path,
                  policy="[127.0.0.1]:%d dane-only\n" % port)
    qid = inject(mta, ["b@example.net"])
    res = deliver(mta, qid, ["b@example.net"], nexthop(port))
    assert res[0]["status"] == "deferred", res
    assert "not DNSSEC-validated" in res[0]["reply"], res
    assert len(h.messages) == 1


def test_data_after_starttls_220_drops(mta_factory, tmp_path):
    """A server that sends bytes after "220" to STARTTLS is dropped."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    seen = []

    def run():
        c, _ = srv.accept()
        f = c.makefile("rb")
        c.sendall(b"220 evil.example ESMTP\r\n")
        f.readline()
        c.sendall(b"250-evil.example\r\n250 STARTTLS\r\n")
        seen.append(f.readline())
        c.sendall(b"220 go ahead\r\n250 injected\r\n")
        seen.append(f.read(5))
        c.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        mta = tls_mta(mta_factory, tmp_path,
                      {"smtp_tls_security_level": "encrypt"})
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"], nexthop(port))
        assert res[0]["status"] == "deferred", res
        assert "sent data after the reply to STARTTLS" in res[0]["reply"]
        t.join(10)
        assert seen[0].startswith(b"STARTTLS")
        # No handshake was started: the connection just closed.
        assert seen[1] == b""
    finally:
        srv.close()


def test_may_retries_in_clear_after_handshake_failure(mta_factory, tmp_path,
                                                      pki):
    """No common protocol: the handshake fails, may tries once in clear."""
    h = Handler()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "ss.crt"), str(pki / "ss.key"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    port = free_port()
    ctl = Controller(h, hostname="127.0.0.1", port=port, tls_context=ctx,
                     require_starttls=False, server_hostname="mx.example.net")
    ctl.start()
    try:
        mta = tls_mta(mta_factory, tmp_path,
                      {"smtp_tls_protocols": "TLSv1.3"})
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"], nexthop(port))
        log = mta.log()
        assert "Cannot start TLS: handshake failure" in log, log
        assert res[0]["status"] == "sent", res
        assert h.messages[0]["tls"] is False
        assert ("trying 127.0.0.1[127.0.0.1]:%d again without TLS" % port
                in log)
        assert log_line(mta, "a@example.net").endswith(", tls=none")

        # encrypt never falls back to clear text.
        mta2 = tls_mta(mta_factory, tmp_path,
                       {"smtp_tls_protocols": "TLSv1.3",
                        "smtp_tls_mandatory_protocols": "TLSv1.3",
                        "smtp_tls_security_level": "encrypt"})
        qid = inject(mta2, ["b@example.net"])
        res = deliver(mta2, qid, ["b@example.net"], nexthop(port))
        assert res[0]["status"] == "deferred", res
        assert res[0]["reply"] == "Cannot start TLS: handshake failure"
        assert len(h.messages) == 1
    finally:
        ctl.stop()


def _password_auth(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login == b"alice" and auth_data.password == b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login)


def test_auth_to_smarthost_over_tls(mta_factory, tmp_path, pki, receivers):
    ctl, h, port = receivers(pki, authenticator=_password_auth)
    pw = tmp_path / "sasl_passwd"
    pw.write_text("[127.0.0.1]:%d alice:s3cret\n" % port)
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_sasl_auth_enable": "yes",
                   "smtp_sasl_password_maps": "texthash:%s" % pw})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert h.messages[0]["tls"] is True
    assert h.messages[0]["login"] == b"alice"
    assert "authenticated with SASL" in mta.log()
    assert "s3cret" not in mta.log()

    # A wrong password: deferred (smtp_sasl_auth_soft_bounce = yes).
    pw.write_text("[127.0.0.1]:%d alice:wrong\n" % port)
    mta2 = tls_mta(mta_factory, tmp_path,
                   {"smtp_sasl_auth_enable": "yes",
                    "smtp_sasl_password_maps": "texthash:%s" % pw})
    qid = inject(mta2, ["b@example.net"])
    res = deliver(mta2, qid, ["b@example.net"], nexthop(port))
    assert res[0]["status"] == "deferred", res
    assert res[0]["dsn"].startswith("4."), res
    assert "SASL authentication failed" in res[0]["reply"]
    assert len(h.messages) == 1

    # smtp_sasl_auth_soft_bounce = no: the 535 bounces.
    mta3 = tls_mta(mta_factory, tmp_path,
                   {"smtp_sasl_auth_enable": "yes",
                    "smtp_sasl_auth_soft_bounce": "no",
                    "smtp_sasl_password_maps": "texthash:%s" % pw})
    qid = inject(mta3, ["c@example.net"])
    res = deliver(mta3, qid, ["c@example.net"], nexthop(port))
    assert res[0]["status"] == "bounced", res
    assert res[0]["dsn"] == "5.7.8", res
    assert len(h.messages) == 1


def test_auth_login_mechanism(mta_factory, tmp_path, pki, receivers):
    ctl, h, port = receivers(pki, authenticator=_password_auth,
                             exclude=["PLAIN", "XOAUTH2"])
    pw = tmp_path / "sasl_passwd"
    pw.write_text("127.0.0.1 alice:s3cret\n")
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_sasl_auth_enable": "yes",
                   "smtp_sasl_password_maps": "texthash:%s" % pw})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert h.messages[0]["login"] == b"alice"
    assert "authenticated with SASL LOGIN as alice" in mta.log()


def test_no_auth_in_clear(mta_factory, tmp_path, receivers):
    ctl, h, port = receivers(starttls=False, authenticator=_password_auth,
                             auth_require_tls=False)
    pw = tmp_path / "sasl_passwd"
    pw.write_text("[127.0.0.1]:%d alice:s3cret\n" % port)
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_sasl_auth_enable": "yes",
                   "smtp_sasl_password_maps": "texthash:%s" % pw})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "deferred", res
    assert res[0]["dsn"] == "4.7.0"
    assert "no mechanism available" in res[0]["reply"], res
    assert h.messages == []

    # The operator allows plaintext mechanisms in clear text.
    mta2 = tls_mta(mta_factory, tmp_path,
                   {"smtp_sasl_auth_enable": "yes",
                    "smtp_sasl_password_maps": "texthash:%s" % pw,
                    "smtp_sasl_security_options": "noanonymous"})
    qid = inject(mta2, ["b@example.net"])
    res = deliver(mta2, qid, ["b@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert h.messages[0]["tls"] is False
    assert h.messages[0]["login"] == b"alice"


def test_xoauth2_token_file(mta_factory, tmp_path, pki, receivers,
                            shared_dir):
    ctl, h, port = receivers(pki, authenticator=_password_auth)
    token = shared_dir / "token"
    token.write_text("tok-1\n")
    os.chmod(str(token), 0o644)
    pw = tmp_path / "sasl_passwd"
    pw.write_text("[127.0.0.1]:%d app@example.org:@%s\n" % (port, token))
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_sasl_auth_enable": "yes",
                   "smtp_sasl_password_maps": "texthash:%s" % pw})
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert h.xoauth2[-1] == (b"user=app@example.org\x01auth=Bearer tok-1"
                             b"\x01\x01")
    assert h.messages[0]["tls"] is True
    # The refresher wrote a new token: it is read again at the next AUTH.
    Handler.token = b"tok-2"
    try:
        token.write_text("tok-2\n")
        qid = inject(mta, ["b@example.net"])
        res = deliver(mta, qid, ["b@example.net"], nexthop(port))
        assert res[0]["status"] == "sent", res
        assert h.xoauth2[-1].startswith(b"user=app@example.org\x01auth=Bearer "
                                        b"tok-2\x01")
        # A token the server refuses: its error challenge gets an empty
        # answer, and the 535 defers.
        token.write_text("tok-expired\n")
        qid = inject(mta, ["c@example.net"])
        res = deliver(mta, qid, ["c@example.net"], nexthop(port))
        assert res[0]["status"] == "deferred", res
        assert "SASL authentication failed" in res[0]["reply"], res
        assert h.xoauth2[-1] == b"answer:"
    finally:
        Handler.token = b"tok-1"
    assert "tok-1" not in mta.log() and "tok-2" not in mta.log()
    assert "tok-expired" not in mta.log()


def test_check_refuses_bad_tls_settings(mta_factory):
    mta = mta_factory(main={"smtp_tls_security_level": "paranoid"},
                      start=False)
    r = mta.sendarix("check", check=False)
    assert r.returncode != 0
    assert "smtp_tls_security_level" in r.stdout + r.stderr
    r = mta.sendarix("conf", "-e", "smtp_tls_security_level=dane-only",
                     check=False)
    assert r.returncode == 0, r.stderr
    r = mta.sendarix("conf", "-e", "smtp_tls_policy_maps=nosuchtype:/x",
                     check=False)
    assert r.returncode != 0


def test_sandbox_receiver_and_reuse_under_tls(mta_factory, tmp_path, pki,
                                              sandboxes):
    """The sandbox with a certificate: one handshake serves two messages."""
    sb = sandboxes(args=["-c", str(pki / "srv.crt"), "-k",
                         str(pki / "srv.key")])
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_connection_cache_time_limit": "30s"},
                  policy="[127.0.0.1]:%d encrypt\n" % sb.port)
    for rcpt in ("a@example.net", "b@example.net"):
        qid = inject(mta, [rcpt])
        res = deliver(mta, qid, [rcpt], nexthop(sb.port))
        assert res[0]["status"] == "sent", res
        assert log_line(mta, rcpt).endswith(":Untrusted"), log_line(mta, rcpt)
    msgs = sb.messages()
    assert len(msgs) == 2
    assert all(env["tls"].startswith("TLSv1.3 with cipher") for env, _ in msgs)
    assert sb.stats()["tls_sessions"] == 1
    assert mta.log().count("TLS connection established to") == 1


def test_policy_protocols_attribute(mta_factory, tmp_path, pki, receivers):
    """protocols= with a hole: TLS 1.3 excluded, TLS 1.2 is used."""
    ctl, h, port = receivers(pki)
    mta = tls_mta(mta_factory, tmp_path, policy=(
        "[127.0.0.1]:%d encrypt protocols=!TLSv1,!TLSv1.1,!TLSv1.3\n" % port))
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], nexthop(port))
    assert res[0]["status"] == "sent", res
    assert "TLSv1.2 with cipher" in mta.log()
    assert ", tls=TLSv1.2:" in log_line(mta, "a@example.net")


# -- TLS session resumption ------------------------------------------------

def tls_sandbox(sandboxes, pki):
    return sandboxes(args=["-c", str(pki / "srv.crt"), "-k",
                           str(pki / "srv.key")])


def tls_lines(mta):
    return [ln for ln in mta.log().splitlines()
            if " TLS connection " in ln and "smtp-out" in ln]


def send_each(mta, port, rcpts, hop=None):
    for rcpt in rcpts:
        qid = inject(mta, [rcpt])
        res = deliver(mta, qid, [rcpt], hop or nexthop(port))
        assert res[0]["status"] == "sent", res


def test_session_resumed_on_next_connection(mta_factory, tmp_path, pki,
                                            sandboxes):
    """No connection cache: the second connection resumes the session."""
    sb = tls_sandbox(sandboxes, pki)
    mta = tls_mta(mta_factory, tmp_path,
                  policy="[127.0.0.1]:%d encrypt\n" % sb.port)
    send_each(mta, sb.port, ["a@example.net", "b@example.net",
                             "c@example.net"])
    lines = tls_lines(mta)
    assert len(lines) == 3, lines
    assert ("Untrusted TLS connection established to "
            "127.0.0.1[127.0.0.1]:%d: TLSv1.3 with cipher" % sb.port
            in lines[0]), lines
    assert not lines[0].endswith("(resumed)")
    for ln in lines[1:]:
        assert ("Untrusted TLS connection reused to 127.0.0.1[127.0.0.1]"
                ":%d: TLSv1.3 with cipher" % sb.port) in ln, ln
        assert ln.endswith(" (resumed)"), ln
    assert sb.stats()["tls_sessions"] == 3
    msgs = sb.messages()
    assert len(msgs) == 3
    assert all(env["tls"].startswith("TLSv1.3 with cipher")
               for env, _ in msgs)
    assert log_line(mta, "c@example.net").endswith(":Untrusted")


def test_resumed_session_keeps_verification(mta_factory, tmp_path, pki,
                                            sandboxes):
    """verify: the resumed connection is Verified from the first check."""
    sb = tls_sandbox(sandboxes, pki)
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_tls_CAfile": str(pki / "ca.crt")},
                  policy="[127.0.0.1]:%d verify match=127.0.0.1\n" % sb.port)
    send_each(mta, sb.port, ["a@example.net", "b@example.net"])
    lines = tls_lines(mta)
    assert "Verified TLS connection established" in lines[0], lines
    assert "Verified TLS connection reused" in lines[1], lines
    assert lines[1].endswith("(resumed)")
    assert log_line(mta, "b@example.net").endswith(":Verified")


def test_untrusted_session_does_not_verify(mta_factory, tmp_path, pki,
                                           sandboxes):
    """A session from an unverified peer never passes verify on resumption.

    The sandbox has the CA-signed certificate but smtp-out trusts another
    CA: the first delivery is deferred, and so is the second, resumed or
    not, with the same reason.
    """
    sb = tls_sandbox(sandboxes, pki)
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_tls_CAfile": str(pki / "ss.crt")},
                  policy="[127.0.0.1]:%d verify match=127.0.0.1\n" % sb.port)
    for rcpt in ("a@example.net", "b@example.net"):
        qid = inject(mta, [rcpt])
        res = deliver(mta, qid, [rcpt], nexthop(sb.port))
        assert res[0]["status"] == "deferred", res
        assert "Server certificate not verified" in res[0]["reply"], res
    assert sb.messages() == []


def test_session_cache_timeout_zero_disables(mta_factory, tmp_path, pki,
                                             sandboxes):
    sb = tls_sandbox(sandboxes, pki)
    mta = tls_mta(mta_factory, tmp_path,
                  {"smtp_tls_session_cache_timeout": "0"},
                  policy="[127.0.0.1]:%d encrypt\n" % sb.port)
    send_each(mta, sb.port, ["a@example.net", "b@example.net"])
    lines = tls_lines(mta)
    assert len(lines) == 2, lines
    assert all("TLS connection established" in ln and "resumed" not in ln
               for ln in lines), lines


def test_other_policy_gets_a_full_handshake(mta_factory, tmp_path, pki,
                                            sandboxes):
    """Same server, another policy or SNI: a full handshake, no session.

    Two next-hop spellings reach the sandbox ("[127.0.0.1]:port" and
    "[mx.example.net]:port" through the test DNS server), with the
    policies "encrypt" and "encrypt servername=other.example"; then the
    policy of the first one changes by reload (which also starts a new
    smtp-out, with an empty cache: the sessions are in its memory).
    """
    with DnsServer({"mx.example.net": ["A 127.0.0.1"]}) as dns:
        sb = tls_sandbox(sandboxes, pki)
        pfile = tmp_path / "tls_policy"
        mta = tls_mta(mta_factory, tmp_path, {"dns_resolver": dns.spec},
                      policy=("[127.0.0.1]:%d encrypt\n"
                              "[mx.example.net]:%d encrypt "
                              "servername=other.example\n"
                              % (sb.port, sb.port)))
        other = "[mx.example.net]:%d" % sb.port
        send_each(mta, sb.port, ["a@example.net"])
        send_each(mta, sb.port, ["b@example.net"], hop=other)
        send_each(mta, sb.port, ["c@example.net"])
        send_each(mta, sb.port, ["d@example.net"], hop=other)
        lines = tls_lines(mta)
        assert len(lines) == 4, lines
        assert "established to 127.0.0.1[127.0.0.1]" in lines[0], lines
        assert "established to mx.example.net[127.0.0.1]" in lines[1], lines
        assert "reused to 127.0.0.1[127.0.0.1]" in lines[2], lines
        assert "reused to mx.example.net[127.0.0.1]" in lines[3], lines

        # A reload with another SNI for the first next hop.
        pfile.write_text("[127.0.0.1]:%d encrypt servername=new.example\n"
                         % sb.port)
        old = set(mta.child_pids("smtp-out"))
        mta.sendarix("reload")
        wait_for(lambda: mta.child_pids("smtp-out")
                 and not old & set(mta.child_pids("smtp-out")),
                 timeout=20, what="a new smtp-out")
        n = len(tls_lines(mta))
        send_each(mta, sb.port, ["e@example.net"])
        lines = tls_lines(mta)[n:]
        assert len(lines) == 1 and "established" in lines[0], lines


# -- the connection cache and TLS policies, end to end ---------------------


def test_connection_cache_never_crosses_tls_policies(mta_factory, tmp_path,
                                                     pki, sandboxes):
    """Two domains on one MX, "encrypt" and "none": never one connection.

    enc.example.net and clr.example.net both have mx.sink.example.net (the sandbox, with
    STARTTLS) as MX; smtp_tls_policy_maps gives enc.example.net "encrypt" and
    clr.example.net "none". Through qmgr, with the connection cache on, the
    messages alternate: each domain keeps its own connection, the
    clear-text one never rides the TLS connection nor the other way.
    """
    sb = tls_sandbox(sandboxes, pki)
    zone = {"enc.example.net": ["MX 10 mx.sink.example.net."],
            "clr.example.net": ["MX 10 mx.sink.example.net."],
            "mx.sink.example.net": ["A 127.0.0.1"]}
    pfile = tmp_path / "tls_policy"
    pfile.write_text("enc.example.net encrypt\nclr.example.net none\n")
    os.chmod(str(pfile), 0o644)
    with DnsServer(zone) as dns:
        mta = mta_factory(main={
            "dns_resolver": dns.spec,
            "smtp_default_port": str(sb.port),
            "smtp_tls_policy_maps": "texthash:%s" % pfile,
            "smtp_connection_cache_time_limit": "30s",
            "smtp_tls_loglevel": "1"}, master_cf=FULL_MASTER_CF)
        order = ["a@enc.example.net", "b@clr.example.net", "c@enc.example.net", "d@clr.example.net",
                 "e@enc.example.net", "f@clr.example.net"]
        for n, rcpt in enumerate(order, 1):
            with smtplib.SMTP(mta.host, mta.port, timeout=30) as c:
                c.sendmail("sender@example.org", [rcpt],
                           b"Subject: %d\r\n\r\nbody\r\n" % n)
            wait_for(lambda: len(sb.messages()) == n, timeout=30,
                     what="message %d at the sandbox" % n)
        by_rcpt = {env["to"][0]: env for env, _ in sb.messages()}
        assert sorted(by_rcpt) == sorted(order)
        enc = [by_rcpt[r] for r in order if r.endswith("@enc.example.net")]
        clr = [by_rcpt[r] for r in order if r.endswith("@clr.example.net")]
        assert all(e["tls"].startswith("TLSv1.3 with cipher") for e in enc)
        assert all(e["tls"] == "" for e in clr)
        # One connection per policy, each reused for its own domain only.
        assert len({e["connection"] for e in enc}) == 1
        assert len({e["connection"] for e in clr}) == 1
        assert enc[0]["connection"] != clr[0]["connection"]
        stats = sb.stats()
        assert stats["connections"] == 2 and stats["tls_sessions"] == 1
        log = mta.log()
        for r in order:
            line = [ln for ln in log.splitlines()
                    if "to=<%s>" % r in ln and "status=sent" in ln]
            assert line, log
            assert line[-1].endswith("tls=none") == r.endswith("@clr.example.net")
