"""The network connection layer (lib/util/stream.c) as smtpd and smtp-out use it.

smtpd's last reply at SIGTERM is written outside the event loop
(stream_flush()): a client in the middle of a session gets its 421
before the connection closes. smtp-out's connect timeout is the
stream's: a server that never completes the handshake is given up
after smtp_connect_timeout, and the next endpoint is tried.
"""

import socket

# Fixtures (no_crashes is autouse) and helpers of the smtp-out tests.
from test_smtp_out import no_crashes, sandboxes  # noqa: F401
from test_smtp_out import deliver, inject, smtp_out_mta


def read_reply(f):
    """One SMTP reply (all its lines) from a socket file."""
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed; got %r" % lines
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


def test_shutdown_says_421(mta):
    idle = socket.create_connection((mta.host, mta.port), timeout=10)
    fi = idle.makefile("rb")
    assert read_reply(fi).startswith(b"220 ")
    idle.sendall(b"EHLO client.example\r\n")
    assert read_reply(fi).startswith(b"250")

    # A second client in a transaction, its DATA content half sent.
    busy = socket.create_connection((mta.host, mta.port), timeout=10)
    fb = busy.makefile("rb")
    assert read_reply(fb).startswith(b"220 ")
    busy.sendall(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n"
                 b"RCPT TO:<b@example.com>\r\nDATA\r\n")
    assert read_reply(fb).startswith(b"250")
    assert read_reply(fb).startswith(b"250")
    assert read_reply(fb).startswith(b"250")
    assert read_reply(fb).startswith(b"354")
    busy.sendall(b"Subject: half\r\n\r\nnot finished\r\n")

    mta.stop()
    for f in (fi, fb):
        reply = read_reply(f)
        assert reply == (b"421 4.3.2 mx.test.example Service shutting "
                         b"down\r\n")
        assert f.read() == b""           # then the end of the connection
    idle.close()
    busy.close()


def full_listener():
    """A loopback listener that answers no SYN: its queue is full."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    # Linux queues backlog + 1 connections, then drops SYNs.
    fill = []
    for _ in range(4):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(lst.getsockname())
        except BlockingIOError:
            pass
        fill.append(c)
    return lst, fill


def test_smtp_connect_timeout_fails_over(mta_factory, sandboxes):
    lst, fill = full_listener()
    dead = lst.getsockname()[1]
    good = sandboxes()
    mta = smtp_out_mta(mta_factory, main={"smtp_connect_timeout": "1s"})
    try:
        qid = inject(mta, ["a@example.net"])
        res = deliver(mta, qid, ["a@example.net"], "[127.0.0.1]:%d" % dead)
        assert res[0]["status"] == "deferred", res
        assert res[0]["dsn"] == "4.4.1"
        assert res[0]["reply"] == ("connect to 127.0.0.1[127.0.0.1]:%d: "
                                   "Connection timed out" % dead)
        # With a second endpoint the message goes there.
        qid = inject(mta, ["b@example.net"])
        res = deliver(mta, qid, ["b@example.net"],
                      "[127.0.0.1]:%d, [127.0.0.1]:%d" % (dead, good.port))
        assert res[0]["status"] == "sent", res
        assert res[0]["relay"] == "127.0.0.1[127.0.0.1]:%d" % good.port
        assert len(good.messages()) == 1
    finally:
        for c in fill:
            c.close()
        lst.close()
