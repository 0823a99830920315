"""The SMTP DSN extension (RFC 3461): smtpd parses it, cleanup stores it.

MAIL FROM takes RET= and ENVID=, RCPT TO takes NOTIFY= and ORCPT=; the
values reach the queue file as the A records "ret" and "envid" and as the
TAB-separated parameters "notify=" and "orcpt=" of each R record
(lib/global/qfile.h), which these tests read with their own parser.
"""

import os
import smtplib
import socket

import pytest

from conftest import wait_for
from sxqueue import records
from test_cleanup import (CLEANUP_ONLY, attr, content, read_reply,
                          start_cleanup)


class Q:
    """A queue file with the recipients' parameters."""

    def __init__(self, path):
        with open(path, "rb") as f:
            recs = records(f.read())
        self.sender = [v.decode() for t, v in recs if t == "S"][0]
        self.attrs = dict(v.decode().split("=", 1)
                          for t, v in recs if t == "A")
        self.rcpts = []
        for t, v in recs:
            if t != "R":
                continue
            fields = v[1:].decode().split("\t")
            self.rcpts.append((fields[0],
                               dict(f.split("=", 1) for f in fields[1:])))


def queued(mta, qid):
    return Q(os.path.join(mta.queue_dir, "incoming", qid))


class Raw:
    """A raw SMTP client with one-line commands."""

    def __init__(self, mta):
        self.s = socket.create_connection((mta.host, mta.port), timeout=10)
        self.f = self.s.makefile("rb")
        assert self.reply()[0] == 220

    def reply(self):
        lines = []
        while True:
            line = self.f.readline().decode().rstrip("\r\n")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.s.close()


def test_dsn_advertised(mta):
    with smtplib.SMTP(mta.host, mta.port) as s:
        code, text = s.ehlo("c.example")
        assert code == 250
        assert "DSN" in text.decode().split("\n")
        assert s.has_extn("dsn")


def test_params_stored_in_queue_file(mta):
    with smtplib.SMTP(mta.host, mta.port) as s:
        s.ehlo("c.example")
        s.mail("alice@example.org", ["RET=HDRS", "ENVID=QQ+2B314+3D"])
        assert s.rcpt("bob@example.com",
                      ["NOTIFY=failure,Delay",
                       "ORCPT=rfc822;Bob+2BX@Example.COM"])[0] == 250
        assert s.rcpt("carol@example.com")[0] == 250
        assert s.rcpt("dave@example.com", ["NOTIFY=NEVER"])[0] == 250
        assert s.rcpt("erin@example.com",
                      ["ORCPT=rfc822;erin@example.com"])[0] == 250
        code, text = s.data(b"Subject: dsn\r\n\r\nbody\r\n")
        assert code == 250
    qid = text.decode().rsplit(" ", 1)[1]
    q = queued(mta, qid)
    assert q.sender == "alice@example.org"
    assert q.attrs["ret"] == "HDRS"
    assert q.attrs["envid"] == "QQ+314="          # decoded
    assert q.rcpts == [
        # ORCPT stays xtext (canonical), ready to be sent on.
        ("bob@example.com", {"notify": "FAILURE,DELAY",
                             "orcpt": "rfc822;Bob+2BX@Example.COM"}),
        ("carol@example.com", {}),
        ("dave@example.com", {"notify": "NEVER"}),
        ("erin@example.com", {"orcpt": "rfc822;erin@example.com"}),
    ]


def test_no_dsn_params_no_attrs(mta):
    with smtplib.SMTP(mta.host, mta.port) as s:
        s.sendmail("a@example.org", ["b@example.com"],
                   b"Subject: plain\r\n\r\nx\r\n")
    qid = mta.queue_files()[0]
    q = queued(mta, qid)
    assert "ret" not in q.attrs and "envid" not in q.attrs
    assert q.rcpts == [("b@example.com", {})]


@pytest.mark.parametrize("params", [
    "RET=FOO", "RET=", "RET", "RET=FULL RET=HDRS", "RET=FULL RET=FULL",
    "ENVID=a+ZZ", "ENVID=a+4", "ENVID=a=b", "ENVID=a+0Ab", "ENVID=a+09b",
    "ENVID=", "ENVID=" + "x" * 101, "ENVID=a ENVID=b",
])
def test_bad_mail_params(mta, params):
    c = Raw(mta)
    c.cmd("EHLO c.example")
    code, text = c.cmd("MAIL FROM:<a@example.org> " + params)
    assert code == 501 and text.startswith("5.5.4"), (code, text)
    # The session goes on.
    assert c.cmd("MAIL FROM:<a@example.org> RET=full")[0] == 250
    c.close()


