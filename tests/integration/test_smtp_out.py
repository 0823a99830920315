"""smtp-out: the outbound delivery agent.

Each test runs a real master with smtpd, cleanup and smtp-out but no
qmgr, so that a message sent in through smtpd stays in incoming/. The
test then plays qmgr: it speaks docs/ipc.md "smtp-out" to private/smtp
with queue_file=incoming/ID and a nexthop that points at a test receiver
(aiosmtpd, `sendarix sandbox`, or a raw socket server that misbehaves),
and checks the per-recipient reply, what the receiver got, and the
Postfix-shaped log lines. MX tests use tests/integration/dnsserver.py
through dns_resolver, with the receivers on 127.0.0.x addresses and one
port set by smtp_default_port. The last test runs the whole delivery
path with qmgr when qmgr is built.
"""

import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import (BIN, FULL_MASTER_CF, SENDARIX, free_port, wait_for,
                      port_open)
from dnsserver import DnsServer
from sxqueue import QueueFile

MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
smtp    unix - - n - 1 smtp-out
"""


# -- the qmgr side of the protocol ----------------------------------------

def attr(name, value):
    if isinstance(value, str):
        value = value.encode()
    return b"%s=%d:%s\n" % (name.encode(), len(value), value)


def read_attrs(sock, timeout):
    """Read one attribute list; return [(name, value str)]."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    pos = 0
    while True:
        # Parse what we have.
        while True:
            if pos < len(buf) and buf[pos:pos + 1] == b"\n":
                return out
            eq = buf.find(b"=", pos)
            colon = buf.find(b":", eq + 1) if eq >= 0 else -1
            if eq < 0 or colon < 0:
                break
            n = int(buf[eq + 1:colon])
            if len(buf) < colon + 1 + n + 1:
                break
            out.append((buf[pos:eq].decode(),
                        buf[colon + 1:colon + 1 + n].decode("utf-8",
                                                            "replace")))
            assert buf[colon + 1 + n:colon + 2 + n] == b"\n"
            pos = colon + 2 + n
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("smtp-out closed without a whole reply")
        buf += chunk


def deliver(mta, qid, rcpts, nexthop, sender="sender@example.org",
            timeout=60, queue="incoming", extra=()):
    """Send one delivery request; return a list of per-recipient dicts."""
    now = time.time()
    req = [attr("queue_id", qid), attr("queue_file", "%s/%s" % (queue, qid)),
           attr("nexthop", nexthop), attr("sender", sender)]
    for r in rcpts:
        req.append(attr("rcpt", r))
    req += [attr("arrival", "%.6f" % (now - 1)),
            attr("active", "%.6f" % (now - 0.5))]
    for n, v in extra:
        req.append(attr(n, v))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(os.path.join(mta.queue_dir, "private", "smtp"))
        s.sendall(b"".join(req) + b"\n")
        reply = read_attrs(s, timeout)
    finally:
        s.close()
    assert reply[0][0] == "count" and int(reply[0][1]) == len(rcpts), reply
    results = []
    rest = reply[1:]
    assert len(rest) == 4 * len(rcpts), reply
    for i in range(len(rcpts)):
        names = [n for n, _ in rest[4 * i:4 * i + 4]]
        assert names == ["status", "dsn", "relay", "reply"], reply
        results.append(dict(rest[4 * i:4 * i + 4]))
    return results


_STARTED = []


@pytest.fixture(autouse=True)
def no_crashes():
    """After each test: stop master; smtp-out must not have died badly."""
    del _STARTED[:]
    yield
    for m in _STARTED:
        m.stop()
        bad = [ln for ln in m.log().splitlines()
               if "smtp-out" in ln and ("killed by signal" in ln
                                        or "exit status" in ln
                                        or "panic:" in ln
                                        or "fatal:" in ln)]
        assert bad == [], bad


def smtp_out_mta(mta_factory, main=None):
    params = {"smtp_helo_name": "out.test.example"}
    params.update(main or {})
    m = mta_factory(main=params, master_cf=MASTER_CF)
    _STARTED.append(m)
    wait_for(lambda: os.path.exists(os.path.join(m.queue_dir, "private",
                                                 "smtp")),
             what="private/smtp")
    return m


