"""SMTP AUTH in smtpd: Cyrus SASL (sasldb), XOAUTH2, sender binding, limits.

Users live in a throwaway sasldb made with saslpasswd2; smtpd reads the
smtpd.conf beside it through cyrus_sasl_config_path. Inbound TLS is not
part of these tests: they set smtpd_tls_auth_only = no, except the one
that checks that AUTH is neither offered nor accepted in clear text by
default.
"""

import base64
import http.server
import json
import os
import re
import shutil
import smtplib
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import urllib.parse

import pytest

from conftest import (free_port, maps_libcurl, port_open,
                      restart_without_libcurl, wait_for)
from sxqueue import QueueFile

REALM = "mx.test.example"          # = myhostname: users log in without it
USERS = {"alice": "wonderland", "bob": "builder"}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def make_sasl_dir(base, users=USERS, extra="", conf=None):
    """A folder with smtpd.conf ("conf", or sasldb) and a sasldb."""
    d = os.path.join(str(base), "sasl")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    db = os.path.join(d, "sasldb2")
    for user, password in users.items():
        subprocess.run(["saslpasswd2", "-f", db, "-c", "-p", "-u", REALM,
                        user], input=password.encode(), check=True,
                       timeout=30)
    # smtpd runs as mail_owner under root: it must read (and lock) the db.
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o666)
    with open(os.path.join(d, "smtpd.conf"), "w") as f:
        f.write(conf or "pwcheck_method: auxprop\n"
                "auxprop_plugin: sasldb\n"
                "sasldb_path: %s\n"
                "mech_list: PLAIN LOGIN\n%s" % (db, extra))
    os.chmod(os.path.join(d, "smtpd.conf"), 0o644)
    return d


BASE = {
    "smtpd_sasl_auth_enable": "yes",
    "smtpd_tls_auth_only": "no",
    # The test client (127.0.0.1) is not in mynetworks: only AUTH relays.
    "mynetworks": "192.0.2.0/24",
    "relay_domains": "",
}


@pytest.fixture
def auth_mta(mta_factory):
    """Start an MTA with SASL; extra main.cf settings as keyword args."""
    def make(users=USERS, sasl_conf=None, tls=False, master_cf=None,
             **params):
        main = dict(BASE)
        main.update(params)
        m = mta_factory(main=main, master_cf=master_cf, start=False)
        d = make_sasl_dir(m.tmp, users, conf=sasl_conf)
        with open(os.path.join(m.conf_dir, "main.cf"), "a") as f:
            f.write("cyrus_sasl_config_path = %s\n" % d)
            if tls:
                from test_tls_in import make_cert
                crt, key = make_cert(str(m.tmp), "rsa", "mx.test.example")
                f.write("smtpd_tls_cert_file = %s\n"
                        "smtpd_tls_key_file = %s\n" % (crt, key))
        return m.start()
    return make


