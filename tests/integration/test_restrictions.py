"""smtpd access restrictions (Postfix's SMTPD_ACCESS_README) end to end.

Restriction lists per stage, evaluated at RCPT TO (smtpd_delay_reject),
access tables with their results, reject_unauth_pipelining, a DNS block
list against tests/integration/dnsserver.py, and check_policy_service
against a policy server run here; a slow policy answer must not hold up
the other sessions of the same smtpd.
"""

import json
import os
import smtplib
import socket
import socketserver
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import wait_for  # noqa: E402
from dnsserver import DnsServer  # noqa: E402


def master_cf(opts):
    return ("{listen} inet n - n - 1 smtpd %s\n"
            "cleanup unix - - n - 1 cleanup\n" % opts)


class Client:
    """A line-oriented SMTP client from a chosen source address."""

    def __init__(self, mta, source="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.bind((source, 0))
        self.s.connect((mta.host, mta.port))
        self.buf = b""
        self.greeting = self.reply()

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(4096)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode()

    def reply(self):
        lines = [self.line()]
        while lines[-1][3:4] == "-":
            lines.append(self.line())
        return int(lines[-1][:3]), lines

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        code, lines = self.reply()
        return code, lines[-1][4:]

    def close(self):
        self.s.close()


def test_client_cidr_allowlist(mta_factory, tmp_path):
    cidr = tmp_path / "clients.cidr"
    cidr.write_text("127.0.0.2/32 OK\n"
                    "127.0.0.4/32 550 5.7.0 Go away\n")
    m = mta_factory(master_cf=master_cf(
        "-o smtpd_client_restrictions=check_client_access,cidr:%s,reject"
        % cidr))
    ok = Client(m, "127.0.0.2")
    assert ok.cmd("EHLO a.example")[0] == 250
    assert ok.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert ok.cmd("RCPT TO:<b@example.net>")[0] == 250
    ok.close()

    # Delayed: the refusal comes at RCPT TO, not at connect or MAIL.
    no = Client(m, "127.0.0.3")
    assert no.greeting[0] == 220
    assert no.cmd("EHLO b.example")[0] == 250
    assert no.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert no.cmd("RCPT TO:<b@example.net>") == (
        554, "5.7.1 <unknown[127.0.0.3]>: Client host rejected: "
        "Access denied")
    no.close()

    other = Client(m, "127.0.0.4")
    other.cmd("HELO c.example")
    other.cmd("MAIL FROM:<a@example.org>")
    assert other.cmd("RCPT TO:<b@example.net>") == (
        550, "5.7.0 <unknown[127.0.0.4]>: Client host rejected: Go away")
    other.close()
    m.wait_log("NOQUEUE: reject: RCPT from unknown[127.0.0.3]: 554 5.7.1")


def test_relay_default_unchanged(mta_factory):
    # mynetworks may relay; anyone else only to relay_domains.
    m = mta_factory(main={"mynetworks": "127.0.0.2/32",
                          "relay_domains": "example.net"})
    c = Client(m, "127.0.0.3")
    c.cmd("EHLO x.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<b@example.net>")[0] == 250
    assert c.cmd("RCPT TO:<b@elsewhere.example>") == (
        554, "5.7.1 <b@elsewhere.example>: Relay access denied")
    c.close()
    c = Client(m, "127.0.0.2")
    c.cmd("EHLO x.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<b@elsewhere.example>")[0] == 250
    c.close()


def test_sender_access_reject_and_hold(mta_factory, tmp_path):
    table = tmp_path / "senders"
    table.write_text("spammer@example.org REJECT No thanks\n"
                     "example.com HOLD\n"
                     "prepend@example.org PREPEND X-Tag: seen\n"
                     "gone@example.org DISCARD\n")
    m = mta_factory(master_cf=master_cf(
        "-o smtpd_sender_restrictions=check_sender_access,texthash:%s"
        % table))
    c = Client(m)
    c.cmd("EHLO x.example")
    c.cmd("MAIL FROM:<spammer@example.org>")
    assert c.cmd("RCPT TO:<b@example.net>") == (
        554, "5.7.1 <spammer@example.org>: Sender address rejected: "
        "No thanks")
    c.close()

    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.sendmail("boss@sub.example.com", ["b@example.net"],
                   "Subject: held\r\n\r\nhold me\r\n")
    ids = wait_for(lambda: m.queue_files("hold"), what="a held file")
    assert m.queue_files("incoming") == []
    msgs = json.loads(m.sendarix("queue", "list", "--json").stdout)
    held = [x for x in msgs if x["queue_id"] == ids[0]]
    assert held and held[0]["queue"] == "hold", msgs
    m.wait_log("%s: hold: <boss@sub.example.com>: Sender address "
               "triggers HOLD action" % ids[0])

    # DISCARD: 250, nothing kept.
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        s.sendmail("gone@example.org", ["b@example.net"],
                   "Subject: gone\r\n\r\nbye\r\n")
    m.wait_log(": discard: <gone@example.org>")
    assert m.queue_files("hold") == ids


def test_reject_unauth_pipelining(mta_factory):
    m = mta_factory(master_cf=master_cf(
        "-o smtpd_client_restrictions=reject_unauth_pipelining"))
    # MAIL sent before the HELO reply, where PIPELINING was not offered.
    c = Client(m)
    c.s.sendall(b"HELO x.example\r\nMAIL FROM:<a@example.org>\r\n"
                b"RCPT TO:<b@example.net>\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    code, lines = c.reply()
    assert code == 503 and lines[-1].endswith(
        "Client host rejected: Improper use of SMTP command pipelining")
    c.close()
    m.wait_log("improper command pipelining after HELO from "
               "unknown[127.0.0.1]")

    # After EHLO, pipelining MAIL and RCPT is proper.
    c = Client(m)
    assert c.cmd("EHLO x.example")[0] == 250
    c.s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    c.close()


RBL_ZONE = {
    "2.0.0.127.rbl.example.net": ["A 127.0.0.2"],
    "bad.example.org.rhsbl.example.com": ["A 127.0.0.2"],
    "example.org": ["MX 10 mx.example.org."],
    "mx.example.org": ["A 192.0.2.1"],
}


def test_reject_rbl_client(mta_factory):
    with DnsServer(RBL_ZONE) as dns:
        m = mta_factory(main={"dns_resolver": dns.spec},
                        master_cf=master_cf(
            "-o smtpd_client_restrictions=reject_rbl_client,rbl.example.net"
            " -o smtpd_sender_restrictions=reject_rhsbl_sender,rhsbl.example.com,"
            "reject_unknown_sender_domain"))
        c = Client(m, "127.0.0.2")
        c.cmd("EHLO x.example")
        c.cmd("MAIL FROM:<a@example.org>")
        assert c.cmd("RCPT TO:<b@example.net>") == (
            554, "5.7.1 Service unavailable; Client host [127.0.0.2] "
            "blocked using rbl.example.net")
        c.close()
        c = Client(m, "127.0.0.3")
        c.cmd("EHLO x.example")
        c.cmd("MAIL FROM:<a@example.org>")
        assert c.cmd("RCPT TO:<b@example.net>")[0] == 250
        c.cmd("RSET")
        c.cmd("MAIL FROM:<a@bad.example.org>")
        assert c.cmd("RCPT TO:<b@example.net>") == (
            554, "5.7.1 Service unavailable; Sender address [bad.example.org] "
            "blocked using rhsbl.example.com")
        c.cmd("RSET")
        c.cmd("MAIL FROM:<a@nowhere.example.org>")
        assert c.cmd("RCPT TO:<b@example.net>") == (
            450, "4.1.8 <a@nowhere.example.org>: Sender address rejected: "
            "Domain not found")
        c.close()
        assert ("3.0.0.127.rbl.example.net", "A") in dns.queries


class PolicyHandler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            attrs = {}
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line == "":
                    break
                k, _, v = line.partition("=")
                attrs[k] = v
            self.server.requests.append(attrs)
            rcpt = attrs.get("recipient", "")
            action = "DUNNO"
            if rcpt.startswith("reject@"):
                action = "REJECT not today"
            elif rcpt.startswith("defer@"):
                action = "DEFER_IF_PERMIT try later"
            elif rcpt.startswith("slow@"):
                time.sleep(2)
                self.server.slow_answered = time.monotonic()
            elif rcpt.startswith("hang@"):
                time.sleep(5)
            self.wfile.write(("action=%s\n\n" % action).encode())


class PolicyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), PolicyHandler)
        self.requests = []
        self.slow_answered = None
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_check_policy_service(mta_factory):
    pol = PolicyServer()
    try:
        m = mta_factory(main={"smtpd_policy_service_timeout": "1s"},
                        master_cf=master_cf(
            "-o smtpd_recipient_restrictions=check_policy_service,"
            "inet:127.0.0.1:%d" % pol.server_address[1]))
        c = Client(m)
        c.cmd("EHLO x.example")
        c.cmd("MAIL FROM:<a@example.org>")
        assert c.cmd("RCPT TO:<ok@example.net>")[0] == 250
        assert c.cmd("RCPT TO:<reject@example.net>") == (
            554, "5.7.1 <reject@example.net>: Recipient address rejected: "
            "not today")
        assert c.cmd("RCPT TO:<defer@example.net>") == (
            450, "4.7.1 <defer@example.net>: Recipient address rejected: "
            "try later")
        # No answer in time: smtpd_policy_service_default_action.
        assert c.cmd("RCPT TO:<hang@example.net>") == (
            451, "4.3.5 <hang@example.net>: Recipient address rejected: "
            "Server configuration problem")
        c.close()
        r = pol.requests[0]
        assert r["request"] == "smtpd_access_policy"
        assert r["protocol_state"] == "RCPT"
        assert r["sender"] == "a@example.org"
        assert r["client_address"] == "127.0.0.1"
        assert r["helo_name"] == "x.example"
    finally:
        pol.shutdown()
        pol.server_close()


