"""A 200 MB message through the whole chain in bounded memory.

smtpd -> cleanup -> qmgr -> smtp-out -> a raw-socket receiver that counts
and hashes what it gets, so that neither side of the test holds the
message either. qmgr reads only the envelope and smtp-out streams the
content from the queue file: their peak RSS (VmHWM) must not grow with the
message.
"""

import hashlib
import os
import smtplib
import socket
import threading
import time

import pytest

from conftest import BIN, free_port, wait_for

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(os.path.join(BIN, d))
            for d in ("qmgr", "smtp-out", "bounce")),
    reason="delivery daemons not built")

MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
qmgr    unix - - n - 1 qmgr
smtp    unix - - n - 1 smtp-out
bounce  unix - - n - 1 bounce
"""

SIZE = 200 * 1024 * 1024
MARK = b"From: big@example.org\r\n"      # the first line we send
GROWTH_LIMIT_KB = 10 * 1024


class HashingReceiver:
    """A minimal SMTP server: each message is counted and hashed from MARK
    on (what comes before it is our own Received header), never kept."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(4)
        self.messages = []          # (bytes from MARK on, sha256 hex)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,),
                             daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 sink ESMTP\r\n")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line[:4].upper()
                if cmd == b"EHLO":
                    conn.sendall(b"250-sink\r\n250 8BITMIME\r\n")
                elif cmd == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    self.data(f)
                    conn.sendall(b"250 2.0.0 Ok\r\n")
                elif cmd == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 Ok\r\n")
        finally:
            f.close()
            conn.close()

    def data(self, f):
        # Dot-stuffed lines up to ".": no line we send starts with ".",
        # so the stream is the message; MARK is near the start.
        h = hashlib.sha256()
        n = 0
        head = b""
        pending = b""           # the last bytes: the end may start there
        while True:
            chunk = f.read1(1 << 20)
            if not chunk:
                raise ConnectionError("EOF in DATA")
            buf = pending + chunk
            end = buf.find(b"\r\n.\r\n")
            if end >= 0:
                chunk = buf[:end + 2]
            else:
                chunk, pending = buf[:-4], buf[-4:]
            if head is not None:
                head += chunk
                i = head.find(MARK)
                if i >= 0:
                    chunk, head = head[i:], None
                elif len(head) > 65536:
                    raise AssertionError("no %r in the message" % MARK)
                else:
                    chunk = b""
            h.update(chunk)
            n += len(chunk)
            if end >= 0:
                break
        self.messages.append((n, h.hexdigest()))

    def close(self):
        self.sock.close()


