"""The whole chain: smtpd -> cleanup -> qmgr -> smtp-out -> a real receiver.

The receiver is aiosmtpd (python3-aiosmtpd) in a thread of the test.
"""

import os
import re
import signal
import smtplib
import threading
import time

import pytest

from conftest import BIN, FULL_MASTER_CF, wait_for
from receivers import aiosmtpd_receiver

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(os.path.join(BIN, d))
            for d in ("qmgr", "smtp-out", "bounce")),
    reason="delivery daemons not built")


@pytest.fixture
def receiver():
    ctl, rec = aiosmtpd_receiver()
    yield ctl, rec
    ctl.stop()


def chain(mta_factory, receiver, **extra):
    ctl, rec = receiver
    main = {"relayhost": "[127.0.0.1]:%d" % ctl.port,
            "minimal_backoff_time": "2s", "maximal_backoff_time": "4s",
            "queue_run_delay": "2s"}
    main.update(extra)
    return mta_factory(main=main, master_cf=FULL_MASTER_CF), rec


def test_body_arrives_byte_identical_with_received_per_hop(mta_factory, receiver):
    mta, rec = chain(mta_factory, receiver)
    body = (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: chain\r\n"
            b"Message-ID: <chain@example.org>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
            b"\r\n.dot line\r\n\r\nbinary-ish \xc3\xa9 8bit\r\nend\r\n")
    with smtplib.SMTP(mta.host, mta.port) as s:
        s.sendmail("a@example.org", ["b@example.com"], body,
                   mail_options=["BODY=8BITMIME"])
    wait_for(lambda: rec.messages, timeout=30, what="delivery")
    mail_from, rcpts, content = rec.messages[0]
    assert mail_from == "a@example.org" and rcpts == ["b@example.com"]
    # Our hop's Received header, then aiosmtpd's own hop is not added to
    # original_content; the rest is the message exactly as sent.
    head, _, rest = content.partition(b"\r\n\tfor <b@example.com>; ")
    assert head.startswith(b"Received: from ")
    assert b"by mx.test.example (Sendarix) with ESMTP id" in head
    _, _, stored = rest.partition(b"\r\n")
    assert stored == body
    mta.wait_log("status=sent")
    wait_for(lambda: "removed" in mta.log(), what="removed log line")
    wait_for(lambda: not any(mta.queue_files(q) for q in
                             ("incoming", "active", "deferred")),
             what="the queue to empty")


def _kill_during_run(mta_factory, receiver, victim):
    mta, rec = chain(mta_factory, receiver)
    n = 1000
    accepted = []
    lock = threading.Lock()

    def sender(k, count):
        with smtplib.SMTP(mta.host, mta.port) as s:
            for i in range(count):
                seq = k * count + i
                s.sendmail("s@example.org", ["r@example.com"],
                           b"Subject: m\r\nX-Seq: %d\r\n\r\nbody %d\r\n" % (seq, seq))
                with lock:
                    accepted.append(seq)

    threads = [threading.Thread(target=sender, args=(k, n // 10)) for k in range(10)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    # Kill the victim once deliveries are flowing.
    wait_for(lambda: len(rec.messages) >= 100, timeout=60, what="deliveries to start")
    pids = mta.child_pids(victim)
    assert pids
    for p in pids:
        os.kill(p, signal.SIGKILL)
    for t in threads:
        t.join()
    assert len(accepted) == n
    wait_for(lambda: mta.child_pids(victim) and mta.child_pids(victim) != pids,
             what="master to restart " + victim)
    mta.sendarix("queue", "flush")

    def seqs():
        out = []
        for _, _, c in list(rec.messages):
            m = re.search(rb"X-Seq: (\d+)", c)
            out.append(int(m.group(1)))
        return out

    wait_for(lambda: set(seqs()) >= set(accepted), timeout=120,
             what="every accepted message to arrive")
    elapsed = time.monotonic() - t0
    got = seqs()
    dups = len(got) - len(set(got))
    # A figure for the record, not a target: the run includes the kill
    # and the restart.
    print("\n%s killed: %d accepted, %d delivered, %d duplicates, "
          "%.0f messages/s end to end" % (victim, n, len(got), dups,
                                          n / elapsed))
    # Only deliveries in flight at the kill may be repeated.
    assert dups <= 100


def test_kill_qmgr_during_1000_messages(mta_factory, receiver):
    _kill_during_run(mta_factory, receiver, "qmgr")


def test_kill_smtp_out_during_1000_messages(mta_factory, receiver):
    _kill_during_run(mta_factory, receiver, "smtp-out")


def test_expired_message_bounces_with_expiry_dsn(mta_factory, receiver):
    """A recipient whose server never answers is returned after
    maximal_queue_lifetime; the notification reaches the sender."""
    import email
    from conftest import free_port

    ctl, rec = receiver
    dead = free_port()          # nothing listens here
    mta = mta_factory(main={
        "relayhost": "[127.0.0.1]:%d" % dead,
        # The sender's domain is reachable: its notification arrives.
        "transport_maps": "inline:{example.org=smtp:[127.0.0.1]:%d}" % ctl.port,
        "maximal_queue_lifetime": "3s",
        "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
        "queue_run_delay": "1s"}, master_cf=FULL_MASTER_CF)
    with smtplib.SMTP(mta.host, mta.port) as s:
        s.sendmail("sender@example.org", ["gone@example.com"],
                   b"Subject: will expire\r\n\r\nbody\r\n")
    mta.wait_log("Connection refused")
    wait_for(lambda: rec.messages, timeout=60, what="the expiry notification")
    mail_from, rcpts, content = rec.messages[0]
    assert mail_from in ("", "<>") and rcpts == ["sender@example.org"]
    msg = email.message_from_bytes(content)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    status = [p for p in msg.walk()
              if p.get_content_type() == "message/delivery-status"][0]
    fields = str(status.get_payload()[1])
    assert "Final-Recipient: rfc822; gone@example.com" in fields
    assert "Action: failed" in fields
    assert re.search(r"Status: [45]\.\d+\.\d+", fields)
    mta.wait_log("status=expired")
    wait_for(lambda: not any(mta.queue_files(q) for q in
                             ("incoming", "active", "deferred")),
             timeout=30, what="the queue to empty")
