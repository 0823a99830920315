"""sendarix sandbox: the SMTP sink for operators and tests.

Each test starts `sendarix -c CONFDIR sandbox ...` (no master) with an
empty main.cf, on a free loopback port, waits for its pid file (written
once the socket listens), talks SMTP to it with smtplib or a raw socket,
and checks what landed in the maildir, the envelope sidecar files and
the statistics file.
"""

import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import SENDARIX, free_port, wait_for


class Sandbox:
    def __init__(self, tmp_path, args=(), rules=None, listen=None):
        self.tmp = tmp_path
        self.conf_dir = str(tmp_path / "conf")
        os.makedirs(self.conf_dir, exist_ok=True)
        open(os.path.join(self.conf_dir, "main.cf"), "w").close()
        self.maildir = str(tmp_path / "maildir")
        self.stats_file = str(tmp_path / "stats.json")
        self.pid_file = str(tmp_path / "sandbox.pid")
        self.log_file = str(tmp_path / "sandbox.log")
        self.host = "127.0.0.1"
        self.port = free_port()
        cmd = [SENDARIX, "-c", self.conf_dir, "sandbox",
               "-l", listen or "127.0.0.1:%d" % self.port,
               "-d", self.maildir, "-s", self.stats_file,
               "-p", self.pid_file, "-n", "sink.test"]
        if rules is not None:
            path = str(tmp_path / "rules.pcre")
            with open(path, "w") as f:
                f.write(rules)
            cmd += ["-r", path]
        cmd += list(args)
        self.log_fp = open(self.log_file, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.log_fp, stderr=self.log_fp)
        wait_for(lambda: os.path.exists(self.pid_file)
                 or self.proc.poll() is not None, what="sandbox pid file")
        assert self.proc.poll() is None, "sandbox exited: " + self.log()

    def stop(self):
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            rc = self.proc.returncode
        self.log_fp.close()
        return rc

    def log(self):
        with open(self.log_file, errors="replace") as f:
            return f.read()

    def stats(self):
        with open(self.stats_file) as f:
            return json.load(f)

    def names(self, sub="new"):
        try:
            return sorted(os.listdir(os.path.join(self.maildir, sub)))
        except FileNotFoundError:
            return []

    def content(self, name):
        with open(os.path.join(self.maildir, "new", name), "rb") as f:
            return f.read()

    def envelope(self, name):
        with open(os.path.join(self.maildir, "env", name + ".env")) as f:
            return json.load(f)

    def wait_messages(self, n, timeout=10.0):
        return wait_for(lambda: len(self.names()) >= n and self.names(),
                        timeout=timeout, what="%d stored messages" % n)

    def smtp(self, timeout=10):
        return smtplib.SMTP(self.host, self.port, local_hostname="client.test",
                            timeout=timeout)

    def raw(self, timeout=10):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        return RawClient(s)


class RawClient:
    """A line-level SMTP client over a plain socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        """One complete (possibly multi-line) reply: (code, [texts])."""
        texts = []
        while True:
            ln = self.line()
            texts.append(ln[4:])
            if ln[3:4] != "-":
                return int(ln[:3]), texts

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def at_eof(self):
        """True when the server closed the connection without more data."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


@pytest.fixture
def sandbox_factory(tmp_path):
    made = []

    def make(args=(), rules=None, listen=None, sub=None):
        d = tmp_path / (sub or "sb%d" % len(made))
        d.mkdir()
        sb = Sandbox(d, args=args, rules=rules, listen=listen)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory()


RULES = """\
# rules for the tests, in the pcre: table format
/^busy@/        450 4.2.1 Mailbox busy
/^nouser@/      550 5.1.1 No such user
/^grey@/        GREYLIST 1
/^gone@/        DROP
/^slow@/        STALL 2
/^late@/        DATA 554 5.7.1 Rejected after data
/^latedefer@/   DATA 451 4.7.0 Try again later
/^closing@/     421 4.3.2 Going away
/^weird@/       FROBNICATE 12
"""


