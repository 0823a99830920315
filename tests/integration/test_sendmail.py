"""sendmail(1): local submission through cleanup's public/sendmail service.

A real master runs smtpd, cleanup and a second cleanup service listening
in public/ (master.cf "sendmail unix n - n - 1 cleanup"). The tests run the
built sendmail binary from a shell, as applications and cron do, and check
the queue files that land in incoming/ with the independent reader in
sxqueue.py.
"""

import os
import pwd
import shlex
import subprocess

import pytest

from conftest import BIN, wait_for
from sxqueue import QueueFile

SENDMAIL = os.path.join(BIN, "sendmail")

LOCAL_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
sendmail unix n - n - 1 cleanup
"""

FULL_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
sendmail unix n - n - 1 cleanup
qmgr    unix - - n - 1 qmgr
smtp    unix - - n - 1 smtp-out
bounce  unix - - n - 1 bounce
"""

pytestmark = pytest.mark.skipif(not os.path.exists(SENDMAIL),
                                reason="sendmail not built")


@pytest.fixture
def local_mta(mta_factory):
    m = mta_factory(master_cf=LOCAL_MASTER_CF)
    wait_for(lambda: os.path.exists(os.path.join(m.queue_dir, "public",
                                                 "sendmail")),
             what="public/sendmail")
    return m


def sh(mta, cmdline, input_text=None, prog=SENDMAIL, env=None):
    """Run 'printf ... | sendmail ARGS' through a real shell pipeline."""
    full = "%s -C %s %s" % (shlex.quote(prog), shlex.quote(mta.conf_dir),
                            cmdline)
    if input_text is not None:
        full = "printf %%s %s | %s" % (shlex.quote(input_text), full)
    return subprocess.run(full, shell=True, capture_output=True, timeout=60,
                          env=env)


def queued(mta, n=1):
    wait_for(lambda: len(mta.queue_files()) >= n, what="%d queue file(s)" % n)
    files = mta.queue_files()
    assert len(files) == n, files
    return [QueueFile(os.path.join(mta.queue_dir, "incoming", f))
            for f in files]


def rcpt_addrs(qf):
    return [a for _, a in qf.rcpts]


def header_lines(qf):
    head, _ = qf.headers_and_body()
    return head.decode().split("\r\n")


def assert_crlf_only(data):
    assert b"\n" not in data.replace(b"\r\n", b""), data


def test_t_from_shell_pipeline_adds_local_headers(local_mta):
    r = sh(local_mta, "-t", "To: a@example.com\nSubject: x\n\nhello\n")
    assert r.returncode == 0, r.stderr
    [qf] = queued(local_mta)
    assert rcpt_addrs(qf) == ["a@example.com"]
    login = pwd.getpwuid(os.getuid()).pw_name
    assert qf.sender == "%s@mx.test.example" % login
    assert qf.attrs["protocol"] == "local"
    assert qf.attrs["uid"] == str(os.getuid())
    assert qf.attrs["login"] == login
    assert_crlf_only(qf.content)
    lines = header_lines(qf)
    assert lines[0] == ("Received: by mx.test.example (Sendarix, from userid %d)"
                        % os.getuid())
    assert lines[1].startswith("\tid %s; " % local_mta.queue_files()[0])
    assert "To: a@example.com" in lines
    assert "Subject: x" in lines
    assert any(l.startswith("Message-ID: <") for l in lines)
    assert any(l.startswith("Date: ") for l in lines)
    assert "From: %s@mx.test.example" % login in lines
    assert qf.content.endswith(b"\r\n\r\nhello\r\n")
    local_mta.wait_log("uid=%d from=<%s@mx.test.example>" % (os.getuid(), login))


def test_t_bcc_removed_recipients_kept_folded_groups_and_args(local_mta):
    msg = ("To: Alice Example <alice@example.com>,\n"
           "  \"Bob, the builder\" <bob@example.com> (work),\n"
           "\tcarol@example.com\n"
           "Cc: team: dave@example.com, Erin <erin@example.com>;\n"
           "Bcc: hidden@example.com\n"
           "Subject: bcc test\n"
           "\n"
           "Bcc: in the body is not a header\n")
    r = sh(local_mta, "-t extra@example.net", msg)
    assert r.returncode == 0, r.stderr
    [qf] = queued(local_mta)
    assert sorted(rcpt_addrs(qf)) == sorted([
        "extra@example.net", "alice@example.com", "bob@example.com",
        "carol@example.com", "dave@example.com", "erin@example.com",
        "hidden@example.com"])
    head, body = qf.headers_and_body()
    assert b"Bcc:" not in head and b"hidden@" not in head
    assert b"\r\n  \"Bob, the builder\" <bob@example.com> (work),\r\n" in head
    assert body == b"Bcc: in the body is not a header\r\n"