class Raw:
    """A raw SMTP client: one line out, the reply lines back."""

    def __init__(self, m):
        self.sock = socket.create_connection((m.host, m.port), timeout=10)
        self.f = self.sock.makefile("rb")
        self.reply()

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            assert line, "connection closed; got %r" % lines
            lines.append(line.decode().rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def last(self, line):
        return self.cmd(line)[-1]

    def close(self):
        self.sock.close()


def ehlo(m):
    c = Raw(m)
    lines = c.cmd("EHLO client.example")
    assert lines[0].startswith("250")
    return c, lines


def qfile(m):
    ids = wait_for(lambda: m.queue_files("incoming"), what="a queued message")
    return QueueFile(os.path.join(m.queue_dir, "incoming", ids[0]))


# -- offering and the basic exchanges ---------------------------------------

def test_ehlo_offers_auth(auth_mta):
    m = auth_mta()
    c, lines = ehlo(m)
    assert "250-AUTH PLAIN LOGIN" in lines or "250-AUTH LOGIN PLAIN" in lines
    c.close()


def test_plain_and_login_with_smtplib(auth_mta):
    m = auth_mta()
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.user, s.password = "alice", "wonderland"
        code, text = s.auth("PLAIN", s.auth_plain)
        assert code == 235 and text == b"2.7.0 Authentication successful"
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.user, s.password = "bob", "builder"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.login("alice", "wonderland")[0] == 235
    m.wait_log("disconnect from")
    assert "auth=1" in m.log()


def test_login_continuations_raw(auth_mta):
    m = auth_mta()
    c, _ = ehlo(m)
    assert c.last("AUTH LOGIN") == "334 " + b64("Username:")
    assert c.last(b64("alice")) == "334 " + b64("Password:")
    assert c.last(b64("wonderland")) == \
        "235 2.7.0 Authentication successful"
    c.close()


def test_plain_without_initial_response(auth_mta):
    m = auth_mta()
    c, _ = ehlo(m)
    assert c.last("AUTH PLAIN") == "334 "
    assert c.last(b64("\0bob\0builder")).startswith("235 2.7.0")
    c.close()


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks(auth_mta, mech):
    m = auth_mta()
    r = subprocess.run(
        ["swaks", "--server", "%s:%d" % (m.host, m.port),
         "--ehlo", "client.example", "--auth", mech,
         "--auth-user", "alice", "--auth-password", "wonderland",
         "--from", "alice@example.com", "--to", "someone@foreign.example",
         "--timeout", "20"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout
    q = qfile(m)
    assert q.attrs["sasl_username"] == "alice"
    assert q.attrs["sasl_method"] == mech


def test_bad_password_535(auth_mta):
    m = auth_mta()
    c, _ = ehlo(m)
    reply = c.last("AUTH PLAIN " + b64("\0alice\0wrong"))
    assert reply.startswith("535 5.7.8 Error: authentication failed:")
    # Logged the way fail2ban's postfix-sasl filter reads it.
    line = m.wait_log("warning: unknown[127.0.0.1]: SASL PLAIN "
                      "authentication failed: ") and \
        [l for l in m.log().splitlines() if "authentication failed" in l][0]
    assert re.search(r"warning: [-._\w]+\[127\.0\.0\.1\]: SASL (LOGIN|PLAIN) "
                     r"authentication failed(: [ A-Za-z0-9+/:]*={0,2})?\s*$",
                     line), line
    # The session goes on: a good login now works.
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) \
        .startswith("235")
    c.close()


def test_unknown_user_535(auth_mta):
    m = auth_mta()
    c, _ = ehlo(m)
    assert c.last("AUTH LOGIN " + b64("nobody")) == \
        "334 " + b64("Password:")
    # No hint whether the user exists.
    assert c.last(b64("x")) == \
        "535 5.7.8 Error: authentication failed: authentication failure"
    c.close()
    m.wait_log("SASL LOGIN authentication failed: ")


def test_malformed_base64_501(auth_mta):
    m = auth_mta()
    c, _ = ehlo(m)
    assert c.last("AUTH PLAIN ###") == "501 5.5.2 Cannot decode response"
    assert c.last("AUTH LOGIN") .startswith("334")
    assert c.last("not*base64") == "501 5.5.2 Cannot decode response"
    # Not a command now: NOOP works again.
    assert c.last("NOOP").startswith("250")
    c.close()


def test_cancel_with_star_501(auth_mta):
    m = auth_mta()
    c, _ = ehlo(m)
    assert c.last("AUTH LOGIN").startswith("334")
    assert c.last("*") == "501 5.7.0 Authentication aborted"
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) \
        .startswith("235")
    c.close()


def test_second_auth_503_and_in_transaction_503(auth_mta):
    m = auth_mta()
    c, _ = ehlo(m)
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) \
        .startswith("235")
    assert c.last("AUTH PLAIN " + b64("\0bob\0builder")) \
        .startswith("503 5.5.1")
    c.close()
    c, _ = ehlo(m)
    assert c.last("MAIL FROM:<x@example.com>").startswith("250")
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) \
        .startswith("503 5.5.1")
    c.close()


