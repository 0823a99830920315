"""qmgr: scheduling, results, retries, expiry, recovery.

Most cases run the real master, smtpd, cleanup and qmgr, with a scripted
delivery agent in place of smtp-out: FakeService listens on
queue_dir/private/smtp and speaks docs/ipc.md, so a test can answer each
recipient with sent, deferred or bounced, hold a request open, or hang up,
deterministically. A second FakeService stands in for bounce on
private/bounce and records the DSN requests. The cases marked "real chain"
at the end run smtp-out and bounce themselves against a test SMTP server.
"""

import os
import re
import signal
import smtplib
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import BIN, free_port, wait_for

MASTER_CF_FAKE = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
qmgr    unix - - n - 1 qmgr
"""

MASTER_CF_REAL = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
qmgr    unix - - n - 1 qmgr
smtp    unix - - n - 1 smtp-out
bounce  unix - - n - 1 bounce
"""


# -- the IPC wire format (docs/ipc.md) ---------------------------------------

def attr_encode(pairs):
    out = b""
    for name, value in pairs:
        if isinstance(value, str):
            value = value.encode()
        out += name.encode() + b"=" + str(len(value)).encode() + b":" \
            + value + b"\n"
    return out + b"\n"


def attr_read(sock):
    """One attribute list as [(name, str)], or None on EOF."""
    buf = b""
    while True:
        i = 0
        pairs = []
        while True:
            if buf[i:i + 1] == b"\n":
                return pairs
            m = re.match(rb"([a-z0-9_]{1,32})=(\d+):", buf[i:])
            if not m:
                break
            n = int(m.group(2))
            start = i + m.end()
            if len(buf) < start + n + 1:
                break
            pairs.append((m.group(1).decode(),
                          buf[start:start + n].decode("utf-8", "replace")))
            i = start + n + 1
        data = sock.recv(65536)
        if not data:
            return None
        buf += data


class Request:
    def __init__(self, pairs):
        self.pairs = pairs

    def get(self, name):
        for n, v in self.pairs:
            if n == name:
                return v
        return None

    def all(self, name):
        return [v for n, v in self.pairs if n == name]


class FakeService:
    """A private service that records requests and answers by a script.

    respond(req) returns the reply pairs, or None to hang up without a
    reply. While `gate` is cleared, requests wait (in flight) before they
    are answered; `inflight` and `max_inflight` count them.
    """

    def __init__(self, queue_dir, name, respond):
        self.path = os.path.join(queue_dir, "private", name)
        self.respond = respond
        self.requests = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.inflight = 0
        self.max_inflight = 0
        self.stopping = False
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)	# qmgr runs as mail_owner under root
        self.sock.listen(512)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        try:
            pairs = attr_read(conn)
            if pairs is None:
                return
            req = Request(pairs)
            with self.lock:
                self.requests.append(req)
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
            gate = getattr(req, "gate", None)
            while not self.gate.wait(0.05):
                if self.stopping:
                    return
            reply = self.respond(req)
            with self.lock:
                self.inflight -= 1
            if reply is not None:
                conn.sendall(attr_encode(reply))
        except OSError:
            pass
        finally:
            conn.close()

    def rcpts(self):
        with self.lock:
            return [r for q in self.requests for r in q.all("rcpt")]

    def close(self):
        self.stopping = True
        self.gate.set()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def smtp_reply(results):
    """A smtp-out reply from [(status, dsn, relay, reply)]."""
    pairs = [("count", str(len(results)))]
    for st, dsn, relay, text in results:
        pairs += [("status", st), ("dsn", dsn), ("relay", relay),
                  ("reply", text)]
    return pairs


def agent_by_rcpt(table, default=("sent", "2.0.0", "fake[127.0.0.1]:25",
                                  "250 2.0.0 Ok")):
    """A respond() answering each recipient from table[address] or default;
    a table value may be a callable taking the address."""
    def respond(req):
        out = []
        for r in req.all("rcpt"):
            v = table.get(r, default)
            out.append(v(r) if callable(v) else v)
        return smtp_reply(out)
    return respond


