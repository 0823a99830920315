"""The accept path as a whole: master, smtpd and cleanup on loopback.

These tests start a real master with a throwaway configuration (see
conftest.py) and speak SMTP to it with smtplib and raw sockets.
"""

import asyncio
import json
import os
import re
import signal
import smtplib
import socket

from conftest import wait_for
from sxqueue import QueueFile


def recv_reply(sock, buf=b""):
    """Read one complete (possibly multi-line) SMTP reply."""
    while True:
        lines = buf.split(b"\r\n")
        for i, line in enumerate(lines[:-1]):
            if len(line) >= 4 and line[3:4] == b" ":
                reply = b"\r\n".join(lines[:i + 1]) + b"\r\n"
                rest = b"\r\n".join(lines[i + 1:])
                return reply.decode(errors="replace"), rest
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed; have %r" % buf)
        buf += chunk


def test_message_is_queued_byte_for_byte(mta):
    body = (b"From: Alice <alice@example.org>\r\n"
            b"To: bob@example.com\r\n"
            b"Subject: byte check\r\n"
            b"Message-ID: <fixed-id@example.org>\r\n"
            b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
            b"\r\n"
            b"line one\r\n"
            b".leading dot survives\r\n"
            b"\r\n"
            b"last line\r\n")
    with smtplib.SMTP(mta.host, mta.port, local_hostname="client.example.org") as s:
        code, banner = s.ehlo()
        assert code == 250
        assert b"PIPELINING" in banner and b"CHUNKING" in banner
        s.mail("alice@example.org")
        s.rcpt("bob@example.com")
        code, msg = s.data(body)
    assert code == 250, msg
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$", msg)
    assert m, msg
    qid = m.group(1).decode()
    assert mta.queue_files("incoming") == [qid]
    assert mta.queue_files("tmp") == []

    q = QueueFile(os.path.join(mta.queue_dir, "incoming", qid))
    assert q.sender == "alice@example.org"
    assert q.rcpts == [("-", "bob@example.com")]
    assert q.attrs["client_addr"] == "127.0.0.1"
    assert q.attrs["helo"] == "client.example.org"
    assert q.attrs["protocol"] == "ESMTP"
    # smtpd's Received header, then the message exactly as sent (with
    # the dot-stuffing that smtplib added taken out again).
    received, _, rest = q.content.partition(b"\r\n\tfor <bob@example.com>; ")
    assert received.startswith(
        b"Received: from client.example.org (unknown [127.0.0.1])\r\n"
        b"\tby mx.test.example (Sendarix) with ESMTP id " + qid.encode())
    _, _, stored = rest.partition(b"\r\n")
    assert stored == body
    assert q.size == len(q.content)

    # The operator sees it.
    out = mta.sendarix("queue", "list").stdout
    assert qid in out and "alice@example.org" in out and "bob@example.com" in out
    listed = json.loads(mta.sendarix("queue", "list", "--json").stdout)
    assert [e["queue_id"] for e in listed] == [qid]
    shown = mta.sendarix("queue", "show", qid).stdout
    assert "byte check" in shown and "bob@example.com" in shown
    mta.wait_log("%s: client=" % qid)


def test_500_concurrent_sessions_all_accepted(mta):
    n = 500

    async def one(i):
        r, w = await asyncio.open_connection(mta.host, mta.port)

        async def reply():
            line = await r.readline()
            while line[3:4] == b"-":
                line = await r.readline()
            return line

        assert (await reply()).startswith(b"220")
        w.write(b"EHLO c%d.example\r\n" % i)
        assert (await reply()).startswith(b"250")
        # Hold every session open until all have connected.
        ready[0] += 1
        if ready[0] == n:
            started.set()
        await started.wait()
        w.write(b"MAIL FROM:<s%d@example.org>\r\nRCPT TO:<r%d@example.com>\r\n"
                b"DATA\r\n" % (i, i))
        assert (await reply()).startswith(b"250")
        assert (await reply()).startswith(b"250")
        assert (await reply()).startswith(b"354")
        w.write(b"Subject: %d\r\n\r\nbody %d\r\n.\r\nQUIT\r\n" % (i, i))
        final = await reply()
        assert final.startswith(b"250 2.0.0 Ok: queued as"), final
        assert (await reply()).startswith(b"221")
        w.close()
        return final.split()[-1].decode()

    async def main():
        return await asyncio.gather(*(one(i) for i in range(n)))

    ready = [0]
    started = None

    async def run():
        nonlocal started
        started = asyncio.Event()
        return await asyncio.wait_for(main(), 120)

    ids = asyncio.run(run())
    assert len(set(ids)) == n
    assert sorted(ids) == mta.queue_files("incoming")