def vm(pid):
    """(VmRSS, VmHWM) of a process, in kB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out["VmRSS"], out["VmHWM"]


def one_pid(mta, name):
    pids = mta.child_pids(name)
    assert len(pids) == 1, (name, pids)
    return pids[0]


def send(mta, size, subject):
    """Send a message of about `size` bytes a block at a time; returns
    (bytes sent, sha256 hex) of the message as sent."""
    header = (MARK + b"To: sink@example.com\r\nSubject: " + subject
              + b"\r\nMessage-ID: <" + subject + b"@example.org>\r\n"
              + b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\n")
    line = b"x" * 76 + b"\r\n"
    block = line * ((1 << 20) // len(line))
    h = hashlib.sha256(header)
    n = len(header)
    with smtplib.SMTP(mta.host, mta.port, timeout=120) as s:
        s.ehlo("client.example.org")
        assert s.mail("big@example.org")[0] == 250
        assert s.rcpt("sink@example.com")[0] == 250
        code, _ = s.docmd("DATA")
        assert code == 354
        s.sock.sendall(header)
        if size < len(block):
            block = line * (size // len(line))
        while n + len(block) <= size:
            s.sock.sendall(block)
            h.update(block)
            n += len(block)
        s.sock.sendall(b".\r\n")
        code, msg = s.getreply()
        assert code == 250, msg
    return n, h.hexdigest()


def test_200mb_message_bounded_memory(mta_factory):
    rx = HashingReceiver()
    try:
        mta = mta_factory(main={
            "relayhost": "[127.0.0.1]:%d" % rx.port,
            "message_size_limit": str(SIZE + (1 << 20)),
            "queue_run_delay": "2s"}, master_cf=MASTER_CF)

        # A small one first: smtp-out and qmgr are up, their baseline set.
        small = send(mta, 4096, b"small")
        wait_for(lambda: len(rx.messages) == 1, timeout=30,
                 what="the small message")
        assert rx.messages[0] == small
        qmgr, smtp = one_pid(mta, "qmgr"), one_pid(mta, "smtp-out")
        base = {p: vm(p) for p in (qmgr, smtp)}

        t0 = time.monotonic()
        big = send(mta, SIZE, b"big")
        t_sent = time.monotonic() - t0
        wait_for(lambda: len(rx.messages) == 2, timeout=300,
                 what="the 200 MB message")
        t_all = time.monotonic() - t0
        assert rx.messages[1] == big
        assert big[0] > SIZE - (1 << 20)
        mta.wait_log("status=sent (250 2.0.0 Ok)")

        # Same processes, and their peak barely moved.
        assert one_pid(mta, "qmgr") == qmgr
        assert one_pid(mta, "smtp-out") == smtp
        for name, pid in (("qmgr", qmgr), ("smtp-out", smtp)):
            rss, hwm = vm(pid)
            grew = hwm - base[pid][1]
            print("%s: VmHWM %d -> %d kB (+%d), VmRSS %d kB"
                  % (name, base[pid][1], hwm, grew, rss))
            # AddressSanitizer keeps freed memory in quarantine (256 MB
            # by default): the peak means nothing there.
            if "ASAN_OPTIONS" not in os.environ:
                assert grew < GROWTH_LIMIT_KB, (name, base[pid], (rss, hwm))
        print("200 MB: sent in %.1fs, delivered after %.1fs"
              % (t_sent, t_all))
        wait_for(lambda: not any(mta.queue_files(q) for q in
                                 ("incoming", "active", "deferred")),
                 what="the queue to empty")
    finally:
        rx.close()


def _rec(t, data):
    return t + str(len(data)).encode() + b":" + data + b"\n"


def test_late_headers_go_out_first(mta_factory):
    """A queue file with H records (none of our writers makes one yet):
    `sendarix queue show` and delivery put them before the message's own
    headers, the last one first."""
    from receivers import aiosmtpd_receiver
    ctl, rec = aiosmtpd_receiver()
    try:
        mta = mta_factory(main={
            "relayhost": "[127.0.0.1]:%d" % ctl.port,
            "queue_run_delay": "2s"}, master_cf=MASTER_CF)
        content = (b"From: a@example.org\r\nSubject: late\r\n\r\n"
                   b".dot\r\nbody\r\n")
        qid = "0000000000000B"
        data = (_rec(b"V", b"1") + _rec(b"T", b"%d.000000" % time.time())
                + _rec(b"Z", b"%015d" % len(content))
                + _rec(b"S", b"a@example.org")
                + _rec(b"R", b"-b@example.com")
                + _rec(b"C", content[:20]) + _rec(b"C", content[20:])
                + _rec(b"H", b"Authentication-Results: mx.example;\r\n"
                       b"\tnone")
                + _rec(b"H", b"DKIM-Signature: v=1; b=x")
                + _rec(b"E", b""))
        hold = os.path.join(mta.queue_dir, "hold")
        path = os.path.join(hold, qid)
        with open(path, "wb") as f:
            f.write(data)
        st = os.stat(hold)
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, 0o600)
        late = (b"DKIM-Signature: v=1; b=x\r\n"
                b"Authentication-Results: mx.example;\r\n\tnone\r\n")

        shown = mta.sendarix("queue", "show", qid).stdout
        body = shown.split("*** CONTENT ***\n")[1]
        assert body.startswith(late.decode().replace("\r\n", "\n")
                               + "From: a@example.org\n")

        mta.sendarix("queue", "release", qid)
        wait_for(lambda: rec.messages, timeout=30, what="delivery")
        _, rcpts, got = rec.messages[0]
        assert rcpts == ["b@example.com"]
        assert got == late + content
        mta.wait_log("status=sent")
    finally:
        ctl.stop()
