"""Notifications to the letter: bounce(8) sends each notice exactly once.

As in test_bounce.py, master runs smtpd, cleanup and bounce without
qmgr, and the test plays qmgr on private/bounce. It also plays the
delivery agent: it sets a recipient's status byte in the queue file
(lib/global/qfile.h) to the "notice owed" state (F failed, N relayed, - for
expiry) before it asks, with the byte's offset in the request, and then
checks the notice (Received header first, Action, Status,
Diagnostic-Code), the final byte (B, D, X) and that asking again sends
nothing.
"""

import email
import email.policy
import os
import re
import socket

import pytest

from conftest import wait_for
from sxqueue import QueueFile
from test_bounce import (BODY, RELAY, REPLY_550, bounce_request, notice,
                         smtp_send, start, status_blocks)
from test_cleanup import attr, read_reply


def status_offsets(path):
    """[(address, offset of its status byte)] of a queue file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    i = 0
    while i < len(data):
        t = data[i:i + 1]
        j = data.index(b":", i + 1)
        n = int(data[i + 1:j])
        if t == b"R":
            addr = data[j + 2:j + 1 + n].split(b"\t")[0].decode()
            out.append((addr, j + 1))
        i = j + 2 + n
    return out


class Msg:
    """A queued message whose status bytes the test reads and sets."""

    def __init__(self, mta, qid):
        self.mta = mta
        self.qid = qid
        self.path = os.path.join(mta.queue_dir, "incoming", qid)
        self.offsets = status_offsets(self.path)

    def offset(self, addr):
        return [o for a, o in self.offsets if a == addr][0]

    def byte(self, addr):
        with open(self.path, "rb") as f:
            f.seek(self.offset(addr))
            return f.read(1).decode()

    def set(self, addr, status):
        with open(self.path, "r+b") as f:
            f.seek(self.offset(addr))
            f.write(status.encode())


def ask(mta, m, type_, rcpts, offsets=True, action=None):
    """A request with offsets; rcpts is a list of (rcpt, dsn, relay, reply)."""
    req = (attr("queue_id", m.qid) + attr("queue_file", "incoming/" + m.qid)
           + attr("type", type_))
    for r, dsn, relay, reply in rcpts:
        req += attr("rcpt", r)
        if offsets:
            req += attr("offset", str(m.offset(r)))
        if action and r in action:
            req += attr("action", action[r])
        req += attr("dsn", dsn) + attr("relay", relay) + attr("reply", reply)
    return bounce_request(mta, m.qid, None, raw=req + b"\n")


def received_first(q, new_id):
    """The notice starts with bounce's own Received header."""
    assert re.match(rb"Received: by mx\.test\.example \(Sendarix\)\r\n"
                    rb"\tid " + new_id.encode() + rb"; [A-Z][a-z]{2}, "
                    rb"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d "
                    rb"[+-]\d{4}\r\nFrom: ", q.content), q.content[:200]


def test_failure_marked_once(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org",
                    ["bob@example.com", "carol@example.com"])
    m = Msg(mta, qid)
    m.set("bob@example.com", "F")
    one = [("bob@example.com", "5.1.1", RELAY, REPLY_550)]
    r = ask(mta, m, "failure", one)
    assert r["status"] == "0" and r["queue_id"], r
    new = r["queue_id"]
    q, msg = notice(mta, new)
    received_first(q, new)
    assert msg["Received"].startswith("by mx.test.example (Sendarix)")
    _, per_rcpt = status_blocks(msg)
    assert [b["Final-Recipient"] for b in per_rcpt] == [
        "rfc822; bob@example.com"]
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"] == "5.1.1"
    assert per_rcpt[0]["Diagnostic-Code"] == "smtp; " + REPLY_550
    # The notice is queued and the byte is final; carol is untouched.
    assert m.byte("bob@example.com") == "B"
    assert m.byte("carol@example.com") == "-"
    # A qmgr that died before it saw the reply asks again: nothing more.
    r = ask(mta, m, "failure", one)
    assert r == {"status": "0", "queue_id": ""}, r
    assert sorted(mta.queue_files()) == sorted([qid, new])
    mta.wait_log("%s: no non-delivery notification: sent before" % qid)
    assert m.byte("bob@example.com") == "B"