def inject(mta, rcpts, body=None, sender="sender@example.org",
           mail_options=(), msg=None):
    """Send a message through smtpd+cleanup; return its queue ID."""
    before = set(mta.queue_files("incoming"))
    if msg is None:
        msg = (b"From: sender@example.org\r\n"
               b"To: someone@example.net\r\n"
               b"Subject: smtp-out test\r\n"
               b"\r\n" + (body if body is not None else b"Hello.\r\n"))
    with smtplib.SMTP(mta.host, mta.port, timeout=30) as c:
        c.ehlo("client.test")
        c.sendmail(sender, rcpts, msg, mail_options=list(mail_options))
    new = wait_for(lambda: set(mta.queue_files("incoming")) - before,
                   what="a new queue file")
    assert len(new) == 1
    return new.pop()


def queue_content(mta, qid):
    return QueueFile(os.path.join(mta.queue_dir, "incoming", qid)).content


# -- receivers -------------------------------------------------------------

class Sandbox:
    """`sendarix sandbox` on addr:port, with optional rules and -x."""

    def __init__(self, tmp_path, addr="127.0.0.1", port=None, args=(),
                 rules=None, name="sandbox"):
        self.dir = tmp_path / name
        self.dir.mkdir()
        conf = self.dir / "conf"
        conf.mkdir()
        (conf / "main.cf").write_text("")
        self.addr = addr
        self.port = port or free_port(addr)
        self.maildir = str(self.dir / "maildir")
        self.stats_file = str(self.dir / "stats.json")
        self.pid_file = str(self.dir / "pid")
        self.log_file = str(self.dir / "log")
        cmd = [SENDARIX, "-c", str(conf), "sandbox",
               "-l", "%s:%d" % (addr, self.port), "-d", self.maildir,
               "-s", self.stats_file, "-p", self.pid_file, "-n", "sink.test"]
        if rules is not None:
            (self.dir / "rules.pcre").write_text(rules)
            cmd += ["-r", str(self.dir / "rules.pcre")]
        cmd += list(args)
        self.log_fp = open(self.log_file, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.log_fp, stderr=self.log_fp)
        wait_for(lambda: os.path.exists(self.pid_file)
                 or self.proc.poll() is not None, what="sandbox pid file")
        assert self.proc.poll() is None, "sandbox exited: " + self.log()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_fp.close()

    def log(self):
        with open(self.log_file, errors="replace") as f:
            return f.read()

    def stats(self):
        with open(self.stats_file) as f:
            return json.load(f)

    def messages(self):
        d = os.path.join(self.maildir, "new")
        try:
            names = sorted(os.listdir(d))
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                data = f.read()
            with open(os.path.join(self.maildir, "env", n + ".env")) as f:
                env = json.load(f)
            out.append((env, data))
        return out