def bounce_ok(req):
    return [("status", "0"), ("queue_id", "BNC")]


def bounce_down(req):
    return [("status", "4"), ("reason", "4.3.0 bounce is broken")]


# -- helpers ----------------------------------------------------------------

def send(mta, rcpts, sender="alice@example.com", body="hello\r\n"):
    """Submit one message over SMTP; return its queue ID (from the 250)."""
    with smtplib.SMTP(mta.host, mta.port, timeout=30) as s:
        msg = "Subject: test\r\n\r\n" + body
        s.ehlo("client.example")
        s.mail(sender)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (code, text)
        code, text = s.data(msg)
        assert code == 250, (code, text)
    m = re.search(r"queued as ([0-9A-Za-z]+)", text.decode())
    assert m, text
    return m.group(1)


def all_files(mta, queue):
    out = []
    top = os.path.join(mta.queue_dir, queue)
    for dirpath, dirs, files in os.walk(top):
        out += [os.path.join(dirpath, f) for f in files]
    return out


def find_file(mta, qid):
    for q in ("incoming", "active", "deferred", "hold", "corrupt"):
        for p in all_files(mta, q):
            if os.path.basename(p) == qid:
                return q, p
    return None, None


def queue_empty(mta):
    return all(not all_files(mta, q)
               for q in ("incoming", "active", "deferred"))


