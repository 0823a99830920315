"""bounce(8): delivery status notifications (RFC 3464) through cleanup.

master runs smtpd, cleanup and bounce (no qmgr: files stay in
incoming/). A message is queued through smtpd; the test then plays qmgr
and sends a bounce request over private/bounce (docs/ipc.md "bounce"),
and parses the notification that lands in incoming/ with Python's email
package.
"""

import email
import email.policy
import email.utils
import os
import re
import socket

import pytest

from conftest import wait_for
from sxqueue import QueueFile
from test_cleanup import attr, read_reply

BOUNCE_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
bounce  unix - - n - 1 bounce
"""

BODY = (b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\n"
        b"Subject: original subject\r\nMessage-ID: <orig@example.org>\r\n"
        b"\r\nThe original body.\r\n")


def start(mta_factory, main=None, master_cf=BOUNCE_MASTER_CF):
    m = mta_factory(main=main, master_cf=master_cf)
    path = os.path.join(m.queue_dir, "private", "bounce")
    wait_for(lambda: os.path.exists(path), what="private/bounce")
    return m


def smtp_send(mta, sender, rcpts, body=BODY, mail_params="", rcpt_params=None):
    """One transaction with a raw client; returns the queue ID."""
    s = socket.create_connection((mta.host, mta.port), timeout=10)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline().decode()
            if line[3:4] != "-":
                return int(line[:3]), line[4:].strip()

    def cmd(line):
        s.sendall(line.encode() + b"\r\n")
        return reply()

    assert reply()[0] == 220
    assert cmd("EHLO client.example")[0] == 250
    assert cmd("MAIL FROM:<%s>%s" % (sender, mail_params))[0] == 250
    for r in rcpts:
        extra = (rcpt_params or {}).get(r, "")
        assert cmd("RCPT TO:<%s>%s" % (r, extra))[0] == 250, r
    assert cmd("DATA")[0] == 354
    s.sendall(body + b".\r\n")
    code, text = reply()
    assert code == 250, text
    cmd("QUIT")
    s.close()
    return text.rsplit(" ", 1)[1]


def bounce_request(mta, qid, rcpts, type_="failure", queue_file=None,
                   raw=None):
    """Send one request; rcpts is a list of (rcpt, dsn, relay, reply)."""
    req = raw
    if req is None:
        req = (attr("queue_id", qid)
               + attr("queue_file", queue_file or "incoming/" + qid)
               + attr("type", type_))
        for r, dsn, relay, reply in rcpts:
            req += (attr("rcpt", r) + attr("dsn", dsn) + attr("relay", relay)
                    + attr("reply", reply))
        req += b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(mta.queue_dir, "private", "bounce"))
        s.sendall(req)
        return read_reply(s, timeout=30)


def notice(mta, new_id):
    """The notification's queue file and its parsed content."""
    q = QueueFile(os.path.join(mta.queue_dir, "incoming", new_id))
    msg = email.message_from_bytes(q.content, policy=email.policy.default)
    return q, msg


def status_blocks(msg):
    """The message/delivery-status part: (per-message, [per-recipient])."""
    parts = msg.get_payload()
    ds = parts[1]
    assert ds.get_content_type() == "message/delivery-status"
    blocks = ds.get_payload()
    return blocks[0], blocks[1:]


REPLY_550 = "550 5.1.1 <bob@example.com>: Recipient address rejected"
RELAY = "mx.example.com[192.0.2.1]:25"