@pytest.fixture
def sandboxes(tmp_path):
    made = []

    def make(**kw):
        kw.setdefault("name", "sandbox%d" % len(made))
        s = Sandbox(tmp_path, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class RawServer:
    """A misbehaving SMTP server: script(conn) runs for each connection."""

    def __init__(self, script):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.stop_flag = False
        self.conns = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        c.settimeout(30)
        try:
            self.script(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop_flag = True
        self.thread.join(2)
        self.sock.close()


def read_line(c):
    buf = b""
    while not buf.endswith(b"\n"):
        b = c.recv(1)
        if not b:
            raise OSError("closed")
        buf += b
    return buf


def log_line(mta, rcpt):
    """The smtp-out log line for a recipient (the last one)."""
    lines = [ln for ln in mta.log().splitlines()
             if "smtp-out" in ln and "to=<%s>" % rcpt in ln]
    assert lines, mta.log()
    return lines[-1]


# -- tests -----------------------------------------------------------------

def test_aiosmtpd_byte_identical_and_log_line(mta_factory):
    from aiosmtpd.controller import Controller

    got = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            got.append((envelope.mail_from, list(envelope.rcpt_tos),
                        envelope.original_content))
            return "250 2.0.0 Ok: queued as AIO123"

    port = free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        mta = smtp_out_mta(mta_factory)
        body = (b"line one\r\n.leading dot\r\n..two dots\r\n.\r\n"
                b"trailing space \r\n\r\nlast line\r\n")
        qid = inject(mta, ["alice@example.net"], body=body)
        stored = queue_content(mta, qid)
        res = deliver(mta, qid, ["alice@example.net"], "[127.0.0.1]:%d" % port)
        assert res[0]["status"] == "sent", res
        assert res[0]["dsn"] == "2.0.0"
        assert res[0]["relay"] == "127.0.0.1[127.0.0.1]:%d" % port
        assert "queued as AIO123" in res[0]["reply"]
        assert len(got) == 1
        mail_from, rcpts, content = got[0]
        assert mail_from == "sender@example.org"
        assert rcpts == ["alice@example.net"]
        # aiosmtpd keeps the content as sent, dot-unstuffed, less ".".
        assert content == stored
        assert b"\r\n.leading dot\r\n..two dots\r\n.\r\n" in content
        line = log_line(mta, "alice@example.net")
        assert re.search(r"%s: to=<alice@example\.net>, relay=127\.0\.0\.1"
                         r"\[127\.0\.0\.1\]:%d, delay=[0-9.]+, "
                         r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, "
                         r"dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: "
                         r"queued as AIO123\)" % (qid, port), line), line
        # The queue file is never written by smtp-out.
        assert queue_content(mta, qid) == stored
    finally:
        ctl.stop()


def test_pipelined_per_recipient_results(mta_factory, sandboxes):
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory)
    rcpts = ["ok1@example.net", "bounce@example.net", "defer@example.net",
             "ok2@example.net"]
    qid = inject(mta, rcpts)
    res = deliver(mta, qid, rcpts, "[127.0.0.1]:%d" % sb.port)
    st = {r: x for r, x in zip(rcpts, res)}
    assert st["ok1@example.net"]["status"] == "sent"
    assert st["ok2@example.net"]["status"] == "sent"
    assert st["bounce@example.net"]["status"] == "bounced"
    assert st["bounce@example.net"]["dsn"] == "5.1.1"
    assert st["bounce@example.net"]["reply"].startswith(
        "host 127.0.0.1[127.0.0.1] said: 550 5.1.1")
    assert st["bounce@example.net"]["reply"].endswith(
        "(in reply to RCPT TO command)")
    assert st["defer@example.net"]["status"] == "deferred"
    assert st["defer@example.net"]["dsn"] == "4.2.0"
    msgs = sb.messages()
    assert len(msgs) == 1
    assert msgs[0][0]["to"] == ["ok1@example.net", "ok2@example.net"]
    stats = sb.stats()
    assert stats["pipelining_violations"] == 0
    assert stats["connections"] == 1
    line = log_line(mta, "bounce@example.net")
    assert "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: " \
        "550 5.1.1" in line
    assert "status=deferred" in log_line(mta, "defer@example.net")


def test_one_sent_one_bounced_without_pipelining(mta_factory, sandboxes):
    sb = sandboxes(args=["-x", "pipelining"])
    mta = smtp_out_mta(mta_factory)
    rcpts = ["good@example.net", "reject@example.net"]
    qid = inject(mta, rcpts)
    res = deliver(mta, qid, rcpts, "[127.0.0.1]:%d" % sb.port)
    assert [r["status"] for r in res] == ["sent", "bounced"]
    assert res[1]["dsn"] == "5.1.1"
    assert sb.stats()["pipelining_violations"] == 0
    assert len(sb.messages()) == 1


def test_all_recipients_refused_skips_data(mta_factory, sandboxes):
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory)
    rcpts = ["bounce1@example.net", "bounce2@example.net"]
    qid = inject(mta, rcpts)
    res = deliver(mta, qid, rcpts, "[127.0.0.1]:%d" % sb.port)
    assert [r["status"] for r in res] == ["bounced", "bounced"]
    assert sb.messages() == []
    # The connection is RSET and reused for the next request.
    qid2 = inject(mta, ["fine@example.net"])
    res = deliver(mta, qid2, ["fine@example.net"], "[127.0.0.1]:%d" % sb.port)
    assert res[0]["status"] == "sent"
    assert sb.stats()["connections"] == 1