def test_sender_full_name_and_option_forms(local_mta):
    r = sh(local_mta, "-f sender@example.org -F 'Jane Q. Doe' rcpt@example.com",
           "Subject: one\n\nbody\n")
    assert r.returncode == 0, r.stderr
    r = sh(local_mta, "-fother@example.org rcpt@example.com",
           "From: Given <given@example.org>\nSubject: two\n\nbody\n")
    assert r.returncode == 0, r.stderr
    r = sh(local_mta, "-r '<>' -oi -oem -v rcpt@example.com",
           "Subject: three\n\nbody\n")
    assert r.returncode == 0, r.stderr
    assert b"queued as" in r.stderr
    files = queued(local_mta, 3)
    by_subject = {}
    for qf in files:
        subj = [l for l in header_lines(qf) if l.startswith("Subject: ")][0]
        by_subject[subj[9:]] = qf
    one, two, three = by_subject["one"], by_subject["two"], by_subject["three"]
    assert one.sender == "sender@example.org"
    assert 'From: "Jane Q. Doe" <sender@example.org>' in header_lines(one)
    assert two.sender == "other@example.org"
    froms = [l for l in header_lines(two) if l.startswith("From:")]
    assert froms == ["From: Given <given@example.org>"]  # not replaced
    assert three.sender == ""
    assert "From: MAILER-DAEMON" in header_lines(three)


def test_dsn_options_reach_the_queue_file(local_mta):
    r = sh(local_mta, "-N success,failure -Rhdrs -V env-42 -B 8bitmime "
           "a@example.com b@example.com", "Subject: dsn\n\nbody\n")
    assert r.returncode == 0, r.stderr
    [qf] = queued(local_mta)
    assert qf.attrs["ret"] == "HDRS"
    assert qf.attrs["envid"] == "env-42"
    assert qf.attrs["body"] == "8BITMIME"
    rcpts = [v[1:].decode() for t, v in qf.records if t == "R"]
    assert rcpts == ["a@example.com\tnotify=SUCCESS,FAILURE",
                     "b@example.com\tnotify=SUCCESS,FAILURE"]
    for bad in ("-N sometimes", "-R most", "-B 9bit"):
        r = sh(local_mta, bad + " a@example.com", "x\n")
        assert r.returncode == 64, (bad, r.stderr)
        assert r.stderr.startswith(b"sendmail: fatal: bad ")


def test_lone_dot_ends_input_unless_i(local_mta):
    text = "Subject: dots\n\nbefore\n.\nafter\n"
    assert sh(local_mta, "a@example.com", text).returncode == 0
    assert sh(local_mta, "-i b@example.com", text).returncode == 0
    assert sh(local_mta, "-oi c@example.com", text).returncode == 0
    files = queued(local_mta, 3)
    for qf in files:
        assert_crlf_only(qf.content)
        _, body = qf.headers_and_body()
        if rcpt_addrs(qf) == ["a@example.com"]:
            assert body == b"before\r\n"
        else:
            assert body == b"before\r\n.\r\nafter\r\n"


def test_crlf_input_kept_and_missing_final_newline_added(local_mta):
    r = sh(local_mta, "a@example.com", "Subject: crlf\r\n\r\nline1\r\nlast")
    assert r.returncode == 0, r.stderr
    [qf] = queued(local_mta)
    _, body = qf.headers_and_body()
    assert body == b"line1\r\nlast\r\n"
    assert_crlf_only(qf.content)


