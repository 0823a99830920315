"""sendarix queue list|show against queue files written here.

The queue files are made in Python from the format documented in
lib/global/qfile.h (records TYPE LENGTH ':' DATA '\\n'), so these tests also check
that the C reader follows the documented format. No daemon runs.
"""

import calendar
import json
import os
import subprocess

import pytest

from conftest import SENDARIX

ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZz"


def b32(v, width=None):
    s = ""
    while True:
        s = ALPHABET[v & 31] + s
        v >>= 5
        if v == 0 and (width is None or len(s) >= width):
            return s


def make_id(sec, usec, ino):
    """A queue ID as lib/global/qfile.c makes it: 7 + 4 fixed, then the inode."""
    return b32(sec, 7) + b32(usec, 4) + b32(ino)


def rec(t, data):
    if isinstance(data, str):
        data = data.encode()
    return t.encode() + str(len(data)).encode() + b":" + data + b"\n"


def qfile_bytes(sender, rcpts, attrs=(), content=b"", sec=0, usec=0,
                chunk=7):
    """A complete queue file; rcpts are (status, address, params)."""
    out = rec("V", "1") + rec("T", "%d.%06d" % (sec, usec))
    out += rec("Z", "%015d" % len(content)) + rec("S", sender)
    for k, v in attrs:
        out += rec("A", "%s=%s" % (k, v))
    for status, addr, params in rcpts:
        out += rec("R", status + addr + ("\t" + params if params else ""))
    for i in range(0, len(content), chunk):
        out += rec("C", content[i:i + chunk])
    return out + rec("E", "")


class Queue:
    def __init__(self, tmp_path, create=True):
        self.conf_dir = str(tmp_path / "conf")
        self.queue_dir = str(tmp_path / "queue")
        os.makedirs(self.conf_dir)
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.write("queue_directory = %s\n" % self.queue_dir)
        if create:
            for q in ("tmp", "incoming", "active", "deferred", "hold",
                      "corrupt"):
                os.makedirs(os.path.join(self.queue_dir, q))

    def put(self, queue, qid, data, subdir=None):
        d = os.path.join(self.queue_dir, queue, *([subdir] if subdir else []))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, qid), "wb") as f:
            f.write(data)

    def run(self, *args):
        env = dict(os.environ, TZ="UTC")
        return subprocess.run([SENDARIX, "-c", self.conf_dir, "queue"]
                              + list(args), capture_output=True, env=env,
                              timeout=30)


WED = calendar.timegm((2026, 11, 25, 23, 59, 1))     # Wed Nov 25 23:59:01
THU = calendar.timegm((2026, 11, 26, 0, 0, 2))

ID1 = make_id(WED, 1, 77)
ID2 = make_id(WED, 500000, 3)
ID3 = make_id(THU, 0, 123456)
ID_BAD = make_id(THU, 5, 9)
ID_TRUNC = make_id(THU, 6, 9)

CONTENT1 = b"Subject: one\r\nFrom: a@example.com\r\n\r\nline 1\r\nline 2\r\n"


@pytest.fixture
def queue(tmp_path):
    q = Queue(tmp_path)
    # Written out of order, in three queues, one in a hashed subfolder.
    q.put("deferred", ID3, qfile_bytes(
        "bounce@example.org", [("-", "z@example.net", "")],
        content=b"x" * 3000, sec=THU), subdir="F")
    q.put("incoming", ID1, qfile_bytes(
        "alice@example.com",
        [("-", "bob@example.net", ""),
         ("D", "carol@example.org", "notify=FAILURE\torcpt=rfc822;c@x")],
        attrs=[("client_addr", "192.0.2.1"), ("helo", "client.example")],
        content=CONTENT1, sec=WED, usec=1))
    q.put("hold", ID2, qfile_bytes(
        "", [("B", "dan@example.com", "")], content=b"\xff\xfe bin\r\n",
        sec=WED, usec=500000))
    return q


def test_ids_sort_by_time():
    assert ID1 < ID2 < ID3
    assert len(ID1) >= 12