@pytest.mark.parametrize("params", [
    "NOTIFY=", "NOTIFY", "NOTIFY=BOGUS", "NOTIFY=NEVER,FAILURE",
    "NOTIFY=FAILURE,", "NOTIFY=FAILURE,,DELAY", "NOTIFY=DELAY,DELAY",
    "NOTIFY=SUCCESS NOTIFY=FAILURE", "ORCPT=bob@example.com",
    "ORCPT=;bob@example.com", "ORCPT=rfc822;", "ORCPT=rfc822;a+09b@x",
    "ORCPT=rfc822;a+0D+0Ab@x", "ORCPT=rfc822;a+ZZ", "ORCPT=rfc 822;a",
    "ORCPT=rfc822;a@x ORCPT=rfc822;a@x",
    "ORCPT=rfc822;" + "x" * 500,
])
def test_bad_rcpt_params(mta, params):
    c = Raw(mta)
    c.cmd("EHLO c.example")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, text = c.cmd("RCPT TO:<b@example.com> " + params)
    assert code == 501 and text.startswith("5.5.4"), (code, text)
    assert c.cmd("RCPT TO:<b@example.com> NOTIFY=SUCCESS")[0] == 250
    c.close()


def test_unknown_rcpt_param_and_helo(mta):
    c = Raw(mta)
    c.cmd("EHLO c.example")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, text = c.cmd("RCPT TO:<b@example.com> NOTIFY=NEVER FOO=1")
    assert code == 555
    # Without EHLO there are no extensions.
    assert c.cmd("HELO c.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.com> NOTIFY=NEVER")[0] == 555
    code, _ = c.cmd("MAIL FROM:<a@example.org> RET=HDRS")
    c.close()


def test_params_reset_between_transactions(mta):
    with smtplib.SMTP(mta.host, mta.port) as s:
        s.ehlo("c.example")
        s.mail("a@example.org", ["RET=FULL", "ENVID=one"])
        s.rcpt("b@example.com", ["NOTIFY=NEVER"])
        s.rset()
        s.mail("a@example.org")
        s.rcpt("c@example.com")
        code, text = s.data(b"Subject: x\r\n\r\nx\r\n")
        assert code == 250
    q = queued(mta, text.decode().rsplit(" ", 1)[1])
    assert "ret" not in q.attrs and "envid" not in q.attrs
    assert q.rcpts == [("c@example.com", {})]


# -- cleanup's side, spoken to directly --------------------------------------

def submit_env(cl, env):
    with cl.connect() as s:
        s.sendall(env)
        first = read_reply(s)
        if first is None or first.get("status") != "0":
            return first, None
        s.sendall(content(b"Subject: x\r\n\r\nbody\r\n"))
        return first, read_reply(s)


def test_cleanup_stores_and_canonicalises(mta_factory):
    cl = start_cleanup(mta_factory, master_cf=CLEANUP_ONLY)
    env = (attr("sender", "a@example.org") + attr("rcpt", "b@example.com")
           + attr("notify", "delay,success")
           + attr("orcpt", "rfc822;B+2b+41@x")
           + attr("rcpt", "c@example.com") + attr("ret", "hdrs")
           + attr("envid", "id 1") + b"\n")
    first, final = submit_env(cl, env)
    assert final and final["status"] == "0", (first, final)
    q = queued(cl.mta, final["queue_id"])
    assert q.attrs["ret"] == "HDRS" and q.attrs["envid"] == "id 1"
    assert q.rcpts == [("b@example.com", {"notify": "SUCCESS,DELAY",
                                          "orcpt": "rfc822;B+2BA@x"}),
                       ("c@example.com", {})]


@pytest.mark.parametrize("bad", [
    attr("notify", "NEVER") + attr("rcpt", "b@example.com"),  # before rcpt
    attr("rcpt", "b@example.com") + attr("notify", "NEVER")
    + attr("notify", "NEVER"),                                # twice
    attr("rcpt", "b@example.com") + attr("notify", "SOMETIMES"),
    attr("rcpt", "b@example.com") + attr("orcpt", "rfc822;a\tnotify=x"),
    attr("rcpt", "b@example.com") + attr("orcpt", "rfc822;a\r\nb"),
    attr("rcpt", "b@example.com") + attr("orcpt", "no-type"),
    attr("rcpt", "b@example.com") + attr("orcpt", "rfc822;a+ZZ"),
    attr("rcpt", "b@example.com") + attr("orcpt", "rfc822;a b"),
    attr("rcpt", "b@example.com") + attr("ret", "SOME"),
    attr("rcpt", "b@example.com") + attr("envid", "a\tb"),
    attr("rcpt", "b@example.com") + attr("envid", "x" * 101),
])
def test_cleanup_refuses_bad_dsn_attrs(mta_factory, bad):
    cl = start_cleanup(mta_factory, master_cf=CLEANUP_ONLY)
    first, final = submit_env(cl, attr("sender", "a@example.org") + bad
                              + b"\n")
    assert first["status"] == "4" and "malformed" in first["reason"]
    assert cl.mta.queue_files() == []