def test_bs_smtp_dialogue_through_a_pipe(local_mta):
    dialogue = ("EHLO client.example\r\n"
                "MAIL FROM:<app@example.org>\r\n"
                "RCPT TO:<r1@example.com>\r\n"
                "RSET\r\n"
                "MAIL FROM:<app@example.org> SIZE=100 body=8bitmime\r\n"
                "RCPT TO:<r2@example.com>\r\n"
                "RCPT TO:<r3@example.com>\r\n"
                "DATA\r\n"
                "Subject: bs\r\n\r\n..leading dot\r\n.\r\n"
                "NOOP\r\n"
                "MAIL FROM:<>\n"
                "RCPT TO:<r4@example.com>\n"
                "DATA\n"
                "Subject: second\n\nplain LF\n.\n"
                "QUIT\r\n")
    r = sh(local_mta, "-bs", dialogue)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    lines = out.split("\r\n")
    assert lines[0].startswith("220 mx.test.example")
    assert "250 ENHANCEDSTATUSCODES" in lines
    assert sum(1 for l in lines if l.startswith("354 ")) == 2
    queued_ids = [l.split()[-1] for l in lines
                  if l.startswith("250 2.0.0 Ok: queued as ")]
    assert len(queued_ids) == 2
    assert lines[-2] == "221 2.0.0 Bye"
    files = queued(local_mta, 2)
    by_rcpt = {tuple(rcpt_addrs(qf)): qf for qf in files}
    first = by_rcpt[("r2@example.com", "r3@example.com")]
    assert first.sender == "app@example.org"
    assert first.attrs["body"] == "8BITMIME"
    assert first.attrs["protocol"] == "local"
    assert first.headers_and_body()[1] == b".leading dot\r\n"
    second = by_rcpt[("r4@example.com",)]
    assert second.sender == ""
    assert second.headers_and_body()[1] == b"plain LF\r\n"
    assert sorted(queued_ids) == sorted(local_mta.queue_files())


def test_bs_command_errors(local_mta):
    r = sh(local_mta, "-bs", "DATA\r\nRCPT TO:<a@b.c>\r\nMAIL FROM:x\r\n"
           "MAIL FROM:<y@z>\r\nBOGUS\r\nQUIT\r\n")
    lines = r.stdout.decode().split("\r\n")
    assert lines[1].startswith("503 ")
    assert lines[2].startswith("503 ")
    assert lines[3].startswith("250 ")      # bare "x" is qualified
    assert lines[4].startswith("503 ")      # nested MAIL
    assert lines[5].startswith("502 ")
    assert local_mta.queue_files() == []