def test_unknown_mechanism_504_and_before_ehlo(auth_mta):
    m = auth_mta()
    c = Raw(m)
    assert c.last("AUTH PLAIN =").startswith("503 5.5.1")
    c.cmd("EHLO client.example")
    assert c.last("AUTH CRAM-MD5") == \
        "504 5.5.4 Unsupported authentication mechanism"
    assert c.last("AUTH").startswith("501 5.5.4")
    c.close()


def test_default_auth_only_under_tls(mta_factory):
    """With smtpd_tls_auth_only = yes (the default): nothing in clear."""
    main = dict(BASE)
    del main["smtpd_tls_auth_only"]
    m = mta_factory(main=main, start=False)
    d = make_sasl_dir(m.tmp)
    with open(os.path.join(m.conf_dir, "main.cf"), "a") as f:
        f.write("cyrus_sasl_config_path = %s\n" % d)
    m.start()
    c, lines = ehlo(m)
    assert not [l for l in lines if "AUTH" in l]
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) == \
        "530 5.7.0 Must issue a STARTTLS command first"
    c.close()


def test_auth_disabled(mta):
    c, lines = ehlo(mta)
    assert not [l for l in lines if "AUTH" in l]
    assert c.last("AUTH PLAIN =").startswith("503 5.5.1")
    c.close()


# -- relaying, sender binding, the queue file and the log --------------------

def test_authenticated_relays_unauthenticated_refused(auth_mta):
    m = auth_mta(smtpd_sasl_authenticated_header="yes")
    c, _ = ehlo(m)
    assert c.last("MAIL FROM:<x@example.com>").startswith("250")
    assert c.last("RCPT TO:<y@foreign.example>") == \
        "554 5.7.1 <y@foreign.example>: Relay access denied"
    c.close()
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.login("alice", "wonderland")
        s.sendmail("alice@example.com", ["y@foreign.example"],
                   b"Subject: hi\r\n\r\nbody\r\n")
    q = qfile(m)
    assert q.attrs["sasl_username"] == "alice"
    assert q.attrs["sasl_method"] in ("PLAIN", "LOGIN")
    assert q.attrs["protocol"] == "ESMTPA"
    head = q.headers_and_body()[0].decode()
    assert head.startswith("Received: from client.example (unknown "
                           "[127.0.0.1])\r\n\t(Authenticated sender: alice)"
                           "\r\n\tby mx.test.example (Sendarix) with ESMTPA id ")
    m.wait_log("sasl_username=alice")
    assert "client=unknown[127.0.0.1], sasl_method=" in m.log()


def test_received_header_without_user_by_default(auth_mta):
    m = auth_mta()
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.login("alice", "wonderland")
        s.sendmail("alice@example.com", ["y@foreign.example"],
                   b"Subject: hi\r\n\r\nbody\r\n")
    head = qfile(m).headers_and_body()[0].decode()
    assert "Authenticated sender" not in head
    assert "with ESMTPA id" in head


def test_sender_login_maps(auth_mta, tmp_path):
    m = auth_mta(
        smtpd_sender_login_maps="inline:{alice@example.com=alice, "
                                "{@shared.example=alice bob}}",
        smtpd_sender_restrictions="reject_sender_login_mismatch")
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.login("bob", "builder")
        s.mail("alice@example.com")
        code, text = s.rcpt("y@foreign.example")
        assert code == 553
        assert text == (b"5.7.1 <alice@example.com>: Sender address "
                        b"rejected: not owned by user bob")
        s.rset()
        s.mail("bob@shared.example")
        assert s.rcpt("y@foreign.example")[0] == 250
        s.rset()
        # Not in the table at all: not bob's either.
        s.mail("bob@elsewhere.example")
        assert s.rcpt("y@foreign.example")[0] == 553
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.login("alice", "wonderland")
        s.mail("alice@example.com")
        assert s.rcpt("y@foreign.example")[0] == 250
    # Unauthenticated, an owned address needs a login.
    c, _ = ehlo(m)
    c.last("MAIL FROM:<alice@example.com>")
    assert c.last("RCPT TO:<y@foreign.example>") \
        .startswith("553 5.7.1 <alice@example.com>: Sender address "
                    "rejected: not logged in")
    c.close()