def test_only_owed_recipients_reported(mta_factory):
    mta = start(mta_factory)
    rcpts = ["bob@example.com", "carol@example.com", "dave@example.com"]
    qid = smtp_send(mta, "alice@example.org", rcpts)
    m = Msg(mta, qid)
    m.set("bob@example.com", "F")
    m.set("carol@example.com", "B")          # notified before
    # dave stays "-": delivery has not failed, so no failure notice.
    r = ask(mta, m, "failure", [(a, "5.1.1", RELAY, REPLY_550)
                                for a in rcpts])
    assert r["status"] == "0" and r["queue_id"], r
    _, msg = notice(mta, r["queue_id"])
    _, per_rcpt = status_blocks(msg)
    assert [b["Final-Recipient"] for b in per_rcpt] == [
        "rfc822; bob@example.com"]
    assert [m.byte(a) for a in rcpts] == ["B", "B", "-"]
    mta.wait_log("%s: to=<carol@example.com>: no notice owed (status B)"
                 % qid)


def test_nothing_owed_sends_nothing(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    m = Msg(mta, qid)
    m.set("bob@example.com", "D")
    r = ask(mta, m, "failure", [("bob@example.com", "5.1.1", RELAY,
                                 REPLY_550)])
    assert r == {"status": "0", "queue_id": ""}, r
    assert mta.queue_files() == [qid]
    assert m.byte("bob@example.com") == "D"


EXPIRED_REPLY = ("host mx.example.com[192.0.2.1] said: 450 4.2.1 Mailbox "
                 "busy, try later (in reply to RCPT TO command)")


def test_expired_gives_the_last_reason(mta_factory):
    mta = start(mta_factory, main={"maximal_queue_lifetime": "5d"})
    qid = smtp_send(mta, "alice@example.org",
                    ["bob@example.com", "carol@example.net"])
    m = Msg(mta, qid)
    rcpts = [("bob@example.com", "4.2.1", RELAY, EXPIRED_REPLY),
             ("carol@example.net", "", "none",
              "connect to mx.example.net[192.0.2.2]:25: Connection "
              "refused")]
    r = ask(mta, m, "expired", rcpts)
    assert r["status"] == "0" and r["queue_id"], r
    new = r["queue_id"]
    mta.wait_log("%s: sender non-delivery notification: %s" % (qid, new))
    q, msg = notice(mta, new)
    received_first(q, new)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    _, per_rcpt = status_blocks(msg)
    bob, carol = per_rcpt
    assert bob["Action"] == "failed"
    assert bob["Status"] == "4.2.1"
    assert bob["Remote-MTA"] == "dns; mx.example.com"
    assert bob["Diagnostic-Code"] == \
        "smtp; 450 4.2.1 Mailbox busy, try later"
    assert carol["Action"] == "failed"
    assert carol["Status"] == "4.4.7"
    assert carol["Remote-MTA"] is None
    assert carol["Diagnostic-Code"].startswith("X-Sendarix; connect to")
    text = msg.get_payload()[0].get_content().replace("\r\n", "\n") \
        .replace("\n    ", " ").replace("\n", " ")
    assert "could not be delivered to one or more recipients within" in text
    assert "(maximal_queue_lifetime, 5 days)" in text
    assert "<bob@example.com>: " + EXPIRED_REPLY in text
    assert "<carol@example.net>: connect to mx.example.net" in text
    # The whole message comes back (no RET=HDRS).
    assert msg.get_payload()[2].get_content_type() == "message/rfc822"
    assert [m.byte(a) for a, _, _, _ in rcpts] == ["X", "X"]
    r = ask(mta, m, "expired", rcpts)
    assert r == {"status": "0", "queue_id": ""}, r
    assert len(mta.queue_files()) == 2


def test_success_relayed_and_delivered(mta_factory):
    mta = start(mta_factory)
    rcpts = ["bob@example.com", "carol@example.net", "dave@example.org"]
    qid = smtp_send(mta, "alice@example.org", rcpts, mail_params=" RET=FULL",
                    rcpt_params={"bob@example.com": " NOTIFY=SUCCESS",
                                 "carol@example.net":
                                 " NOTIFY=SUCCESS,FAILURE "
                                 "ORCPT=rfc822;Carol+2Bx@example.net",
                                 "dave@example.org": " NOTIFY=FAILURE"})
    m = Msg(mta, qid)
    for a in rcpts:
        m.set(a, "N")
    ok = "250 2.0.0 Ok: queued as 4XyZ"
    r = ask(mta, m, "success",
            [("bob@example.com", "2.0.0", RELAY, ok),
             ("carol@example.net", "2.0.0", "mx.example.net[192.0.2.2]:25",
              "250 2.0.0 delivered to mailbox"),
             ("dave@example.org", "2.0.0", RELAY, ok)],
            action={"carol@example.net": "delivered"})
    assert r["status"] == "0" and r["queue_id"], r
    new = r["queue_id"]
    mta.wait_log("%s: sender delivery status notification: %s" % (qid, new))
    q, msg = notice(mta, new)
    received_first(q, new)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    # RFC 3461 4.3: no failure in it, so headers only despite RET=FULL.
    assert b"The original body." not in q.content
    assert b"Subject: original subject" in q.content
    _, per_rcpt = status_blocks(msg)
    # dave asked for FAILURE only: not in the notice.
    assert [b["Final-Recipient"] for b in per_rcpt] == [
        "rfc822; bob@example.com", "rfc822; carol@example.net"]
    bob, carol = per_rcpt
    assert bob["Action"] == "relayed"
    assert bob["Status"] == "2.0.0"
    assert bob["Remote-MTA"] == "dns; mx.example.com"
    assert bob["Diagnostic-Code"] == "smtp; " + ok
    assert carol["Action"] == "delivered"
    assert carol["Original-Recipient"] == "rfc822; Carol+x@example.net"
    text = parts[0].get_content().replace("\r\n", "\n") \
        .replace("\n    ", " ")
    assert "successfully delivered" in text
    assert ("<bob@example.com>: relayed to host mx.example.com[192.0.2.1], "
            "which said: " + ok) in text
    assert "<carol@example.net>: delivered to host mx.example.net" in text
    # Every one of them is done, dave too (he wanted no notice).
    assert [m.byte(a) for a in rcpts] == ["D", "D", "D"]
    r = ask(mta, m, "success", [("bob@example.com", "2.0.0", RELAY, ok)])
    assert r == {"status": "0", "queue_id": ""}, r
    assert len(mta.queue_files()) == 2


def test_success_needs_notify_success(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    m = Msg(mta, qid)
    m.set("bob@example.com", "N")
    r = ask(mta, m, "success", [("bob@example.com", "2.0.0", RELAY,
                                 "250 2.0.0 Ok")])
    assert r == {"status": "0", "queue_id": ""}, r
    assert mta.queue_files() == [qid]
    assert m.byte("bob@example.com") == "D"
    mta.wait_log("%s: no delivery status notification: the recipients "
                 "asked for none (NOTIFY)" % qid)


def test_delay_once(mta_factory):
    mta = start(mta_factory, main={"maximal_queue_lifetime": "1d"})
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    m = Msg(mta, qid)
    one = [("bob@example.com", "4.2.0", RELAY, "451 4.2.0 Mailbox busy")]
    r = ask(mta, m, "delay", one)
    assert r["status"] == "0" and r["queue_id"], r
    q, msg = notice(mta, r["queue_id"])
    received_first(q, r["queue_id"])
    assert status_blocks(msg)[1][0]["Action"] == "delayed"
    hist = os.path.join(mta.queue_dir, "history", qid)
    with open(hist) as f:
        assert '"status":"delay"' in f.read().replace(" ", "")
    assert m.byte("bob@example.com") == "-"
    r = ask(mta, m, "delay", one)
    assert r == {"status": "0", "queue_id": ""}, r
    mta.wait_log("%s: no delay notification: sent before" % qid)
    assert len(mta.queue_files()) == 2


def test_cleanup_down_leaves_the_notice_owed(mta_factory):
    from test_bounce import BOUNCE_MASTER_CF
    cf = BOUNCE_MASTER_CF.replace(
        "1 bounce", "1 bounce -o cleanup_service_name=nocleanup")
    mta = start(mta_factory, master_cf=cf)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    m = Msg(mta, qid)
    m.set("bob@example.com", "F")
    r = ask(mta, m, "failure", [("bob@example.com", "5.1.1", RELAY,
                                 REPLY_550)])
    assert r["status"] == "4", r
    assert m.byte("bob@example.com") == "F"


def test_double_bounce_dropped_and_marked(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "", ["alice@example.org"])
    m = Msg(mta, qid)
    m.set("alice@example.org", "F")
    r = ask(mta, m, "failure", [("alice@example.org", "5.1.1", RELAY,
                                 REPLY_550)])
    assert r == {"status": "0", "queue_id": ""}, r
    assert m.byte("alice@example.org") == "B"
    assert mta.queue_files() == [qid]


def test_without_offsets_nothing_is_marked(mta_factory):
    # An older qmgr marks the bytes itself after the reply.
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    m = Msg(mta, qid)
    m.set("bob@example.com", "F")
    r = ask(mta, m, "failure", [("bob@example.com", "5.1.1", RELAY,
                                 REPLY_550)], offsets=False)
    assert r["status"] == "0" and r["queue_id"], r
    assert m.byte("bob@example.com") == "F"


@pytest.mark.parametrize("case", ["not-a-status", "other-rcpt", "mixed",
                                  "bad-action", "bad-offset", "twice"])
def test_bad_offsets(mta_factory, case):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org",
                    ["bob@example.com", "carol@example.com"])
    m = Msg(mta, qid)
    m.set("bob@example.com", "F")
    head = (attr("queue_id", qid) + attr("queue_file", "incoming/" + qid)
            + attr("type", "failure") + attr("rcpt", "bob@example.com"))
    off = m.offset("bob@example.com")
    tail = attr("dsn", "5.1.1") + b"\n"
    raw = {
        "not-a-status": head + attr("offset", str(off + 1)) + tail,
        "other-rcpt": head + attr("offset",
                                  str(m.offset("carol@example.com"))) + tail,
        "mixed": head + attr("offset", str(off)) + attr("rcpt",
                                                         "carol@example.com")
        + tail,
        "bad-action": head + attr("offset", str(off))
        + attr("action", "teleported") + tail,
        "bad-offset": head + attr("offset", "-1") + tail,
        "twice": head + attr("offset", str(off)) + attr("offset", str(off))
        + tail,
    }[case]
    r = bounce_request(mta, qid, None, raw=raw)
    assert r["status"] == "5", r
    assert mta.queue_files() == [qid]
    assert m.byte("bob@example.com") == "F"
    assert m.byte("carol@example.com") == "-"


def test_client_gone_before_the_reply(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    m = Msg(mta, qid)
    m.set("bob@example.com", "F")
    req = (attr("queue_id", qid) + attr("queue_file", "incoming/" + qid)
           + attr("type", "failure") + attr("rcpt", "bob@example.com")
           + attr("offset", str(m.offset("bob@example.com")))
           + attr("dsn", "5.1.1") + attr("relay", RELAY)
           + attr("reply", REPLY_550) + b"\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(mta.queue_dir, "private", "bounce"))
        s.sendall(req)
    # Gone at once: the notice goes out and the byte is final all the same.
    mta.wait_log("%s: sender non-delivery notification: " % qid)
    wait_for(lambda: m.byte("bob@example.com") == "B", what="byte B")
    assert len(mta.queue_files()) == 2
    mta.wait_log("bounce: client left before the reply")
    assert "cannot write reply" not in mta.log()
    # And the process still serves.
    r = ask(mta, m, "failure", [("bob@example.com", "5.1.1", RELAY,
                                 REPLY_550)])
    assert r == {"status": "0", "queue_id": ""}, r


# -- smtp-out passes the DSN parameters on (RFC 3461 5.2) -------------------

class DsnRecorder:
    """aiosmtpd handler that keeps messages; offers DSN when asked to."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.messages = []
        self.mail = []                  # raw MAIL arguments
        self.rcpt = []                  # raw RCPT arguments
        if dsn:
            self.handle_EHLO = self._ehlo

    async def _ehlo(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        # The last line ("250 HELP") ends the reply: DSN goes before it.
        return responses[:-1] + ["250-DSN"] + responses[-1:]

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: stored"


DSN_PARAMS = ("RET=", "ENVID=", "NOTIFY=", "ORCPT=")


def dsn_controller():
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP as AioSMTP

    class DsnSMTP(AioSMTP):
        """Records MAIL/RCPT as sent; takes the DSN parameters if offered."""

        def _strip(self, arg):
            if not self.event_handler.dsn:
                return arg
            return " ".join(w for w in arg.split(" ")
                            if not w.upper().startswith(DSN_PARAMS))

        async def smtp_MAIL(self, arg):
            self.event_handler.mail.append(arg)
            return await super().smtp_MAIL(self._strip(arg))

        async def smtp_RCPT(self, arg):
            self.event_handler.rcpt.append(arg)
            return await super().smtp_RCPT(self._strip(arg))

    class DsnController(Controller):
        def factory(self):
            return DsnSMTP(self.handler, decode_data=False,
                           enable_SMTPUTF8=True)

    return DsnController


def qmgr_extra(mta, qid):
    """The DSN attributes qmgr takes from the queue file for smtp-out."""
    from test_dsn_ext import queued
    q = queued(mta, qid)
    extra = []
    for _, params in q.rcpts:
        extra += [("orcpt", params.get("orcpt", "")),
                  ("notify", params.get("notify", ""))]
    for k in ("ret", "envid"):
        if k in q.attrs:
            extra.append((k, q.attrs[k]))
    return extra


@pytest.mark.parametrize("offers_dsn", [True, False])
def test_smtp_out_passes_dsn_on(mta_factory, offers_dsn):
    from conftest import free_port
    from test_smtp_out import deliver, smtp_out_mta
    mta = smtp_out_mta(mta_factory,
                       {"smtp_connection_cache_time_limit": "0"})
    with socket.create_connection((mta.host, mta.port), timeout=10) as s:
        f = s.makefile("rb")

        def cmd(line):
            if line is not None:
                s.sendall(line.encode() + b"\r\n")
            while True:
                ln = f.readline().decode()
                if ln[3:4] != "-":
                    return int(ln[:3])
        assert cmd(None) == 220
        assert cmd("EHLO client.example") == 250
        assert cmd("MAIL FROM:<alice@example.org> RET=HDRS "
                   "ENVID=env+2B1+20x") == 250
        assert cmd("RCPT TO:<bob@example.net> NOTIFY=failure,success "
                   "ORCPT=rfc822;Bob+2Btag@Example.NET") == 250
        assert cmd("RCPT TO:<carol@example.net>") == 250
        assert cmd("DATA") == 354
        s.sendall(b"Subject: dsn on\r\n\r\nbody\r\n.\r\n")
        assert cmd(None) == 250
        cmd("QUIT")
    qid = wait_for(lambda: mta.queue_files(), what="queued")[0]

    rec = DsnRecorder(offers_dsn)
    ctl = dsn_controller()(rec, hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        res = deliver(mta, qid, ["bob@example.net", "carol@example.net"],
                      "[127.0.0.1]:%d" % ctl.port, sender="alice@example.org",
                      extra=qmgr_extra(mta, qid))
    finally:
        ctl.stop()
    assert [r["status"] for r in res] == ["sent", "sent"], res
    assert rec.messages == [("alice@example.org",
                             ["bob@example.net", "carol@example.net"])]
    mail, rcpt = rec.mail, rec.rcpt
    if offers_dsn:
        # As stored: RET as given, ENVID xtext again, ORCPT as it came in.
        assert mail == ["FROM:<alice@example.org> SIZE=%d RET=HDRS "
                        "ENVID=env+2B1+20x" % QueueFile(os.path.join(
                            mta.queue_dir, "incoming", qid)).size]
        assert rcpt == ["TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE "
                        "ORCPT=rfc822;Bob+2Btag@Example.NET",
                        "TO:<carol@example.net>"]
    else:
        assert not any(p in a.upper() for a in mail + rcpt
                       for p in DSN_PARAMS), (mail, rcpt)
        assert rcpt == ["TO:<bob@example.net>", "TO:<carol@example.net>"]


# -- end to end: qmgr, smtp-out and bounce together ---------------------------

@pytest.mark.skipif(
    not all(os.path.exists(os.path.join(os.environ.get(
        "SENDARIX_BUILD", ""), "bin", d)) for d in ("qmgr", "smtp-out")),
    reason="qmgr and smtp-out not built")
def test_end_to_end_relayed_notice_once(mta_factory, tmp_path):
    from test_bounce import FULL_MASTER_CF, Sandbox
    sb = Sandbox(tmp_path)
    try:
        mta = mta_factory(main={"relayhost": "[127.0.0.1]:%d" % sb.port,
                                "queue_run_delay": "2s"},
                          master_cf=FULL_MASTER_CF)
        qid = smtp_send(mta, "alice@example.org",
                        ["bob@example.com", "carol@example.com"],
                        rcpt_params={"bob@example.com":
                                     " NOTIFY=SUCCESS,FAILURE"})

        def notices():
            return [data for env, data in sb.messages()
                    if env["from"] == "" and env["to"] == [
                        "alice@example.org"]]
        data = wait_for(lambda: notices() and notices()[0], timeout=60,
                        what="the success notice at the sandbox")
        mta.wait_log("%s: sender delivery status notification: " % qid,
                     timeout=30)
        mta.wait_log("%s: removed" % qid, timeout=30)
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["Subject"] == "Successful Mail Delivery Report"
        _, per_rcpt = status_blocks(msg)
        # The sandbox does not offer DSN: relayed, and only bob asked.
        assert [(b["Final-Recipient"], b["Action"]) for b in per_rcpt] == [
            ("rfc822; bob@example.com", "relayed")]
        assert per_rcpt[0]["Status"].startswith("2.")
        assert data.startswith(b"Received: by mx.test.example (Sendarix)"
                               b"\r\n\tid ")
        assert len(notices()) == 1
        assert mta.queue_files() == [] and mta.queue_files("active") == []
    finally:
        sb.stop()
