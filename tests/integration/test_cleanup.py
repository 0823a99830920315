"""cleanup(8) spoken to directly over queue_dir/private/cleanup.

These tests play smtpd's part of docs/ipc.md with a raw unix socket
against a real master that runs only the cleanup service, and check the
queue files that land in incoming/ by parsing the record format here
(TYPE LENGTH ':' DATA '\\n', lib/global/qfile.h) independently of the C code.
"""

import os
import re
import signal
import socket
import threading

import pytest

from conftest import wait_for

CLEANUP_ONLY = "cleanup unix - - n - 1 cleanup -v\n"


# -- the attribute encoding of docs/ipc.md ----------------------------------

def attr(name, value):
    if isinstance(value, str):
        value = value.encode()
    return b"%s=%d:%s\n" % (name.encode(), len(value), value)


def envelope(sender="alice@example.com", rcpts=("bob@example.net",),
             **extra):
    out = attr("sender", sender)
    for r in rcpts:
        out += attr("rcpt", r)
    for k, v in extra.items():
        out += attr(k, v)
    return out + b"\n"


def content(data, chunk=65536):
    out = b""
    for i in range(0, len(data), chunk):
        out += attr("data", data[i:i + chunk])
    return out + b"\n"


def read_reply(sock, timeout=15.0):
    """Read one attribute list; return a dict (None at end of file)."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        # Parse what we have.
        res = {}
        i = 0
        complete = False
        while i < len(buf):
            if buf[i:i + 1] == b"\n":
                complete = True
                break
            m = re.match(rb"([a-z0-9_]{1,32})=(\d+):", buf[i:])
            if not m:
                break
            n = int(m.group(2))
            start = i + m.end()
            if len(buf) < start + n + 1:
                break
            assert buf[start + n:start + n + 1] == b"\n", buf
            res[m.group(1).decode()] = buf[start:start + n].decode()
            i = start + n + 1
        if complete:
            return res
        data = sock.recv(65536)
        if not data:
            return None
        buf += data


# -- queue files ------------------------------------------------------------

def records(data):
    out = []
    i = 0
    while i < len(data):
        t = chr(data[i])
        j = data.index(b":", i + 1)
        n = int(data[i + 1:j])
        value = data[j + 1:j + 1 + n]
        assert len(value) == n and data[j + 1 + n:j + 2 + n] == b"\n", \
            "bad record at offset %d" % i
        out.append((t, value))
        i = j + 2 + n
    return out


class QFile:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.recs = records(f.read())
        types = [t for t, _ in self.recs]
        assert types[0] == "V" and types[-1] == "E", types
        self.sender = [v.decode() for t, v in self.recs if t == "S"][0]
        self.attrs = dict(v.decode().split("=", 1)
                          for t, v in self.recs if t == "A")
        self.rcpts = [v[1:].decode() for t, v in self.recs if t == "R"]
        self.status = [chr(v[0]) for t, v in self.recs if t == "R"]
        self.content = b"".join(v for t, v in self.recs if t == "C")
        self.size = int([v for t, v in self.recs if t == "Z"][0])


# -- fixtures ---------------------------------------------------------------

class Cleanup:
    def __init__(self, mta):
        self.mta = mta
        self.path = os.path.join(mta.queue_dir, "private", "cleanup")
        assert len(self.path) < 100, "socket path too long: " + self.path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        return s

    def submit(self, data, env=None, chunk=65536):
        """Whole submission; returns (first reply, final reply)."""
        with self.connect() as s:
            s.sendall(env or envelope())
            first = read_reply(s)
            if first is None or first.get("status") != "0":
                return first, None
            s.sendall(content(data, chunk))
            return first, read_reply(s)

    def incoming(self, qid):
        return QFile(os.path.join(self.mta.queue_dir, "incoming", qid))

    def files(self, queue):
        return self.mta.queue_files(queue)


def start_cleanup(mta_factory, main=None, master_cf=CLEANUP_ONLY):
    m = mta_factory(main=main, master_cf=master_cf, start=False)
    m.start(wait_port=False)
    c = Cleanup(m)
    wait_for(lambda: os.path.exists(c.path) or m.proc.poll() is not None,
             what="private/cleanup")
    assert m.proc.poll() is None, "master exited: " + m.log()
    return c


@pytest.fixture
def cleanup(mta_factory):
    return start_cleanup(mta_factory)


HDRS = (b"Received: from client.example (client.example [127.0.0.1])\r\n"
        b"\tby mx.test.example (Sendarix) with ESMTP; now\r\n"
        b"From: Alice <alice@example.com>\r\nSubject: test\r\n")


# -- tests ------------------------------------------------------------------

def test_round_trip_adds_missing_headers(cleanup):
    body = b"".join(b"line %d \xc3\xa4 " % i + b"x" * (i % 300) + b"\r\n"
                    for i in range(3000))
    msg = HDRS + b"\r\n" + body
    env = envelope("alice@example.com", ["bob@example.net", "carol@x.org"],
                   client_addr="127.0.0.1", client_name="localhost",
                   helo="client.example", protocol="ESMTP", body="8BITMIME",
                   smtputf8="1", size=str(len(msg)), unknown_thing="zz")
    # Odd chunk sizes: the header section ends inside a chunk.
    first, final = cleanup.submit(msg, env, chunk=37)
    assert first["status"] == "0" and first["queue_id"]
    qid = first["queue_id"]
    assert final == {"status": "0", "queue_id": qid}
    assert cleanup.files("incoming") == [qid]
    assert cleanup.files("tmp") == []

    q = cleanup.incoming(qid)
    assert q.sender == "alice@example.com"
    assert q.rcpts == ["bob@example.net", "carol@x.org"]
    assert q.status == ["-", "-"]
    assert q.attrs == {"client_addr": "127.0.0.1", "client_name": "localhost",
                       "helo": "client.example", "protocol": "ESMTP",
                       "body": "8BITMIME", "smtputf8": "1"}
    head, sep, rest = q.content.partition(b"\r\n\r\n")
    assert rest == body, "body not byte-identical"
    assert head.startswith(HDRS[:-2])
    added = head[len(HDRS) - 2:].split(b"\r\n")
    assert added[0] == b""
    assert re.fullmatch(rb"Message-ID: <\d{14}\.%s@mx\.test\.example>"
                        % qid.encode(), added[1]), added
    assert re.fullmatch(rb"Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
                        rb"[A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
                        added[2]), added
    assert len(added) == 3
    assert q.size == len(q.content)

    cleanup.mta.wait_log("%s: from=<alice@example.com>" % qid)
    log = cleanup.mta.log()
    assert re.search(r"%s: message-id=<\d{14}\.%s@mx\.test\.example>"
                     % (qid, qid), log)
    assert "%s: from=<alice@example.com>, size=%d, nrcpt=2 (queued)" % (
        qid, len(q.content)) in log


def test_present_headers_not_added(cleanup):
    msg = (HDRS + b"message-id: <abc@example.com>\r\n"
           b"DATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n.\r\n")
    first, final = cleanup.submit(msg)
    assert final["status"] == "0"
    q = cleanup.incoming(final["queue_id"])
    assert q.content == msg
    cleanup.mta.wait_log("%s: message-id=<abc@example.com>" % final["queue_id"])


def test_no_body_and_no_headers(cleanup):
    # Headers only, no empty line: additions go at the end.
    first, final = cleanup.submit(b"Subject: x\r\nDate: today\r\n")
    q = cleanup.incoming(final["queue_id"])
    assert q.content.startswith(b"Subject: x\r\nDate: today\r\nMessage-ID: <")
    assert q.content.endswith(b">\r\n") and q.content.count(b"\r\n") == 3

    # No header at all: the body starts at once.
    first, final = cleanup.submit(b"just text\r\nmore: text\r\n")
    q = cleanup.incoming(final["queue_id"])
    assert q.content.endswith(b"\r\njust text\r\nmore: text\r\n")
    assert q.content.startswith(b"Message-ID: <")

    # A non-header line ends the header section.
    first, final = cleanup.submit(b"Subject: y\r\nnot a header\r\n")
    q = cleanup.incoming(final["queue_id"])
    assert q.content.startswith(b"Subject: y\r\nMessage-ID: <")
    assert q.content.endswith(b"\r\nnot a header\r\n")


def test_header_over_limit(mta_factory):
    c = start_cleanup(mta_factory, main={"header_size_limit": "2048"})
    msg = HDRS + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 60)
                          for i in range(40)) + b"\r\nbody\r\n"
    first, final = c.submit(msg, chunk=1000)
    assert first["status"] == "0"
    assert final["status"] == "5"
    assert final["reason"] == "5.3.4 Message header size exceeds limit"
    assert c.files("incoming") == [] and c.files("tmp") == []
    c.mta.wait_log("%s: reject: 5.3.4 Message header size exceeds limit"
                   % first["queue_id"])
    # The process is still there for the next message.
    first, final = c.submit(HDRS + b"\r\nsmall\r\n")
    assert final["status"] == "0"


def test_too_many_hops(mta_factory):
    c = start_cleanup(mta_factory, main={"hopcount_limit": "5"})
    # As many as the limit is fine (folded ones count once)...
    ok = b"Received: x\r\n\tby y\r\n" * 5 + b"\r\nbody\r\n"
    first, final = c.submit(ok)
    assert final["status"] == "0"
    # ... one more is not.
    first, final = c.submit(b"ReCeIvEd: x\r\n" * 6 + b"\r\nbody\r\n")
    assert final == {"status": "5", "reason": "5.4.6 Too many hops"}
    assert len(c.files("incoming")) == 1 and c.files("tmp") == []


def test_message_size_limit(mta_factory):
    c = start_cleanup(mta_factory, main={"message_size_limit": "10000"})
    first, final = c.submit(HDRS + b"\r\n" + b"z" * 20000)
    assert final == {"status": "5", "reason": "5.3.4 Message file too big"}
    assert c.files("incoming") == [] and c.files("tmp") == []


def test_client_closes_mid_content(cleanup):
    s = cleanup.connect()
    s.sendall(envelope())
    first = read_reply(s)
    assert first["status"] == "0"
    assert cleanup.files("tmp") != []
    s.sendall(attr("data", HDRS + b"\r\npart of the body"))
    s.close()
    wait_for(lambda: cleanup.files("tmp") == [], what="tmp/ to be empty")
    assert cleanup.files("incoming") == []
    cleanup.mta.wait_log("%s: lost connection while reading content"
                         % first["queue_id"])


def test_malformed_input(cleanup):
    # Bad length field in the envelope.
    with cleanup.connect() as s:
        s.sendall(b"sender=x:abc\n")
        r = read_reply(s)
        assert r["status"] == "4"
        assert s.recv(100) == b""
    # Sender twice.
    with cleanup.connect() as s:
        s.sendall(attr("sender", "a") + attr("sender", "b")
                  + attr("rcpt", "c") + b"\n")
        assert read_reply(s)["status"] == "4"
    # No recipient.
    with cleanup.connect() as s:
        s.sendall(attr("sender", "a") + b"\n")
        assert read_reply(s)["status"] == "4"
    # Envelope value over 4 KiB.
    with cleanup.connect() as s:
        s.sendall(attr("sender", "a" * 5000))
        assert read_reply(s)["status"] == "4"
    # CR LF inside an address.
    with cleanup.connect() as s:
        s.sendall(attr("sender", "a\r\nb") + attr("rcpt", "c") + b"\n")
        assert read_reply(s)["status"] == "4"
    # Something other than "data" in the content.
    with cleanup.connect() as s:
        s.sendall(envelope())
        first = read_reply(s)
        assert first["status"] == "0"
        s.sendall(attr("data", b"Subject: x\r\n") + attr("rcpt", "late"))
        assert read_reply(s)["status"] == "4"
    wait_for(lambda: cleanup.files("tmp") == [], what="tmp/ to be empty")
    assert cleanup.files("incoming") == []
    cleanup.mta.wait_log("malformed envelope")
    # Still serving.
    first, final = cleanup.submit(HDRS + b"\r\nok\r\n")
    assert final["status"] == "0"


def test_group_commit_concurrent(cleanup):
    n = 40
    socks = [cleanup.connect() for _ in range(n)]
    firsts = []
    for i, s in enumerate(socks):
        s.sendall(envelope(rcpts=["r%d@example.net" % i]))
    for s in socks:
        firsts.append(read_reply(s))
    assert all(f["status"] == "0" for f in firsts)
    ids = [f["queue_id"] for f in firsts]
    assert len(set(ids)) == n
    bodies = [HDRS + b"\r\nmessage number %d\r\n" % i for i in range(n)]
    for s, b in zip(socks, bodies):
        s.sendall(content(b)[:-1])          # all but the final "\n"

    # Hold cleanup still while every client ends its message, so that all
    # of them are ready in one loop pass and share one directory fsync.
    pids = cleanup.mta.child_pids("cleanup")
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGSTOP)
    try:
        for s in socks:
            s.sendall(b"\n")
    finally:
        os.kill(pids[0], signal.SIGCONT)
    finals = [read_reply(s) for s in socks]
    for s in socks:
        s.close()
    assert finals == [{"status": "0", "queue_id": i} for i in ids]
    assert sorted(cleanup.files("incoming")) == sorted(ids)
    for i, qid in enumerate(ids):
        q = cleanup.incoming(qid)
        assert q.rcpts == ["r%d@example.net" % i]
        assert q.content.endswith(b"\r\nmessage number %d\r\n" % i)

    def batches():
        return [int(x) for x in re.findall(
            r"group commit: (\d+) messages?, ok", cleanup.mta.log())]
    # The batch is logged after its replies: wait for the line.
    wait_for(lambda: sum(batches()) == n, what="group commit log lines")
    assert max(batches()) > 1, batches()


def test_qmgr_trigger(cleanup):
    path = os.path.join(cleanup.mta.queue_dir, "private", "qmgr")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    os.chmod(path, 0o666)                   # cleanup runs as mail_owner
    lsock.listen(10)
    lsock.settimeout(10)
    try:
        first, final = cleanup.submit(HDRS + b"\r\nwake up\r\n")
        assert final["status"] == "0"
        conn, _ = lsock.accept()
        conn.settimeout(10)
        data = b""
        while True:
            chunk = conn.recv(10)
            if not chunk:
                break
            data += chunk
        conn.close()
        assert data == b"A"
    finally:
        lsock.close()
        os.unlink(path)


def test_no_qmgr_is_fine(cleanup):
    # Nothing listens on private/qmgr: mail is still accepted at once.
    for _ in range(3):
        first, final = cleanup.submit(HDRS + b"\r\nno qmgr\r\n")
        assert final["status"] == "0"
    assert len(cleanup.files("incoming")) == 3


def test_sigterm_removes_unfinished(cleanup):
    s = cleanup.connect()
    s.sendall(envelope())
    assert read_reply(s)["status"] == "0"
    s.sendall(attr("data", HDRS))
    assert len(cleanup.files("tmp")) == 1
    cleanup.mta.stop()
    assert cleanup.files("tmp") == []
    assert cleanup.files("incoming") == []
    s.close()


def test_concurrent_threads(cleanup):
    """Many clients at once, each at its own pace."""
    results = []
    lock = threading.Lock()

    def one(i):
        r = cleanup.submit(HDRS + b"\r\n" + (b"%d\r\n" % i) * (i * 50),
                           chunk=997)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 30
    assert all(f["status"] == "0" and f == {"status": "0",
               "queue_id": s["queue_id"]} for s, f in results)
    assert len(cleanup.files("incoming")) == 30
    assert cleanup.files("tmp") == []


def proc_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_sighup_finishes_open_session(cleanup):
    pid = cleanup.mta.child_pids("cleanup")[0]
    s = cleanup.connect()
    s.sendall(envelope())
    first = read_reply(s)
    assert first["status"] == "0"
    os.kill(pid, signal.SIGHUP)
    cleanup.mta.wait_log("SIGHUP: not accepting; 1 open session")
    assert not proc_gone(pid)
    s.sendall(content(HDRS + b"\r\nafter SIGHUP\r\n"))
    final = read_reply(s)
    s.close()
    assert final == {"status": "0", "queue_id": first["queue_id"]}
    assert cleanup.files("incoming") == [first["queue_id"]]
    wait_for(lambda: proc_gone(pid), what="old cleanup to exit")


def test_timeout(mta_factory):
    c = start_cleanup(mta_factory, main={"cleanup_timeout": "1s"})
    with c.connect() as s:
        s.sendall(envelope())
        first = read_reply(s)
        assert first["status"] == "0"
        s.sendall(attr("data", HDRS))
        # Then nothing: cleanup gives up after cleanup_timeout.
        final = read_reply(s, timeout=10)
        assert final == {"status": "4", "reason": "4.4.2 Error: timeout exceeded"}
    assert c.files("tmp") == [] and c.files("incoming") == []
    c.mta.wait_log("%s: timeout while reading content" % first["queue_id"])


def test_max_sessions(mta_factory):
    c = start_cleanup(mta_factory, main={"cleanup_max_sessions": "2"})
    a = c.connect()
    b = c.connect()
    a.sendall(envelope())
    b.sendall(envelope())
    assert read_reply(a)["status"] == "0"
    assert read_reply(b)["status"] == "0"
    with c.connect() as s:
        r = read_reply(s)
        assert r == {"status": "4",
                     "reason": "4.3.2 Error: too many cleanup sessions"}
    a.sendall(content(HDRS + b"\r\na\r\n"))
    assert read_reply(a)["status"] == "0"
    a.close()
    b.close()
    wait_for(lambda: c.files("tmp") == [], what="tmp/ to be empty")
    # A slot is free again.
    first, final = c.submit(HDRS + b"\r\nagain\r\n")
    assert final["status"] == "0"
