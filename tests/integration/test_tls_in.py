"""smtpd TLS: STARTTLS, implicit TLS (wrappermode), certificates, reload.

Certificates are made per test with openssl(1) in the test's own folder;
the key files are 0600 (smtpd reads them as root, before it drops to
mail_owner). Every peer is real: openssl s_client, Python's ssl module
over a raw socket, smtplib, swaks, and aiosmtpd as the next hop.
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import BIN, FULL_MASTER_CF, free_port, wait_for
from receivers import aiosmtpd_receiver
from test_smtpd import Client as SmtpClient

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl(1) not installed")

# smtp with STARTTLS; a second smtpd in wrappermode (the smtps shape).
TLS_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
127.0.0.1:%d inet n - n - 1 smtpd -o smtpd_tls_wrappermode=yes
cleanup unix - - n - 1 cleanup
"""


def make_cert(folder, name, cn, ec=False):
    """A self-signed certificate and its 0600 key; (cert, key) paths."""
    crt = os.path.join(folder, name + ".crt")
    key = os.path.join(folder, name + ".key")
    kind = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if ec
            else ["-newkey", "rsa:2048"])
    subprocess.run(["openssl", "req", "-x509"] + kind +
                   ["-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + cn],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    os.chmod(crt, 0o644)
    return crt, key


class Tls:
    """An Mta with certificates, a STARTTLS port and a wrappermode port."""

    def __init__(self, mta, certdir, smtps_port):
        self.mta = mta
        self.certdir = certdir
        self.smtps_port = smtps_port


@pytest.fixture
def tls_factory(mta_factory, tmp_path):
    def make(main=None, ec=False, master_cf=None, start=True):
        # The certificates live beside the instance, readable by root.
        certdir = str(tmp_path / ("certs%d" % len(os.listdir(tmp_path))))
        os.makedirs(certdir)
        crt, key = make_cert(certdir, "rsa", "rsa.test.example")
        params = {"smtpd_tls_security_level": "may",
                  "smtpd_tls_cert_file": crt,
                  "smtpd_tls_key_file": key}
        if ec:
            eccrt, eckey = make_cert(certdir, "ec", "ec.test.example",
                                     ec=True)
            params.update({"smtpd_tls_eccert_file": eccrt,
                           "smtpd_tls_eckey_file": eckey})
        params.update(main or {})
        smtps = free_port()
        m = mta_factory(main=params, master_cf=master_cf or
                        (TLS_MASTER_CF % smtps), start=start)
        return Tls(m, certdir, smtps)
    return make


def s_client(port, *args, starttls=True, data=b""):
    """openssl s_client -brief; (exit status, all output as text)."""
    cmd = ["openssl", "s_client", "-brief", "-connect",
           "127.0.0.1:%d" % port]
    if starttls:
        cmd += ["-starttls", "smtp"]
    if data:
        # Send "data", then read until the server closes (after QUIT).
        cmd += ["-ign_eof", "-crlf"]
    r = subprocess.run(cmd + list(args), input=data, capture_output=True,
                       timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def peer_cn(out):
    m = re.search(r"Peer certificate: .*CN ?= ?([\w.-]+)", out)
    return m.group(1) if m else None


class Client(SmtpClient):
    """A raw SMTP client (test_smtpd's) whose socket can turn into TLS in
    place."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""

    def starttls(self):
        """The handshake on the same socket (nothing may be buffered)."""
        assert self.buf == b"", "bytes after the 220: %r" % self.buf
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock)
        return self.sock

    def closed(self):
        """True once the server has closed the connection; under TLS a
        reset or a failed record means closed as well."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionError, ssl.SSLError):
            return True
        except socket.timeout:
            return False


# -- handshakes and certificates -------------------------------------------

def test_starttls_and_wrappermode_show_the_certificate(tls_factory):
    t = tls_factory()
    rc, out = s_client(t.mta.port)
    assert rc == 0, out
    assert peer_cn(out) == "rsa.test.example", out
    rc, out = s_client(t.smtps_port, starttls=False, data=b"QUIT\n")
    assert rc == 0, out
    assert peer_cn(out) == "rsa.test.example", out
    assert "220 mx.test.example ESMTP" in out
    t.mta.wait_log("Anonymous TLS connection established from "
                   "unknown[127.0.0.1]: TLSv1.3 with cipher")
    if os.geteuid() == 0:
        # The key is root's alone, yet smtpd serves as mail_owner: it
        # read the key before it dropped privileges.
        st = os.stat(os.path.join(t.certdir, "rsa.key"))
        assert st.st_uid == 0 and st.st_mode & 0o077 == 0
        for pid in t.mta.child_pids("smtpd"):
            with open("/proc/%d/status" % pid) as f:
                uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
            assert "0" not in uids, uids


def test_old_protocols_refused_new_ones_accepted(tls_factory):
    t = tls_factory()
    # SECLEVEL=0 lets the client offer them: the refusal is the server's.
    for v in ("-tls1", "-tls1_1"):
        rc, out = s_client(t.mta.port, v, "-cipher", "DEFAULT@SECLEVEL=0")
        assert rc != 0 and "Protocol version:" not in out, out
        rc, out = s_client(t.smtps_port, v, "-cipher", "DEFAULT@SECLEVEL=0",
                           starttls=False)
        assert rc != 0 and "Protocol version:" not in out, out
    for v, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        rc, out = s_client(t.mta.port, v)
        assert rc == 0 and "Protocol version: " + name in out, out
        rc, out = s_client(t.smtps_port, v, starttls=False)
        assert rc == 0 and "Protocol version: " + name in out, out
    assert "SSL_accept error from unknown[127.0.0.1]" in t.mta.log()
    assert "TLSv1.2 with cipher" in t.mta.log()


def test_ecdsa_only_client_gets_the_ecdsa_certificate(tls_factory):
    t = tls_factory(ec=True)
    rc, out = s_client(t.mta.port, "-tls1_2", "-sigalgs", "ECDSA+SHA256",
                       "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert rc == 0, out
    assert peer_cn(out) == "ec.test.example", out
    # An RSA-only client still gets the RSA one.
    rc, out = s_client(t.mta.port, "-tls1_2", "-sigalgs", "RSA+SHA256",
                       "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert rc == 0, out
    assert peer_cn(out) == "rsa.test.example", out


def test_session_resumption(tls_factory, tmp_path):
    t = tls_factory()
    for v in ("-tls1_2", "-tls1_3"):
        sess = str(tmp_path / ("sess%s.pem" % v))
        for i, opt in enumerate(("-sess_out", "-sess_in")):
            # QUIT and wait for 221: TLS 1.3 tickets come after the
            # handshake.
            r = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                                "-connect", "127.0.0.1:%d" % t.mta.port, v,
                                "-ign_eof", "-crlf", opt, sess],
                               input=b"QUIT\n", capture_output=True,
                               timeout=30)
            out = r.stdout.decode(errors="replace")
            assert r.returncode == 0, out
            assert ("Reused, " if i else "New, ") + v[1:].replace(
                "tls1_", "TLSv1.") in out, out


# -- the STARTTLS command ---------------------------------------------------

def test_starttls_injection_is_never_answered(tls_factory):
    t = tls_factory()
    c = Client(t.mta.port)
    assert c.reply()[0] == 220
    code, text = c.cmd("EHLO client.example")
    assert code == 250 and "STARTTLS" in text.split("\n")
    # CVE-2011-0411: a command sent in the same write as STARTTLS.
    c.send("STARTTLS\r\nRSET\r\n")
    assert c.reply() == (220, "2.0.0 Ready to start TLS")
    c.starttls()
    code, text = c.cmd("EHLO client.example")
    # The next reply is EHLO's, not RSET's 250 2.0.0 Ok.
    assert code == 250 and text.startswith("mx.test.example\n"), text
    assert "STARTTLS" not in text.split("\n")
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    assert c.cmd("QUIT")[0] == 221
    t.mta.wait_log("disconnect from unknown[127.0.0.1] ehlo=2 starttls=1 "
                   "noop=1 quit=1 commands=5")
    assert "rset=" not in t.mta.log()


def test_state_is_reset_after_starttls(tls_factory):
    t = tls_factory()
    c = Client(t.mta.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("STARTTLS extra") == (501, "5.5.4 Syntax: STARTTLS")
    assert c.cmd("STARTTLS")[0] == 220
    c.starttls()
    # No HELO, no transaction any more.
    assert c.cmd("MAIL FROM:<a@example.org>") == (
        503, "5.5.1 Error: send HELO/EHLO first")
    c.cmd("EHLO client.example")
    assert c.cmd("RCPT TO:<b@example.com>")[0] == 503
    assert c.cmd("STARTTLS") == (503, "5.5.1 Error: TLS already active")
    c.cmd("QUIT")


def test_no_starttls_without_tls(mta_factory):
    m = mta_factory()
    c = Client(m.port)
    c.reply()
    code, text = c.cmd("EHLO client.example")
    assert "STARTTLS" not in text.split("\n")
    assert c.cmd("STARTTLS") == (502, "5.5.1 Error: TLS is not offered on "
                                       "this service")
    c.cmd("QUIT")


def test_missing_certificate_means_454(mta_factory):
    m = mta_factory(main={"smtpd_tls_security_level": "may",
                          "smtpd_tls_cert_file": "/nonexistent/cert.pem"})
    c = Client(m.port)
    c.reply()
    code, text = c.cmd("EHLO client.example")
    assert code == 250 and "STARTTLS" not in text.split("\n")
    assert c.cmd("STARTTLS") == (
        454, "4.7.0 TLS not available due to local problem")
    c.cmd("QUIT")
    assert "TLS library problem" in m.log()


def test_world_readable_key_is_refused(tls_factory):
    t = tls_factory(start=False)
    key = os.path.join(t.certdir, "rsa.key")
    os.chmod(key, 0o644)
    # The check (sendarix check, start, reload, master) refuses it...
    r = t.mta.sendarix("check", check=False)
    assert r.returncode == 1
    assert "smtpd_tls_key_file %s is world-readable" % key in r.stderr
    # ...and so does smtpd itself, should one start with it anyway.
    os.chmod(key, 0o600)
    t.mta.start()
    pids = t.mta.child_pids("smtpd")
    assert pids
    os.chmod(key, 0o644)
    os.kill(pids[0], 9)
    t.mta.wait_log("fatal: key file %s is world-readable" % key)


def test_check_warns_about_tls_without_certificate(mta_factory):
    m = mta_factory(main={"smtpd_tls_security_level": "may"}, start=False)
    r = m.sendarix("check")
    assert "TLS is asked for, but smtpd_tls_cert_file is empty" in r.stderr


def test_encrypt_level_refuses_mail_before_starttls(tls_factory):
    t = tls_factory(main={"smtpd_tls_security_level": "encrypt"})
    c = Client(t.mta.port)
    c.reply()
    c.cmd("EHLO client.example")
    must = (530, "5.7.0 Must issue a STARTTLS command first")
    assert c.cmd("MAIL FROM:<a@example.org>") == must
    assert c.cmd("VRFY postmaster") == must
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    c.starttls()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
    c.cmd("QUIT")


def test_check_refuses_bad_tls_settings(tls_factory):
    t = tls_factory(start=False)
    for name, value in (("smtpd_tls_security_level", "always"),
                        ("smtpd_tls_ciphers", "export")):
        with open(os.path.join(t.mta.conf_dir, "main.cf"), "a") as f:
            f.write("%s = %s\n" % (name, value))
        r = t.mta.sendarix("check", check=False)
        assert r.returncode == 1
        assert 'parameter %s: bad value "%s"' % (name, value) in r.stderr
        with open(os.path.join(t.mta.conf_dir, "main.cf")) as f:
            lines = f.readlines()[:-1]
        with open(os.path.join(t.mta.conf_dir, "main.cf"), "w") as f:
            f.writelines(lines)
    assert t.mta.sendarix("check").returncode == 0


# -- broken clients -----------------------------------------------------------

def test_garbage_instead_of_a_handshake(tls_factory):
    t = tls_factory()
    # A session under TLS in the same process, open all along.
    a = Client(t.mta.port)
    a.reply()
    a.cmd("EHLO before.example")
    assert a.cmd("STARTTLS")[0] == 220
    a.starttls()
    assert a.cmd("EHLO before.example")[0] == 250
    assert a.cmd("MAIL FROM:<a@example.org>")[0] == 250
    # Implicit TLS: plain text where the ClientHello belongs.
    c = Client(t.smtps_port)
    c.send("EHLO client.example\r\n\r\n")
    assert c.closed()
    # STARTTLS, then garbage.
    c = Client(t.mta.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS")[0] == 220
    c.send(b"\x16\x03\x01\x00\x05hello" + b"\0" * 64)
    assert c.closed()
    t.mta.wait_log("SSL_accept error from unknown[127.0.0.1]: "
                   "error:0A00010B:SSL routines::wrong version number")
    assert "lib(0)" not in t.mta.log()
    # The process is still there, and serves the next clients.
    rc, out = s_client(t.smtps_port, starttls=False, data=b"QUIT\n")
    assert rc == 0 and "220 mx.test.example" in out, out
    c = Client(t.mta.port)
    assert c.reply()[0] == 220
    c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS")[0] == 220
    c.starttls()
    assert c.cmd("EHLO again.example")[0] == 250
    c.cmd("QUIT")
    # The first session is unaffected, transaction and all.
    assert a.cmd("RCPT TO:<b@example.com>")[0] == 250
    assert a.cmd("QUIT")[0] == 221
    assert "fatal" not in t.mta.log() and "panic" not in t.mta.log()


def test_handshake_timeout(tls_factory):
    t = tls_factory(main={"smtpd_starttls_timeout": "1s"})
    c = Client(t.smtps_port)
    # Say nothing: the server gives up after smtpd_starttls_timeout.
    assert c.closed()
    t.mta.wait_log("SSL_accept error from unknown[127.0.0.1]: timeout")


# -- mail under TLS -----------------------------------------------------------

def test_smtplib_starttls_queue_file_and_log(tls_factory):
    t = tls_factory()
    with smtplib.SMTP("127.0.0.1", t.mta.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.example")
        assert not s.has_extn("starttls")
        s.sendmail("a@example.org", ["b@example.com"],
                   b"Subject: tls\r\n\r\nover TLS\r\n")
    wait_for(lambda: t.mta.queue_files(), what="queued message")
    qid = t.mta.queue_files()[0]
    out = t.mta.sendarix("queue", "show", qid).stdout
    assert re.search(r"tls: TLSv1\.3 with cipher \S+ \(\d+/\d+ bits\)", out), out
    assert "protocol: ESMTPS" in out
    assert "\t(using TLSv1.3 with cipher " in out
    assert re.search(r"by mx\.test\.example \(Sendarix\) with ESMTPS id ", out)
    t.mta.wait_log("%s: client=unknown[127.0.0.1], tls=TLSv1.3 with cipher"
                   % qid)


def test_received_header_at_the_next_hop(tls_factory):
    ctl, rec = aiosmtpd_receiver()
    try:
        t = tls_factory(main={"relayhost": "[127.0.0.1]:%d" % ctl.port},
                        master_cf=FULL_MASTER_CF)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with smtplib.SMTP("127.0.0.1", t.mta.port, timeout=10) as s:
            s.starttls(context=ctx)
            s.sendmail("a@example.org", ["b@example.com"],
                       b"Subject: tls\r\n\r\nover TLS\r\n")
        wait_for(lambda: rec.messages, timeout=30, what="delivery")
        content = rec.messages[0][2]
        head = content.split(b"\r\n\r\n")[0].decode()
        assert re.search(r"^Received: from \S+ \(unknown \[127\.0\.0\.1\]\)\r\n"
                         r"\t\(using TLSv1\.2 with cipher \S+ \(\d+/\d+ bits\)\)"
                         r"\r\n\t\(No client certificate requested\)\r\n"
                         r"\tby mx\.test\.example \(Sendarix\) with ESMTPS id ",
                         head), head
    finally:
        ctl.stop()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="no swaks")
def test_swaks_tls(tls_factory):
    t = tls_factory()
    r = subprocess.run(["swaks", "--server", "127.0.0.1",
                        "--port", str(t.mta.port), "--tls",
                        "--from", "a@example.org", "--to", "b@example.com",
                        "--helo", "client.example"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TLS started" in r.stdout
    assert "250 2.0.0 Ok" in r.stdout
    r = subprocess.run(["swaks", "--server", "127.0.0.1",
                        "--port", str(t.smtps_port), "--tlsc",
                        "--from", "a@example.org", "--to", "b@example.com",
                        "--helo", "client.example"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: len(t.mta.queue_files()) == 2, what="two messages")


# -- reload -----------------------------------------------------------------

def test_reload_picks_up_a_new_certificate(tls_factory):
    t = tls_factory()
    rc, out = s_client(t.mta.port)
    assert peer_cn(out) == "rsa.test.example", out
    old = t.mta.child_pids("smtpd")
    # New files in place of the old ones, then "sendarix reload".
    make_cert(t.certdir, "rsa", "new.test.example")
    t.mta.sendarix("reload")
    wait_for(lambda: peer_cn(s_client(t.mta.port)[1]) == "new.test.example",
             timeout=20, what="the new certificate on smtp")
    wait_for(lambda: peer_cn(s_client(t.smtps_port, starttls=False)[1])
             == "new.test.example", timeout=20,
             what="the new certificate on smtps")
    assert not set(old) & set(t.mta.child_pids("smtpd"))


# -- the shipped master.cf ----------------------------------------------------

def test_shipped_master_cf_passes_the_check(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    conf = tmp_path / "conf"
    conf.mkdir()
    shutil.copy(os.path.join(root, "conf", "master.cf"), str(conf))
    with open(os.path.join(root, "conf", "main.cf")) as f:
        main = f.read()
    (conf / "main.cf").write_text(
        main + "\nqueue_directory = %s\ndaemon_directory = %s\n"
        % (tmp_path / "queue", BIN))
    r = subprocess.run([os.path.join(BIN, "sendarix"), "-c", str(conf),
                        "check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (conf / "master.cf").read_text()
    assert re.search(r"^submission\s+inet.*smtpd\n"
                     r"(?:#?\s+-o .*\n)*\s+-o smtpd_tls_security_level=encrypt",
                     text, re.M)
    assert re.search(r"^smtps\s+inet.*smtpd\n"
                     r"(?:#?\s+-o .*\n)*\s+-o smtpd_tls_wrappermode=yes",
                     text, re.M)
