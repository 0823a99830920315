"""smtpd: the SMTP protocol, relay control, limits and smuggling defence.

Each test starts a real master (conftest.py) running smtpd and cleanup on
a free loopback port and talks to it with smtplib or a raw socket.
"""

import os
import re
import smtplib
import socket

import pytest

from conftest import wait_for
from sxqueue import QueueFile


class Client:
    """A raw SMTP client: send bytes, read whole replies."""

    def __init__(self, mta, source=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((mta.host, mta.port))
        self.buf = b""

    def reply(self):
        """One complete reply: (code, text of all lines joined by \\n)."""
        while True:
            lines = self.buf.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if len(line) >= 4 and line[3:4] == b" " or len(line) == 3:
                    reply = lines[:i + 1]
                    self.buf = b"\r\n".join(lines[i + 1:])
                    code = int(reply[-1][:3])
                    text = "\n".join(l[4:].decode(errors="replace")
                                     for l in reply)
                    return code, text
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed; have %r" % self.buf)
            self.buf += chunk

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self):
        """True once the server has closed the connection."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


def connect(mta, **kw):
    c = Client(mta, **kw)
    code, text = c.reply()
    assert code == 220, text
    return c


def queued_id(text):
    m = re.match(r"2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$", text)
    assert m, text
    return m.group(1)


def queue_file(mta, qid):
    return QueueFile(os.path.join(mta.queue_dir, "incoming", qid))


# -- the basic conversation -------------------------------------------------

def test_full_transaction_smtplib(mta):
    body = b"Subject: hi\r\n\r\nhello\r\n..dot\r\n"
    with smtplib.SMTP(mta.host, mta.port, local_hostname="c.example") as s:
        code, ehlo = s.ehlo()
        assert code == 250
        lines = ehlo.decode().split("\n")
        assert lines[0] == "mx.test.example"
        for ext in ("PIPELINING", "SIZE 52428800", "8BITMIME",
                    "ENHANCEDSTATUSCODES", "CHUNKING", "SMTPUTF8"):
            assert ext in lines, ehlo
        assert not any(l.startswith(("AUTH", "STARTTLS")) for l in lines)
        assert s.mail("a@example.org") == (250, b"2.1.0 Ok")
        assert s.rcpt("b@example.com") == (250, b"2.1.5 Ok")
        assert s.rcpt("c@example.com") == (250, b"2.1.5 Ok")
        code, msg = s.data(body)
        assert code == 250
        qid = queued_id(msg.decode())
        code, msg = s.quit()
        assert (code, msg) == (221, b"2.0.0 Bye")
    q = queue_file(mta, qid)
    assert q.sender == "a@example.org"
    assert [r for _, r in q.rcpts] == ["b@example.com", "c@example.com"]
    # Two recipients: no "for" clause in Received.
    assert q.content.startswith(
        b"Received: from c.example (unknown [127.0.0.1])\r\n"
        b"\tby mx.test.example (Sendarix) with ESMTP id " + qid.encode()
        + b";\r\n\t")
    # cleanup may add Message-ID and Date; the rest is as sent.
    assert b"\r\nSubject: hi\r\n" in q.content
    assert q.content.endswith(b"\r\n\r\nhello\r\n..dot\r\n")
    mta.wait_log("%s: client=unknown[127.0.0.1]" % qid)
    mta.wait_log("disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=2 "
                 "data=1 quit=1 commands=6")


def test_greeting_and_simple_commands(mta):
    c = connect(mta)
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    assert c.cmd("noop") == (250, "2.0.0 Ok")
    code, text = c.cmd("HELP")
    assert code == 214 and text.startswith("2.0.0")
    code, text = c.cmd("VRFY root")
    assert code == 252 and text.startswith("2.0.0") and "root" not in text
    code, text = c.cmd("EXPN staff")
    assert code == 502 and text.startswith("5.5.1")
    code, text = c.cmd("FOO bar")
    assert code == 500 and text.startswith("5.5.2")
    assert c.cmd("helo client.example") == (250, "mx.test.example")
    assert c.cmd("QUIT") == (221, "2.0.0 Bye")
    assert c.closed()


def test_sequencing_errors(mta):
    c = connect(mta)
    code, text = c.cmd("MAIL FROM:<a@example.org>")
    assert code == 503 and text.startswith("5.5.1")
    assert c.cmd("EHLO c.example")[0] == 250
    code, text = c.cmd("RCPT TO:<b@example.com>")
    assert code == 503 and text.startswith("5.5.1")
    code, text = c.cmd("DATA")
    assert code == 503 and text.startswith("5.5.1")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, text = c.cmd("MAIL FROM:<a@example.org>")
    assert code == 503 and "nested" in text
    code, text = c.cmd("DATA")
    assert code == 503 and text.startswith("5.5.1")
    code, text = c.cmd("HELO")
    assert code == 501
    c.close()


def test_syntax_errors(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    code, text = c.cmd("MAIL FROM:a@example.org")
    assert code == 501 and text.startswith("5.1.7")
    code, text = c.cmd("MAIL FROM:<a@@example.org>")
    assert code == 501 and text.startswith("5.1.7")
    code, text = c.cmd("MAIL FROM:<a@example.org> FOO=bar")
    assert code == 555 and text.startswith("5.5.4")
    code, text = c.cmd("MAIL TO:<a@example.org>")
    assert code == 501
    assert c.cmd("MAIL FROM:<> BODY=8BITMIME SIZE=100")[0] == 250
    code, text = c.cmd("RCPT TO:<>")
    assert code == 501 and text.startswith("5.1.3")
    code, text = c.cmd("RCPT TO:<user>")
    assert code == 501 and text.startswith("5.1.3")
    assert c.cmd("RCPT TO:<postmaster>")[0] == 250
    assert c.cmd("RCPT TO:<\"john doe\"@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<u@[127.0.0.1]>")[0] == 250
    code, text = c.cmd("RCPT TO:<b@example.com> FOO=BAR")
    assert code == 555
    c.close()


def test_duplicate_mail_parameters_refused(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    for params, name in (("SIZE=10 SIZE=20", "SIZE"),
                         ("BODY=8BITMIME BODY=7BIT", "BODY"),
                         ("SMTPUTF8 SMTPUTF8", "SMTPUTF8")):
        code, text = c.cmd("MAIL FROM:<a@example.org> " + params)
        assert (code, text) == (501, "5.5.4 Duplicate %s parameter" % name)
    # Nothing was started: a clean MAIL still works.
    assert c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME")[0] == 250
    c.close()


def test_rset_mid_transaction(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
    assert c.cmd("RSET") == (250, "2.0.0 Ok")
    code, _ = c.cmd("RCPT TO:<b@example.com>")
    assert code == 503
    assert c.cmd("MAIL FROM:<x@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<y@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: after rset\r\n\r\nbody\r\n.\r\n")
    code, text = c.reply()
    assert code == 250
    q = queue_file(mta, queued_id(text))
    assert q.sender == "x@example.org"
    assert [r for _, r in q.rcpts] == ["y@example.com"]
    c.close()


# -- pipelining and chunking -------------------------------------------------

def test_pipelined_transaction_in_one_write(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    c.send(b"MAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<b@example.com>\r\n"
           b"RCPT TO:<bad@@x>\r\n"
           b"DATA\r\n"
           b"Subject: pipelined\r\n\r\nbody\r\n.\r\n"
           b"MAIL FROM:<c@example.org>\r\n"
           b"RCPT TO:<d@example.com>\r\n"
           b"DATA\r\n"
           b"Subject: second\r\n\r\n.\r\n"
           b"QUIT\r\n")
    replies = [c.reply() for _ in range(10)]
    codes = [r[0] for r in replies]
    assert codes == [250, 250, 501, 354, 250, 250, 250, 354, 250, 221]
    q1 = queue_file(mta, queued_id(replies[4][1]))
    q2 = queue_file(mta, queued_id(replies[8][1]))
    assert b"\r\nSubject: pipelined\r\n" in q1.content
    assert q1.content.endswith(b"\r\n\r\nbody\r\n")
    assert [r for _, r in q1.rcpts] == ["b@example.com"]
    assert q2.sender == "c@example.org"
    assert c.closed()


def test_pipelined_after_rejected_data_lines_are_commands(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    # No valid recipient: DATA fails, so what follows are commands.
    c.send(b"MAIL FROM:<a@example.org>\r\n"
           b"DATA\r\n"
           b"NOOP\r\n"
           b"RSET\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 503
    assert c.reply() == (250, "2.0.0 Ok")
    assert c.reply() == (250, "2.0.0 Ok")
    c.close()


def test_bdat_chunks(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    part1 = b"Subject: chunked\r\n\r\nfirst "
    part2 = b"second\r\n.not a dot line\r\n"
    part3 = b".\r\nend\r\n"
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n")
    assert c.reply()[0] == 250 and c.reply()[0] == 250
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert c.reply() == (250, "2.0.0 Ok: %d bytes" % len(part1))
    # Two chunks pipelined in one write.
    c.send(b"BDAT %d\r\n" % len(part2) + part2
           + b"BDAT %d LAST\r\n" % len(part3) + part3)
    assert c.reply()[0] == 250
    code, text = c.reply()
    assert code == 250
    q = queue_file(mta, queued_id(text))
    assert b"\r\nSubject: chunked\r\n" in q.content
    assert q.content.endswith(b"\r\n\r\nfirst second\r\n.not a dot line"
                              b"\r\n.\r\nend\r\n")
    # DATA after BDAT in one transaction is refused.
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    c.send(b"BDAT 5\r\nabc\r\n")
    assert c.reply()[0] == 250
    code, text = c.cmd("DATA")
    assert code == 503 and text.startswith("5.5.1")
    # BDAT without MAIL: the bytes are read and thrown away.
    c.cmd("RSET")
    c.send(b"BDAT 10 LAST\r\nQUIT\r\nxxxx")
    code, text = c.reply()
    assert code == 503
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_bdat_last_adds_final_crlf(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    c.send(b"BDAT 0 LAST\r\n")
    code, text = c.reply()
    assert code == 250
    c.close()


# -- limits -------------------------------------------------------------------

def test_size_over_limit_at_mail(mta_factory):
    mta = mta_factory({"message_size_limit": "1000"})
    c = connect(mta)
    code, text = c.cmd("EHLO c.example")
    assert "SIZE 1000" in text
    code, text = c.cmd("MAIL FROM:<a@example.org> SIZE=1001")
    assert code == 552 and text.startswith("5.3.4")
    assert c.cmd("MAIL FROM:<a@example.org> SIZE=999")[0] == 250
    mta.wait_log("NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 552 5.3.4")
    c.close()


def test_data_over_limit(mta_factory):
    mta = mta_factory({"message_size_limit": "1000"})
    c = connect(mta)
    c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100 + b".\r\n")
    code, text = c.reply()
    assert code == 552 and text.startswith("5.3.4")
    # The session goes on, and nothing was queued.
    assert c.cmd("NOOP")[0] == 250
    assert mta.queue_files("incoming") == []
    wait_for(lambda: mta.queue_files("tmp") == [], what="tmp/ empty")
    # BDAT over the limit as well.
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    c.send(b"BDAT 2000 LAST\r\n" + b"y" * 2000)
    code, text = c.reply()
    assert code == 552
    assert c.cmd("NOOP")[0] == 250
    assert mta.queue_files("incoming") == []
    c.close()


def test_command_line_too_long(mta):
    c = connect(mta)
    code, text = c.cmd("NOOP " + "x" * 5000)
    assert code == 500 and "too long" in text
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.close()


def test_nul_byte_in_command(mta):
    c = connect(mta)
    c.send(b"NO\0OP\r\n")
    code, text = c.reply()
    assert code == 500 and text.startswith("5.5.2")
    c.send(b"\xff\xfe\x00garbage\x01\r\n")
    assert c.reply()[0] == 500
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_error_limit_disconnects(mta_factory):
    mta = mta_factory({"smtpd_hard_error_limit": "3",
                       "smtpd_soft_error_limit": "10"})
    c = connect(mta)
    assert c.cmd("BOGUS")[0] == 500
    assert c.cmd("BOGUS")[0] == 500
    assert c.cmd("BOGUS")[0] == 500
    code, text = c.reply()
    assert code == 421 and text.startswith("4.7.0")
    assert c.closed()


def test_soft_error_limit_delays(mta_factory):
    import time
    mta = mta_factory({"smtpd_hard_error_limit": "10",
                       "smtpd_soft_error_limit": "1"})
    c = connect(mta)
    assert c.cmd("BOGUS")[0] == 500
    t0 = time.monotonic()
    assert c.cmd("BOGUS")[0] == 500
    assert time.monotonic() - t0 >= 0.9
    c.close()


def test_too_many_recipients(mta_factory):
    mta = mta_factory({"smtpd_recipient_limit": "2"})
    c = connect(mta)
    c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<1@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<2@example.com>")[0] == 250
    code, text = c.cmd("RCPT TO:<3@example.com>")
    assert code == 452 and text.startswith("4.5.3")
    c.close()


def test_connection_limit_per_client(mta_factory):
    mta = mta_factory({"smtpd_client_connection_count_limit": "2",
                       "smtpd_client_connection_exceptions": ""})

    def disconnects(n):
        wait_for(lambda: mta.log().count("disconnect from") >= n,
                 what="%d disconnects" % n)

    disconnects(1)                      # the fixture's port probe
    a = connect(mta)
    b = connect(mta)
    c = Client(mta)
    code, text = c.reply()
    assert code == 421 and text.startswith("4.7.0")
    assert c.closed()
    mta.wait_log("Connection concurrency limit exceeded: 3 from "
                 "unknown[127.0.0.1]")
    # other addresses have counts of their own
    others = [connect(mta, source="127.0.0.%d" % i) for i in (2, 2, 3)]
    a.cmd("QUIT")
    a.close()
    disconnects(3)
    d = connect(mta)
    e = Client(mta)
    assert e.reply()[0] == 421          # b and d: the limit again
    e.close()
    for c in [d, b] + others:
        c.close()
    # once all are gone, the counts start again from nothing
    disconnects(8)
    again = [connect(mta) for _ in range(2)]
    for c in again:
        c.close()


def test_idle_timeout(mta_factory):
    mta = mta_factory({"smtpd_timeout": "1s"})
    c = connect(mta)
    code, text = c.reply()
    assert code == 421 and text.startswith("4.4.2")
    assert c.closed()


# -- relay control ------------------------------------------------------------

@pytest.fixture
def relay_mta(mta_factory):
    return mta_factory({"mynetworks": "127.0.0.1/32",
                        "relay_domains": "example.com"})


def test_relay_denied_for_outsider(relay_mta):
    c = connect(relay_mta, source="127.0.0.2")
    c.cmd("EHLO outside.example")
    assert c.cmd("MAIL FROM:<a@elsewhere.org>")[0] == 250
    code, text = c.cmd("RCPT TO:<x@foreign.org>")
    assert code == 554
    assert text == "5.7.1 <x@foreign.org>: Relay access denied"
    assert c.cmd("RCPT TO:<x@example.com>") == (250, "2.1.5 Ok")
    assert c.cmd("RCPT TO:<x@EXAMPLE.COM>")[0] == 250
    code, _ = c.cmd("RCPT TO:<x@sub.example.com>")
    assert code == 554
    relay_mta.wait_log(
        "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 "
        "<x@foreign.org>: Relay access denied; from=<a@elsewhere.org> "
        "to=<x@foreign.org> proto=ESMTP helo=<outside.example>")
    c.close()


@pytest.mark.parametrize("rcpt", [
    "<user%other.org@example.com>",
    "<other.org!user@example.com>",
    '<"user@other.org"@example.com>',
    "<@example.com:user@other.org>",
    "<@other.org:user@example.com>",
    "<user@[127.0.0.1]>",
])
def test_address_tricks_refused(relay_mta, rcpt):
    c = connect(relay_mta, source="127.0.0.2")
    c.cmd("EHLO outside.example")
    c.cmd("MAIL FROM:<a@elsewhere.org>")
    code, text = c.cmd("RCPT TO:%s" % rcpt)
    assert code == 554 and text.startswith("5.7.1"), text
    c.close()


def test_trusted_client_relays(relay_mta):
    c = connect(relay_mta)
    c.cmd("EHLO inside.example")
    c.cmd("MAIL FROM:<a@example.com>")
    assert c.cmd("RCPT TO:<x@foreign.org>")[0] == 250
    c.close()


def test_empty_relay_domains_relays_nothing(mta_factory):
    mta = mta_factory({"mynetworks": "127.0.0.1/32"})
    c = connect(mta, source="127.0.0.2")
    c.cmd("EHLO outside.example")
    c.cmd("MAIL FROM:<a@elsewhere.org>")
    assert c.cmd("RCPT TO:<x@example.com>")[0] == 554
    assert c.cmd("RCPT TO:<postmaster>")[0] == 250
    c.close()


# -- smuggling ----------------------------------------------------------------

def start_data(c):
    c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    code, text = c.cmd("DATA")
    assert code == 354, text


def test_bare_lf_rejected(mta):
    c = connect(mta)
    start_data(c)
    # A "." line ended by a bare LF is not the end of DATA.
    c.send(b"Subject: x\r\n\r\nline\n.\nMAIL FROM:<evil@example.org>\r\n"
           b"more\r\n.\r\n")
    code, text = c.reply()
    assert code == 550 and text.startswith("5.5.2"), text
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    assert mta.queue_files("incoming") == []
    mta.wait_log("reject: DATA from unknown[127.0.0.1]: 550 5.5.2")
    c.close()


def test_bare_cr_rejected(mta):
    c = connect(mta)
    start_data(c)
    c.send(b"Subject: x\r\n\r\nline\r.\rstill content\r\n.\r\n")
    code, text = c.reply()
    assert code == 550, text
    assert mta.queue_files("incoming") == []
    c.close()


def test_bare_lf_normalised_when_allowed(mta_factory):
    mta = mta_factory({"smtpd_forbid_bare_newline": "no"})
    c = connect(mta)
    start_data(c)
    c.send(b"Subject: x\r\n\r\none\ntwo\n.\nthree\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    q = queue_file(mta, queued_id(text))
    assert q.content.endswith(b"\r\n\r\none\r\ntwo\r\n.\r\nthree\r\n")
    c.close()


def test_lost_client_mid_data_queues_nothing(mta):
    c = connect(mta)
    start_data(c)
    c.send(b"Subject: x\r\n\r\npartial")
    c.close()
    mta.wait_log("lost connection after DATA")
    wait_for(lambda: mta.queue_files("tmp") == [], what="tmp/ empty")
    assert mta.queue_files("incoming") == []


def test_garbage_does_not_kill_process(mta):
    c = connect(mta)
    c.send(bytes(range(256)) * 20 + b"\r\n")
    code, _ = c.reply()
    assert code == 500
    c.close()
    d = connect(mta)
    assert d.cmd("NOOP")[0] == 250
    d.close()


# -- SMTPUTF8, cleanup trouble, big messages, shutdown ------------------------

def test_smtputf8(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    code, text = c.cmd("MAIL FROM:<j\u00f6rg@example.org>")
    assert code == 553 and text.startswith("5.6.7")
    assert c.cmd("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8")[0] == 250
    assert c.cmd("RCPT TO:<\u00fc@b\u00fccher.example>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: utf8\r\n\r\nhi\r\n.\r\n")
    code, text = c.reply()
    assert code == 250
    q = queue_file(mta, queued_id(text))
    assert q.sender == "j\u00f6rg@example.org"
    assert q.attrs.get("smtputf8") == "1"
    assert b"with UTF8SMTP id" in q.content
    assert q.attrs["protocol"] == "ESMTP"
    c.close()


def test_cleanup_unavailable(mta_factory):
    mta = mta_factory(master_cf="{listen} inet n - n - 1 smtpd\n")
    c = connect(mta)
    c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    code, text = c.cmd("DATA")
    assert code == 451 and text.startswith("4.3.0")
    # BDAT: the chunk is still read, and the session stays in step.
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    c.send(b"BDAT 12 LAST\r\nNOOP\r\nNOOP\r\n")
    code, text = c.reply()
    assert code == 451
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.close()


def test_cleanup_rejects_content(mta_factory):
    mta = mta_factory({"header_size_limit": "2048"})
    c = connect(mta)
    start_data(c)
    c.send(b"Subject: " + b"h" * 60 + b"\r\n" + b"X-Long: " + b"y" * 4000
           + b"\r\n\r\nbody\r\n.\r\n")
    code, text = c.reply()
    assert code in (552, 554) and text.startswith("5."), text
    assert c.cmd("NOOP")[0] == 250
    assert mta.queue_files("incoming") == []
    c.close()


def test_big_message_streams_through(mta):
    line = b"x" * 998 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * 6000       # about 6 MB
    with smtplib.SMTP(mta.host, mta.port, local_hostname="c.example") as s:
        s.ehlo()
        s.mail("a@example.org", ["SIZE=%d" % len(body)])
        s.rcpt("b@example.com")
        code, msg = s.data(body)
    assert code == 250, msg
    q = queue_file(mta, queued_id(msg.decode()))
    assert q.content.endswith(b"\r\n\r\n" + line * 6000)


def test_sigterm_says_421(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    pids = mta.child_pids("smtpd")
    assert len(pids) == 1
    os.kill(pids[0], 15)
    code, text = c.reply()
    assert code == 421 and text.startswith("4.3.2")
    assert c.closed()


def test_table_failure_is_temporary(mta_factory, tmp_path):
    missing = str(tmp_path / "no-such-table")
    mta = mta_factory({"mynetworks": "127.0.0.1/32",
                       "relay_domains": "example.com, hash:" + missing})
    c = connect(mta, source="127.0.0.2")
    c.cmd("EHLO outside.example")
    c.cmd("MAIL FROM:<a@elsewhere.org>")
    assert c.cmd("RCPT TO:<x@example.com>")[0] == 250
    code, text = c.cmd("RCPT TO:<x@foreign.org>")
    assert code == 451 and text.startswith("4.3.0"), text
    # Tricks stay refused for good, whatever the tables say.
    assert c.cmd("RCPT TO:<x%foreign.org@example.com>")[0] == 554
    c.close()


def test_whole_session_then_half_close(mta):
    c = Client(mta)
    c.send(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<b@example.com>\r\nDATA\r\n"
           b"Subject: half close\r\n\r\nbody\r\n.\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    codes = [c.reply() for _ in range(6)]
    assert [x[0] for x in codes] == [220, 250, 250, 250, 354, 250]
    queue_file(mta, queued_id(codes[5][1]))
    assert c.closed()


def test_reply_flood_without_reading(mta):
    # A client that pipelines many commands and reads nothing must not
    # make smtpd buffer without bound; it still answers everyone else.
    c = Client(mta)
    c.sock.setblocking(False)
    sent = 0
    try:
        while sent < 20 * 1024 * 1024:
            sent += c.sock.send(b"NOOP\r\n" * 10000)
    except BlockingIOError:
        pass
    assert sent < 20 * 1024 * 1024     # the server stopped reading
    d = connect(mta)
    assert d.cmd("NOOP")[0] == 250
    d.close()
    c.close()


ECHO = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "helpers", "echo_daemon.py")


def test_cleanup_talks_nonsense(mta_factory):
    mta = mta_factory(master_cf="{listen} inet n - n - 1 smtpd\n"
                      "cleanup unix - - n - 1 %s\n" % ECHO)
    c = connect(mta)
    start = c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    code, text = c.cmd("DATA")
    assert code == 451 and text.startswith("4.3.0"), text
    mta.wait_log("cleanup service private/cleanup: malformed reply")
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_cleanup_timeout(mta_factory):
    mta = mta_factory({"smtpd_cleanup_timeout": "1s"},
                      master_cf="{listen} inet n - n - 1 smtpd\n"
                      "cleanup unix - - n - 1 %s sleep=30\n" % ECHO)
    c = connect(mta)
    c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    code, text = c.cmd("DATA")
    assert code == 451 and text.startswith("4.3.0"), text
    mta.wait_log("cleanup service private/cleanup: timeout")
    c.close()


def test_sighup_finishes_open_session(mta):
    c = connect(mta)
    c.cmd("EHLO c.example")
    pid = mta.child_pids("smtpd")[0]
    os.kill(pid, 1)
    # The open session carries on to the end...
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: hup\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    assert os.path.exists("/proc/%d" % pid)
    assert c.cmd("QUIT")[0] == 221
    # ... then the old process goes away.
    def gone():
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split()[2] == "Z"
        except OSError:
            return True
    wait_for(gone, what="old smtpd to exit")
    c.close()


def test_timeout_mid_data_queues_nothing(mta_factory):
    mta = mta_factory({"smtpd_timeout": "1s"})
    c = connect(mta)
    start_data(c)
    c.send(b"Subject: slow\r\n\r\nhalf a message")
    code, text = c.reply()
    assert code == 421 and text.startswith("4.4.2")
    assert c.closed()
    mta.wait_log("timeout after DATA from unknown[127.0.0.1]")
    wait_for(lambda: mta.queue_files("tmp") == [], what="tmp/ empty")
    assert mta.queue_files("incoming") == []


def test_helo_session_has_no_esmtp(mta):
    c = connect(mta)
    assert c.cmd("HELO c.example")[0] == 250
    code, text = c.cmd("MAIL FROM:<a@example.org> SIZE=10")
    assert code == 555 and text.startswith("5.5.4")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    c.cmd("RCPT TO:<b@example.com>")
    c.send(b"BDAT 4 LAST\r\nabcd")
    code, text = c.reply()
    assert code == 503
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: helo\r\n\r\n.\r\n")
    code, text = c.reply()
    q = queue_file(mta, queued_id(text))
    assert q.attrs["protocol"] == "SMTP"
    assert b" with SMTP id " in q.content
    c.close()