def test_data_stage_results(mta_factory, sandboxes):
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory)
    qid = inject(mta, ["datareject@example.net", "x@example.net"])
    res = deliver(mta, qid, ["datareject@example.net", "x@example.net"],
                  "[127.0.0.1]:%d" % sb.port)
    assert [r["status"] for r in res] == ["bounced", "bounced"]
    assert res[0]["dsn"] == "5.6.0"
    assert res[0]["reply"].endswith("(in reply to end of DATA command)")
    qid = inject(mta, ["datadefer@example.net"])
    res = deliver(mta, qid, ["datadefer@example.net"],
                  "[127.0.0.1]:%d" % sb.port)
    assert res[0]["status"] == "deferred" and res[0]["dsn"] == "4.3.0"


def test_receiver_down_deferred(mta_factory):
    mta = smtp_out_mta(mta_factory)
    port = free_port()
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], "[127.0.0.1]:%d" % port)
    assert res[0]["status"] == "deferred"
    assert res[0]["dsn"] == "4.4.1"
    assert res[0]["relay"] == "none"
    assert res[0]["reply"] == \
        "connect to 127.0.0.1[127.0.0.1]:%d: Connection refused" % port
    line = log_line(mta, "a@example.net")
    assert "relay=none" in line and "status=deferred (connect to" in line


def test_relayhost_failover(mta_factory, sandboxes):
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory)
    dead = free_port()
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"],
                  "[127.0.0.1]:%d, [127.0.0.1]:%d" % (dead, sb.port))
    assert res[0]["status"] == "sent", res
    assert res[0]["relay"] == "127.0.0.1[127.0.0.1]:%d" % sb.port
    assert len(sb.messages()) == 1


def test_failover_on_greeting_421(mta_factory, sandboxes):
    busy = sandboxes(rules="/^connect:/ CONNECT 421 4.3.2 Too busy\n")
    good = sandboxes()
    mta = smtp_out_mta(mta_factory)
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"],
                  "[127.0.0.1]:%d [127.0.0.1]:%d" % (busy.port, good.port))
    assert res[0]["status"] == "sent", res
    assert len(good.messages()) == 1
    # Alone, the busy server defers with its reply.
    qid = inject(mta, ["b@example.net"])
    res = deliver(mta, qid, ["b@example.net"], "[127.0.0.1]:%d" % busy.port)
    assert res[0]["status"] == "deferred"
    assert "refused to talk to me: 421 4.3.2 Too busy" in res[0]["reply"]
    assert res[0]["dsn"] == "4.3.2"


def mx_port():
    """A port free on 127.0.0.1, .2 and .3."""
    for _ in range(50):
        p = free_port("127.0.0.2")
        ok = True
        for a in ("127.0.0.1", "127.0.0.3"):
            try:
                with socket.socket() as s:
                    s.bind((a, p))
            except OSError:
                ok = False
        if ok:
            return p
    raise AssertionError("no common free port")


def test_mx_order_and_fallback(mta_factory, sandboxes):
    port = mx_port()
    zone = {
        "example.net": ["MX 10 mx1.example.net.", "MX 20 mx2.example.net."],
        "mx1.example.net": ["A 127.0.0.2"],
        "mx2.example.net": ["A 127.0.0.3"],
    }
    with DnsServer(zone) as dns:
        mta = smtp_out_mta(mta_factory, {"dns_resolver": dns.spec,
                                         "smtp_default_port": str(port),
                                         "smtp_connection_cache_time_limit":
                                         "0"})
        backup = sandboxes(addr="127.0.0.3", port=port)
        # mx1 is down: the backup gets it.
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"], "example.net")
        assert res[0]["status"] == "sent", res
        assert res[0]["relay"] == "mx2.example.net[127.0.0.3]:%d" % port
        assert len(backup.messages()) == 1
        # mx1 up: the best MX gets it.
        primary = sandboxes(addr="127.0.0.2", port=port)
        qid = inject(mta, ["b@example.net"])
        res = deliver(mta, qid, ["b@example.net"], "example.net")
        assert res[0]["status"] == "sent", res
        assert res[0]["relay"] == "mx1.example.net[127.0.0.2]:%d" % port
        assert len(primary.messages()) == 1
        assert len(backup.messages()) == 1


