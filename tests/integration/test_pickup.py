"""Local submission while the mail system is down, and who may submit.

sendmail(1) writes into queue_directory/maildrop/ when nothing answers on
public/sendmail; pickup(8) submits those files to cleanup once master runs,
as local submissions by the file's owner. authorized_submit_users and
local_login_sender_maps decide who may submit, and as which sender, both
in cleanup (public/sendmail, peer credentials) and for maildrop files.
The tests switch users with runuser, so most of them need root.
"""

import os
import pwd
import grp
import shlex
import stat
import subprocess

import pytest

from conftest import BIN, wait_for
from sxqueue import QueueFile

SENDMAIL = os.path.join(BIN, "sendmail")

PICKUP_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
sendmail unix n - n - 1 cleanup
pickup unix n - n 60 1 pickup
"""

pytestmark = [
    pytest.mark.skipif(not os.path.exists(os.path.join(BIN, "pickup")),
                       reason="pickup not built"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users"),
]

NOBODY = pwd.getpwnam("nobody")


def sendmail_as(mta, user, args, text="Subject: t\n\nbody\n"):
    """Run sendmail as `user` (None: as root) in a real shell pipeline."""
    cmd = "%s -C %s %s" % (SENDMAIL, shlex.quote(mta.conf_dir), args)
    if user:
        cmd = "runuser -u %s -- %s" % (user, cmd)
    return subprocess.run("printf %%s %s | %s" % (shlex.quote(text), cmd),
                          shell=True, capture_output=True, timeout=60)


def local_mta(mta_factory, main=None):
    m = mta_factory(main=main, master_cf=PICKUP_MASTER_CF)
    wait_for(lambda: os.path.exists(os.path.join(m.queue_dir, "public",
                                                 "sendmail")),
             what="public/sendmail")
    return m


def down_mta(mta_factory, main=None):
    """A mail system that ran once (the queue tree exists) and is down."""
    m = local_mta(mta_factory, main)
    m.stop()
    return m


def maildrop(mta):
    d = os.path.join(mta.queue_dir, "maildrop")
    return sorted(n for n in os.listdir(d))


def incoming(mta, n=1):
    wait_for(lambda: len(mta.queue_files()) >= n, timeout=20,
             what="%d queue file(s)" % n)
    files = mta.queue_files()
    assert len(files) == n, files
    return [QueueFile(os.path.join(mta.queue_dir, "incoming", f))
            for f in files]


def attr(name, value):
    value = value.encode() if isinstance(value, str) else value
    return b"%s=%d:%s\n" % (name.encode(), len(value), value)


def drop_file(mta, user, envelope, content=b"Subject: d\r\n\r\nbody\r\n"):
    """Write a maildrop file directly, as `user`, bypassing sendmail."""
    data = envelope + b"\n" + attr("data", content) + b"\n"
    script = ("import os, sys\n"
              "d = sys.argv[1]\n"
              "fd = os.open(d + '/.w', os.O_WRONLY | os.O_CREAT | os.O_EXCL,"
              " 0o640)\n"
              "os.write(fd, sys.stdin.buffer.read()); os.close(fd)\n"
              "os.rename(d + '/.w', d + '/' + sys.argv[2])\n")
    r = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3",
                        "-c", script, os.path.join(mta.queue_dir, "maildrop"),
                        "f%d" % len(envelope)],
                       input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr


RAW_CLIENT = r"""
import socket, sys
def attr(n, v):
    v = v.encode()
    return b"%s=%d:%s\n" % (n.encode(), len(v), v)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(attr("sender", sys.argv[2]) + attr("rcpt", "r@example.com") + b"\n")
buf = b""
while not buf.endswith(b"\n\n"):
    d = s.recv(4096)
    if not d:
        break
    buf += d
if b"status=1:0" in buf:
    s.sendall(attr("data", "Subject: raw\r\n\r\nraw\r\n") + b"\n")
    buf2 = b""
    while not buf2.endswith(b"\n\n"):
        d = s.recv(4096)
        if not d:
            break
        buf2 += d
    buf += buf2