# -- saslauthd ----------------------------------------------------------------

class ImapStub(socketserver.StreamRequestHandler):
    """Just enough IMAP for saslauthd's rimap: LOGIN and LOGOUT."""
    password = "imap-secret"
    gate = threading.Event()

    def handle(self):
        self.wfile.write(b"* OK IMAP4rev1 ready\r\n")
        for line in self.rfile:
            words = line.split()
            if len(words) < 2:
                return
            tag, verb = words[0], words[1].upper()
            if verb == b"LOGIN" and len(words) >= 4:
                self.gate.wait(20)
                ok = words[3].strip(b'"').decode() == self.password
                self.wfile.write(tag + (b" OK LOGIN done\r\n" if ok else
                                        b" NO LOGIN failed\r\n"))
            else:
                self.wfile.write(b"* BYE\r\n" + tag + b" OK\r\n")
                return


@pytest.fixture
def saslauthd():
    """saslauthd -a rimap against a local IMAP stub; yields its socket."""
    if shutil.which("saslauthd") is None:
        pytest.skip("saslauthd (sasl2-bin) is not installed")
    ImapStub.gate.set()
    imap = socketserver.ThreadingTCPServer(("127.0.0.1", 0), ImapStub)
    imap.daemon_threads = True
    threading.Thread(target=imap.serve_forever, daemon=True).start()
    d = tempfile.mkdtemp(prefix="saslauthd-", dir="/tmp")
    os.chmod(d, 0o755)
    proc = subprocess.Popen(
        ["saslauthd", "-a", "rimap", "-O",
         "127.0.0.1/%d" % imap.server_address[1], "-m", d, "-d", "-n", "0"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"),
        # It signals its whole process group when it stops.
        start_new_session=True)
    mux = os.path.join(d, "mux")
    try:
        wait_for(lambda: os.path.exists(mux) or proc.poll() is not None,
                 what="saslauthd socket")
        assert proc.poll() is None, "saslauthd exited"
        yield mux
    finally:
        ImapStub.gate.set()
        proc.terminate()
        proc.wait(timeout=10)
        imap.shutdown()
        imap.server_close()
        shutil.rmtree(d, ignore_errors=True)


def test_saslauthd_round_trip_never_blocks(auth_mta, saslauthd):
    m = auth_mta(sasl_conf="pwcheck_method: saslauthd\n"
                           "saslauthd_path: %s\n"
                           "mech_list: PLAIN LOGIN\n" % saslauthd,
                 relay_domains="local.example")
    c, _ = ehlo(m)
    assert c.last("AUTH PLAIN " + b64("\0carol\0imap-secret")) == \
        "235 2.7.0 Authentication successful"
    c.close()
    c, _ = ehlo(m)
    assert c.last("AUTH PLAIN " + b64("\0carol\0wrong")).startswith(
        "535 5.7.8")
    c.close()
    # The IMAP server stalls: the session waiting on saslauthd waits...
    ImapStub.gate.clear()
    c1, _ = ehlo(m)
    c1.sock.sendall(("AUTH LOGIN %s\r\n" % b64("carol")).encode())
    assert c1.reply() == ["334 " + b64("Password:")]
    c1.sock.sendall((b64("imap-secret") + "\r\n").encode())
    # ...while the process serves another client, mail included.
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("other.example")
        s.sendmail("x@example.com", ["someone@local.example"],
                   b"Subject: meanwhile\r\n\r\nbody\r\n")
    ImapStub.gate.set()
    assert c1.reply() == ["235 2.7.0 Authentication successful"]
    c1.close()


def test_stuck_password_check_times_out(auth_mta, saslauthd):
    m = auth_mta(sasl_conf="pwcheck_method: saslauthd\n"
                           "saslauthd_path: %s\n"
                           "mech_list: PLAIN LOGIN\n" % saslauthd,
                 smtpd_timeout="2s")
    ImapStub.gate.clear()
    c, _ = ehlo(m)
    assert c.last("AUTH PLAIN " + b64("\0carol\0imap-secret")) == \
        "454 4.7.0 Temporary authentication failure: timeout"
    assert c.last("NOOP").startswith("250")
    ImapStub.gate.set()
    c.close()


# -- failure limit -------------------------------------------------------------

def test_failure_limit_and_expiry(auth_mta):
    m = auth_mta(smtpd_auth_failure_limit="3",
                 smtpd_auth_failure_window="60s",
                 smtpd_auth_failure_lockout="2s")
    c, _ = ehlo(m)
    for _ in range(3):
        assert c.last("AUTH PLAIN " + b64("\0alice\0bad")).startswith("535")
    locked = "454 4.7.0 Too many failed authentication attempts, " \
             "try again later"
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) == locked
    c.close()
    # Another session from the same address is locked out too...
    c, _ = ehlo(m)
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) == locked

    # ...until the lockout ends.
    def try_login():
        r = c.last("AUTH PLAIN " + b64("\0alice\0wonderland"))
        assert r.startswith("235") or r == locked, r
        return r.startswith("235")
    wait_for(try_login, timeout=15, interval=0.3, what="lockout to expire")
    c.close()