def test_kill_smtpd_mid_data_loses_nothing_partial(mta):
    before = mta.child_pids("smtpd")
    assert len(before) == 1
    s = socket.create_connection((mta.host, mta.port))
    recv_reply(s)
    s.sendall(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
    buf = b""
    for expect in ("250", "250", "250", "354"):
        reply, buf = recv_reply(s, buf)
        assert reply.startswith(expect), reply
    s.sendall(b"Subject: half\r\n\r\n" + b"x" * 100000 + b"\r\n")
    # cleanup has the tmp file open by now.
    wait_for(lambda: mta.queue_files("tmp"), what="a file in tmp/")
    os.kill(before[0], signal.SIGKILL)
    s.close()
    # cleanup notices the dead peer and removes its half-written file.
    wait_for(lambda: not mta.queue_files("tmp"), what="tmp/ to empty")
    assert mta.queue_files("incoming") == []
    # master restarts smtpd, which serves new mail.
    wait_for(lambda: mta.child_pids("smtpd") and mta.child_pids("smtpd") != before,
             what="a new smtpd")
    mta.wait_log("killed by signal 9")
    with smtplib.SMTP(mta.host, mta.port) as c:
        c.sendmail("a@example.org", ["b@example.com"], b"Subject: after\r\n\r\nok\r\n")
    assert len(mta.queue_files("incoming")) == 1


def test_garbage_client_does_not_disturb_good_session(mta):
    good = smtplib.SMTP(mta.host, mta.port)
    good.ehlo("good.example")
    good.mail("a@example.org")
    bad = socket.create_connection((mta.host, mta.port))
    recv_reply(bad)
    junk = bytes(range(256)) * 64 + b"\x00\x00\r\n" + os.urandom(20000) + b"\r\n"
    try:
        for _ in range(5):
            bad.sendall(junk)
    except OSError:
        pass            # smtpd may hang up on it: that is fine
    got = b""
    bad.settimeout(10)
    try:
        while True:
            chunk = bad.recv(65536)
            if not chunk:
                break
            got += chunk
    except (OSError, socket.timeout):
        pass
    bad.close()
    assert b"421" in got or b"500" in got
    good.rcpt("b@example.com")
    code, msg = good.data(b"Subject: fine\r\n\r\nstill here\r\n")
    assert code == 250, msg
    good.quit()
    assert len(mta.queue_files("incoming")) == 1
    assert mta.child_pids("smtpd")


def test_reload_keeps_open_session(mta):
    s = smtplib.SMTP(mta.host, mta.port)
    s.ehlo("before.example")
    s.mail("a@example.org")
    old = mta.child_pids("smtpd")
    mta.sendarix("reload")
    # New children take new sessions while the old one finishes this one.
    wait_for(lambda: set(mta.child_pids("smtpd")) - set(old),
             what="a new smtpd after reload")
    with smtplib.SMTP(mta.host, mta.port) as other:
        other.sendmail("c@example.org", ["d@example.com"], b"Subject: new\r\n\r\nx\r\n")
    s.rcpt("b@example.com")
    code, msg = s.data(b"Subject: across reload\r\n\r\nkept\r\n")
    assert code == 250, msg
    s.quit()
    assert len(mta.queue_files("incoming")) == 2
    # The old smtpd leaves once its last session is gone.
    wait_for(lambda: not set(old) & set(mta.child_pids("smtpd")),
             what="the old smtpd to exit")
