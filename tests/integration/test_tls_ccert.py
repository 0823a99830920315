"""smtpd TLS restrictions: reject_plaintext_session and client certificates.

Certificates (a CA, a client certificate it signed, a self-signed one) are
made per test with openssl(1). The peers are real: Python's ssl module
with load_cert_chain() on a raw socket, smtplib and openssl s_client
-cert/-key.
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

from test_tls_in import Client, make_cert, s_client, tls_factory  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl(1) not installed")


def tls_client(port, cert=None):
    """A Client after EHLO and STARTTLS, with "cert" (crt, key) or none."""
    c = Client(port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    c.sock = ctx.wrap_socket(c.sock)
    return c


# -- reject_plaintext_session ------------------------------------------------

def test_reject_plaintext_session(tls_factory):
    t = tls_factory({"smtpd_recipient_restrictions":
                     "reject_plaintext_session, permit"})
    with smtplib.SMTP("127.0.0.1", t.mta.port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, msg = s.rcpt("b@example.com")
        assert code == 450, msg
        assert msg == (b"4.7.1 <b@example.com>: Recipient address rejected: "
                       b"Session encryption is required")
        s.rset()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, msg = s.rcpt("b@example.com")
        assert code == 250, msg


def test_plaintext_reject_code(tls_factory):
    t = tls_factory({"smtpd_client_restrictions": "reject_plaintext_session",
                     "plaintext_reject_code": "554"})
    r = t.mta.sendarix("check", check=False)
    assert r.returncode == 0, r.stderr
    with smtplib.SMTP("127.0.0.1", t.mta.port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, msg = s.rcpt("b@example.com")
        assert code == 554, msg
        assert msg.startswith(b"5.7.1 <unknown[127.0.0.1]>: Client host "
                              b"rejected: Session encryption is required")


# -- client certificates -----------------------------------------------------

def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                   timeout=60)


def make_ca_and_client(folder):
    """A CA, a client certificate it signed, a self-signed one."""
    ca = make_cert(folder, "ca", "Test CA")
    key = os.path.join(folder, "client.key")
    csr = os.path.join(folder, "client.csr")
    crt = os.path.join(folder, "client.crt")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/CN=client.test.example")
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
            "-CAcreateserial", "-out", crt, "-days", "2")
    self_signed = make_cert(folder, "stranger", "stranger.test.example")
    return ca, (crt, key), self_signed


def fingerprint(crt):
    """Postfix's form: sha256 of the DER certificate, colon hex."""
    import hashlib
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    d = hashlib.sha256(der).hexdigest().upper()
    return ":".join(d[i:i + 2] for i in range(0, len(d), 2))


def ccert_mta(tls_factory, tmp_path, table="", **main):
    folder = tmp_path / "ccerts"
    folder.mkdir(exist_ok=True)
    ca, client, stranger = make_ca_and_client(str(folder))
    tbl = folder / "ccerts"
    tbl.write_text(table.format(client=fingerprint(client[0]),
                                stranger=fingerprint(stranger[0])))
    params = {"smtpd_tls_ask_ccert": "yes", "smtpd_tls_CAfile": ca[0],
              "smtpd_tls_loglevel": "1",
              "relay_clientcerts": "texthash:%s" % tbl}
    params.update({k: v.replace("TABLE", "texthash:%s" % tbl)
                   for k, v in main.items()})
    return tls_factory(params), client, stranger


def rcpt(c, to="b@example.com"):
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    return c.cmd("RCPT TO:<%s>" % to)


RELAY = "permit_tls_clientcerts, reject_unauth_destination"