# -- XOAUTH2 -------------------------------------------------------------------

def xoauth2(user, token):
    return b64("user=%s\x01auth=Bearer %s\x01\x01" % (user, token))


def xo_error(reply):
    assert reply.startswith("334 "), reply
    return json.loads(base64.b64decode(reply[4:]))


def test_xoauth2_table(auth_mta):
    m = auth_mta(smtpd_sasl_xoauth2_token_maps="inline:{tok-alice=alice}",
                 smtpd_sasl_xoauth2_scope="https://mail.example/")
    c, lines = ehlo(m)
    assert [l for l in lines if "AUTH" in l and "XOAUTH2" in l]
    assert c.last("AUTH XOAUTH2 " + xoauth2("alice", "tok-alice")) == \
        "235 2.7.0 Authentication successful"
    c.close()
    # A bad token: the RFC 7628 error, then 535 after the empty line.
    c, _ = ehlo(m)
    err = xo_error(c.last("AUTH XOAUTH2 " + xoauth2("alice", "tok-bad")))
    assert err == {"status": "invalid_token", "schemes": "bearer",
                   "scope": "https://mail.example/"}
    assert c.last("").startswith("535 5.7.8")
    # A good token of someone else is no good either.
    assert xo_error(c.last("AUTH XOAUTH2 " + xoauth2("bob", "tok-alice")))
    assert c.last("").startswith("535 5.7.8")
    # Without an initial response: 334, then the client message.
    assert c.last("AUTH XOAUTH2") == "334 "
    assert c.last(xoauth2("alice", "tok-alice")).startswith("235")
    c.close()
    m.wait_log("SASL XOAUTH2 authentication failed: invalid token, "
               "sasl_username=alice")