sys.stdout.write(buf.decode())
"""


def raw_submit(mta, user, sender):
    """Speak the protocol on public/sendmail directly, as `user`."""
    sock = os.path.join(mta.queue_dir, "public", "sendmail")
    r = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3",
                        "-c", RAW_CLIENT, sock, sender],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


# -- the maildrop ---------------------------------------------------------

def test_maildrop_folder_mode(mta_factory):
    m = local_mta(mta_factory)
    st = os.stat(os.path.join(m.queue_dir, "maildrop"))
    assert stat.S_IMODE(st.st_mode) == 0o3733
    owner = pwd.getpwnam("sendarix")
    assert (st.st_uid, st.st_gid) == (owner.pw_uid, owner.pw_gid)


def test_down_system_queues_in_maildrop_and_pickup_submits(mta_factory):
    m = down_mta(mta_factory)
    r = sendmail_as(m, "nobody", "-v -F 'No Body' u@example.com",
                    "Subject: while down\n\nqueued later\n")
    assert r.returncode == 0, r.stderr
    assert b"queued in maildrop/" in r.stderr
    [name] = maildrop(m)
    assert not name.startswith(".")
    st = os.stat(os.path.join(m.queue_dir, "maildrop", name))
    assert st.st_uid == NOBODY.pw_uid
    assert st.st_gid == grp.getgrnam("sendarix").gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o640
    # Root's mail goes there too, under root's uid.
    r = sendmail_as(m, None, "-f app@example.org v@example.com")
    assert r.returncode == 0, r.stderr
    assert len(maildrop(m)) == 2

    m.start()
    files = incoming(m, 2)
    wait_for(lambda: maildrop(m) == [], what="maildrop to be drained")
    by_sender = {f.sender: f for f in files}
    qf = by_sender["nobody@mx.test.example"]
    assert qf.attrs["uid"] == str(NOBODY.pw_uid)
    assert qf.attrs["login"] == "nobody"
    assert qf.attrs["protocol"] == "local"
    assert [a for _, a in qf.rcpts] == ["u@example.com"]
    head, body = qf.headers_and_body()
    assert head.startswith(b"Received: by mx.test.example (Sendarix, from "
                           b"userid %d)" % NOBODY.pw_uid)
    assert b"From: No Body <nobody@mx.test.example>\r\n" in head
    assert body == b"queued later\r\n"
    assert by_sender["app@example.org"].attrs["uid"] == "0"
    m.wait_log("uid=%d from=<nobody@mx.test.example>" % NOBODY.pw_uid)


def test_trigger_wakes_running_pickup(mta_factory):
    # public/sendmail is missing but pickup runs: the file is submitted
    # at once through the trigger, not at the next 60-second scan.
    m = mta_factory(master_cf="""\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