def test_smtplib_stores_body_and_envelope(sandbox):
    body = (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n"
            b"\r\n.leading dot\r\n..two dots\r\n8bit: \xc3\xa9t\xc3\xa9\r\n"
            b"last line\r\n")
    with sandbox.smtp() as c:
        code, _ = c.ehlo()
        assert code == 250
        refused = c.sendmail("a@example.org",
                             ["b@example.com", "c@example.net"],
                             body, mail_options=["BODY=8BITMIME"])
        assert refused == {}
    (name,) = sandbox.wait_messages(1)
    assert sandbox.content(name) == body
    env = sandbox.envelope(name)
    assert env["from"] == "a@example.org"
    assert env["to"] == ["b@example.com", "c@example.net"]
    assert env["helo"] == "client.test"
    assert env["client_address"] == "127.0.0.1"
    assert env["connection"] == 1 and env["transaction"] == 1
    assert env["mail_params"] == "size=%d BODY=8BITMIME" % len(body)
    assert env["size"] == len(body) and env["body"] == "DATA"
    assert env["esmtp"] is True
    # time.pid_counter.host
    t, rest = name.split(".", 1)
    assert t.isdigit() and rest.split(".", 1)[0].split("_")[0] == str(
        sandbox.proc.pid)
    assert sandbox.names("tmp") == []
    st = sandbox.stats()
    assert st["messages"] == 1 and st["recipients_accepted"] == 2
    assert "C1T1: stored " + name in sandbox.log()


def test_pipelined_session_in_one_write(sandbox):
    """A whole session in one write: two messages, bare LF kept as sent."""
    m1 = b"Subject: one\r\n\r\nbody\nwith a bare LF\r\n.\r\n" \
         b"dot above is content\r\n"
    m2 = b"Subject: two\r\n\r\n\r\n"
    stuffed1 = m1.replace(b"\r\n.", b"\r\n..")
    c = sandbox.raw()
    assert c.reply()[0] == 220
    c.send(b"EHLO client.test\r\n"
           b"MAIL FROM:<s@example.org>\r\n"
           b"RCPT TO:<r1@example.com>\r\n"
           b"RCPT TO:<nouser@example.com>\r\n"
           b"DATA\r\n" + stuffed1 + b".\r\n"
           b"MAIL FROM:<>\r\nRCPT TO:<r2@example.com>\r\nDATA\r\n" + m2 +
           b".\r\nQUIT\r\n")
    codes = [r[0] for r in c.replies(11)]
    assert codes == [250, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221]
    assert c.at_eof()
    c.close()
    names = sandbox.wait_messages(2)
    bodies = sorted(sandbox.content(n) for n in names)
    assert bodies == sorted([m1, m2])
    envs = {sandbox.envelope(n)["transaction"]: sandbox.envelope(n)
            for n in names}
    assert envs[1]["from"] == "s@example.org"
    assert envs[1]["to"] == ["r1@example.com", "nouser@example.com"]
    assert envs[2]["from"] == "" and envs[2]["to"] == ["r2@example.com"]
    assert envs[1]["connection"] == envs[2]["connection"]


def test_pipelined_replies_in_order(sandbox):
    """RFC 2920 style: MAIL/RCPT.../DATA in one write, replies in order."""
    c = sandbox.raw()
    c.reply()
    c.send(b"EHLO client.test\r\n")
    code, lines = c.reply()
    assert code == 250 and "PIPELINING" in lines
    c.send(b"MAIL FROM:<s@example.org>\r\nRCPT TO:<a@example.com>\r\n"
           b"RCPT TO:<defer@example.com>\r\nRCPT TO:<bounce@example.com>\r\n"
           b"RCPT TO:<b@example.com>\r\nDATA\r\n")
    got = c.replies(6)
    assert [g[0] for g in got] == [250, 250, 450, 550, 250, 354]
    assert got[2][1][0].startswith("4.2.0")
    assert got[3][1][0].startswith("5.1.1")
    c.send(b"x\r\n.\r\nQUIT\r\n")
    assert [r[0] for r in c.replies(2)] == [250, 221]
    c.close()
    (name,) = sandbox.wait_messages(1)
    assert sandbox.content(name) == b"x\r\n"
    assert sandbox.envelope(name)["to"] == ["a@example.com", "b@example.com"]
    st = sandbox.stats()
    assert st["recipients_accepted"] == 2
    assert st["recipients_deferred"] == 1
    assert st["recipients_rejected"] == 1
    assert st["pipelining_violations"] == 0