class Introspection(http.server.BaseHTTPRequestHandler):
    tokens = {}
    requests = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        self.requests.append((self.headers.get("Authorization"), form))
        tok = form.get("token", [""])[0]
        body = json.dumps(self.tokens.get(tok, {"active": False})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def introspection():
    import time
    Introspection.tokens = {
        "good": {"active": True, "username": "alice",
                 "exp": int(time.time()) + 3600},
        "expired": {"active": True, "username": "alice",
                    "exp": int(time.time()) - 10},
    }
    Introspection.requests = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Introspection)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_xoauth2_introspection(auth_mta, introspection):
    url = "http://127.0.0.1:%d/introspect" % introspection.server_port
    m = auth_mta(smtpd_sasl_xoauth2_introspection_url=url,
                 smtpd_sasl_xoauth2_client_id="smtpd",
                 smtpd_sasl_xoauth2_client_secret="s3cret")
    c, _ = ehlo(m)
    assert c.last("AUTH XOAUTH2 " + xoauth2("alice", "good")) == \
        "235 2.7.0 Authentication successful"
    c.close()
    auth, form = Introspection.requests[0]
    assert auth == "Basic " + b64("smtpd:s3cret")
    assert form["token"] == ["good"]
    # Cached for its lifetime: a second login asks nobody.
    c, _ = ehlo(m)
    assert c.last("AUTH XOAUTH2 " + xoauth2("alice", "good")) \
        .startswith("235")
    c.close()
    assert len(Introspection.requests) == 1
    for tok in ("unknown", "expired"):
        c, _ = ehlo(m)
        assert xo_error(c.last("AUTH XOAUTH2 " + xoauth2("alice", tok)))[
            "status"] == "invalid_token"
        assert c.last("").startswith("535 5.7.8")
        c.close()
    # Authenticated by token, the client relays.
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        code, _ = s.docmd("AUTH", "XOAUTH2 " + xoauth2("alice", "good"))
        assert code == 235
        s.sendmail("alice@example.com", ["y@foreign.example"],
                   b"Subject: hi\r\n\r\nbody\r\n")
    assert qfile(m).attrs["sasl_method"] == "XOAUTH2"


def test_xoauth2_endpoint_down_is_temporary(auth_mta):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    url = "http://127.0.0.1:%d/" % port.getsockname()[1]
    port.close()
    m = auth_mta(smtpd_sasl_xoauth2_introspection_url=url)
    c, _ = ehlo(m)
    assert c.last("AUTH XOAUTH2 " + xoauth2("alice", "t")) \
        .startswith("454 4.7.0")
    c.close()


def test_xoauth2_without_libcurl_is_temporary(auth_mta, introspection):
    # smtpd loads libcurl for introspection only; where libcurl.so.4
    # cannot be loaded, the endpoint is as good as unreachable: 454.
    url = "http://127.0.0.1:%d/introspect" % introspection.server_port
    m = auth_mta(smtpd_sasl_xoauth2_introspection_url=url)
    c, _ = ehlo(m)
    c.close()
    pids = m.child_pids("smtpd")
    assert pids and all(maps_libcurl(p) for p in pids)
    restart_without_libcurl(m)
    c, _ = ehlo(m)
    assert c.last("AUTH XOAUTH2 " + xoauth2("alice", "good")) \
        .startswith("454 4.7.0")
    c.close()
    assert Introspection.requests == []
    assert "warning: http: cannot load libcurl.so.4: " in m.log()
    # Still serving: a password login works.
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.login("alice", USERS["alice"])
    pids = m.child_pids("smtpd")
    assert pids and not any(maps_libcurl(p) for p in pids)


def test_libcurl_not_loaded_without_introspection(auth_mta, mta_factory):
    # AUTH without an introspection URL, and a URL without AUTH (say, in
    # main.cf for a submission service, read by port 25's smtpd too).
    url = "http://127.0.0.1:9/introspect"
    for m in (auth_mta(),
              mta_factory(main={"smtpd_sasl_xoauth2_introspection_url":
                                url})):
        c, _ = ehlo(m)
        c.close()
        pids = m.child_pids("smtpd")
        assert pids and not any(maps_libcurl(p) for p in pids)


def test_slow_exchange_does_not_block_others(auth_mta, introspection):
    """A check that waits suspends its session only."""
    url = "http://127.0.0.1:%d/" % introspection.server_port
    m = auth_mta(smtpd_sasl_xoauth2_introspection_url=url)
    gate = threading.Event()
    orig = Introspection.do_POST

    def slow(self):
        gate.wait(10)
        orig(self)
    Introspection.do_POST = slow
    try:
        c1, _ = ehlo(m)
        c1.sock.sendall(("AUTH XOAUTH2 %s\r\n" %
                         xoauth2("alice", "good")).encode())
        # Meanwhile another client is served, Cyrus logins included.
        c2, _ = ehlo(m)
        assert c2.last("AUTH PLAIN " + b64("\0bob\0builder")) \
            .startswith("235")
        c2.close()
        gate.set()
        assert c1.reply()[-1].startswith("235")
        c1.close()
    finally:
        Introspection.do_POST = orig