def test_slow_policy_does_not_stall_others(mta_factory):
    pol = PolicyServer()
    try:
        m = mta_factory(master_cf=master_cf(
            "-o smtpd_recipient_restrictions=check_policy_service,"
            "inet:127.0.0.1:%d" % pol.server_address[1]))
        slow = Client(m)
        slow.cmd("EHLO slow.example")
        slow.cmd("MAIL FROM:<a@example.org>")
        slow.s.sendall(b"RCPT TO:<slow@example.net>\r\n")
        wait_for(lambda: any(r.get("recipient") == "slow@example.net"
                             for r in pol.requests), what="slow query")
        done = []

        def one(i):
            with smtplib.SMTP(m.host, m.port, timeout=10) as s:
                s.sendmail("a@example.org", ["fast%d@example.net" % i],
                           "Subject: %d\r\n\r\nfast\r\n" % i)
            done.append(time.monotonic())

        threads = [threading.Thread(target=one, args=(i,))
                   for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert slow.reply()[0] == 250
        got_slow = time.monotonic()
        slow.close()
        assert len(done) == 50
        assert pol.slow_answered is not None
        assert max(done) < pol.slow_answered <= got_slow
    finally:
        pol.shutdown()
        pol.server_close()


def test_unknown_restriction_is_refused_before_start(mta_factory):
    """An unknown verb or a verb without its argument: sendarix check and
    master refuse the configuration."""
    m = mta_factory(master_cf=master_cf(
        "-o smtpd_recipient_restrictions=reject_bogus_thing"
        " -o smtpd_client_restrictions=check_client_access"), start=False)
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert ('parameter smtpd_recipient_restrictions: unknown restriction '
            '"reject_bogus_thing"') in r.stderr
    assert ('parameter smtpd_client_restrictions: restriction '
            '"check_client_access" needs an argument') in r.stderr
    m.start(wait_port=False)
    assert m.proc.wait(timeout=30) == 1


def test_unusable_restriction_is_config_error(mta_factory):
    """A policy endpoint smtpd cannot use (check does not open tables or
    endpoints): logged at start, and the commands that reach it get
    451 4.3.5."""
    m = mta_factory(master_cf=master_cf(
        "-o smtpd_recipient_restrictions=check_policy_service,"
        "nosuch:endpoint"))
    c = Client(m)
    m.wait_log("smtpd_recipient_restrictions: check_policy_service "
               "nosuch:endpoint")
    c.cmd("EHLO x.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<b@example.net>") == (
        451, "4.3.5 Server configuration error")
    assert c.cmd("HELP")[0] == 214
    c.close()