pickup unix n - n 3600 1 pickup
""")
    wait_for(lambda: os.path.exists(os.path.join(m.queue_dir, "public",
                                                 "pickup")),
             what="public/pickup")
    r = sendmail_as(m, "nobody", "w@example.com")
    assert r.returncode == 0, r.stderr
    # pickup works after sendmail returned: wait for it, well within the
    # hour of its periodic scan.
    wait_for(lambda: incoming(m) and maildrop(m) == [], timeout=20,
             what="pickup to submit the maildrop file")
    [qf] = incoming(m)
    assert qf.attrs["uid"] == str(NOBODY.pw_uid)


def test_no_queue_tree_is_still_tempfail(mta_factory):
    m = mta_factory(master_cf=PICKUP_MASTER_CF, start=False)
    r = sendmail_as(m, None, "a@example.com")
    assert r.returncode == 75
    assert b"public/sendmail" in r.stderr and b"maildrop" in r.stderr


def test_maildrop_file_cannot_claim_another_user(mta_factory):
    m = down_mta(mta_factory)
    # A plain file written by nobody: nobody's, whatever it says.
    drop_file(m, "nobody", attr("version", "1") + attr("sender", "x@e.org")
              + attr("rcpt", "r@example.com"))
    # Claims to come from root: refused as corrupt.
    drop_file(m, "nobody", attr("version", "1") + attr("local_uid", "0")
              + attr("sender", "root@e.org") + attr("rcpt", "r@example.com"))
    # Pretends to be smtpd.
    drop_file(m, "nobody", attr("version", "1") + attr("sender", "y@e.org")
              + attr("rcpt", "r@example.com") + attr("protocol", "ESMTPA")
              + attr("client_addr", "192.0.2.1"))
    # Not the format at all.
    drop_file(m, "nobody", b"garbage")
    assert len(maildrop(m)) == 4
    m.start()
    [qf] = incoming(m)
    assert qf.sender == "x@e.org"
    assert qf.attrs["uid"] == str(NOBODY.pw_uid)
    assert qf.attrs["protocol"] == "local"
    wait_for(lambda: maildrop(m) == [], what="maildrop to be drained")
    corrupt = os.listdir(os.path.join(m.queue_dir, "corrupt"))
    assert len(corrupt) == 3, corrupt
    m.wait_log("unexpected envelope attribute: moved to corrupt")
    assert len(m.queue_files()) == 1


# -- authorized_submit_users ------------------------------------------------

DENY_NOBODY = {"authorized_submit_users": "!nobody, static:anyone"}


def test_authorized_submit_users_refuses_early(mta_factory):
    m = local_mta(mta_factory, DENY_NOBODY)
    r = sendmail_as(m, "nobody", "u@example.com")
    assert r.returncode == 77, r.stderr
    assert r.stderr == (b"sendmail: fatal: User nobody(%d) is not allowed "
                        b"to submit mail\n" % NOBODY.pw_uid)
    r = sendmail_as(m, None, "u@example.com")
    assert r.returncode == 0, r.stderr
    [qf] = incoming(m)
    assert qf.attrs["uid"] == "0"


def test_authorized_submit_users_enforced_by_cleanup(mta_factory):
    m = local_mta(mta_factory, DENY_NOBODY)
    out = raw_submit(m, "nobody", "nobody@mx.test.example")
    assert "status=1:5" in out
    assert "5.7.1 User nobody(%d) is not allowed to submit mail" \
        % NOBODY.pw_uid in out
    m.wait_log("NOQUEUE: reject: uid=%d: User nobody(%d) is not allowed "
               "to submit mail" % (NOBODY.pw_uid, NOBODY.pw_uid))
    assert m.queue_files() == []


def test_authorized_submit_users_enforced_for_maildrop(mta_factory):
    m = down_mta(mta_factory, DENY_NOBODY)
    drop_file(m, "nobody", attr("version", "1") + attr("sender", "n@e.org")
              + attr("rcpt", "r@example.com"))
    m.start()
    m.wait_log("refused: 5.7.1 User nobody(%d) is not allowed to submit "
               "mail; removed" % NOBODY.pw_uid)
    assert maildrop(m) == []
    assert m.queue_files() == []


def test_empty_authorized_submit_users_refuses_root_too(mta_factory):
    m = local_mta(mta_factory, {"authorized_submit_users": ""})
    r = sendmail_as(m, None, "u@example.com")
    assert r.returncode == 77
    assert b"User root(0) is not allowed to submit mail" in r.stderr


# -- local_login_sender_maps ------------------------------------------------

SENDER_MAPS = {"local_login_sender_maps":
               "inline:{ root=*, { nobody = nobody, @lists.example, <> } }"}


def test_login_sender_maps_default_allows_any_sender(mta_factory):
    m = local_mta(mta_factory)
    r = sendmail_as(m, "nobody", "-f ceo@bank.example u@example.com")
    assert r.returncode == 0, r.stderr
    [qf] = incoming(m)
    assert qf.sender == "ceo@bank.example"


def test_login_sender_maps_limit_senders(mta_factory):
    m = local_mta(mta_factory, SENDER_MAPS)
    r = sendmail_as(m, "nobody", "-f ceo@bank.example u@example.com")
    assert r.returncode == 77, r.stderr
    assert (b"sendmail: fatal: User nobody(%d) is not allowed to use sender "
            b"address <ceo@bank.example>" % NOBODY.pw_uid) in r.stderr
    assert m.queue_files() == []
    # The default sender $user@$myorigin, listed as the bare name.
    r = sendmail_as(m, "nobody", "u@example.com")
    assert r.returncode == 0, r.stderr
    r = sendmail_as(m, "nobody", "-f Team@LISTS.example u@example.com")
    assert r.returncode == 0, r.stderr
    # root is not exempt by itself: here the map says "*".
    r = sendmail_as(m, None, "-f ceo@bank.example u@example.com")
    assert r.returncode == 0, r.stderr
    senders = sorted(f.sender for f in incoming(m, 3))
    assert senders == ["Team@LISTS.example", "ceo@bank.example",
                       "nobody@mx.test.example"]


def test_login_sender_maps_enforced_by_cleanup(mta_factory):
    m = local_mta(mta_factory, SENDER_MAPS)
    out = raw_submit(m, "nobody", "ceo@bank.example")
    assert "status=1:5" in out
    assert "5.7.1 User nobody(%d) is not allowed to use sender address " \
        "<ceo@bank.example>" % NOBODY.pw_uid in out
    m.wait_log("NOQUEUE: reject: uid=%d: User nobody(%d) is not allowed to "
               "use sender address <ceo@bank.example>; from=<ceo@bank.example>"
               % (NOBODY.pw_uid, NOBODY.pw_uid))
    assert m.queue_files() == []
    # The null sender is listed as <>.
    out = raw_submit(m, "nobody", "")
    assert out.count("status=1:0") == 2, out
    [qf] = incoming(m)
    assert qf.sender == ""


def test_login_sender_maps_user_not_listed_may_not_send(mta_factory):
    m = local_mta(mta_factory, {"local_login_sender_maps":
                                "inline:{ root=*, sendarix=* }"})
    r = sendmail_as(m, "nobody", "u@example.com")
    assert r.returncode == 77
    assert b"is not allowed to use sender address <nobody@mx.test.example>" \
        in r.stderr


def test_login_sender_maps_enforced_for_maildrop(mta_factory):
    m = down_mta(mta_factory, SENDER_MAPS)
    drop_file(m, "nobody", attr("version", "1")
              + attr("sender", "ceo@bank.example")
              + attr("rcpt", "r@example.com"))
    m.start()
    m.wait_log("refused: 5.7.1 User nobody(%d) is not allowed to use sender "
               "address <ceo@bank.example>; removed" % NOBODY.pw_uid)
    assert maildrop(m) == []
    assert m.queue_files() == []
