"""sendarix queue flush|delete|hold|release|requeue, with and without qmgr.

With qmgr: the real master, smtpd, cleanup and qmgr, and the scripted
delivery agent of test_qmgr.py on private/smtp. Without: queue files made
by a stopped instance, changed by the command alone.
"""

import json
import os
import time

from conftest import wait_for
from test_qmgr import (FakeService, agent_by_rcpt, all_files, bounce_ok,
                       find_file, qmgr_mta, queue_empty, send, smtp_reply,
                       status_bytes)

__all__ = ["qmgr_mta"]		# the fixture, for pytest

DEFER = ("deferred", "4.4.1", "none",
         "connect to 127.0.0.1[127.0.0.1]:2526: Connection refused")


def deferring_agent(state):
    """Defer every recipient until state["up"] is true."""
    def respond(req):
        r = ("sent", "2.0.0", "mx[127.0.0.1]:25", "250 ok") \
            if state.get("up") else DEFER
        return smtp_reply([r] * len(req.all("rcpt")))
    return respond


def test_hold_release(qmgr_mta):
    state = {}
    mta = qmgr_mta(respond=deferring_agent(state))
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=20)
    r = mta.sendarix("queue", "hold", qid)
    assert "%s: placed on hold" % qid in r.stdout
    assert find_file(mta, qid)[0] == "hold"
    # A flush does not touch held mail.
    state["up"] = True
    mta.sendarix("queue", "flush")
    time.sleep(1)
    assert find_file(mta, qid)[0] == "hold"
    assert len(mta.agent.requests) == 1
    m = [x for x in json.loads(mta.sendarix("queue", "list", "--json").stdout)
         if x["queue_id"] == qid][0]
    assert m["queue"] == "hold"
    r = mta.sendarix("queue", "release", qid)
    assert "%s: released from hold" % qid in r.stdout
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert mta.agent.rcpts() == ["bob@example.net"] * 2


def test_release_all_and_hold_all(qmgr_mta):
    state = {}
    mta = qmgr_mta(respond=deferring_agent(state))
    ids = [send(mta, ["u%d@example.net" % i]) for i in range(3)]
    for qid in ids:
        mta.wait_log("%s: deferred" % qid, timeout=20)
    r = mta.sendarix("queue", "hold", "ALL")
    assert "3 messages placed on hold" in r.stdout
    assert len(all_files(mta, "hold")) == 3
    state["up"] = True
    r = mta.sendarix("queue", "release", "ALL")
    assert "3 messages released" in r.stdout
    for qid in ids:
        mta.wait_log("%s: removed" % qid, timeout=20)
    assert queue_empty(mta) and not all_files(mta, "hold")


def test_delete_one_and_all(qmgr_mta):
    mta = qmgr_mta(respond=deferring_agent({}))
    ids = [send(mta, ["u%d@example.net" % i]) for i in range(3)]
    for qid in ids:
        mta.wait_log("%s: deferred" % qid, timeout=20)
    hist = os.path.join(mta.queue_dir, "history", ids[0])
    assert os.path.exists(hist)
    r = mta.sendarix("queue", "delete", ids[0])
    assert "%s: deleted" % ids[0] in r.stdout
    assert find_file(mta, ids[0]) == (None, None)
    assert not os.path.exists(hist)
    assert "%s: removed" % ids[0] in mta.log()
    r = mta.sendarix("queue", "delete", ids[0], check=False)
    assert r.returncode == 1 and "no message" in r.stderr
    r = mta.sendarix("queue", "delete", "ALL")
    assert "2 messages deleted" in r.stdout
    assert queue_empty(mta)
    assert "Mail queue is empty" in mta.sendarix("queue", "list").stdout


def test_requeue(qmgr_mta):
    state = {}
    mta = qmgr_mta(respond=deferring_agent(state))
    qid = send(mta, ["bob@example.net"])
    mta.wait_log("%s: deferred" % qid, timeout=20)
    state["up"] = True
    r = mta.sendarix("queue", "requeue", qid)
    assert "%s: requeued" % qid in r.stdout
    mta.wait_log("%s: removed" % qid, timeout=20)
    assert len(mta.agent.requests) == 2


def test_flush_by_domain(qmgr_mta):
    state = {}
    mta = qmgr_mta(respond=deferring_agent(state))
    a = send(mta, ["x@one.example"])
    b = send(mta, ["y@two.example"])
    mta.wait_log("%s: deferred" % a, timeout=20)
    mta.wait_log("%s: deferred" % b, timeout=20)
    state["up"] = True
    r = mta.sendarix("queue", "flush", "@TWO.example")
    assert "1 message flushed" in r.stdout
    mta.wait_log("%s: removed" % b, timeout=20)
    time.sleep(0.5)
    assert find_file(mta, a)[0] == "deferred"
    mta.sendarix("queue", "flush", a)
    mta.wait_log("%s: removed" % a, timeout=20)


def test_bad_arguments(qmgr_mta):
    mta = qmgr_mta()
    for cmd in (["delete"], ["hold", "../etc"], ["flush", "x/y"],
                ["release", "NOPE!"], ["flush", "--json"]):
        r = mta.sendarix("queue", *cmd, check=False)
        assert r.returncode in (1, 2), (cmd, r.stdout, r.stderr)


def test_commands_without_qmgr(mta_factory):
    """The files change even when nothing runs; qmgr takes them later."""
    mta = mta_factory()		# smtpd and cleanup only: mail stays
    ids = [send(mta, ["u%d@example.net" % i]) for i in range(3)]
    wait_for(lambda: len(all_files(mta, "incoming")) == 3)
    mta.stop()
    r = mta.sendarix("queue", "hold", ids[0])
    assert "qmgr" not in r.stderr
    assert find_file(mta, ids[0])[0] == "hold"
    r = mta.sendarix("queue", "release", ids[0])
    assert "qmgr is not running" in r.stdout
    q, path = find_file(mta, ids[0])
    assert q == "deferred" and os.stat(path).st_mtime <= time.time() + 1
    r = mta.sendarix("queue", "requeue", ids[0])
    assert find_file(mta, ids[0])[0] == "incoming"
    mta.sendarix("queue", "delete", ids[1])
    assert find_file(mta, ids[1]) == (None, None)
    assert sorted(os.path.basename(p) for p in all_files(mta, "incoming")) \
        == sorted([ids[0], ids[2]])