def test_list_empty_without_queue_folders(tmp_path):
    q = Queue(tmp_path, create=False)
    r = q.run("list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "Mail queue is empty\n"
    r = q.run("list", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_list_text(queue):
    r = queue.run("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["QUEUEID", "QUEUE", "SIZE", "ARRIVAL-TIME",
                                "SENDER/RECIPIENT"]
    # Sorted by queue ID, which is arrival order.
    entries = [l for l in lines[1:] if l and not l.startswith(" ")
               and not l.startswith("--")]
    assert [e.split()[0] for e in entries] == [ID1, ID2, ID3]
    e1 = entries[0].split()
    assert e1[1] == "incoming"
    assert e1[2] == str(len(CONTENT1))
    assert " ".join(e1[3:7]) == "Wed Nov 25 23:59:01"
    assert e1[7] == "alice@example.com"
    i = lines.index(entries[0])
    assert lines[i + 1].strip() == "bob@example.net"
    assert lines[i + 1].startswith(" " * 20)
    assert lines[i + 2].strip() == "carol@example.org (delivered)"
    e2 = entries[1].split()
    assert e2[1] == "hold" and e2[-1] == "<>"
    assert lines[lines.index(entries[1]) + 1].strip() == \
        "dan@example.com (bounced)"
    assert entries[2].split()[1] == "deferred"
    assert entries[2].split()[2] == "3000"
    total = len(CONTENT1) + 10 + 3000
    assert lines[-1] == "-- %d Kbytes in 3 Requests." % ((total + 1023) // 1024)


def test_list_json(queue):
    r = queue.run("list", "--json")
    assert r.returncode == 0, r.stderr
    msgs = json.loads(r.stdout)
    assert [m["queue_id"] for m in msgs] == [ID1, ID2, ID3]
    m = msgs[0]
    assert m["queue"] == "incoming"
    assert m["size"] == len(CONTENT1)
    assert m["arrival"] == WED
    assert m["arrival_iso"] == "2026-11-25T23:59:01Z"
    assert m["sender"] == "alice@example.com"
    assert m["recipients"] == [
        {"address": "bob@example.net", "status": "pending", "params": ""},
        {"address": "carol@example.org", "status": "delivered",
         "params": "notify=FAILURE\torcpt=rfc822;c@x"}]
    assert m["attributes"] == {"client_addr": "192.0.2.1",
                               "helo": "client.example"}
    assert msgs[1]["sender"] == ""
    assert msgs[1]["recipients"][0]["status"] == "bounced"
    assert msgs[2]["queue"] == "deferred"


def test_show_text(queue):
    r = queue.run("show", ID1)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "queue_id: %s\n" % ID1 in out
    assert "queue: incoming\n" in out
    assert "sender: alice@example.com\n" in out
    assert "size: %d\n" % len(CONTENT1) in out
    assert "2026-11-25T23:59:01Z" in out
    assert "  client_addr: 192.0.2.1\n" in out
    assert "recipient: bob@example.net (pending)\n" in out
    assert "recipient: carol@example.org (delivered)" in out
    # The content follows the envelope, CRLF shown as LF.
    body = out.split("*** CONTENT ***\n", 1)[1]
    assert body == CONTENT1.decode().replace("\r\n", "\n") + "*** END ***\n"


def test_show_json(queue):
    r = queue.run("show", "--json", ID1)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["queue_id"] == ID1
    assert m["content"].encode() == CONTENT1
    assert "content_base64" not in m
    # Not UTF-8: replaced in "content", exact in "content_base64".
    r = queue.run("show", ID2, "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    import base64
    assert base64.b64decode(m["content_base64"]) == b"\xff\xfe bin\r\n"
    assert m["content"] == "\ufffd\ufffd bin\r\n"
    # Found in a hashed subfolder of deferred/ too.
    r = queue.run("show", ID3)
    assert r.returncode == 0, r.stderr
    assert b"queue: deferred\n" in r.stdout


def test_show_missing_and_bad_ids(queue):
    r = queue.run("show", make_id(WED, 2, 2))
    assert r.returncode == 1
    assert b"sendarix: queue: no message " + make_id(WED, 2, 2).encode() \
        in r.stderr
    for bad in ("../../etc/passwd", "..", "/etc/passwd", "abc",
                ID1 + "/", "hold/" + ID2):
        r = queue.run("show", bad)
        assert r.returncode == 1, bad
        assert b"invalid queue ID" in r.stderr
        assert r.stdout == b""
    assert queue.run("show").returncode == 2
    assert queue.run("list", "extra").returncode == 2
    assert queue.run("frobnicate").returncode == 2
    assert queue.run().returncode == 2


def test_corrupt_files_listed_not_fatal(queue):
    good = qfile_bytes("a@b.c", [("-", "d@e.f", "")], content=b"hi\r\n",
                       sec=THU, usec=5)
    queue.put("corrupt", ID_BAD, b"this is not a queue file\n")
    queue.put("active", ID_TRUNC, good[:-4])          # no end marker
    queue.put("incoming", ".hidden", good)              # ignored
    r = queue.run("list")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    bad_line = [l for l in out.splitlines() if l.startswith(ID_BAD)][0]
    assert "corrupt" in bad_line and "unreadable" in bad_line
    trunc_line = [l for l in out.splitlines() if l.startswith(ID_TRUNC)][0]
    assert "active" in trunc_line and "incomplete file" in trunc_line
    assert "in 5 Requests." in out
    msgs = json.loads(queue.run("list", "--json").stdout)
    errs = {m["queue_id"]: m for m in msgs if "error" in m}
    assert set(errs) == {ID_BAD, ID_TRUNC}
    assert "no version record" in errs[ID_BAD]["error"]
    assert errs[ID_BAD]["queue"] == "corrupt"
    r = queue.run("show", ID_TRUNC)
    assert r.returncode == 1
    assert b"incomplete file" in r.stderr


def test_list_and_show_mail_received_over_smtp(mta):
    """End to end: smtpd and cleanup write the file, the CLI reads it."""
    import smtplib
    from conftest import wait_for
    body = "Subject: queued\r\n\r\nhello queue\r\n"
    with smtplib.SMTP(mta.host, mta.port, timeout=10) as s:
        s.sendmail("sender@example.com", ["rcpt1@example.net",
                                          "rcpt2@example.net"], body)
    ids = wait_for(lambda: mta.queue_files("incoming") or
                   mta.queue_files("active") or mta.queue_files("deferred"),
                   what="a queue file")
    msgs = json.loads(mta.sendarix("queue", "list", "--json").stdout)
    m = [m for m in msgs if m["queue_id"] == ids[0]][0]
    assert "error" not in m, m
    assert m["sender"] == "sender@example.com"
    assert [r["address"] for r in m["recipients"]] == [
        "rcpt1@example.net", "rcpt2@example.net"]
    assert m["attributes"].get("client_addr") == "127.0.0.1"
    shown = json.loads(mta.sendarix("queue", "show", ids[0], "--json").stdout)
    assert shown["content"].endswith("\r\n\r\nhello queue\r\n")
    assert shown["size"] == len(shown["content"].encode())
    assert ids[0] in mta.log()
