"""`sendarix map build` and `sendarix map query` against small tables.

Every table type is exercised through the real command, as STYLE asks:
a throwaway config directory with an empty main.cf, table files in
tmp_path, no master needed.
"""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SENDARIX_BUILD", os.path.join(ROOT, "build"))
SENDARIX = os.path.join(BUILD, "bin", "sendarix")

EX_TEMPFAIL = 75


@pytest.fixture
def smap(tmp_path):
    """Run `sendarix -c CONFDIR map ...`; returns CompletedProcess."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text("")

    def run(*args, input=None):
        return subprocess.run([SENDARIX, "-c", str(conf), "map"] + list(args),
                              capture_output=True, text=True, input=input,
                              timeout=30)
    return run


def write(path, text):
    path.write_text(text)
    return str(path)


TEXT = """\
# comment
Example.COM\trelay:[mx.example.com]
user@example.org    someone@elsewhere.example
long\tfirst
 \tsecond
"""


def test_texthash_query(smap, tmp_path):
    t = "texthash:" + write(tmp_path / "t", TEXT)
    r = smap("query", t, "EXAMPLE.com")
    assert (r.returncode, r.stdout) == (0, "relay:[mx.example.com]\n")
    r = smap("query", t, "example.com", "nosuch", "User@Example.Org")
    assert r.returncode == 1
    assert r.stdout == ("example.com\trelay:[mx.example.com]\n"
                        "User@Example.Org\tsomeone@elsewhere.example\n")
    r = smap("query", t, "nosuch")
    assert (r.returncode, r.stdout) == (1, "")
    r = smap("query", t, "long")
    assert r.stdout == "first \tsecond\n"


@pytest.mark.parametrize("kind", ["hash", "btree"])
def test_db_build_and_query(smap, tmp_path, kind):
    src = write(tmp_path / "access", TEXT)
    spec = kind + ":" + src
    r = smap("build", spec)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(src + ".db")
    assert not os.path.exists(src + ".db.tmp")
    r = smap("query", spec, "Example.Com")
    assert (r.returncode, r.stdout) == (0, "relay:[mx.example.com]\n")
    r = smap("query", spec, "missing")
    assert (r.returncode, r.stdout) == (1, "")

    # Rebuild replaces the table.
    write(tmp_path / "access", "new.example OK\n")
    assert smap("build", spec).returncode == 0
    assert smap("query", spec, "new.example").stdout == "OK\n"
    assert smap("query", spec, "example.com").returncode == 1

    # A malformed source is refused and the old table stays.
    write(tmp_path / "access", "new.example OK\nno-value-here\n")
    r = smap("build", spec)
    assert r.returncode == 1
    assert "line 2" in r.stderr
    assert smap("query", spec, "new.example").stdout == "OK\n"


def test_db_missing_is_tempfail(smap, tmp_path):
    src = str(tmp_path / "absent")
    r = smap("build", "hash:" + src)
    assert r.returncode == 1
    assert src in r.stderr
    assert not os.path.exists(src + ".db")
    r = smap("query", "hash:" + src, "key")
    assert r.returncode == EX_TEMPFAIL
    assert r.stdout == ""
    assert src + ".db" in r.stderr
    assert "try again" in r.stderr


def test_build_refuses_other_types(smap, tmp_path):
    r = smap("build", "texthash:" + write(tmp_path / "t", TEXT))
    assert r.returncode == 1
    assert "texthash" in r.stderr


def test_pcre_query(smap, tmp_path):
    t = "pcre:" + write(tmp_path / "p", """\
/^(.+)@(example\\.com)$/\tlocal=$1 domain=${2}
if /\\.test$/
/^bounce-/\tbounces
endif
/^exact$/C\tcase-sensitive hit
/^any$/i\tcaseless hit
""")
    r = smap("query", t, "Joe@Example.com")
    assert (r.returncode, r.stdout) == (0, "local=Joe domain=Example.com\n")
    assert smap("query", t, "bounce-x.test").stdout == "bounces\n"
    assert smap("query", t, "bounce-x.org").returncode == 1
    assert smap("query", t, "exact").stdout == "case-sensitive hit\n"
    assert smap("query", t, "EXACT").returncode == 1
    assert smap("query", t, "ANY").stdout == "caseless hit\n"


def test_pcre_bad_regex(smap, tmp_path):
    path = write(tmp_path / "bad", "/ok/ fine\n\n/(unclosed/ x\n")
    r = smap("query", "pcre:" + path, "ok")
    assert r.returncode == EX_TEMPFAIL
    assert r.stdout == ""
    assert path + ", line 3" in r.stderr


def test_cidr_query(smap, tmp_path):
    t = "cidr:" + write(tmp_path / "c", """\
192.0.2.0/24\tdoc-v4
[2001:db8::]/32\tdoc-v6
10.1.2.3\tone host
""")
    assert smap("query", t, "192.0.2.200").stdout == "doc-v4\n"
    assert smap("query", t, "::ffff:192.0.2.1").stdout == "doc-v4\n"
    assert smap("query", t, "2001:db8:1::9").stdout == "doc-v6\n"
    assert smap("query", t, "10.1.2.3").stdout == "one host\n"
    assert smap("query", t, "10.1.2.4").returncode == 1
    assert smap("query", t, "garbage").returncode == 1

    bad = write(tmp_path / "bad", "192.0.2.0/24 ok\n192.0.2.0/99 bad\n")
    r = smap("query", "cidr:" + bad, "192.0.2.1")
    assert r.returncode == EX_TEMPFAIL
    assert bad + ", line 2" in r.stderr


def test_inline_and_static(smap):
    t = "inline:{ Key=Value, bare, {spaced = a, b} }"
    assert smap("query", t, "KEY").stdout == "Value\n"
    assert smap("query", t, "bare").stdout == "OK\n"
    assert smap("query", t, "spaced").stdout == "a, b\n"
    assert smap("query", t, "other").returncode == 1
    r = smap("query", "inline:{}", "x")
    assert r.returncode == EX_TEMPFAIL
    assert "empty" in r.stderr
    assert smap("query", "static:{ 554 no thanks }", "x").stdout == \
        "554 no thanks\n"


def test_stdin_keys(smap, tmp_path):
    t = "texthash:" + write(tmp_path / "t", TEXT)
    r = smap("query", t, "-", input="example.com\nnosuch\n\nUSER@example.org\r\n")
    assert r.returncode == 1
    assert r.stdout == ("example.com\trelay:[mx.example.com]\n"
                        "USER@example.org\tsomeone@elsewhere.example\n")
    r = smap("query", t, "-", input="example.com\n")
    assert (r.returncode, r.stdout) == (0, "example.com\trelay:[mx.example.com]\n")


def test_usage_and_bad_specs(smap):
    assert smap().returncode == 2
    assert smap("query", "inline:{a}").returncode == 2
    assert smap("frobnicate", "x", "y").returncode == 2
    r = smap("query", "nosuchtype:/x", "k")
    assert r.returncode == 1
    assert "nosuchtype" in r.stderr
    r = smap("query", "nocolon", "k")
    assert r.returncode == 1