def test_dns_failures(mta_factory):
    zone = {
        "nullmx.example.net": ["MX 0 ."],
        "example.net": ["A 127.0.0.9"],
    }
    with DnsServer(zone) as dns:
        dns.servfail.add("broken.example.net.")
        mta = smtp_out_mta(mta_factory, {"dns_resolver": dns.spec,
                                         "dns_timeout": "5s"})
        qid = inject(mta, ["a@nullmx.example.net", "b@nxd.example.net"])
        res = deliver(mta, qid, ["a@nullmx.example.net"], "nullmx.example.net")
        assert res[0]["status"] == "bounced"
        assert res[0]["dsn"] == "5.1.10"
        assert "does not accept mail (null MX)" in res[0]["reply"]
        assert res[0]["relay"] == "none"
        res = deliver(mta, qid, ["b@nxd.example.net"], "nxd.example.net")
        assert res[0]["status"] == "bounced"
        assert res[0]["dsn"] == "5.1.2"
        assert "Host or domain name not found" in res[0]["reply"]
        res = deliver(mta, qid, ["c@broken.example.net"], "broken.example.net")
        assert res[0]["status"] == "deferred"
        assert res[0]["dsn"] == "4.4.3"


def test_smtputf8_to_peer_without_it(mta_factory, sandboxes):
    sb = sandboxes(args=["-x", "smtputf8"])
    mta = smtp_out_mta(mta_factory)
    msg = ("From: jörg@example.org\r\nTo: müller@example.net\r\n"
           "Subject: utf8\r\n\r\nGrüße\r\n").encode()
    qid = inject(mta, ["müller@example.net"], sender="jörg@example.org",
                 mail_options=["SMTPUTF8", "BODY=8BITMIME"], msg=msg)
    res = deliver(mta, qid, ["müller@example.net"],
                  "[127.0.0.1]:%d" % sb.port, sender="jörg@example.org")
    assert res[0]["status"] == "bounced"
    assert res[0]["dsn"] == "5.6.7"
    assert "SMTPUTF8 not supported by the remote server" in res[0]["reply"]
    assert sb.messages() == []
    # A peer with SMTPUTF8 takes it.
    sb2 = sandboxes()
    res = deliver(mta, qid, ["müller@example.net"],
                  "[127.0.0.1]:%d" % sb2.port, sender="jörg@example.org")
    assert res[0]["status"] == "sent", res
    params = str(sb2.messages()[0][0]["mail_params"]).upper()
    assert "SMTPUTF8" in params
    assert "BODY=8BITMIME" in params
    assert "SIZE=" in params


def test_ehlo_refused_helo_fallback(mta_factory, sandboxes):
    sb = sandboxes(args=["-x", "ehlo"])
    mta = smtp_out_mta(mta_factory)
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], "[127.0.0.1]:%d" % sb.port)
    assert res[0]["status"] == "sent", res
    env = sb.messages()[0][0]
    assert env["esmtp"] is False or env["esmtp"] == 0
    assert env["helo"] == "out.test.example"


def test_rcpt_timeout_deferred(mta_factory, sandboxes):
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory, {"smtp_rcpt_timeout": "2s"})
    qid = inject(mta, ["stall@example.net"])
    t0 = time.monotonic()
    res = deliver(mta, qid, ["stall@example.net"], "[127.0.0.1]:%d" % sb.port)
    assert time.monotonic() - t0 < 30
    assert res[0]["status"] == "deferred"
    assert res[0]["dsn"] == "4.4.2"
    assert res[0]["reply"] == ("conversation with 127.0.0.1[127.0.0.1] "
                               "timed out while sending RCPT TO")


def test_size_limit_of_peer(mta_factory, sandboxes):
    sb = sandboxes(args=["-m", "1k"])
    mta = smtp_out_mta(mta_factory)
    qid = inject(mta, ["a@example.net"], body=b"x" * 70 + b"\r\n" * 1
                 + (b"y" * 70 + b"\r\n") * 40)
    res = deliver(mta, qid, ["a@example.net"], "[127.0.0.1]:%d" % sb.port)
    assert res[0]["status"] == "bounced"
    assert res[0]["dsn"] == "5.3.4"
    assert "too big" in res[0]["reply"]