def test_bdat_chunks_stored_as_sent(sandbox):
    part1 = b"Subject: chunked\r\n\r\nline\r\n.\r\n"
    part2 = b"..not unstuffed\r\nend\r\n"
    c = sandbox.raw()
    c.reply()
    c.send(b"EHLO client.test\r\n")
    assert "CHUNKING" in c.reply()[1]
    c.send(b"MAIL FROM:<s@example.org>\r\nRCPT TO:<r@example.com>\r\n"
           b"BDAT %d\r\n" % len(part1) + part1 +
           b"BDAT %d LAST\r\n" % len(part2) + part2 + b"QUIT\r\n")
    got = c.replies(5)
    assert [g[0] for g in got] == [250, 250, 250, 250, 221]
    c.close()
    (name,) = sandbox.wait_messages(1)
    assert sandbox.content(name) == part1 + part2
    assert sandbox.envelope(name)["body"] == "BDAT"


def test_bdat_without_mail_keeps_in_step(sandbox):
    c = sandbox.raw()
    c.reply()
    c.send(b"EHLO c\r\nBDAT 6 LAST\r\nNOOP\r\nNOOP\r\n")
    got = c.replies(3)
    assert got[0][0] == 250 and got[1][0] == 503
    # the first "NOOP\r\n" was the chunk; the next one is a command
    assert got[2][0] == 250
    c.close()


def test_rule_4xx_and_5xx(sandbox_factory):
    sb = sandbox_factory(rules=RULES)
    with sb.smtp() as c:
        c.ehlo()
        assert c.mail("s@example.org")[0] == 250
        code, msg = c.rcpt("busy@example.com")
        assert (code, msg) == (450, b"4.2.1 Mailbox busy")
        code, msg = c.rcpt("nouser@example.com")
        assert (code, msg) == (550, b"5.1.1 No such user")
        # with a table, the built-in names are ordinary addresses
        assert c.rcpt("defer@example.com")[0] == 250
        # a result that is no action: try again later, and a warning
        assert c.rcpt("weird@example.com")[0] == 451
        c.rset()
    wait_for(lambda: sb.stats()["connections_current"] == 0,
             what="session to end")
    st = sb.stats()
    assert st["recipients_deferred"] == 2 and st["recipients_rejected"] == 1
    assert "to=<busy@example.com>" in sb.log()
    assert 'bad action "FROBNICATE 12"' in sb.log()


def test_rule_421_closes(sandbox_factory):
    sb = sandbox_factory(rules=RULES)
    c = sb.raw()
    c.reply()
    c.send(b"HELO c\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<closing@x.org>\r\n")
    got = c.replies(3)
    assert got[2][0] == 421
    assert c.at_eof()
    c.close()


def test_rule_greylist_then_accept(sandbox_factory):
    sb = sandbox_factory(rules=RULES)
    with sb.smtp() as c:
        c.ehlo()
        c.mail("s@example.org")
        code, msg = c.rcpt("grey@example.com")
        assert code == 450
        assert msg == b"4.7.1 Greylisted, try again in 1 seconds"
        first = time.monotonic()
        # another sender is another triple: greylisted on its own
        c.rset()
        c.mail("other@example.org")
        assert c.rcpt("grey@example.com")[0] == 450
        c.rset()

        def retry():
            c.mail("s@example.org")
            code = c.rcpt("grey@example.com")[0]
            if code != 250:
                c.rset()
            return code == 250
        wait_for(retry, timeout=5, interval=0.1, what="greylist to pass")
        assert time.monotonic() - first >= 0.9
        code, _ = c.data(b"Subject: grey\r\n\r\npassed\r\n")
        assert code == 250
    (name,) = sb.wait_messages(1)
    assert sb.content(name) == b"Subject: grey\r\n\r\npassed\r\n"
    assert "GREYLIST 1 passed" in sb.log()


