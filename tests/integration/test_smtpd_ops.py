"""smtpd and cleanup for operators: a full queue file system, NUL bytes in
headers, a unix-socket smtpd, memory after a burst, client host names.

Each test starts a real master (conftest.py) and talks SMTP to it with
raw sockets (test_smtpd.Client).
"""

import contextlib
import errno
import os
import resource
import socket
import subprocess
import time

import pytest

from conftest import wait_for
from dnsserver import DnsServer
from test_smtpd import Client, connect, queued_id, queue_file


# -- a full queue file system ---------------------------------------------

@contextlib.contextmanager
def small_tmpfs(path, size="2m"):
    """Mount a small tmpfs on path, or skip the test if we may not."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                        "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: " + r.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True)


def fill(path):
    """Write a file until the file system is full; return its name."""
    name = os.path.join(path, "filler")
    block = b"x" * 65536
    with open(name, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as e:
            assert e.errno in (errno.ENOSPC, errno.EDQUOT), e
    # Fill the last partial block too.
    with open(name, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"x")
        except OSError:
            pass
    return name


def send_message(c, body, sender="a@example.org", rcpt="b@example.com"):
    """MAIL, RCPT, DATA, content; the final reply (code, text)."""
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
    code, text = c.cmd("DATA")
    assert code == 354, text
    c.send(body + b".\r\n")
    return c.reply()


def test_full_queue_file_system(mta_factory):
    m = mta_factory(start=False)
    with small_tmpfs(m.queue_dir):
        try:
            m.start()
            filler = fill(m.queue_dir)

            # No room at all: refused at MAIL FROM (queue_minfree = 0).
            c = connect(m)
            assert c.cmd("EHLO c.example")[0] == 250
            code, text = c.cmd("MAIL FROM:<a@example.org>")
            assert (code, text) == (452, "4.3.1 Insufficient system storage")
            m.wait_log("NOQUEUE: reject: MAIL from unknown[127.0.0.1]: "
                       "452 4.3.1 Insufficient system storage")
            m.wait_log("not enough free space in mail queue")

            # A little room: MAIL passes, but cleanup runs out of space.
            with open(filler, "r+b") as f:
                f.truncate(os.path.getsize(filler) - 64 * 1024)
            body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 600
            code, text = send_message(c, body)
            assert (code, text) == (452, "4.3.1 Insufficient system storage")
            m.wait_log("queue file system is full")
            m.wait_log("reject: DATA from unknown[127.0.0.1]: 452 4.3.1")
            assert os.listdir(os.path.join(m.queue_dir, "tmp")) == []
            assert m.queue_files() == []

            # Room again: accepted without a restart.
            os.unlink(filler)
            code, text = send_message(c, body)
            assert code == 250, text
            qid = queued_id(text)
            assert m.queue_files() == [qid]
            assert queue_file(m, qid).content.endswith(b"y" * 998 + b"\r\n")
            c.cmd("QUIT")
        finally:
            m.stop()


def test_queue_minfree(mta_factory):
    m = mta_factory(main={"queue_minfree": "1g", "message_size_limit": "0"})
    c = connect(m)
    assert c.cmd("EHLO c.example")[0] == 250
    st = os.statvfs(m.queue_dir)
    free = st.f_bavail * st.f_frsize
    if free <= 1 << 30:
        code, text = c.cmd("MAIL FROM:<a@example.org>")
        assert (code, text) == (452, "4.3.1 Insufficient system storage")
    else:
        # Plenty of room, but a SIZE= that would eat into queue_minfree
        # (or half of what is free) is refused.
        code, text = c.cmd("MAIL FROM:<a@example.org> SIZE=%d" % free)
        assert (code, text) == (452, "4.3.1 Insufficient system storage")
        assert c.cmd("MAIL FROM:<a@example.org> SIZE=1000")[0] == 250


# -- NUL bytes ----------------------------------------------------------------

NUL_REPLY = (550, "5.6.0 Message contains NUL characters in headers")


@pytest.mark.parametrize("header", [
    b"Subject: a\0b\r\n",                   # in a value
    b"X-Fo\0o: bar\r\n",                    # in a name
    b"Subject: a\r\n b\0c\r\n",             # in a continuation line
    b"\0Subject: x\r\n",                    # where a name would start
])
def test_nul_in_headers_refused_data(mta, header):
    c = connect(mta)
    assert c.cmd("EHLO c.example")[0] == 250
    code, text = send_message(c, b"From: a@example.org\r\n" + header
                              + b"\r\nbody\r\n")
    assert (code, text) == NUL_REPLY
    mta.wait_log("reject: DATA from unknown[127.0.0.1]: 550 5.6.0 Message "
                 "contains NUL characters in headers")
    assert mta.queue_files() == []
    # The session goes on.
    code, text = send_message(c, b"Subject: fine\r\n\r\nbody\r\n")
    assert code == 250, text
    c.cmd("QUIT")


def test_nul_in_headers_refused_bdat(mta):
    c = connect(mta)
    assert c.cmd("EHLO c.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
    part1 = b"Subject: x\r\nX-Bad: one\0"
    part2 = b"two\r\n\r\nbody\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert c.reply()[0] == 250
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert c.reply() == NUL_REPLY
    mta.wait_log("reject: BDAT from unknown[127.0.0.1]: 550 5.6.0")
    assert mta.queue_files() == []
    assert c.cmd("NOOP")[0] == 250


def test_nul_in_body_kept(mta):
    # Documented: the body is stored byte for byte, NUL included.
    c = connect(mta)
    assert c.cmd("EHLO c.example")[0] == 250
    code, text = send_message(c, b"Subject: x\r\n\r\nbo\0dy\r\n")
    assert code == 250, text
    qid = queued_id(text)
    assert queue_file(mta, qid).content.endswith(b"\r\n\r\nbo\0dy\r\n")


# -- smtpd on a unix socket ---------------------------------------------------

UNIX_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
smtpu unix n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
"""