def test_connection_reuse(mta_factory, sandboxes):
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory)
    qids = [inject(mta, ["r%d@example.net" % i]) for i in range(100)]
    nexthop = "[127.0.0.1]:%d" % sb.port
    for i, qid in enumerate(qids[:50]):
        res = deliver(mta, qid, ["r%d@example.net" % i], nexthop)
        assert res[0]["status"] == "sent", res
    # The rest concurrently, ten at a time.
    errors = []

    def worker(chunk):
        try:
            for i, qid in chunk:
                r = deliver(mta, qid, ["r%d@example.net" % i], nexthop)
                if r[0]["status"] != "sent":
                    errors.append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    rest = list(enumerate(qids))[50:]
    threads = [threading.Thread(target=worker, args=(rest[k::10],))
               for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    wait_for(lambda: sb.stats()["messages"] == 100, what="100 messages")
    conns = sb.stats()["connections"]
    # One for the sequential half, at most one per concurrent worker.
    assert conns <= 11, conns
    # Idle connections are closed with QUIT after the cache time limit.
    wait_for(lambda: sb.stats()["connections_current"] == 0, timeout=15,
             what="idle connections closed")


def test_reuse_count_limit(mta_factory, sandboxes):
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory,
                       {"smtp_connection_reuse_count_limit": "3"})
    for i in range(7):
        qid = inject(mta, ["r%d@example.net" % i])
        res = deliver(mta, qid, ["r%d@example.net" % i],
                      "[127.0.0.1]:%d" % sb.port)
        assert res[0]["status"] == "sent"
    assert sb.stats()["connections"] == 3


def test_cached_connection_closed_by_peer(mta_factory, sandboxes):
    """A cached connection the server dropped is replaced, not deferred."""
    sb = sandboxes(args=["-t", "1"])
    mta = smtp_out_mta(mta_factory,
                       {"smtp_connection_cache_time_limit": "10s"})
    qid = inject(mta, ["a@example.net"])
    assert deliver(mta, qid, ["a@example.net"],
                   "[127.0.0.1]:%d" % sb.port)[0]["status"] == "sent"
    wait_for(lambda: sb.stats()["connections_current"] == 0, timeout=10,
             what="the sandbox to drop the idle client")
    qid = inject(mta, ["b@example.net"])
    res = deliver(mta, qid, ["b@example.net"], "[127.0.0.1]:%d" % sb.port)
    assert res[0]["status"] == "sent", res
    assert sb.stats()["connections"] == 2


def greet(c, ehlo_lines=(b"250-x", b"250 PIPELINING")):
    c.sendall(b"220 raw.test ESMTP\r\n")
    read_line(c)
    c.sendall(b"\r\n".join(ehlo_lines) + b"\r\n")


BAD_PEERS = {
    "garbage_greeting": lambda c: c.sendall(b"hello there\r\n") or time.sleep(1),
    "close_at_greeting": lambda c: None,
    "long_reply": lambda c: c.sendall(b"220-" + b"x" * 200000 + b"\r\n")
    or time.sleep(1),
    "close_after_ehlo": lambda c: (c.sendall(b"220 raw\r\n"), read_line(c)),
    "close_after_mail": lambda c: (greet(c), read_line(c)),
    "garbage_rcpt_reply": lambda c: (greet(c), read_line(c),
                                     c.sendall(b"250 ok\r\nXYZ nonsense\r\n"),
                                     time.sleep(1)),
    "binary_reply": lambda c: (greet(c), read_line(c),
                               c.sendall(b"250 \x00\x01\xff ok\r\n550 5.1.1 "
                                         b"no \x1b[31m\r\n354 go\r\n"),
                               time.sleep(1)),
    "close_in_data": lambda c: (greet(c), read_line(c),
                                c.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n"),
                                c.recv(10)),
    "silent": lambda c: time.sleep(6),
}