def test_permit_tls_clientcerts(tls_factory, tmp_path):
    t, client, stranger = ccert_mta(
        tls_factory, tmp_path, table="{client} ok\n",
        smtpd_relay_restrictions=RELAY)
    # Listed: relays. The log names the trusted certificate.
    c = tls_client(t.mta.port, client)
    code, msg = rcpt(c)
    assert code == 250, msg
    c.cmd("QUIT")
    t.mta.wait_log("Trusted TLS connection established from "
                   "unknown[127.0.0.1]: TLSv1.3 with cipher")
    t.mta.wait_log("unknown[127.0.0.1]: Trusted: subject_CN=client.test."
                   "example, issuer_CN=Test CA, fingerprint=%s, "
                   "pkey_fingerprint=" % fingerprint(client[0]))
    # Not listed (and not signed by the CA): refused.
    c = tls_client(t.mta.port, stranger)
    code, msg = rcpt(c)
    assert code == 554 and "Relay access denied" in msg, msg
    t.mta.wait_log("Untrusted TLS connection established from")
    # No certificate at all: ask_ccert does not demand one.
    c = tls_client(t.mta.port)
    code, msg = rcpt(c)
    assert code == 554 and "Relay access denied" in msg, msg
    t.mta.wait_log("Anonymous TLS connection established from")


def test_permit_by_public_key_fingerprint_with_s_client(tls_factory,
                                                        tmp_path):
    """openssl s_client -cert/-key; the table lists the key's digest."""
    t, client, stranger = ccert_mta(
        tls_factory, tmp_path, smtpd_relay_restrictions=RELAY)
    pub = subprocess.run(["openssl", "x509", "-in", stranger[0], "-noout",
                          "-pubkey"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub.stdout, check=True,
                         capture_output=True).stdout
    import hashlib
    d = hashlib.sha256(der).hexdigest().upper()
    pfp = ":".join(d[i:i + 2] for i in range(0, len(d), 2))
    tbl = tmp_path / "ccerts" / "ccerts"
    tbl.write_text("%s yes\n" % pfp)
    t.mta.sendarix("reload")
    data = (b"EHLO client.example\nMAIL FROM:<a@example.org>\n"
            b"RCPT TO:<b@example.com>\nQUIT\n")

    def relayed():
        rc, out = s_client(t.mta.port, "-cert", stranger[0], "-key",
                           stranger[1], data=data)
        return "250 2.1.5" in out
    from conftest import wait_for
    wait_for(relayed, what="relay permitted by the public key fingerprint")
    rc, out = s_client(t.mta.port, "-cert", client[0], "-key", client[1],
                       data=data)
    assert "554 5.7.1 <b@example.com>: Relay access denied" in out, out
    assert "pkey_fingerprint=%s" % pfp in t.mta.log()


def test_permit_tls_all_clientcerts(tls_factory, tmp_path):
    t, client, stranger = ccert_mta(
        tls_factory, tmp_path, smtpd_relay_restrictions=(
            "permit_tls_all_clientcerts, reject_unauth_destination"))
    c = tls_client(t.mta.port, client)
    assert rcpt(c)[0] == 250
    c = tls_client(t.mta.port, stranger)
    assert rcpt(c)[0] == 554


def test_check_ccert_access(tls_factory, tmp_path):
    t, client, stranger = ccert_mta(
        tls_factory, tmp_path,
        table="{client} REJECT not you\n{stranger} 450 4.7.9 later\n",
        smtpd_client_restrictions="check_ccert_access TABLE, permit")
    c = tls_client(t.mta.port, client)
    code, msg = rcpt(c)
    assert code == 554, msg
    assert msg == ("5.7.1 <unknown[127.0.0.1]>: Client certificate "
                   "rejected: not you")
    c = tls_client(t.mta.port, stranger)
    assert rcpt(c) == (450, "4.7.9 <unknown[127.0.0.1]>: Client "
                       "certificate rejected: later")
    c = tls_client(t.mta.port)
    assert rcpt(c)[0] == 250


def test_req_ccert(tls_factory, tmp_path):
    t, client, stranger = ccert_mta(
        tls_factory, tmp_path, smtpd_tls_security_level="encrypt",
        smtpd_tls_ask_ccert="no", smtpd_tls_req_ccert="yes")
    c = tls_client(t.mta.port, client)
    assert rcpt(c)[0] == 250
    for cert in (None, stranger):
        c = tls_client(t.mta.port, cert)
        assert c.reply() == (421, "4.7.1 mx.test.example Error: No "
                             "verified client certificate")
        assert c.closed()
    t.mta.wait_log("NOQUEUE: abort: TLS from unknown[127.0.0.1]: No "
                   "verified client certificate")


def test_req_ccert_ignored_where_tls_is_optional(tls_factory, tmp_path):
    t, client, stranger = ccert_mta(tls_factory, tmp_path,
                                    smtpd_tls_req_ccert="yes")
    c = tls_client(t.mta.port)
    assert rcpt(c)[0] == 250
    t.mta.wait_log("smtpd_tls_req_ccert = yes is ignored where TLS is "
                   "optional")


def test_policy_service_gets_the_certificate(tls_factory, tmp_path):
    import socketserver
    import threading
    seen = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            attrs = {}
            for line in self.rfile:
                line = line.decode().rstrip("\n")
                if not line:
                    seen.append(attrs)
                    attrs = {}
                    self.wfile.write(b"action=DUNNO\n\n")
                    continue
                k, _, v = line.partition("=")
                attrs[k] = v

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    # smtpd keeps its connection: do not wait for the handler at the end.
    srv.daemon_threads = True
    srv.block_on_close = False
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        t, client, stranger = ccert_mta(
            tls_factory, tmp_path, smtpd_recipient_restrictions=(
                "check_policy_service inet:127.0.0.1:%d, permit"
                % srv.server_address[1]))
        c = tls_client(t.mta.port, client)
        assert rcpt(c)[0] == 250
        a = seen[-1]
        assert a["ccert_subject"] == "client.test.example"
        assert a["ccert_issuer"] == "Test CA"
        assert a["ccert_fingerprint"] == fingerprint(client[0])
        assert a["encryption_protocol"] == "TLSv1.3"
        assert int(a["encryption_keysize"]) >= 128
        # An unverified certificate: fingerprints only.
        c = tls_client(t.mta.port, stranger)
        assert rcpt(c)[0] == 250
        a = seen[-1]
        assert a["ccert_subject"] == "" and a["ccert_issuer"] == ""
        assert a["ccert_fingerprint"] == fingerprint(stranger[0])
    finally:
        srv.shutdown()
        srv.server_close()


def test_check_accepts_the_tls_restrictions(tls_factory, tmp_path):
    t, client, stranger = ccert_mta(
        tls_factory, tmp_path,
        smtpd_client_restrictions="check_ccert_access TABLE",
        smtpd_relay_restrictions=("permit_tls_clientcerts, "
                                  "permit_tls_all_clientcerts, "
                                  "reject_plaintext_session, "
                                  "reject_unauth_destination"))
    r = t.mta.sendarix("check", check=False)
    assert r.returncode == 0, r.stderr


# -- wrappermode: the 421 of the limits goes out under TLS ------------------

def smtps_client(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = Client.__new__(Client)
    c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                      timeout=10))
    c.buf = b""
    return c