def test_rule_drop(sandbox_factory):
    sb = sandbox_factory(rules=RULES)
    c = sb.raw()
    c.reply()
    c.send(b"EHLO c\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<ok@x.org>\r\n"
           b"RCPT TO:<gone@x.org>\r\nRCPT TO:<ok2@x.org>\r\n")
    # the replies before the dropped RCPT arrive, then the connection ends
    assert [r[0] for r in c.replies(3)] == [250, 250, 250]
    assert c.at_eof()
    c.close()
    wait_for(lambda: sb.stats()["connections_current"] == 0,
             what="session to end")
    assert sb.stats()["dropped"] == 1
    assert sb.names() == []


def test_rule_stall_times_out_client(sandbox_factory):
    sb = sandbox_factory(rules=RULES)
    with sb.smtp(timeout=0.5) as c:
        c.ehlo()
        c.mail("s@example.org")
        t0 = time.monotonic()
        with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
            c.rcpt("slow@example.com")
        assert time.monotonic() - t0 < 1.5
        c.close()
    # a patient client gets its 250 after the stall; what it pipelined
    # behind the stalled RCPT waits too
    c = sb.raw(timeout=10)
    c.reply()
    c.send(b"EHLO c\r\nMAIL FROM:<s@x.org>\r\n")
    c.replies(2)
    t0 = time.monotonic()
    c.send(b"RCPT TO:<slow@x.org>\r\nNOOP\r\n")
    got = c.replies(2)
    elapsed = time.monotonic() - t0
    assert [g[0] for g in got] == [250, 250]
    assert 1.8 <= elapsed < 6
    c.close()
    assert sb.stats()["stalled"] == 2


def test_rule_data_reject_and_defer(sandbox_factory):
    sb = sandbox_factory(rules=RULES)
    with sb.smtp() as c:
        c.ehlo()
        c.mail("s@example.org")
        assert c.rcpt("late@example.com")[0] == 250
        assert c.rcpt("fine@example.com")[0] == 250
        assert c.data(b"Subject: x\r\n\r\ny\r\n") == (
            554, b"5.7.1 Rejected after data")
        c.mail("s@example.org")
        assert c.rcpt("latedefer@example.com")[0] == 250
        assert c.data(b"Subject: x\r\n\r\ny\r\n") == (
            451, b"4.7.0 Try again later")
        # the session goes on, and clean mail is stored
        c.sendmail("s@example.org", ["fine@example.com"], b"ok\r\n")
    (name,) = sb.wait_messages(1)
    assert sb.content(name) == b"ok\r\n"
    st = sb.stats()
    assert st["messages"] == 1 and st["messages_rejected"] == 2
    assert sb.names("tmp") == []