@pytest.mark.parametrize("name", sorted(BAD_PEERS))
def test_bad_peers_never_crash(mta_factory, name):
    mta = smtp_out_mta(mta_factory, {"smtp_helo_timeout": "2s",
                                     "smtp_mail_timeout": "2s",
                                     "smtp_rcpt_timeout": "2s",
                                     "smtp_data_init_timeout": "2s"})
    srv = RawServer(BAD_PEERS[name])
    try:
        pids = wait_for(lambda: mta.child_pids("smtp-out"),
                        what="smtp-out to start")
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"],
                      "[127.0.0.1]:%d" % srv.port)
        assert res[0]["status"] in ("deferred", "bounced"), res
        if name == "binary_reply":
            assert res[0]["status"] == "bounced"
            assert "\x1b" not in res[0]["reply"]
            assert "\x00" not in res[0]["reply"]
        else:
            assert res[0]["status"] == "deferred"
            assert res[0]["dsn"].startswith("4.")
        # The same process still serves requests.
        assert mta.child_pids("smtp-out") == pids
        res = deliver(mta, qid, ["a@example.net"], "[127.0.0.1]:%d" %
                      free_port())
        assert res[0]["status"] == "deferred"
        assert mta.child_pids("smtp-out") == pids
        assert "panic" not in mta.log() and "fatal" not in mta.log()
    finally:
        srv.close()


def test_bad_requests(mta_factory):
    mta = smtp_out_mta(mta_factory)
    path = os.path.join(mta.queue_dir, "private", "smtp")
    pids = wait_for(lambda: mta.child_pids("smtp-out"),
                    what="smtp-out to start")
    for junk in [b"garbage\n\n", b"queue_id=3:abc\n\n",
                 attr("queue_id", "../../etc") + b"\n",
                 b"queue_id=99999999999:x\n"]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(junk)
        s.settimeout(10)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        s.close()
    # A request for a file that is not there defers.
    qid = inject(mta, ["a@example.net"])
    os.unlink(os.path.join(mta.queue_dir, "incoming", qid))
    res = deliver(mta, qid, ["a@example.net"], "[127.0.0.1]:25")
    assert res[0]["status"] == "deferred" and res[0]["dsn"] == "4.3.0"
    assert mta.child_pids("smtp-out") == pids


@pytest.mark.skipif(not os.path.exists(os.path.join(BIN, "qmgr")),
                    reason="qmgr is not built")
def test_end_to_end_with_qmgr(mta_factory, sandboxes):
    sb = sandboxes()
    mta = mta_factory(main={"relayhost": "[127.0.0.1]:%d" % sb.port,
                            "smtp_helo_name": "out.test.example"},
                      master_cf=FULL_MASTER_CF)
    with smtplib.SMTP(mta.host, mta.port, timeout=30) as c:
        c.sendmail("sender@example.org", ["e2e@example.net"],
                   b"Subject: e2e\r\n\r\nend to end\r\n")
    wait_for(lambda: len(sb.messages()) == 1, timeout=30,
             what="delivery through qmgr and smtp-out")
    env, data = sb.messages()[0]
    assert env["to"] == ["e2e@example.net"]
    assert data.endswith(b"end to end\r\n")
    mta.wait_log("to=<e2e@example.net>, relay=127.0.0.1[127.0.0.1]:%d"
                 % sb.port, timeout=15)


def test_large_message_streamed_and_stuffed(mta_factory, sandboxes):
    """Several content pieces; dot lines on and across piece borders."""
    sb = sandboxes()
    mta = smtp_out_mta(mta_factory)
    lines = []
    for i in range(60000):
        lines.append(b"." * (i % 3) + b"line %06d " % i + b"x" * (i % 50))
    body = b"\r\n".join(lines) + b"\r\n.\r\n..\r\nend\r\n"
    qid = inject(mta, ["big@example.net"], body=body)
    stored = queue_content(mta, qid)
    assert len(stored) > 3 * 65536
    res = deliver(mta, qid, ["big@example.net"], "[127.0.0.1]:%d" % sb.port)
    assert res[0]["status"] == "sent", res
    env, data = sb.messages()[0]
    assert data == stored


