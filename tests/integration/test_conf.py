"""`sendarix conf`: show and edit main.cf through the real command.

Each test writes a throwaway config directory in tmp_path and runs
`sendarix -c DIR conf ...`; no master is needed.
"""

import os
import stat
import subprocess

import pytest

from conftest import SENDARIX


def run(conf_dir, *args):
    return subprocess.run([SENDARIX, "-c", str(conf_dir), "conf"] + list(args),
                          capture_output=True, text=True, timeout=30)


def pairs(text):
    """{name: value} from `name = value` lines ("name =" is empty)."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" =")
        assert sep, "not a setting line: %r" % line
        out[name] = value[1:] if value.startswith(" ") else value
    return out


MAIN_CF = """\
# Test configuration.
myhostname = mx.test.example
smtpd_banner = $myhostname
    ESMTP ${mail_name}
  # a comment among continuation lines

relay_domains = first.example
relay_domains = second.example
my_list = a, b
message_size_limit = 10m
"""


@pytest.fixture
def conf_dir(tmp_path):
    d = tmp_path / "conf"
    d.mkdir()
    (d / "main.cf").write_text(MAIN_CF)
    return d


def test_n_shows_raw_settings_sorted(conf_dir):
    r = run(conf_dir, "-n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [
        "message_size_limit = 10m",
        "my_list = a, b",
        "myhostname = mx.test.example",
        "relay_domains = second.example",
        "smtpd_banner = $myhostname ESMTP ${mail_name}",
    ]
    # The user-defined name is kept but warned about, with its line.
    assert "main.cf, line 9: unknown parameter my_list" in r.stderr


def test_nx_expands(conf_dir):
    r = run(conf_dir, "-nx")
    assert r.returncode == 0, r.stderr
    assert pairs(r.stdout)["smtpd_banner"] == "mx.test.example ESMTP Sendarix"


def test_full_listing_is_expanded_and_complete(conf_dir):
    r = run(conf_dir)
    assert r.returncode == 0, r.stderr
    names = [line.partition(" =")[0] for line in r.stdout.splitlines()]
    assert names == sorted(names)
    got = pairs(r.stdout)
    # Every parameter of the table is there (-d lists exactly the table).
    table = pairs(run(conf_dir, "-d").stdout)
    assert set(table) <= set(got)
    assert "my_list" in got and "my_list" not in table
    assert got["smtpd_banner"] == "mx.test.example ESMTP Sendarix"
    assert got["myorigin"] == "mx.test.example"
    assert got["mydomain"] == "test.example"
    assert got["config_directory"] == str(conf_dir)
    assert got["smtpd_recipient_limit"] == "1000"
    assert got["maillog_file"] == ""
    assert "maillog_file =" in r.stdout.splitlines()


def test_named_and_value_only(conf_dir):
    r = run(conf_dir, "mail_name", "smtpd_banner", "my_list")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("mail_name = Sendarix\n"
                        "smtpd_banner = mx.test.example ESMTP Sendarix\n"
                        "my_list = a, b\n")
    r = run(conf_dir, "-h", "relay_domains", "message_size_limit")
    assert r.stdout == "second.example\n10m\n"


def test_d_shows_defaults(conf_dir):
    r = run(conf_dir, "-d", "smtpd_banner", "relay_domains", "mail_name")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("smtpd_banner = $myhostname ESMTP $mail_name\n"
                        "relay_domains =\n"
                        "mail_name = Sendarix\n")


def test_unknown_name_fails(conf_dir):
    r = run(conf_dir, "mail_name", "no_such_parameter")
    assert r.returncode == 1
    assert r.stdout == "mail_name = Sendarix\n"
    assert "sendarix: no_such_parameter: unknown parameter" in r.stderr
    r = run(conf_dir, "-d", "my_list")
    assert r.returncode == 1


def test_usage_error(conf_dir):
    r = run(conf_dir, "-z")
    assert r.returncode == 2
    assert "usage" in r.stderr
    r = run(conf_dir, "-e")
    assert r.returncode == 2


def test_edit_round_trip(conf_dir):
    path = conf_dir / "main.cf"
    os.chmod(path, 0o640)
    r = run(conf_dir, "-e", "smtpd_banner=$myhostname hello",
            "relay_domains = third.example", "mynetworks=10.0.0.0/8",
            "my_new_thing=1")
    assert r.returncode == 0, r.stderr
    assert "my_new_thing: unknown parameter" in r.stderr
    text = path.read_text()
    assert text == """\
# Test configuration.
myhostname = mx.test.example
smtpd_banner = $myhostname hello
  # a comment among continuation lines

relay_domains = third.example
relay_domains = third.example
my_list = a, b
message_size_limit = 10m
mynetworks = 10.0.0.0/8
my_new_thing = 1
"""
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(os.listdir(conf_dir)) == ["main.cf"]   # no temp file left
    got = pairs(run(conf_dir, "-n").stdout)
    assert got["smtpd_banner"] == "$myhostname hello"
    assert got["relay_domains"] == "third.example"
    assert got["mynetworks"] == "10.0.0.0/8"
    assert got["my_new_thing"] == "1"
    assert run(conf_dir, "-h", "smtpd_banner").stdout == \
        "mx.test.example hello\n"
    # Editing again with the same value changes nothing.
    r = run(conf_dir, "-e", "mynetworks=10.0.0.0/8")
    assert r.returncode == 0
    assert path.read_text() == text


def test_edit_file_without_final_newline(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "main.cf").write_text("mail_name = A\nmyhostname = h.example")
    r = run(d, "-e", "mail_name=B", "relay_domains=x.example")
    assert r.returncode == 0, r.stderr
    assert (d / "main.cf").read_text() == (
        "mail_name = B\nmyhostname = h.example\nrelay_domains = x.example\n")


def test_edit_refuses_bad_values(conf_dir):
    before = (conf_dir / "main.cf").read_text()
    for arg in ["message_size_limit=lots", "smtpd_timeout=5 minutes",
                "smtpd_forbid_bare_newline=maybe", "hopcount_limit=1.5",
                "no_equals_sign", "bad-name=1", "=1"]:
        r = run(conf_dir, "-e", "mail_name=Changed", arg)
        assert r.returncode == 1, arg
        assert "sendarix:" in r.stderr
    assert (conf_dir / "main.cf").read_text() == before
    # A value with $name is left to the programs to check.
    r = run(conf_dir, "-e", "hopcount_limit=$my_list")
    assert r.returncode == 0, r.stderr


def test_syntax_error_reported(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "main.cf").write_text("# ok\nmail_name = x\nthis line is wrong\n")
    r = run(d, "-n")
    assert r.returncode == 1
    assert "main.cf, line 3: missing '='" in r.stderr


def test_missing_main_cf(tmp_path):
    r = run(tmp_path / "nowhere", "-n")
    assert r.returncode == 1
    assert "main.cf" in r.stderr


def test_expansion_loop_warned_once(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "main.cf").write_text("mail_name = $smtpd_banner\n")
    r = run(d, "mail_name", "smtpd_banner")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("mail_name = $smtpd_banner\n"
                        "smtpd_banner = $myhostname ESMTP $mail_name\n")
    assert r.stderr.count("expansion loop") == 1