def test_policy_server_sees_the_sasl_user(auth_mta):
    from test_restrictions import PolicyServer
    pol = PolicyServer()
    try:
        m = auth_mta(smtpd_recipient_restrictions="check_policy_service "
                     "inet:127.0.0.1:%d" % pol.server_address[1])
        with smtplib.SMTP(m.host, m.port, timeout=10) as s:
            s.ehlo("client.example")
            s.login("bob", "builder")
            s.mail("bob@example.com")
            assert s.rcpt("y@foreign.example")[0] == 250
        r = pol.requests[0]
        assert r["sasl_username"] == "bob"
        assert r["sasl_method"] in ("PLAIN", "LOGIN")
        assert r["protocol_name"] == "ESMTPA"
    finally:
        pol.shutdown()
        pol.server_close()


def test_check_opens_the_sasl_tables(mta_factory):
    m = mta_factory(main={"smtpd_sender_login_maps": "inline:{a=b"},
                    start=False)
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert "parameter smtpd_sender_login_maps: unbalanced brace" in r.stderr


def test_mail_auth_parameter(auth_mta, mta):
    """RFC 4954 section 5: MAIL FROM's AUTH= is accepted where AUTH is."""
    m = auth_mta()
    c, _ = ehlo(m)
    assert c.last("MAIL FROM:<a@example.com> AUTH=<>").startswith("250")
    c.close()
    c, _ = ehlo(mta)
    assert c.last("MAIL FROM:<a@example.com> AUTH=<>").startswith("555")
    c.close()


def test_login_mismatch_variants(auth_mta):
    m = auth_mta(
        relay_domains="local.example",
        smtpd_sender_login_maps="inline:{alice@example.com=alice}",
        smtpd_sender_restrictions="reject_authenticated_sender_login_"
                                  "mismatch")
    # Not logged in: this variant does not look.
    c, _ = ehlo(m)
    c.last("MAIL FROM:<alice@example.com>")
    assert c.last("RCPT TO:<u@local.example>").startswith("250")
    c.close()
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        s.login("bob", "builder")
        s.mail("alice@example.com")
        assert s.rcpt("u@local.example")[0] == 553


def test_xoauth2_long_token(auth_mta):
    """Microsoft 365 tokens run to thousands of bytes: more than a
    command line, less than smtpd_sasl_response_limit."""
    token = "x" * 5000
    m = auth_mta(smtpd_sasl_xoauth2_token_maps="inline:{%s=alice}" % token)
    c, _ = ehlo(m)
    assert c.last("AUTH XOAUTH2 " + xoauth2("alice", token)) == \
        "235 2.7.0 Authentication successful"
    c.close()
    c, _ = ehlo(m)
    assert c.last("AUTH XOAUTH2") == "334 "
    assert c.last(xoauth2("alice", token)).startswith("235")
    c.close()
    # A command line is still held to smtpd_line_length_limit.
    c, _ = ehlo(m)
    assert c.last("NOOP " + "y" * 5000).startswith("500 5.5.2")
    assert c.last("AUTH XOAUTH2 " + "A" * 20000).startswith("500 5.5.2")
    c.close()


# -- under TLS -------------------------------------------------------------------