def test_wrappermode_limits_reply_after_the_handshake(tls_factory):
    from conftest import free_port
    conn, busy = free_port(), free_port()
    cf = ("{listen} inet n - n - 1 smtpd\n"
          "127.0.0.1:%d inet n - n - 1 smtpd -o smtpd_tls_wrappermode=yes"
          " -o smtpd_client_connection_count_limit=1"
          " -o smtpd_client_connection_exceptions=\n"
          "127.0.0.1:%d inet n - n - 1 smtpd -o smtpd_tls_wrappermode=yes"
          " -o smtpd_max_sessions=1\n"
          "cleanup unix - - n - 1 cleanup\n") % (conn, busy)
    t = tls_factory(master_cf=cf)
    for port, reply in ((conn, (421, "4.7.0 mx.test.example Error: too "
                                "many connections from your address")),
                        (busy, (421, "4.3.2 mx.test.example Service busy, "
                                "try again later"))):
        first = smtps_client(port)
        assert first.reply()[0] == 220
        second = smtps_client(port)
        assert second.reply() == reply
        assert second.closed()
        assert first.cmd("NOOP")[0] == 250
        first.cmd("QUIT")


def test_check_refuses_an_unknown_digest(tls_factory):
    t = tls_factory({"smtpd_tls_fingerprint_digest": "sha999"}, start=False)
    r = t.mta.sendarix("check", check=False)
    assert r.returncode == 1
    assert ('parameter smtpd_tls_fingerprint_digest: unknown digest '
            '"sha999"') in r.stderr