def test_failure_notice(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org",
                    ["bob@example.com", "carol@example.com"])
    r = bounce_request(mta, qid, [("bob@example.com", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r["status"] == "0" and r["queue_id"], r
    new = r["queue_id"]
    assert new != qid and new in mta.queue_files()
    mta.wait_log("%s: sender non-delivery notification: %s" % (qid, new))

    q, msg = notice(mta, new)
    assert q.sender == ""
    assert [a for _, a in q.rcpts] == ["alice@example.org"]
    assert msg["From"] == ("Mail Delivery System "
                           "<MAILER-DAEMON@mx.test.example>")
    assert b"\r\nTo: <alice@example.org>\r\n" in q.content
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Date"] and msg["Message-ID"]
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert b"\r\n" in q.content and b"\n" not in q.content.replace(b"\r\n", b"")

    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "message/rfc822"]
    text = parts[0].get_content().replace("\r\n", "\n").replace(
        "\n    ", " ")                                   # unwrap
    assert ("<bob@example.com>: host mx.example.com[192.0.2.1] said: "
            + REPLY_550) in text
    assert "carol" not in text

    per_msg, per_rcpt = status_blocks(msg)
    assert per_msg["Reporting-MTA"] == "dns; mx.test.example"
    assert per_msg["X-Sendarix-Queue-ID"] == qid
    assert per_msg["Arrival-Date"]
    assert per_msg["Original-Envelope-Id"] is None
    assert len(per_rcpt) == 1
    b = per_rcpt[0]
    assert b["Final-Recipient"] == "rfc822; bob@example.com"
    assert b["Action"] == "failed"
    assert b["Status"] == "5.1.1"
    assert b["Remote-MTA"] == "dns; mx.example.com"
    assert b["Diagnostic-Code"] == "smtp; " + REPLY_550
    assert b["Last-Attempt-Date"]
    assert b["Original-Recipient"] is None

    orig = parts[2].get_payload()[0]
    assert orig["Subject"] == "original subject"
    assert orig["Message-ID"] == "<orig@example.org>"
    assert orig["Received"].startswith("from client.example")
    assert orig.get_content() == "The original body.\r\n" or \
        orig.get_content().rstrip() == "The original body."


def test_two_recipients_and_own_reason(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org",
                    ["bob@example.com", "carol@example.net"])
    r = bounce_request(mta, qid, [
        ("bob@example.com", "5.1.1", RELAY, REPLY_550),
        ("carol@example.net", "5.4.4", "none",
         "Host or domain name not found"),
    ], type_="expired")
    assert r["status"] == "0" and r["queue_id"]
    _, msg = notice(mta, r["queue_id"])
    _, per_rcpt = status_blocks(msg)
    assert [b["Final-Recipient"] for b in per_rcpt] == [
        "rfc822; bob@example.com", "rfc822; carol@example.net"]
    assert per_rcpt[1]["Action"] == "failed"
    assert per_rcpt[1]["Status"] == "5.4.4"
    assert per_rcpt[1]["Remote-MTA"] is None
    assert per_rcpt[1]["Diagnostic-Code"] == \
        "X-Sendarix; Host or domain name not found"


def test_ret_hdrs_envid_orcpt(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"],
                    mail_params=" RET=HDRS ENVID=env+2B42",
                    rcpt_params={"bob@example.com":
                                 " NOTIFY=FAILURE ORCPT=rfc822;Bob+2B1@x.org"})
    r = bounce_request(mta, qid, [("bob@example.com", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r["status"] == "0" and r["queue_id"]
    q, msg = notice(mta, r["queue_id"])
    parts = msg.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert b"Subject: original subject" in q.content
    assert b"The original body." not in q.content
    per_msg, per_rcpt = status_blocks(msg)
    assert per_msg["Original-Envelope-Id"] == "env+42"
    assert per_rcpt[0]["Original-Recipient"] == "rfc822; Bob+1@x.org"


def test_over_size_limit_returns_headers(mta_factory):
    mta = start(mta_factory, main={"bounce_size_limit": "1000"})
    body = BODY + b"x" * 70 + b"\r\n"
    body = body + b"".join(b"line %04d %s\r\n" % (i, b"y" * 60)
                           for i in range(100))
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"], body=body)
    r = bounce_request(mta, qid, [("bob@example.com", "5.1.1", RELAY,
                                   REPLY_550)])
    q, msg = notice(mta, r["queue_id"])
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert b"line 0050" not in q.content
    assert b"Subject: original subject" in q.content


def test_full_message_under_limit(mta_factory):
    mta = start(mta_factory)
    body = BODY + b"".join(b"line %04d\r\n" % i for i in range(500))
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"], body=body,
                    mail_params=" RET=FULL")
    r = bounce_request(mta, qid, [("bob@example.com", "5.1.1", RELAY,
                                   REPLY_550)])
    q, msg = notice(mta, r["queue_id"])
    assert msg.get_payload()[2].get_content_type() == "message/rfc822"
    assert b"line 0499\r\n" in q.content


@pytest.mark.parametrize("notify,type_,sent", [
    (" NOTIFY=NEVER", "failure", False),
    (" NOTIFY=NEVER", "delay", False),
    (" NOTIFY=SUCCESS", "failure", False),
    (" NOTIFY=SUCCESS,DELAY", "expired", False),
    (" NOTIFY=DELAY", "delay", True),
    (" NOTIFY=FAILURE", "delay", False),
    (" NOTIFY=FAILURE", "expired", True),
    ("", "delay", True),
])
def test_notify(mta_factory, notify, type_, sent):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"],
                    rcpt_params={"bob@example.com": notify})
    r = bounce_request(mta, qid, [("bob@example.com", "4.2.0" if type_ ==
                                   "delay" else "5.1.1", RELAY, REPLY_550)],
                       type_=type_)
    assert r["status"] == "0", r
    if sent:
        assert r["queue_id"] and len(mta.queue_files()) == 2
    else:
        assert r["queue_id"] == "" and mta.queue_files() == [qid]
        mta.wait_log("%s: no " % qid)


def test_notify_keeps_only_those_who_asked(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org",
                    ["bob@example.com", "carol@example.com"],
                    rcpt_params={"bob@example.com": " NOTIFY=NEVER"})
    r = bounce_request(mta, qid, [
        ("bob@example.com", "5.1.1", RELAY, REPLY_550),
        ("carol@example.com", "5.2.2", RELAY, "552 5.2.2 Mailbox full"),
    ])
    _, msg = notice(mta, r["queue_id"])
    _, per_rcpt = status_blocks(msg)
    assert [b["Final-Recipient"] for b in per_rcpt] == [
        "rfc822; carol@example.com"]
    assert per_rcpt[0]["Status"] == "5.2.2"


def test_delay_notice(mta_factory):
    mta = start(mta_factory, main={"maximal_queue_lifetime": "1d"})
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    r = bounce_request(mta, qid, [("bob@example.com", "4.2.0", RELAY,
                                   "451 4.2.0 Mailbox busy")], type_="delay")
    assert r["status"] == "0" and r["queue_id"]
    mta.wait_log("%s: sender delay notification: %s" % (qid, r["queue_id"]))
    q, msg = notice(mta, r["queue_id"])
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    _, per_rcpt = status_blocks(msg)
    assert per_rcpt[0]["Action"] == "delayed"
    assert per_rcpt[0]["Status"] == "4.2.0"
    # Arrival + maximal_queue_lifetime (1d here).
    arrival = email.utils.parsedate_to_datetime(
        status_blocks(msg)[0]["Arrival-Date"])
    until = email.utils.parsedate_to_datetime(per_rcpt[0]["Will-Retry-Until"])
    assert (until - arrival).total_seconds() == 86400
    # Delay notices carry the headers only.
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert "THIS IS A WARNING ONLY" in msg.get_payload()[0].get_content()


def test_double_bounce_dropped(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "", ["alice@example.org"])
    r = bounce_request(mta, qid, [("alice@example.org", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r == {"status": "0", "queue_id": ""}
    mta.wait_log("%s: undeliverable message from <>: double bounce, "
                 "discarded" % qid)
    assert mta.queue_files() == [qid]


def test_double_bounce_to_recipient(mta_factory):
    mta = start(mta_factory,
                main={"double_bounce_recipient": "postmaster@example.org"})
    qid = smtp_send(mta, "", ["alice@example.org"])
    r = bounce_request(mta, qid, [("alice@example.org", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r["status"] == "0" and r["queue_id"]
    mta.wait_log("%s: postmaster non-delivery notification: %s"
                 % (qid, r["queue_id"]))
    q, msg = notice(mta, r["queue_id"])
    assert q.sender == ""
    assert [a for _, a in q.rcpts] == ["postmaster@example.org"]
    # A delay about a bounce is never sent.
    r = bounce_request(mta, qid, [("alice@example.org", "4.2.0", RELAY,
                                   "451 4.2.0 busy")], type_="delay")
    assert r == {"status": "0", "queue_id": ""}
    assert len(mta.queue_files()) == 2


def test_cleanup_unavailable(mta_factory):
    cf = BOUNCE_MASTER_CF.replace(
        "1 bounce", "1 bounce -o cleanup_service_name=nocleanup")
    mta = start(mta_factory, master_cf=cf)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    r = bounce_request(mta, qid, [("bob@example.com", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r["status"] == "4" and r["reason"].startswith("4.")
    assert mta.queue_files() == [qid]
    mta.wait_log("%s: sender non-delivery notification to "
                 "<alice@example.org> not sent" % qid)


@pytest.mark.parametrize("case", [
    "no-file", "traversal", "other-id", "bad-type", "no-rcpt", "dsn-first",
    "garbage", "bad-queue",
])
def test_bad_requests(mta_factory, case):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    one = [("bob@example.com", "5.1.1", RELAY, REPLY_550)]
    if case == "no-file":
        r = bounce_request(mta, qid, one, queue_file="active/" + qid)
    elif case == "traversal":
        r = bounce_request(mta, qid, one, queue_file="incoming/../incoming/"
                           + qid)
    elif case == "other-id":
        r = bounce_request(mta, qid, one, queue_file="incoming/ABCDEF")
    elif case == "bad-queue":
        r = bounce_request(mta, qid, one, queue_file="tmp/" + qid)
    elif case == "bad-type":
        r = bounce_request(mta, qid, one, type_="bogus")
    elif case == "no-rcpt":
        r = bounce_request(mta, qid, [])
    elif case == "dsn-first":
        r = bounce_request(mta, qid, None, raw=(
            attr("queue_id", qid) + attr("queue_file", "incoming/" + qid)
            + attr("type", "failure") + attr("dsn", "5.1.1")
            + attr("rcpt", "bob@example.com") + b"\n"))
    else:
        r = bounce_request(mta, qid, None, raw=b"queue_id=999999:x\n\n")
    assert r["status"] == "5", r
    assert mta.queue_files() == [qid]
    # The process is still there and works.
    r = bounce_request(mta, qid, one)
    assert r["status"] == "0" and r["queue_id"]


def test_not_a_recipient_still_reported(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    r = bounce_request(mta, qid, [("zed@example.com", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r["status"] == "0" and r["queue_id"]
    mta.wait_log("not a recipient of the message")


def test_hostile_values_stay_on_one_line(mta_factory):
    mta = start(mta_factory)
    qid = smtp_send(mta, "alice@example.org", ["bob@example.com"])
    r = bounce_request(mta, qid, [(
        "bob@example.com", "5.1.1\r\nX-Injected: 1", RELAY,
        "550 5.1.1 no\r\nX-Injected: yes\r\n\r\nbody")])
    q, msg = notice(mta, r["queue_id"])
    assert not re.search(rb"\r\nX-Injected", q.content)
    _, per_rcpt = status_blocks(msg)
    assert per_rcpt[0]["Status"] == "5.0.0"
    assert "X-Injected: yes" in per_rcpt[0]["Diagnostic-Code"]


# -- end to end: qmgr, smtp-out and the sandbox --------------------------------

FULL_MASTER_CF = BOUNCE_MASTER_CF + """\
qmgr    unix - - n - 1 qmgr
smtp    unix - - n - 1 smtp-out
"""


class Sandbox:
    """`sendarix sandbox` with its built-in rules (bounce... gets 550)."""

    def __init__(self, tmp_path):
        import subprocess
        from conftest import SENDARIX, free_port
        d = tmp_path / "sandbox"
        d.mkdir()
        (d / "conf").mkdir()
        (d / "conf" / "main.cf").write_text("")
        self.port = free_port()
        self.maildir = str(d / "maildir")
        self.log_fp = open(str(d / "log"), "wb")
        pid_file = str(d / "pid")
        self.proc = subprocess.Popen(
            [SENDARIX, "-c", str(d / "conf"), "sandbox",
             "-l", "127.0.0.1:%d" % self.port, "-d", self.maildir,
             "-p", pid_file, "-n", "sink.test"],
            stdin=subprocess.DEVNULL, stdout=self.log_fp, stderr=self.log_fp)
        wait_for(lambda: os.path.exists(pid_file)
                 or self.proc.poll() is not None, what="sandbox")
        assert self.proc.poll() is None

    def messages(self):
        import json
        d = os.path.join(self.maildir, "new")
        out = []
        for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, n), "rb") as f:
                data = f.read()
            with open(os.path.join(self.maildir, "env", n + ".env")) as f:
                out.append((json.load(f), data))
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log_fp.close()


@pytest.fixture
def sandbox(tmp_path):
    s = Sandbox(tmp_path)
    yield s
    s.stop()


@pytest.mark.skipif(
    not all(os.path.exists(os.path.join(os.environ.get(
        "SENDARIX_BUILD", ""), "bin", d)) for d in ("qmgr", "smtp-out")),
    reason="qmgr and smtp-out not built")
def test_end_to_end_refused_recipient(mta_factory, sandbox):
    mta = mta_factory(main={"relayhost": "[127.0.0.1]:%d" % sandbox.port,
                            "minimal_backoff_time": "2s",
                            "maximal_backoff_time": "4s",
                            "queue_run_delay": "2s"},
                      master_cf=FULL_MASTER_CF)
    qid = smtp_send(mta, "alice@example.org",
                    ["ok@example.com", "bounce@example.com"])

    def dsn():
        for env, data in sandbox.messages():
            if env["from"] == "" and env["to"] == ["alice@example.org"]:
                return data
        return None
    data = wait_for(dsn, timeout=60, what="the DSN at the sandbox")
    mta.wait_log("%s: sender non-delivery notification: " % qid)
    delivered = [env for env, _ in sandbox.messages()
                 if env["from"] == "alice@example.org"]
    assert [e["to"] for e in delivered] == [["ok@example.com"]]

    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    per_msg, per_rcpt = status_blocks(msg)
    assert per_msg["X-Sendarix-Queue-ID"] == qid
    assert [b["Final-Recipient"] for b in per_rcpt] == [
        "rfc822; bounce@example.com"]
    b = per_rcpt[0]
    assert b["Action"] == "failed"
    assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", b["Status"])
    assert "550" in b["Diagnostic-Code"]
    orig = msg.get_payload()[2].get_payload()[0]
    assert orig["Subject"] == "original subject"


def test_utf8_sender_and_8bit_original(mta_factory):
    mta = start(mta_factory)
    body = (b"Subject: caf\xc3\xa9\r\nFrom: j\xc3\xbcrgen@example.org\r\n"
            b"\r\nGr\xc3\xbc\xc3\x9fe\r\n")
    sender = "j\u00fcrgen@example.org"
    qid = smtp_send(mta, sender, ["bob@example.com"], body=body,
                    mail_params=" SMTPUTF8 BODY=8BITMIME")
    r = bounce_request(mta, qid, [("bob@example.com", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r["status"] == "0" and r["queue_id"], r
    q = QueueFile(os.path.join(mta.queue_dir, "incoming", r["queue_id"]))
    assert [a for _, a in q.rcpts] == [sender]
    assert q.attrs.get("smtputf8") == "1"
    assert q.attrs.get("body") == "8BITMIME"
    assert b"Content-Transfer-Encoding: 8bit\r\n" in q.content
    assert "Gr\u00fc\u00dfe".encode() in q.content


def test_failed_double_bounce_is_not_bounced_again(mta_factory):
    # A double bounce that cannot reach the postmaster ends there: no loop.
    mta = start(mta_factory,
                main={"double_bounce_recipient": "postmaster@example.org"})
    qid = smtp_send(mta, "", ["Postmaster@example.org"])
    r = bounce_request(mta, qid, [("Postmaster@example.org", "5.1.1", RELAY,
                                   REPLY_550)])
    assert r == {"status": "0", "queue_id": ""}
    mta.wait_log("%s: undeliverable message from <>: double bounce, "
                 "discarded" % qid)
    assert mta.queue_files() == [qid]
