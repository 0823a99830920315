"""sendarix check, and a configuration that cannot start half-broken:
start, master -f and reload refuse what a daemon would refuse, and every
sendarix command that fails exits non-zero.
"""

import os
import signal
import smtplib
import subprocess

import pytest

from conftest import BIN, SENDARIX, wait_for

MASTER = os.path.join(BIN, "master")

pytestmark = pytest.mark.skipif(not os.path.exists(MASTER),
                                reason="master is not built")

FULL_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
"""


def set_main(m, **params):
    """Append settings to main.cf (later settings win)."""
    with open(os.path.join(m.conf_dir, "main.cf"), "a") as f:
        for k, v in params.items():
            f.write("%s = %s\n" % (k, v))


def write_master_cf(m, text):
    with open(os.path.join(m.conf_dir, "master.cf"), "w") as f:
        f.write(text.format(listen="127.0.0.1:%d" % m.port, port=m.port))


def master_running(m):
    r = m.sendarix("status", check=False)
    return r.returncode == 0


def send(m, rcpt="bob@example.com"):
    with smtplib.SMTP(m.host, m.port, timeout=20) as s:
        s.sendmail("alice@example.org", [rcpt],
                   "Subject: t\r\n\r\nhello\r\n")


# -- sendarix check -------------------------------------------------------

def test_good_config_is_silent(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    r = m.sendarix("check", check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    # Also once master has made the queue tree.
    m.start()
    r = m.sendarix("check", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_bad_size_value(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    set_main(m, message_size_limit="abc")
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert 'sendarix: fatal: parameter message_size_limit: bad size ' \
        'value: "abc"' in r.stderr


@pytest.mark.parametrize("name,value,words", [
    ("smtpd_timeout", "5 minutes", "bad time value"),
    ("smtpd_forbid_bare_newline", "maybe", "bad yes/no value"),
    ("smtpd_recipient_limit", "many", "bad integer value"),
    ("hopcount_limit", "0", "out of range 1..100000"),
    ("maximal_backoff_time", "30d", "out of range 1..604800"),
    ("inet_protocols", "ipv5", "bad value"),
    ("mynetworks", "300.1.1.1/8", "bad value"),
])
def test_each_type_and_bound(mta_factory, name, value, words):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    set_main(m, **{name: value})
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    line = [l for l in r.stderr.splitlines() if name in l]
    assert line and line[0].startswith("sendarix: fatal: "), r.stderr
    assert words in line[0]


def test_expanded_value_is_checked(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    set_main(m, my_limit="lots", message_size_limit="$my_limit")
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert 'message_size_limit: bad size value: "lots"' in r.stderr


def test_transport_maps_must_open(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    set_main(m, transport_maps="inline:{example.com=[127.0.0.1]:25")
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert ('parameter transport_maps: unbalanced brace in '
            '"inline:{example.com=[127.0.0.1]:25"') in r.stderr
    set_main(m, transport_maps="inline:{example.com=[127.0.0.1]:25}")
    r = m.sendarix("check", check=False)
    assert r.returncode == 0, r.stderr


def test_master_cf_override_is_checked(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 1 smtpd "
                    "-o message_size_limit=10q\n"
                    "cleanup unix - - n - 1 cleanup\n", start=False)
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert "master.cf line 1: service 127.0.0.1:%d/inet: parameter " \
        'message_size_limit: bad size value: "10q"' % m.port in r.stderr


def test_unknown_parameter_is_a_warning(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 1 smtpd "
                    "-o no_such_knob=1\n"
                    "cleanup unix - - n - 1 cleanup\n", start=False)
    set_main(m, another_knob="x")
    r = m.sendarix("check", check=False)
    assert r.returncode == 0, r.stderr
    assert "unknown parameter another_knob" in r.stderr
    assert "warning: " in r.stderr and "no_such_knob" in r.stderr
    assert "fatal" not in r.stderr


def test_unknown_daemon_command(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF + "x unix - - n - 1 nosuchd\n",
                    start=False)
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert "sendarix: fatal: master.cf line 3: service x/unix: command " \
        "nosuchd: %s: No such file or directory" % \
        os.path.join(BIN, "nosuchd") in r.stderr
    r = m.sendarix("start", check=False)
    assert r.returncode == 1 and "nosuchd" in r.stderr
    assert not master_running(m)


def test_not_executable_command(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    prog = os.path.join(str(m.tmp), "prog")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(prog, 0o644)
    write_master_cf(m, FULL_MASTER_CF + "x unix - - n - 1 %s\n" % prog)
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert "%s is not executable" % prog in r.stderr


def test_malformed_master_cf(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 1\n", start=False)
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("sendarix: fatal: ")
    assert "master.cf, line 1" in r.stderr


def test_main_cf_syntax_error(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    with open(os.path.join(m.conf_dir, "main.cf"), "a") as f:
        f.write("this line is wrong\n")
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert "sendarix: fatal: " in r.stderr and "missing '='" in r.stderr


def test_queue_directory_checks(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    set_main(m, queue_directory=os.path.join(str(m.tmp), "no", "such"))
    r = m.sendarix("check", check=False)
    assert r.returncode == 1
    assert "does not exist and cannot be created" in r.stderr

    m2 = mta_factory(master_cf=FULL_MASTER_CF)
    os.chmod(os.path.join(m2.queue_dir, "private"), 0o755)
    r = m2.sendarix("check", check=False)
    assert r.returncode == 0
    assert "private has mode 0755, expected 0700" in r.stderr


# -- start, master -f -------------------------------------------------------

def test_start_refuses_bad_value(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    set_main(m, message_size_limit="abc")
    r = m.sendarix("start", check=False)
    assert r.returncode == 1
    assert 'message_size_limit: bad size value: "abc"' in r.stderr
    assert not master_running(m)
    assert not os.path.exists(os.path.join(m.queue_dir, "pid",
                                           "master.pid"))


def test_master_refuses_bad_value(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    set_main(m, message_size_limit="abc")
    for args in (["-f"], []):
        r = subprocess.run([MASTER] + args + ["-c", m.conf_dir],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1, args
        assert 'sendarix/master: fatal: parameter message_size_limit: ' \
            'bad size value: "abc"' in r.stderr
        assert "not starting" in r.stderr
    # Nothing was forked: no queue tree, no children.
    assert not os.path.exists(m.queue_dir)
    assert "daemon started" not in m.log()
    assert 'message_size_limit: bad size value' in m.log()


def test_master_refuses_unknown_daemon(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF + "x unix - - n - 1 nosuchd\n",
                    start=False)
    r = subprocess.run([MASTER, "-f", "-c", m.conf_dir],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "command nosuchd" in r.stderr


# -- reload -------------------------------------------------------------------

def test_reload_with_bad_value_keeps_old_config(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF)
    send(m)
    wait_for(lambda: len(m.queue_files()) == 1, what="first message queued")
    smtpd = m.child_pids("smtpd")
    cleanup = m.child_pids("cleanup")
    assert smtpd and cleanup

    set_main(m, message_size_limit="abc")
    # sendarix reload refuses, and says so.
    r = m.sendarix("reload", check=False)
    assert r.returncode == 1
    assert 'message_size_limit: bad size value: "abc"' in r.stderr
    assert "not reloading" in r.stderr
    # master itself refuses too, when it gets SIGHUP anyway.
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log("keeping the old configuration")
    assert "reload: parameter message_size_limit: bad size value" in m.log()
    assert m.proc.poll() is None
    assert m.child_pids("smtpd") == smtpd
    assert m.child_pids("cleanup") == cleanup
    # The old processes still take mail.
    send(m)
    wait_for(lambda: len(m.queue_files()) == 2, what="second message")
    assert "fatal" not in m.log()

    # Fixed: the reload goes through.
    set_main(m, message_size_limit="1m")
    m.sendarix("reload")
    wait_for(lambda: m.child_pids("smtpd")
             and m.child_pids("smtpd") != smtpd, what="new smtpd")
    send(m)
    wait_for(lambda: len(m.queue_files()) == 3, what="third message")


# -- exit status of failed commands -----------------------------------------------

def test_queue_commands_as_unprivileged_user_fail(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF)
    send(m)
    wait_for(lambda: len(m.queue_files()) == 1, what="message queued")
    m.stop()
    # The queue folders are 0700 and not nobody's.
    for args in (["queue", "delete", "ALL"], ["queue", "hold", "ALL"],
                 ["queue", "list"], ["queue", "flush"],
                 ["queue", "show", m.queue_files()[0]]):
        r = subprocess.run(["runuser", "-u", "nobody", "--", SENDARIX,
                            "-c", m.conf_dir] + args,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Permission denied" in r.stderr
    assert len(m.queue_files()) == 1
    assert "Mail queue is empty" not in r.stdout


def test_write_error_on_stdout_fails(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    with open("/dev/full", "w") as full:
        r = subprocess.run([SENDARIX, "-c", m.conf_dir, "map", "query",
                            "inline:{a=b}", "a"], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 1
    assert "write error" in r.stderr


def test_conf_edit_refuses_out_of_range(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    r = m.sendarix("conf", "-e", "hopcount_limit=0", check=False)
    assert r.returncode == 1
    assert "out of range" in r.stderr


def test_conf_edit_refuses_what_check_refuses(mta_factory):
    m = mta_factory(master_cf=FULL_MASTER_CF, start=False)
    r = m.sendarix("conf", "-e",
                   "smtpd_recipient_restrictions=permit_mynetworks, "
                   "reject_bogus", check=False)
    assert r.returncode == 1
    assert 'unknown restriction "reject_bogus"' in r.stderr
    with open(os.path.join(m.conf_dir, "main.cf")) as f:
        assert "reject_bogus" not in f.read()
    r = m.sendarix("conf", "-e",
                   "smtpd_recipient_restrictions=permit_mynetworks, reject")
    assert m.sendarix("check", check=False).returncode == 0
