"""The network connection layer (lib/stream.c) as smtpd uses it.

smtpd's last reply at SIGTERM is written outside the event loop
(stream_flush()): a client in the middle of a session gets its 421
before the connection closes, also one that has pipelined commands
smtpd has not answered yet.
"""

import socket


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