def status_bytes(path):
    """The R records' status bytes of a queue file, [(status, addr)]."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    i = 0
    while i < len(data):
        t = chr(data[i])
        j = data.index(b":", i + 1)
        n = int(data[i + 1:j])
        v = data[j + 1:j + 1 + n]
        if t == "R":
            out.append((chr(v[0]), v[1:].decode().split("\t")[0]))
        i = j + 2 + n
    return out


@pytest.fixture
def qmgr_mta(mta_factory):
    """An MTA with qmgr, a fake smtp-out and a fake bounce service."""
    made = []

    def make(main=None, respond=None, bounce=bounce_ok):
        params = {"minimal_backoff_time": "1000s",
                  "maximal_backoff_time": "4000s",
                  "queue_run_delay": "1000s"}
        params.update(main or {})
        mta = mta_factory(main=params, master_cf=MASTER_CF_FAKE)
        mta.agent = FakeService(mta.queue_dir, "smtp",
                                respond or agent_by_rcpt({}))
        mta.bounce = FakeService(mta.queue_dir, "bounce", bounce) \
            if bounce else None
        made.append(mta)
        return mta

    yield make
    for m in made:
        print(m.log())		# shown when the test fails
        m.agent.close()
        if m.bounce:
            m.bounce.close()


# -- the basic path -----------------------------------------------------------

def test_delivered_and_removed(qmgr_mta):
    mta = qmgr_mta()
    qid = send(mta, ["bob@example.net", "carol@example.net",
                     "dan@other.example"])
    mta.wait_log("%s: removed" % qid, timeout=20)
    log = mta.log()
    assert re.search(r"%s: from=<alice@example.com>, size=\d+, nrcpt=3 "
                     r"\(queue active\)" % qid, log)
    assert queue_empty(mta)
    assert not os.path.exists(os.path.join(mta.queue_dir, "history", qid))
    # One request per nexthop (the recipient domain: MX lookup).
    reqs = {r.get("nexthop"): r for r in mta.agent.requests}
    assert set(reqs) == {"example.net", "other.example"}
    r = reqs["example.net"]
    assert r.get("queue_id") == qid
    assert r.get("queue_file") == "active/" + qid
    assert r.get("sender") == "alice@example.com"
    assert r.all("rcpt") == ["bob@example.net", "carol@example.net"]
    assert len(r.all("orcpt")) == 2 and len(r.all("notify")) == 2
    assert re.match(r"^\d+\.\d{6}$", r.get("arrival"))
    assert re.match(r"^\d+\.\d{6}$", r.get("active"))
    assert sorted(mta.agent.rcpts()) == ["bob@example.net",
                                         "carol@example.net",
                                         "dan@other.example"]


def test_done_file_is_reused(qmgr_mta):
    # A delivered message's file waits, empty, in free/; the next
    # message's file is that file (same inode) under a new name and ID.
    mta = qmgr_mta()
    free = os.path.join(mta.queue_dir, "free")
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert os.listdir(free) == [qid]
    st = os.stat(os.path.join(free, qid))
    assert st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0o600
    # cleanup found free/ empty for qid; it looks again after 100 ms.
    time.sleep(0.15)
    qid2 = send(mta, ["carol@example.net"])
    assert qid2 != qid
    mta.wait_log("%s: removed" % qid2, timeout=20)
    # The pool gave its file to qid2, whose file went back in turn.
    assert os.listdir(free) == [qid2]
    assert os.stat(os.path.join(free, qid2)).st_ino == st.st_ino
    assert queue_empty(mta)
    assert "from=<alice@example.com>" in mta.log()


def test_routing_transport_maps_relayhost(qmgr_mta):
    mta = qmgr_mta(main={
        "transport_maps": "inline:{a.example=smtp:[127.0.0.1]:2525, "
                          ".b.example=smtp:, c.example=local:, "
                          "h.example=smtp:[mx.h.example], "
                          "p.example=smtp:relay.p.example:587}",
        "relayhost": "[127.0.0.2]:25, [127.0.0.3]:2525"})
    qid = send(mta, ["x@a.example", "y@sub.b.example", "z@c.example",
                     "w@d.example", "v@h.example", "u@p.example"])
    mta.wait_log("%s: removed" % qid, timeout=20)
    hops = sorted((r.get("nexthop"), tuple(r.all("rcpt")))
                  for r in mta.agent.requests)
    assert hops == sorted([
        ("[127.0.0.1]:2525", ("x@a.example",)),
        ("sub.b.example", ("y@sub.b.example",)),
        ("[127.0.0.2]:25, [127.0.0.3]:2525", ("w@d.example",)),
        ("[mx.h.example]", ("v@h.example",)),
        ("relay.p.example:587", ("u@p.example",)),
    ])
    # Other transports are not there yet: bounced, in one DSN request.
    assert len(mta.bounce.requests) == 1
    b = mta.bounce.requests[0]
    assert b.get("type") == "failure" and b.get("queue_id") == qid
    assert b.all("rcpt") == ["z@c.example"]
    assert b.get("dsn") == "5.3.5" and "unknown transport" in b.get("reply")


def test_recipient_limit_splits_requests(qmgr_mta):
    mta = qmgr_mta(main={"smtp_destination_recipient_limit": "2"})
    rcpts = ["r%d@example.net" % i for i in range(5)]
    qid = send(mta, rcpts)
    mta.wait_log("%s: removed" % qid, timeout=20)
    sizes = sorted(len(r.all("rcpt")) for r in mta.agent.requests)
    assert sizes == [1, 2, 2]
    assert sorted(mta.agent.rcpts()) == sorted(rcpts)


def test_deferred_reason_listed_then_flush(qmgr_mta):
    state = {"mode": "defer"}

    def respond(req):
        if state["mode"] == "defer":
            return smtp_reply([("deferred", "4.2.0", "mx[127.0.0.1]:25",
                                "450 4.2.0 mailbox busy, come back")]
                              * len(req.all("rcpt")))
        return smtp_reply([("sent", "2.0.0", "mx[127.0.0.1]:25", "250 ok")]
                          * len(req.all("rcpt")))

    mta = qmgr_mta(respond=respond)
    t0 = time.time()
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=20)
    q, path = find_file(mta, qid)
    assert q == "deferred"
    assert path.endswith("deferred/%s/%s" % (qid[-1], qid))
    # The mtime is the next retry: minimal_backoff_time from now.
    assert os.stat(path).st_mtime >= t0 + 900
    r = mta.sendarix("queue", "list")
    assert "(450 4.2.0 mailbox busy, come back)" in r.stdout
    assert "next retry" in r.stdout
    r = mta.sendarix("queue", "show", qid)
    assert "*** HISTORY ***" in r.stdout and "deferred 4.2.0" in r.stdout
    import json
    m = json.loads(mta.sendarix("queue", "list", "--json").stdout)[0]
    assert m["queue"] == "deferred" and m["next_retry"] > t0 + 900
    assert m["recipients"][0]["last"]["reply"] == \
        "450 4.2.0 mailbox busy, come back"
    # The receiver recovers; a flush delivers it at once, exactly once.
    state["mode"] = "sent"
    r = mta.sendarix("queue", "flush")
    assert "1 message flushed" in r.stdout
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert mta.agent.rcpts() == ["bob@example.net"] * 2
    assert queue_empty(mta)


def test_agent_down_defers(qmgr_mta):
    mta = qmgr_mta()
    mta.agent.close()		# nothing listens on private/smtp
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=20)
    assert "dsn=4.3.0, status=deferred (mail transport unavailable)" \
        in mta.log()
    assert find_file(mta, qid)[0] == "deferred"
    # It comes up; a flush of this one ID delivers it.
    mta.agent = FakeService(mta.queue_dir, "smtp", agent_by_rcpt({}))
    r = mta.sendarix("queue", "flush", qid)
    assert "1 message flushed" in r.stdout
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert mta.agent.rcpts() == ["bob@example.net"]


def test_delivery_timeout_defers(qmgr_mta):
    mta = qmgr_mta(main={"qmgr_delivery_timeout": "1s"})
    mta.agent.gate.clear()	# never answers in time
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=20)
    assert "timeout" in mta.log()
    mta.agent.gate.set()


def test_bounce_and_partial_delivery(qmgr_mta):
    mta = qmgr_mta(respond=agent_by_rcpt({
        "bad@example.net": ("bounced", "5.1.1", "mx[127.0.0.1]:25",
                            "550 5.1.1 no such user")}))
    qid = send(mta, ["good@example.net", "bad@example.net"])
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert len(mta.bounce.requests) == 1
    b = mta.bounce.requests[0]
    assert b.get("type") == "failure"
    assert b.get("queue_file") == "active/" + qid
    # offset: where bounce marks the recipient done once the notice is out
    assert int(b.get("offset")) > 0
    assert [p for p in b.pairs[3:] if p[0] != "offset"] == [
        ("rcpt", "bad@example.net"), ("dsn", "5.1.1"),
        ("relay", "mx[127.0.0.1]:25"), ("reply", "550 5.1.1 no such user")]


def test_bounce_unavailable_keeps_recipient(qmgr_mta):
    mta = qmgr_mta(respond=agent_by_rcpt({
        "bad@example.net": ("bounced", "5.1.1", "mx[127.0.0.1]:25",
                            "550 5.1.1 no such user")}), bounce=bounce_down)
    qid = send(mta, ["good@example.net", "bad@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=20)
    assert "bounce service (failure notice): 4.3.0 bounce is broken" \
        in mta.log()
    q, path = find_file(mta, qid)
    assert q == "deferred"
    # bad@ failed for good and is marked so: only the notice is owed.
    assert status_bytes(path) == [("D", "good@example.net"),
                                  ("F", "bad@example.net")]
    # bounce is back: the next pass bounces it; the good one is not resent.
    mta.bounce.respond = bounce_ok
    mta.sendarix("queue", "flush")
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert mta.agent.rcpts().count("good@example.net") == 1
    assert [b.get("type") for b in mta.bounce.requests] == ["failure"] * 2


def test_greylist_retries_sooner(qmgr_mta):
    mta = qmgr_mta(main={"greylist_retry_time": "2s"}, respond=agent_by_rcpt(
        {}, default=("deferred", "4.7.1", "mx[127.0.0.1]:25",
                     "450 4.7.1 <bob@example.net>: Recipient address "
                     "rejected: Greylisted, see http://x")))
    t0 = time.time()
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=20)
    assert "(greylisted)" in mta.log()
    q, path = find_file(mta, qid)
    assert os.stat(path).st_mtime <= t0 + 30
    # The timer takes it again, with no trigger, once it is due.
    wait_for(lambda: len(mta.agent.requests) >= 2, timeout=15,
             what="a second try after greylist_retry_time")


def test_expiry_returns_to_sender(qmgr_mta):
    mta = qmgr_mta(main={"maximal_queue_lifetime": "3s",
                         "minimal_backoff_time": "1s",
                         "maximal_backoff_time": "1s"},
                   respond=agent_by_rcpt({}, default=(
                       "deferred", "4.4.1", "none",
                       "connect to 127.0.0.1[127.0.0.1]:2526: "
                       "Connection refused")))
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: removed" % qid, timeout=30)
    log = mta.log()
    assert re.search(r"%s: to=<bob@example.net>, relay=none, delay=\d+, "
                     r"dsn=4.4.1, status=expired, returned to sender" % qid,
                     log)
    exp = [b for b in mta.bounce.requests if b.get("type") == "expired"]
    assert len(exp) == 1
    assert exp[0].all("rcpt") == ["bob@example.net"]
    # The notice names the actual last problem (RFC 3463 X.4.7 note).
    assert exp[0].get("dsn") == "4.4.1"
    assert "Connection refused" in exp[0].get("reply")
    assert len(mta.agent.requests) >= 2


def test_delay_warning_sent_once(qmgr_mta):
    mta = qmgr_mta(main={"delay_warning_time": "1s",
                         "minimal_backoff_time": "1s",
                         "maximal_backoff_time": "1s"},
                   respond=agent_by_rcpt({}, default=(
                       "deferred", "4.2.0", "mx[127.0.0.1]:25",
                       "451 4.2.0 later")))
    qid = send(mta, ["bob@example.net"])
    wait_for(lambda: len(mta.agent.requests) >= 5, timeout=30,
             what="several retries")
    delays = [b for b in mta.bounce.requests if b.get("type") == "delay"]
    assert len(delays) == 1
    assert delays[0].all("rcpt") == ["bob@example.net"]
    r = mta.sendarix("queue", "show", qid)
    assert "delay" in r.stdout


def test_round_robin_slow_destination(qmgr_mta):
    slow_gate = threading.Event()

    def respond(req):
        if req.get("nexthop") == "slow.example":
            slow_gate.wait(60)
        return smtp_reply([("sent", "2.0.0", "mx[127.0.0.1]:25", "250 ok")]
                          * len(req.all("rcpt")))

    mta = qmgr_mta(main={"default_destination_concurrency_limit": "2",
                         "qmgr_delivery_concurrency_limit": "4"},
                   respond=respond)
    slow = [send(mta, ["u%d@slow.example" % i]) for i in range(8)]
    wait_for(lambda: mta.agent.inflight >= 2, what="slow deliveries")
    fast = [send(mta, ["u%d@fast.example" % i]) for i in range(5)]
    for qid in fast:
        mta.wait_log("%s: removed" % qid, timeout=20)
    # The slow destination never had more than its limit in flight.
    slow_reqs = [r for r in mta.agent.requests
                 if r.get("nexthop") == "slow.example"]
    assert len(slow_reqs) == 2
    slow_gate.set()
    for qid in slow:
        mta.wait_log("%s: removed" % qid, timeout=30)


def test_active_limit(qmgr_mta):
    mta = qmgr_mta(main={"qmgr_message_active_limit": "5"})
    mta.agent.gate.clear()
    ids = [send(mta, ["u%d@d%d.example" % (i, i)]) for i in range(50)]
    wait_for(lambda: mta.agent.inflight >= 5, what="five in flight")
    time.sleep(0.5)
    assert len(all_files(mta, "active")) == 5
    assert mta.agent.max_inflight == 5
    assert len(all_files(mta, "incoming")) == 45
    mta.agent.gate.set()
    for qid in ids:
        mta.wait_log("%s: removed" % qid, timeout=60)
    assert mta.agent.max_inflight <= 5
    assert sorted(mta.agent.rcpts()) == sorted(
        "u%d@d%d.example" % (i, i) for i in range(50))


def test_missing_file_tolerated(qmgr_mta):
    mta = qmgr_mta()
    mta.agent.gate.clear()
    qid = send(mta, ["bob@example.net"])
    wait_for(lambda: mta.agent.inflight >= 1, what="a delivery in flight")
    r = mta.sendarix("queue", "delete", qid)
    assert "%s: deleted" % qid in r.stdout
    mta.agent.gate.set()
    mta.wait_log("%s: queue file is gone" % qid, timeout=20)
    # qmgr is still there and delivers the next message.
    qid2 = send(mta, ["carol@example.net"])
    mta.wait_log("%s: removed" % qid2, timeout=20)


def test_recovery_skips_done_recipients(qmgr_mta):
    mta = qmgr_mta()
    mta.agent.gate.clear()
    qid = send(mta, ["a@example.net", "b@example.net"])
    wait_for(lambda: mta.agent.inflight >= 1, what="in flight")
    mta.stop()
    mta.agent.gate.set()
    # As if a crash came after a@ was delivered and marked.
    q, path = find_file(mta, qid)
    assert q == "active"
    with open(path, "r+b") as f:
        data = f.read()
        i = data.index(b"-a@example.net")
        f.seek(i)
        f.write(b"D")
    mta.agent.requests.clear()
    mta.start()
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert "recovered 1 message left in active/" in mta.log()
    assert mta.agent.rcpts() == ["b@example.net"]


def qmgr_pid(mta):
    pids = mta.child_pids("qmgr")
    return pids[0] if pids else None


def test_kill9_qmgr_mid_run(qmgr_mta):
    mta = qmgr_mta(main={"master_restart_min_delay": "1s"})
    count = 40
    mta.agent.gate.clear()
    ids = [send(mta, ["u%d@d%d.example" % (i, i % 7)]) for i in range(count)]
    wait_for(lambda: mta.agent.inflight >= 5, what="deliveries in flight")
    # Let some finish, then kill qmgr while others are in flight.
    mta.agent.gate.set()
    wait_for(lambda: "removed" in mta.log(), what="a first delivery")
    pid = wait_for(lambda: qmgr_pid(mta), what="qmgr pid")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: qmgr_pid(mta) not in (None, pid), timeout=20,
             what="qmgr restarted")
    want = ["u%d@d%d.example" % (i, i % 7) for i in range(count)]
    # Not every "removed" line: the kill may fall between the unlink and
    # the log line. The queue empties and every recipient arrives.
    wait_for(lambda: queue_empty(mta) and set(mta.agent.rcpts()) == set(want),
             timeout=60, what="every message delivered and removed")
    got = mta.agent.rcpts()
    assert set(got) == set(want)		# nothing lost
    dups = len(got) - len(set(got))
    assert dups <= count			# at least once, duplicates counted
    print("duplicates after kill -9: %d" % dups)
    assert queue_empty(mta)


# -- the real chain: smtp-out and bounce against aiosmtpd --------------------

real_chain = pytest.mark.skipif(
    not (os.path.exists(os.path.join(BIN, "smtp-out"))
         and os.path.exists(os.path.join(BIN, "bounce"))),
    reason="smtp-out or bounce is not built")


class Receiver:
    """An aiosmtpd server on loopback: accepts, or answers RCPT with
    `self.rcpt_reply` when set. `messages` holds (mail_from, rcpts, data)."""

    def __init__(self, port=None):
        from aiosmtpd.controller import Controller
        self.port = port or free_port()
        self.rcpt_reply = None
        self.messages = []
        self.lock = threading.Lock()
        outer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address,
                                  rcpt_options):
                if outer.rcpt_reply:
                    return outer.rcpt_reply
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 OK"

            async def handle_DATA(self, server, session, envelope):
                with outer.lock:
                    outer.messages.append((envelope.mail_from,
                                           list(envelope.rcpt_tos),
                                           envelope.content))
                return "250 2.0.0 Ok: queued"

        self.controller = Controller(Handler(), hostname="127.0.0.1",
                                     port=self.port)
        self.controller.start()

    def rcpts(self):
        with self.lock:
            return [r for _, rs, _ in self.messages for r in rs]

    def stop(self):
        self.controller.stop()


@pytest.fixture
def receivers():
    made = []

    def make(port=None):
        r = Receiver(port)
        made.append(r)
        return r

    yield make
    for r in made:
        try:
            r.stop()
        except Exception:
            pass


def real_mta(mta_factory, port, main=None):
    params = {"relayhost": "[127.0.0.1]:%d" % port,
              "minimal_backoff_time": "1000s",
              "maximal_backoff_time": "4000s",
              "queue_run_delay": "1000s"}
    params.update(main or {})
    return mta_factory(main=params, master_cf=MASTER_CF_REAL)


@real_chain
def test_real_delivered_and_removed(mta_factory, receivers):
    rcv = receivers()
    mta = real_mta(mta_factory, rcv.port)
    qid = send(mta, ["bob@example.net", "carol@example.org"])
    mta.wait_log("%s: removed" % qid, timeout=30)
    log = mta.log()
    assert re.search(r"%s: to=<bob@example.net>, relay=[^,]*127.0.0.1\]:%d"
                     r".*status=sent" % (qid, rcv.port), log)
    assert sorted(rcv.rcpts()) == ["bob@example.net", "carol@example.org"]
    assert queue_empty(mta)


@real_chain
def test_real_4xx_deferred_then_flush(mta_factory, receivers):
    rcv = receivers()
    rcv.rcpt_reply = "450 4.2.0 Mailbox busy, try later"
    mta = real_mta(mta_factory, rcv.port)
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=30)
    r = mta.sendarix("queue", "list")
    assert "Mailbox busy, try later" in r.stdout, r.stdout
    assert find_file(mta, qid)[0] == "deferred"
    rcv.rcpt_reply = None
    mta.sendarix("queue", "flush")
    mta.wait_log("%s: removed" % qid, timeout=30)
    assert rcv.rcpts() == ["bob@example.net"]		# exactly once


@real_chain
def test_real_receiver_down_then_up(mta_factory, receivers):
    port = free_port()			# nothing listens yet
    mta = real_mta(mta_factory, port)
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=30)
    r = mta.sendarix("queue", "list")
    assert re.search(r"\(.*127\.0\.0\.1.*%d.*\)" % port, r.stdout), r.stdout
    rcv = receivers(port)
    mta.sendarix("queue", "flush", qid)
    mta.wait_log("%s: removed" % qid, timeout=30)
    assert rcv.rcpts() == ["bob@example.net"]


@real_chain
def test_real_bounce_reaches_sender(mta_factory, receivers):
    rcv = receivers()
    reject = receivers()
    reject.rcpt_reply = "550 5.1.1 No such user here"
    mta = real_mta(mta_factory, rcv.port, main={
        "transport_maps": "inline:{unknown.example=smtp:[127.0.0.1]:%d}"
                          % reject.port})
    qid = send(mta, ["nobody@unknown.example", "bob@example.net"])
    mta.wait_log("%s: removed" % qid, timeout=30)
    assert rcv.rcpts().count("bob@example.net") == 1
    # The DSN goes from <> to alice, through the relayhost.
    wait_for(lambda: any(m[0] in ("", "<>") and "alice@example.com" in m[1]
                         for m in rcv.messages), timeout=30,
             what="the DSN at the receiver")