def test_dsn_parameters_passed_on(mta_factory):
    seen = []

    def script(c):
        c.sendall(b"220 raw.test ESMTP\r\n")
        seen.append(read_line(c))
        c.sendall(b"250-raw.test\r\n250-DSN\r\n250 PIPELINING\r\n")
        while True:
            line = read_line(c)
            seen.append(line)
            if line.upper().startswith(b"DATA"):
                break
        c.sendall(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
        while read_line(c) != b".\r\n":
            pass
        c.sendall(b"250 2.0.0 done\r\n")
        seen.append(read_line(c))
        c.sendall(b"221 bye\r\n")

    srv = RawServer(script)
    try:
        mta = smtp_out_mta(mta_factory,
                           {"smtp_connection_cache_time_limit": "0"})
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"],
                      "[127.0.0.1]:%d" % srv.port,
                      extra=[("orcpt", "rfc822;Bob+x=y@example.net"),
                             ("notify", "SUCCESS,FAILURE"),
                             ("ret", "HDRS"), ("envid", "abc def")])
        assert res[0]["status"] == "sent", res
        assert res[0]["reply"] == "250 2.0.0 done"
        wait_for(lambda: len(seen) == 5, what="QUIT")
        assert seen[0] == b"EHLO out.test.example\r\n"
        assert seen[1] == (b"MAIL FROM:<sender@example.org> RET=HDRS "
                           b"ENVID=abc+20def\r\n")
        assert seen[2] == (b"RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE "
                           b"ORCPT=rfc822;Bob+2Bx+3Dy@example.net\r\n")
        assert seen[3] == b"DATA\r\n"
        assert seen[4] == b"QUIT\r\n"
    finally:
        srv.close()


def test_421_at_rcpt_fails_over(mta_factory, sandboxes):
    first = sandboxes(rules="/^busy@/ 421 4.3.2 Service shutting down\n"
                            "/^bounce@/ 550 5.1.1 No such user\n")
    second = sandboxes()
    mta = smtp_out_mta(mta_factory)
    rcpts = ["bounce@example.net", "ok@example.net", "busy@example.net",
             "after@example.net"]
    qid = inject(mta, rcpts)
    res = deliver(mta, qid, rcpts, "[127.0.0.1]:%d,[127.0.0.1]:%d"
                  % (first.port, second.port))
    st = [r["status"] for r in res]
    # The 550 from the first server stands; the rest go to the second.
    assert st == ["bounced", "sent", "sent", "sent"], res
    assert res[1]["relay"] == "127.0.0.1[127.0.0.1]:%d" % second.port
    assert first.messages() == []
    assert second.messages()[0][0]["to"] == rcpts[1:]


def test_ipv6_literal(mta_factory, sandboxes):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    sb = sandboxes(addr="[::1]", port=port)
    mta = smtp_out_mta(mta_factory)
    qid = inject(mta, ["a@example.net"])
    res = deliver(mta, qid, ["a@example.net"], "[ipv6:::1]:%d" % port)
    assert res[0]["status"] == "sent", res
    assert res[0]["relay"] == "::1[::1]:%d" % port
    qid = inject(mta, ["b@example.net"])
    res = deliver(mta, qid, ["b@example.net"], "[::1]:%d" % port)
    assert res[0]["status"] == "sent", res


def test_lost_connection_before_content_fails_over(mta_factory, sandboxes):
    first = sandboxes()                       # built-in rules: drop... DROP
    second = sandboxes(rules="/^/ OK\n")
    mta = smtp_out_mta(mta_factory)
    rcpts = ["ok@example.net", "drop@example.net"]
    qid = inject(mta, rcpts)
    res = deliver(mta, qid, rcpts, "[127.0.0.1]:%d [127.0.0.1]:%d"
                  % (first.port, second.port))
    assert [r["status"] for r in res] == ["sent", "sent"], res
    assert first.messages() == []
    assert second.messages()[0][0]["to"] == rcpts
    # With no other endpoint the recipients are deferred.
    qid = inject(mta, rcpts)
    res = deliver(mta, qid, rcpts, "[127.0.0.1]:%d" % first.port)
    assert [r["status"] for r in res] == ["deferred", "deferred"], res
    assert res[0]["dsn"] == "4.4.2"
    assert res[0]["reply"].startswith("lost connection with "
                                      "127.0.0.1[127.0.0.1] while ")