def test_mailq_symlink_lists_the_queue(local_mta, tmp_path):
    assert sh(local_mta, "listed@example.com",
              "Subject: q\n\nx\n").returncode == 0
    [qf] = queued(local_mta)
    mailq = tmp_path / "mailq"
    os.symlink(SENDMAIL, str(mailq))
    env = dict(os.environ, SENDARIX_CONFIG_DIR=local_mta.conf_dir)
    r = subprocess.run([str(mailq)], capture_output=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert local_mta.queue_files()[0] in out
    assert "listed@example.com" in out
    r = sh(local_mta, "-bp")
    assert r.returncode == 0 and b"listed@example.com" in r.stdout


def test_no_mail_system_is_tempfail(mta_factory):
    m = mta_factory(master_cf=LOCAL_MASTER_CF, start=False)
    r = sh(m, "a@example.com", "Subject: x\n\nbody\n")
    assert r.returncode == 75
    assert r.stderr.startswith(b"sendmail: fatal: ")
    assert b"public/sendmail" in r.stderr


def test_no_recipients_and_bad_options(local_mta):
    r = sh(local_mta, "-t", "Subject: nobody\n\nbody\n")
    assert r.returncode == 65
    assert (b"sendmail: fatal: No recipient addresses found in message header"
            in r.stderr)
    r = sh(local_mta, "", "Subject: x\n\nbody\n")
    assert r.returncode == 64
    assert b"sendmail: fatal: Recipient addresses must be specified" in r.stderr
    r = sh(local_mta, "-Z a@example.com", "x\n")
    assert r.returncode == 64
    assert b"sendmail: fatal: invalid option" in r.stderr
    r = sh(local_mta, "-f")
    assert r.returncode == 64
    assert local_mta.queue_files() == []


def test_cleanup_refusal_is_reported(mta_factory):
    m = mta_factory(main={"message_size_limit": "2048"},
                    master_cf=LOCAL_MASTER_CF)
    wait_for(lambda: os.path.exists(os.path.join(m.queue_dir, "public",
                                                 "sendmail")),
             what="public/sendmail")
    r = sh(m, "a@example.com", "Subject: big\n\n" + "x" * 80 + "\n" * 0
           + ("y" * 70 + "\n") * 100)
    assert r.returncode == 69, r.stderr
    assert b"sendmail: fatal: 5.3.4 Message file too big" in r.stderr
    assert m.queue_files() == []


RAW_CLIENT = r"""
import socket, sys
def attr(n, v):
    v = v.encode()
    return b"%s=%d:%s\n" % (n.encode(), len(v), v)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
env = (attr("sender", "forged@example.org") + attr("rcpt", "r@example.com")
       + attr("client_addr", "192.0.2.9") + attr("client_name", "evil.example")
       + attr("helo", "evil.example") + attr("protocol", "ESMTPA") + b"\n")
s.sendall(env)
def reply():
    buf = b""
    while not buf.endswith(b"\n\n"):
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf
r1 = reply()
s.sendall(attr("data", "Subject: raw\r\n\r\nraw body\r\n") + b"\n")
r2 = reply()
sys.stdout.write(repr((r1, r2)))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_ordinary_user_submits_and_is_identified(local_mta):
    nobody = pwd.getpwnam("nobody")
    r = subprocess.run(
        "printf 'Subject: from nobody\\n\\nhi\\n' | runuser -u nobody -- "
        "%s -C %s -F 'No Body' u@example.com" % (SENDMAIL, local_mta.conf_dir),
        shell=True, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    [qf] = queued(local_mta)
    assert qf.sender == "nobody@mx.test.example"
    assert qf.attrs["uid"] == str(nobody.pw_uid)
    assert qf.attrs["login"] == "nobody"
    assert qf.attrs["protocol"] == "local"
    lines = header_lines(qf)
    assert lines[0] == ("Received: by mx.test.example (Sendarix, from userid %d)"
                        % nobody.pw_uid)
    assert "From: No Body <nobody@mx.test.example>" in lines
    local_mta.wait_log("uid=%d from=<nobody@mx.test.example>" % nobody.pw_uid)

    # A user who speaks the protocol directly cannot pass for smtpd.
    sock = os.path.join(local_mta.queue_dir, "public", "sendmail")
    r = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3",
                        "-c", RAW_CLIENT, sock],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"status=1:0" in r.stdout
    files = queued(local_mta, 2)
    raw = [f for f in files if f.sender == "forged@example.org"][0]
    assert raw.attrs["protocol"] == "local"
    assert raw.attrs["uid"] == str(nobody.pw_uid)
    for name in ("client_addr", "client_name", "helo"):
        assert name not in raw.attrs
    assert header_lines(raw)[0].endswith("from userid %d)" % nobody.pw_uid)


DELIVERY_BINS = ("qmgr", "smtp-out", "bounce")


@pytest.mark.skipif(not all(os.path.exists(os.path.join(BIN, d))
                            for d in DELIVERY_BINS),
                    reason="delivery daemons not built")
def test_sendmail_t_is_delivered_to_a_receiver(mta_factory):
    from receivers import aiosmtpd_receiver
    ctl, rec = aiosmtpd_receiver()
    try:
        m = mta_factory(main={"relayhost": "[127.0.0.1]:%d" % ctl.port},
                        master_cf=FULL_MASTER_CF)
        wait_for(lambda: os.path.exists(os.path.join(m.queue_dir, "public",
                                                     "sendmail")),
                 what="public/sendmail")
        r = sh(m, "-t -f app@example.org",
               "To: Far Away <far@example.com>\nBcc: hid@example.com\n"
               "Subject: out\n\nover the wire\n")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: len(rec.messages) >= 1, timeout=30, what="delivery")
        got = {}
        wait_for(lambda: sum(len(x[1]) for x in rec.messages) >= 2,
                 timeout=30, what="both recipients")
        for mail_from, rcpts, content in rec.messages:
            assert mail_from == "app@example.org"
            for rc in rcpts:
                got[rc] = content
        assert sorted(got) == ["far@example.com", "hid@example.com"]
        content = got["far@example.com"]
        assert content.startswith(b"Received: by mx.test.example (Sendarix, "
                                  b"from userid %d)" % os.getuid())
        assert b"Bcc:" not in content
        assert content.endswith(b"\r\n\r\nover the wire\r\n")
        m.wait_log("status=sent")
    finally:
        ctl.stop()