class UnixClient(Client):
    """The raw client of test_smtpd, over a unix socket."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""


def test_unix_socket_client_is_local(mta_factory):
    # mynetworks holds no loopback address, and nothing may relay by
    # relay_domains: only the local (unix) client may send out.
    m = mta_factory(main={"mynetworks": "192.0.2.0/24",
                          "smtpd_client_connection_count_limit": "1"},
                    master_cf=UNIX_MASTER_CF)
    path = os.path.join(m.queue_dir, "public", "smtpu")
    wait_for(lambda: os.path.exists(path), what="public/smtpu")
    c = UnixClient(path)
    assert c.reply()[0] == 220
    # No per-client limit for local clients: a second session is fine.
    c2 = UnixClient(path)
    assert c2.reply()[0] == 220
    assert c2.cmd("QUIT")[0] == 221
    assert c.cmd("EHLO c.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<far@elsewhere.example>") == (250, "2.1.5 Ok")
    code, text = c.cmd("DATA")
    assert code == 354, text
    c.send(b"Subject: local\r\n\r\nhi\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    qid = queued_id(text)
    q = queue_file(m, qid)
    assert q.content.startswith(
        b"Received: from c.example (localhost)\r\n"
        b"\tby mx.test.example (Sendarix) with ESMTP id " + qid.encode())
    assert b"127.0.0.1" not in q.content
    assert "client_addr" not in q.attrs
    assert q.attrs.get("client_name") == "localhost"
    m.wait_log("connect from localhost[unix]")
    m.wait_log("%s: client=localhost[unix]" % qid)
    c.cmd("QUIT")

    # Over TCP from 127.0.0.1 the same recipient is refused. The limit of
    # one session per address holds there: a session of the harness's
    # readiness probes may still be open (under ASan its client-name
    # lookup can outlast the probe, before it logs "connect from"), so
    # a 421 means "try again once it has ended".
    def tcp_session():
        t = Client(m)
        code, text = t.reply()
        if code == 220:
            return t
        assert code == 421 and "too many connections" in text, text
        t.close()
        return None
    t = wait_for(tcp_session, what="a session under the limit")
    assert t.cmd("EHLO c.example")[0] == 250
    assert t.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, text = t.cmd("RCPT TO:<far@elsewhere.example>")
    assert code == 554, text


# -- memory after a burst -----------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


@pytest.mark.skipif("ASAN_OPTIONS" in os.environ,
                    reason="sanitizer builds keep freed memory (quarantine)")
def test_memory_given_back_after_burst(mta_factory):
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * n + 200:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low" % hard)
    if soft != resource.RLIM_INFINITY and soft < 2 * n + 200:
        # master and smtpd inherit it.
        resource.setrlimit(resource.RLIMIT_NOFILE, (2 * n + 200, hard))
    m = mta_factory(main={"smtpd_client_connection_count_limit": "0"})
    pid = wait_for(lambda: m.child_pids("smtpd"), what="smtpd")[0]
    c = connect(m)
    assert c.cmd("QUIT")[0] == 221
    m.wait_log("disconnect from")
    idle = rss_kb(pid)

    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((m.host, m.port), timeout=30)
            socks.append(s)
        for s in socks:
            assert s.recv(1000).startswith(b"220")
            s.sendall(b"EHLO client.example\r\n")
        for s in socks:
            got = b""
            while b"250 SMTPUTF8\r\n" not in got:
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
        during = rss_kb(pid)
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: m.log().count("disconnect from") >= n + 1,
             timeout=60, what="all sessions to end")
    # Trimmed a second after the process went idle.
    try:
        wait_for(lambda: rss_kb(pid) < idle + 8 * 1024, timeout=10,
                 what="smtpd RSS to fall back")
    except AssertionError:
        raise AssertionError("RSS idle %d KB, during %d KB, after %d KB"
                             % (idle, during, rss_kb(pid)))


# -- client host names --------------------------------------------------------

NAME_ZONE = {
    # Verified: the name leads back to the address.
    "5.0.0.127.in-addr.arpa": ["PTR client5.example.net."],
    "client5.example.net": ["A 127.0.0.5"],
    # Not verified: the name's address is another one.
    "6.0.0.127.in-addr.arpa": ["PTR liar.example.net."],
    "liar.example.net": ["A 192.0.2.99"],
    # Two PTR names, the second one verifies.
    "7.0.0.127.in-addr.arpa": ["PTR gone.example.net.",
                               "PTR client7.example.net."],
    "client7.example.net": ["A 127.0.0.7"],
}


def names_mta(mta_factory, dns, **main):
    params = {"smtpd_peername_lookup": "yes", "dns_resolver": dns.spec}
    params.update(main)
    return mta_factory(main=params)


def send_from(m, source, helo="c.example"):
    """One message from a source address; the queue file."""
    c = connect(m, source=source)
    assert c.cmd("EHLO " + helo)[0] == 250
    code, text = send_message(c, b"Subject: name\r\n\r\nhi\r\n")
    assert code == 250, text
    c.cmd("QUIT")
    qid = queued_id(text)
    return qid, queue_file(m, qid)


def test_client_name_verified(mta_factory):
    with DnsServer(NAME_ZONE) as dns:
        m = names_mta(mta_factory, dns)
        qid, q = send_from(m, "127.0.0.5")
        assert q.content.startswith(
            b"Received: from c.example (client5.example.net [127.0.0.5])"
            b"\r\n\tby mx.test.example")
        assert q.attrs["client_name"] == "client5.example.net"
        assert q.attrs["client_addr"] == "127.0.0.5"
        m.wait_log("connect from client5.example.net[127.0.0.5]")
        m.wait_log("%s: client=client5.example.net[127.0.0.5]" % qid)
        m.wait_log("disconnect from client5.example.net[127.0.0.5]")

        qid, q = send_from(m, "127.0.0.7")
        assert b"(client7.example.net [127.0.0.7])" in q.content

        # A PTR name that does not lead back is not believed.
        qid, q = send_from(m, "127.0.0.6")
        assert q.content.startswith(
            b"Received: from c.example (unknown [127.0.0.6])")
        assert q.attrs["client_name"] == "unknown"
        m.wait_log("connect from unknown[127.0.0.6]")
        assert "liar" not in m.log()

        # No PTR at all.
        qid, q = send_from(m, "127.0.0.8")
        assert b"(unknown [127.0.0.8])" in q.content
        assert ("8.0.0.127.in-addr.arpa", "PTR") in dns.queries

        # 127.0.0.1 is localhost without asking the server.
        qid, q = send_from(m, "127.0.0.1")
        assert b"(localhost [127.0.0.1])" in q.content
        assert ("1.0.0.127.in-addr.arpa", "PTR") not in dns.queries


def test_client_name_kept_for_its_ttl(mta_factory):
    # A client that comes back is named from the result smtpd kept,
    # verified or not, the same as the first time.
    with DnsServer(NAME_ZONE) as dns:
        m = names_mta(mta_factory, dns)
        for _ in range(2):
            qid, q = send_from(m, "127.0.0.5")
            assert q.attrs["client_name"] == "client5.example.net"
            qid, q = send_from(m, "127.0.0.6")
            assert q.attrs["client_name"] == "unknown"
        assert dns.queries.count(("5.0.0.127.in-addr.arpa", "PTR")) == 1
    # With a TTL of 0 nothing is kept: every session asks again.
    with DnsServer(NAME_ZONE, ttl=0) as dns:
        m = names_mta(mta_factory, dns)
        for _ in range(2):
            qid, q = send_from(m, "127.0.0.5")
            assert q.attrs["client_name"] == "client5.example.net"
        assert dns.queries.count(("5.0.0.127.in-addr.arpa", "PTR")) == 2


def test_client_name_lookup_off(mta_factory):
    with DnsServer(NAME_ZONE) as dns:
        m = names_mta(mta_factory, dns, smtpd_peername_lookup="no")
        qid, q = send_from(m, "127.0.0.5")
        assert b"(unknown [127.0.0.5])" in q.content
        m.wait_log("connect from unknown[127.0.0.5]")
        assert dns.queries == []


def test_silent_dns_does_not_stall_others(mta_factory):
    with DnsServer(NAME_ZONE, drop=["9.0.0.127.in-addr.arpa"]) as dns:
        m = names_mta(mta_factory, dns, smtpd_peername_lookup_timeout="3s")
        slow = Client(m, source="127.0.0.9")
        started = time.monotonic()
        wait_for(lambda: ("9.0.0.127.in-addr.arpa", "PTR") in dns.queries,
                 what="the PTR query for 127.0.0.9")
        # Another client is served while that lookup hangs.
        qid, q = send_from(m, "127.0.0.5")
        assert b"(client5.example.net [127.0.0.5])" in q.content
        assert time.monotonic() - started < 2.5
        assert "127.0.0.9" not in m.log()
        # The silent one gets its greeting after the timeout, unnamed.
        code, text = slow.reply()
        assert code == 220, text
        assert time.monotonic() - started >= 2.5
        m.wait_log("connect from unknown[127.0.0.9]")
        assert slow.cmd("QUIT")[0] == 221