def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_auth_only_after_starttls(auth_mta):
    """The defaults: AUTH neither offered nor taken until STARTTLS."""
    m = auth_mta(tls=True, smtpd_tls_auth_only="yes",
                 smtpd_tls_security_level="may",
                 smtpd_sasl_authenticated_header="yes")
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        assert s.docmd("AUTH", "PLAIN " + b64("\0alice\0wonderland")) == \
            (530, b"5.7.0 Must issue a STARTTLS command first")
        s.starttls(context=tls_context())
        s.ehlo("client.example")
        assert s.has_extn("auth")
        assert "PLAIN" in s.esmtp_features["auth"]
        assert s.login("alice", "wonderland")[0] == 235
        s.sendmail("alice@example.com", ["y@foreign.example"],
                   b"Subject: hi\r\n\r\nbody\r\n")
    q = qfile(m)
    assert q.attrs["protocol"] == "ESMTPSA"
    assert q.attrs["sasl_username"] == "alice"
    assert q.attrs["tls"].startswith("TLSv1.")
    head = q.headers_and_body()[0].decode()
    assert re.search(r"^Received: from client\.example \(unknown "
                     r"\[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.\d with cipher "
                     r".*\)\r\n\t\(No client certificate requested\)\r\n"
                     r"\t\(Authenticated sender: alice\)\r\n\tby mx\.test\.example "
                     r"\(Sendarix\) with ESMTPSA id ", head), head
    m.wait_log("sasl_username=alice")
    assert re.search(r"client=unknown\[127\.0\.0\.1\], tls=TLSv1\.\d .*, "
                     r"sasl_method=PLAIN, sasl_username=alice", m.log())
    assert "starttls=1 auth=1" in m.log()


SUBMISSION_CF = """\
{listen} inet n - n - 1 smtpd
127.0.0.1:%d inet n - n - 1 smtpd -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
127.0.0.1:%d inet n - n - 1 smtpd -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
cleanup unix - - n - 1 cleanup
"""


def test_submission_and_smtps_with_swaks(auth_mta):
    """The shipped submission and smtps shapes: TLS first, then AUTH."""
    sub_port, smtps_port = free_port(), free_port()
    m = auth_mta(tls=True, master_cf=SUBMISSION_CF % (sub_port, smtps_port),
                 smtpd_sasl_auth_enable="no", smtpd_tls_auth_only="yes")
    wait_for(lambda: port_open(sub_port) and port_open(smtps_port),
             what="submission and smtps ports")
    # No AUTH (nor mail) before TLS on the submission port.
    c = Raw(type("M", (), {"host": m.host, "port": sub_port}))
    lines = c.cmd("EHLO client.example")
    assert "250-STARTTLS" in lines and not [l for l in lines if "AUTH" in l]
    assert c.last("AUTH PLAIN " + b64("\0alice\0wonderland")) == \
        "530 5.7.0 Must issue a STARTTLS command first"
    assert c.last("MAIL FROM:<alice@example.com>").startswith("530 5.7.0")
    c.close()
    for port, tls in ((sub_port, "--tls"), (smtps_port, "--tlsc")):
        r = subprocess.run(
            ["swaks", "--server", "%s:%d" % (m.host, port), tls,
             "--ehlo", "client.example", "--auth", "LOGIN",
             "--auth-user", "alice", "--auth-password", "wonderland",
             "--from", "alice@example.com", "--to", "x@foreign.example",
             "--timeout", "20"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "235 2.7.0 Authentication successful" in r.stdout
    # Without AUTH the smtps service takes no mail at all.
    r = subprocess.run(
        ["swaks", "--server", "%s:%d" % (m.host, smtps_port), "--tlsc",
         "--from", "alice@example.com", "--to", "x@foreign.example",
         "--timeout", "20"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "554 5.7.1" in r.stdout
    assert len(wait_for(lambda: len(m.queue_files("incoming")) == 2 and
                        m.queue_files("incoming"))) == 2


def test_starttls_forgets_a_clear_text_login(auth_mta):
    """RFC 3207: after the handshake the client starts over, AUTH too."""
    m = auth_mta(tls=True, smtpd_tls_security_level="may")
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.login("alice", "wonderland")[0] == 235
        s.starttls(context=tls_context())
        s.ehlo("client.example")
        s.mail("alice@example.com")
        assert s.rcpt("y@foreign.example")[0] == 554
        # ...and may log in again, now under TLS.
        s.rset()
        assert s.login("bob", "builder")[0] == 235