def test_builtin_rules(sandbox):
    with sandbox.smtp() as c:
        c.ehlo()
        c.mail("s@example.org")
        assert c.rcpt("Defer.me@example.com")[0] == 450
        assert c.rcpt("bounce@example.com")[:1] == (550,)
        assert c.rcpt("reject-x@example.com")[0] == 550
        assert c.rcpt("greylist@example.com")[0] == 450
        # the prefix is matched on the local part only
        assert c.rcpt("someone@defer.example.com")[0] == 250
        assert c.rcpt("datareject@example.com")[0] == 250
        assert c.data(b"x\r\n")[0] == 554
    c = sandbox.raw()
    c.reply()
    c.send(b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<drop@example.com>\r\n")
    c.replies(2)
    assert c.at_eof()
    c.close()


def test_x_omits_extensions(sandbox_factory):
    sb = sandbox_factory(args=["-x", "pipelining,smtputf8,chunking"])
    with sb.smtp() as c:
        code, _ = c.ehlo()
        assert code == 250
        assert not c.has_extn("pipelining")
        assert not c.has_extn("smtputf8")
        assert not c.has_extn("chunking")
        assert c.has_extn("size") and c.has_extn("8bitmime")
        assert c.has_extn("enhancedstatuscodes")
        assert c.docmd("MAIL FROM:<s@example.org> SMTPUTF8")[0] == 555
        assert c.docmd("BDAT 3 LAST")[0] == 502
    # a client that pipelines anyway is noticed
    c = sb.raw()
    c.reply()
    c.send(b"EHLO c\r\nNOOP\r\nQUIT\r\n")
    c.replies(3)
    c.close()
    wait_for(lambda: sb.stats()["pipelining_violations"] > 0,
             what="pipelining violation to be counted")
    assert "improper command pipelining" in sb.log()


def test_x_enhancedstatuscodes_strips_codes(sandbox_factory):
    sb = sandbox_factory(args=["-x", "enhancedstatuscodes"])
    with sb.smtp() as c:
        c.ehlo()
        assert not c.has_extn("enhancedstatuscodes")
        assert c.mail("s@example.org") == (250, b"Ok")
        assert c.rcpt("bounce@example.com") == (
            550, b"No such user (sandbox rule)")


def test_ehlo_rule_forces_helo(sandbox_factory):
    rules = "/^ehlo:/ EHLO 502 5.5.1 Error: command not supported\n" \
            "/^/ 550 5.1.1 catch-all does not apply to EHLO or connect\n"
    sb = sandbox_factory(rules=rules)
    with sb.smtp() as c:
        assert c.ehlo() == (502, b"5.5.1 Error: command not supported")
        assert c.mail("s@example.org")[0] == 503    # no HELO yet
        assert c.helo()[0] == 250
        assert c.mail("s@example.org")[0] == 250
        assert c.rcpt("r@example.com")[0] == 550
    with sb.smtp() as c:
        # smtplib falls back to HELO on its own
        c.ehlo_or_helo_if_needed()
        assert c.helo_resp is not None and not c.does_esmtp
        assert c.mail("s@example.org")[0] == 250
    # ESMTP parameters are not allowed after HELO
    c = sb.raw()
    c.reply()
    c.send(b"HELO c\r\nMAIL FROM:<s@x.org> BODY=8BITMIME\r\n")
    assert [r[0] for r in c.replies(2)] == [250, 555]
    c.close()


def test_x_ehlo_forces_helo_and_mail_is_stored(sandbox_factory):
    sb = sandbox_factory(args=["-x", "ehlo"])
    with sb.smtp() as c:
        c.sendmail("s@example.org", ["r@example.com"], b"via helo\r\n")
    (name,) = sb.wait_messages(1)
    env = sb.envelope(name)
    assert env["esmtp"] is False and env["helo"] == "client.test"
    assert sb.content(name) == b"via helo\r\n"


def test_connect_rule(sandbox_factory):
    sb = sandbox_factory(rules="/^connect:127\\./ CONNECT 421 4.3.2 Busy\n")
    c = sb.raw()
    assert c.reply() == (421, ["4.3.2 Busy"])
    assert c.at_eof()
    c.close()


def test_connect_stall_and_ehlo_drop(sandbox_factory):
    rules = ("/^connect:/ CONNECT STALL 1\n"
             "/^ehlo:dropme$/ EHLO DROP\n")
    sb = sandbox_factory(rules=rules)
    t0 = time.monotonic()
    c = sb.raw()
    assert c.reply()[0] == 220
    assert time.monotonic() - t0 >= 0.9
    c.send(b"EHLO dropme\r\n")
    assert c.at_eof()
    c.close()
    c = sb.raw()
    c.reply()
    c.send(b"EHLO fine\r\nQUIT\r\n")
    assert [r[0] for r in c.replies(2)] == [250, 221]
    c.close()


def test_several_messages_one_connection(sandbox):
    with sandbox.smtp() as c:
        for i in range(3):
            c.sendmail("s@example.org", ["r%d@example.com" % i],
                       b"message %d\r\n" % i)
    names = sandbox.wait_messages(3)
    txs = sorted(sandbox.envelope(n)["transaction"] for n in names)
    assert txs == [1, 2, 3]
    assert {sandbox.envelope(n)["connection"] for n in names} == {1}
    wait_for(lambda: sandbox.stats()["connections_current"] == 0,
             what="session to end")
    st = sandbox.stats()
    assert st["connections"] == 1
    assert st["transactions"] == 3 and st["messages"] == 3


def test_concurrency_50_clients(sandbox):
    n = 50
    barrier = threading.Barrier(n, timeout=20)
    errors = []

    def client(i):
        try:
            with sandbox.smtp(timeout=20) as c:
                barrier.wait()      # all 50 sessions are open now
                c.sendmail("s%d@example.org" % i, ["r%d@example.com" % i],
                           b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
        except Exception as e:      # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    names = sandbox.wait_messages(n)
    assert len(names) == n
    got = {}
    for name in names:
        env = sandbox.envelope(name)
        got[env["from"]] = sandbox.content(name)
    for i in range(n):
        assert got["s%d@example.org" % i] == \
            b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i)
    wait_for(lambda: sandbox.stats()["connections_current"] == 0,
             what="sessions to end")
    st = sandbox.stats()
    assert st["connections"] == n and st["messages"] == n
    assert st["max_concurrent"] == n


def test_limits(sandbox_factory):
    sb = sandbox_factory(args=["-m", "1k", "-t", "1"])
    with sb.smtp() as c:
        c.ehlo()
        assert c.esmtp_features["size"] == "1024"
        assert c.mail("s@example.org", ["SIZE=5000"])[0] == 552
        c.mail("s@example.org")
        c.rcpt("r@example.com")
        assert c.data(b"x" * 2000 + b"\r\n")[0] == 552
        # an over-long command line is refused, the session goes on
        assert c.docmd("NOOP " + "a" * 5000)[0] == 500
        assert c.noop()[0] == 250
    assert sb.names() == [] and sb.names("tmp") == []
    # idle timeout
    c = sb.raw()
    c.reply()
    t0 = time.monotonic()
    code, texts = c.reply()
    assert code == 421 and "timeout" in texts[0]
    assert 0.5 < time.monotonic() - t0 < 5
    assert c.at_eof()
    c.close()


def test_protocol_errors_keep_session(sandbox):
    c = sandbox.raw()
    c.reply()
    c.send(b"MAIL FROM:<a@b>\r\nEHLO c\r\nRCPT TO:<a@b>\r\nDATA\r\n"
           b"MAIL FROM:a@b\r\nMAIL FROM:<x@y>\r\nRCPT TO:<>\r\n"
           b"RCPT TO:<r@x.org> NOTIFY=NEVER\r\nDATA\r\nBOGUS\r\n"
           b"NOOP\x00x\r\nQUIT\r\n")
    codes = [r[0] for r in c.replies(12)]
    assert codes == [503, 250, 503, 503, 250, 503, 501, 555, 554, 500, 500,
                     221]
    c.close()


def test_sigusr1_and_sigterm(sandbox_factory, tmp_path):
    sb = sandbox_factory()
    with sb.smtp() as c:
        c.sendmail("s@example.org", ["r@example.com"], b"x\r\n")
    # a message half sent when the server stops leaves nothing behind
    c = sb.raw()
    c.reply()
    c.send(b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<r@x.org>\r\nDATA\r\npart")
    c.replies(4)
    wait_for(lambda: len(sb.names("tmp")) == 1, what="partial message")
    sb.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: "statistics: {" in sb.log(), what="statistics line")
    line = [ln for ln in sb.log().splitlines() if "statistics: " in ln][0]
    st = json.loads(line.split("statistics: ", 1)[1])
    assert st["messages"] == 1 and st["connections"] == 2
    assert sb.stop() == 0
    c.close()
    assert not os.path.exists(sb.pid_file)
    assert sb.names("tmp") == []
    assert sb.log().count("statistics: {") == 2


def test_ipv6_listener(sandbox_factory):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback")
    sb = sandbox_factory(listen="[::1]:%d" % port)
    c = RawClient(socket.create_connection(("::1", port), timeout=10))
    assert c.reply()[0] == 220
    c.send(b"HELO c\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<r@x.org>\r\nDATA\r\n"
           b"v6\r\n.\r\nQUIT\r\n")
    assert [r[0] for r in c.replies(6)] == [250, 250, 250, 354, 250, 221]
    c.close()
    (name,) = sb.wait_messages(1)
    assert sb.envelope(name)["client_address"] == "::1"


def test_bad_usage(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text("")
    base = [SENDARIX, "-c", str(conf), "sandbox", "-d", str(tmp_path / "md"),
            "-l", "127.0.0.1:%d" % free_port()]
    r = subprocess.run(base + ["-x", "bogus"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "bogus" in r.stderr
    r = subprocess.run(base + ["-r", str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "rules" in r.stderr
    (tmp_path / "bad.pcre").write_text("/(unclosed/ OK\n")
    r = subprocess.run(base + ["-r", str(tmp_path / "bad.pcre")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1


def test_fragmented_large_message_byte_exact(sandbox):
    """Long lines, dots, bare CR and LF, 8-bit bytes, sent in odd pieces."""
    import random
    rnd = random.Random(1)
    lines = []
    for i in range(3000):
        kind = i % 7
        if kind == 0:
            lines.append(b"." * rnd.randint(1, 3) + b"dot line %d" % i)
        elif kind == 1:
            lines.append(bytes(rnd.randint(0x21, 0xff)
                               for _ in range(rnd.randint(0, 20000))))
        elif kind == 2:
            lines.append(b"bare\rcr and bare\nlf .\n. %d" % i)
        else:
            lines.append(b"plain line %d" % i)
    content = b"\r\n".join(lines) + b"\r\n"
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    payload = stuffed + b".\r\n"
    c = sandbox.raw(timeout=30)
    c.reply()
    c.send(b"EHLO c\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<r@x.org>\r\nDATA\r\n")
    assert [r[0] for r in c.replies(4)] == [250, 250, 250, 354]
    pos = 0
    while pos < len(payload):
        n = rnd.choice([1, 2, 3, 5, 100, 4096, 8191, 8192, 65537])
        c.send(payload[pos:pos + n])
        pos += n
    code, texts = c.reply()
    assert code == 250, texts
    c.close()
    (name,) = sandbox.wait_messages(1)
    assert sandbox.content(name) == content
    assert sandbox.envelope(name)["size"] == len(content)


def make_cert(tmp_path, cn="sink.test"):
    """A self-signed RSA certificate and key; (certfile, keyfile)."""
    cert = str(tmp_path / "cert.pem")
    key = str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=" + cn], check=True,
                   capture_output=True)
    return cert, key


def test_starttls_stores_and_names_tls(sandbox_factory, tmp_path):
    cert, key = make_cert(tmp_path)
    sb = sandbox_factory(args=["-c", cert, "-k", key])
    with sb.smtp() as c:
        code, text = c.ehlo()
        assert b"STARTTLS" in text
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        c.starttls(context=ctx)
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        code, text = c.ehlo()
        assert b"STARTTLS" not in text
        c.sendmail("a@client.test", ["b@sink.test"], b"Subject: t\r\n\r\nx\r\n")
    name = sb.wait_messages(1)[0]
    assert sb.envelope(name)["tls"].startswith("TLSv1.")
    assert " with cipher " in sb.envelope(name)["tls"]
    wait_for(lambda: sb.stats()["tls_sessions"] == 1, what="tls stats")
    assert "TLS connection established" in sb.log()


def test_starttls_discards_pipelined_commands(sandbox_factory, tmp_path):
    """RFC 3207 4.2 / CVE-2011-0411: a command sent with STARTTLS in the
    same packet is never answered under TLS."""
    cert, key = make_cert(tmp_path)
    with open(cert, "a") as f:              # the key in the same file
        f.write(open(key).read())
    sb = sandbox_factory(args=["-c", cert])
    raw = sb.raw()
    assert raw.reply()[0] == 220
    raw.send(b"EHLO client.test\r\n")
    assert raw.reply()[0] == 250
    raw.send(b"STARTTLS\r\nRSET\r\n")
    assert raw.reply() == (220, ["2.0.0 Ready to start TLS"])
    assert raw.buf == b""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = RawClient(ctx.wrap_socket(raw.sock))
    tls.send(b"NOOP\r\n")
    # The first reply under TLS is the NOOP's, not the RSET's 250 2.0.0.
    tls.send(b"MAIL FROM:<a@client.test>\r\n")
    assert tls.reply() == (250, ["2.0.0 Ok"])
    assert tls.reply()[0] == 503            # no EHLO since the handshake
    tls.close()


def test_starttls_garbage_ends_only_that_session(sandbox_factory, tmp_path):
    cert, key = make_cert(tmp_path)
    sb = sandbox_factory(args=["-c", cert, "-k", key])
    raw = sb.raw()
    raw.reply()
    raw.send(b"EHLO client.test\r\nSTARTTLS\r\n")
    raw.reply()
    assert raw.reply()[0] == 220
    raw.send(b"this is not a TLS ClientHello\r\n" * 4)
    assert wait_for(lambda: raw.at_eof(), what="close after garbage")
    wait_for(lambda: "TLS handshake failed" in sb.log(), what="log line")
    with sb.smtp() as c:
        assert c.noop()[0] == 250
    assert sb.proc.poll() is None


def test_starttls_refused_without_cert_or_with_x(sandbox_factory, tmp_path):
    cert, key = make_cert(tmp_path)
    plain = sandbox_factory()
    withheld = sandbox_factory(args=["-c", cert, "-k", key, "-x",
                                     "starttls"])
    for sb in (plain, withheld):
        with sb.smtp() as c:
            assert b"STARTTLS" not in c.ehlo()[1]
            assert c.docmd("STARTTLS")[0] == 502


def test_bad_certificate_is_an_error_at_start(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    (tmp_path / "main.cf").write_text("")
    r = subprocess.run([SENDARIX, "-c", str(tmp_path), "sandbox", "-l",
                        "127.0.0.1:0", "-d", str(tmp_path / "md"), "-c",
                        str(bad)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert "cannot use certificate" in r.stderr


def test_load_over_starttls(sandbox_factory, tmp_path):
    """2,000 messages over STARTTLS from 20 concurrent clients (the
    smtp_tls_source helper, which the TLS bench row uses): every session
    ends with its 221 read before the end of file, none is lost."""
    cert, key = make_cert(tmp_path)
    sb = sandbox_factory(args=["-c", cert, "-k", key])
    source = os.path.join(os.path.dirname(SENDARIX), "..", "tests",
                          "helpers", "smtp_tls_source")
    r = subprocess.run([source, "-S", "-N", "-s", "20", "-m", "2000", "-C",
                        "5", "-l", "4096", "%s:%d" % (sb.host, sb.port)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "messages=2000 sessions=400 tls=400" in r.stdout
    wait_for(lambda: sb.stats()["messages"] == 2000, what="2000 stored")
    assert sb.stats()["tls_sessions"] == 400
    assert "lost connection" not in sb.log()
