"""lib/dns against a real DNS server.

Each test starts tests/integration/dnsserver.py (python3-dnslib, in a
thread) with a small zone on a free loopback port and runs the dnsq
helper (tests/helpers/dnsq.c: lib/dns on a libevent loop, libunbound
forwarding to that server) with "-r 127.0.0.1@PORT". dnsq prints one line
per address, "PREF HOST ipv4|ipv6 ADDRESS", in the order to try, or
"error: TEMP|PERM|NULLMX reason"; -v adds a "; status=..." line first.

Names are under example.net/.org: libunbound answers .test itself.
"""

import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import BUILD  # noqa: E402
from dnsserver import DnsServer, dead_port  # noqa: E402

DNSQ = os.path.join(BUILD, "tests", "helpers", "dnsq")

pytestmark = pytest.mark.skipif(not os.path.exists(DNSQ),
                                reason="dnsq helper not built")

ZONE = {
    # Several preferences, three exchangers share preference 10.
    "example.net": ["MX 20 backup.example.net.",
                    "MX 10 mx-a.example.net.",
                    "MX 10 mx-b.example.net.",
                    "MX 10 mx-c.example.net.",
                    "MX 5 primary.example.net."],
    "primary.example.net": ["A 192.0.2.5", "AAAA 2001:db8::5"],
    "mx-a.example.net": ["A 192.0.2.10"],
    "mx-b.example.net": ["A 192.0.2.11", "A 192.0.2.12"],
    "mx-c.example.net": ["AAAA 2001:db8::c"],
    "backup.example.net": ["A 192.0.2.20"],

    # No MX: the domain is its own exchanger.
    "nomx.example.net": ["A 192.0.2.30", "AAAA 2001:db8::30"],
    "v6only.example.net": ["AAAA 2001:db8::60"],
    "txtonly.example.net": ['TXT "no mail here"'],

    # RFC 7505 null MX, and null MX records mixed with real ones.
    "null.example.org": ["MX 0 ."],
    "mixednull.example.org": ["MX 0 .", "MX 10 mx.mixednull.example.org."],
    "mx.mixednull.example.org": ["A 192.0.2.40"],

    # Exchangers without addresses are skipped.
    "skip.example.org": ["MX 10 gone.example.org.",
                         "MX 20 noaddr.example.org.",
                         "MX 30 ok.example.org."],
    "noaddr.example.org": ['TXT "no address"'],
    "ok.example.org": ["A 192.0.2.50"],
    "allgone.example.org": ["MX 10 gone1.example.org.",
                            "MX 20 gone2.example.org."],

    # Exchangers whose lookups fail (see servfail/drop below).
    "broken.example.org": ["MX 10 sf.example.org."],
    "partial.example.org": ["MX 10 silent.example.org.",
                            "MX 20 ok.example.org."],
    "sf.example.org": ["A 192.0.2.60"],
    "half.example.org": ["MX 10 halfmx.example.org."],
    "halfmx.example.org": ["A 192.0.2.62", "AAAA 2001:db8::62"],
    "silent.example.org": ["A 192.0.2.61"],

    # Duplicates, and an answer too big for UDP (retried over TCP).
    "dup.example.org": ["MX 30 ok.example.org.", "MX 10 ok.example.org.",
                        "MX 20 mx.mixednull.example.org."],
    "big.example.org": ["A 198.51.100.%d" % i for i in range(1, 101)],
    "alias.example.org": ["CNAME ok.example.org."],
}

SERVFAIL = ["servfail.example.org", "sf.example.org",
            "halfmx.example.org/AAAA"]
REFUSED = ["refused.example.org"]
DROP = ["dropped.example.org", "silent.example.org"]


@pytest.fixture(scope="module")
def dns():
    server = DnsServer(ZONE, servfail=SERVFAIL, refused=REFUSED, drop=DROP)
    server.start()
    yield server
    server.stop()


def dnsq(dns_server, *args, timeout=5, valgrind=False, spec=None):
    """Run dnsq; return (exit status, output lines, seconds taken)."""
    cmd = [DNSQ, "-r", dns_server.spec if spec is None else spec,
           "-t", str(timeout)]
    cmd += list(args)
    if valgrind:
        cmd = ["valgrind", "-q", "--leak-check=full",
               "--errors-for-leak-kinds=definite,indirect",
               "--error-exitcode=99"] + cmd
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=timeout + 60)
    took = time.monotonic() - start
    assert "panic" not in p.stderr and "fatal" not in p.stderr, p.stderr
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, \
        p.stderr
    return p.returncode, p.stdout.splitlines(), took


def rows(lines):
    """Address lines as (pref, host, family, addr) tuples."""
    out = []
    for line in lines:
        if line.startswith(";"):
            continue
        pref, host, family, addr = line.split()
        out.append((int(pref), host, family, addr))
    return out


def status(lines):
    """The fields of the -v status line as a dict."""
    line = [x for x in lines if x.startswith("; ")][0]
    return dict(kv.split("=") for kv in line[2:].split())


def test_mx_order_by_preference(dns):
    orders = set()
    for _ in range(12):
        rc, lines, _ = dnsq(dns, "-p", "ipv4", "mx", "example.net")
        assert rc == 0, lines
        got = rows(lines)
        prefs = [r[0] for r in got]
        assert prefs == sorted(prefs)
        assert got[0] == (5, "primary.example.net", "ipv4", "192.0.2.5")
        assert got[1] == (5, "primary.example.net", "ipv6", "2001:db8::5")
        assert got[-1] == (20, "backup.example.net", "ipv4", "192.0.2.20")
        middle = got[2:-1]
        assert sorted(middle) == sorted([
            (10, "mx-a.example.net", "ipv4", "192.0.2.10"),
            (10, "mx-b.example.net", "ipv4", "192.0.2.11"),
            (10, "mx-b.example.net", "ipv4", "192.0.2.12"),
            (10, "mx-c.example.net", "ipv6", "2001:db8::c"),
        ])
        # One host's addresses stay together.
        hosts = [r[1] for r in middle]
        b = [i for i, h in enumerate(hosts) if h == "mx-b.example.net"]
        assert b[1] == b[0] + 1
        orders.add(tuple(dict.fromkeys(hosts)))
    # Equal preferences come in random order (1 in 6**11 to fail).
    assert len(orders) > 1


def test_address_preference(dns):
    rc, lines, _ = dnsq(dns, "-p", "ipv6", "a", "primary.example.net")
    assert rc == 0
    assert rows(lines) == [(0, "primary.example.net", "ipv6", "2001:db8::5"),
                           (0, "primary.example.net", "ipv4", "192.0.2.5")]
    rc, lines, _ = dnsq(dns, "-p", "ipv4", "a", "primary.example.net")
    assert [r[3] for r in rows(lines)] == ["192.0.2.5", "2001:db8::5"]
    seen = set()
    for _ in range(10):
        rc, lines, _ = dnsq(dns, "-p", "any", "a", "primary.example.net")
        assert rc == 0
        got = rows(lines)
        assert sorted(r[3] for r in got) == ["192.0.2.5", "2001:db8::5"]
        seen.add(got[0][2])
    assert seen == {"ipv4", "ipv6"}


def test_families(dns):
    rc, lines, _ = dnsq(dns, "-f", "ipv4", "mx", "example.net")
    assert rc == 0
    got = rows(lines)
    assert all(r[2] == "ipv4" for r in got)
    assert "mx-c.example.net" not in [r[1] for r in got]
    rc, lines, _ = dnsq(dns, "-f", "ipv6", "mx", "example.net")
    assert rc == 0
    assert [r[1] for r in rows(lines)] == ["primary.example.net",
                                           "mx-c.example.net"]


def test_implicit_mx(dns):
    rc, lines, _ = dnsq(dns, "-v", "-p", "ipv4", "mx", "nomx.example.net")
    assert rc == 0
    assert status(lines)["implicit"] == "1"
    assert rows(lines) == [(0, "nomx.example.net", "ipv4", "192.0.2.30"),
                           (0, "nomx.example.net", "ipv6", "2001:db8::30")]


def test_implicit_mx_aaaa_only(dns):
    rc, lines, _ = dnsq(dns, "mx", "v6only.example.net")
    assert rc == 0
    assert rows(lines) == [(0, "v6only.example.net", "ipv6", "2001:db8::60")]
    rc, lines, _ = dnsq(dns, "-f", "ipv4", "mx", "v6only.example.net")
    assert rc == 1
    assert lines[0].startswith("error: PERM ")


def test_no_mx_no_address(dns):
    rc, lines, _ = dnsq(dns, "mx", "txtonly.example.net")
    assert rc == 1
    assert lines == ["error: PERM Host or domain name not found. Name "
                     "service error for name=txtonly.example.net type=A: "
                     "Host found but no data record of requested type"] or \
        lines == ["error: PERM Host or domain name not found. Name "
                  "service error for name=txtonly.example.net type=AAAA: "
                  "Host found but no data record of requested type"]


def test_null_mx(dns):
    before = len(dns.queries)
    rc, lines, _ = dnsq(dns, "mx", "null.example.org")
    assert rc == 1
    assert lines == ["error: NULLMX Domain null.example.org does not "
                     "accept mail (nullMX)"]
    # Nothing is looked up after the MX answer.
    assert [q for q in dns.queries[before:] if q[1] != "MX"] == []


def test_null_mx_among_others_ignored(dns):
    rc, lines, _ = dnsq(dns, "mx", "mixednull.example.org")
    assert rc == 0
    assert rows(lines) == [(10, "mx.mixednull.example.org", "ipv4",
                            "192.0.2.40")]


def test_nxdomain(dns):
    rc, lines, _ = dnsq(dns, "mx", "nowhere.example.org")
    assert rc == 1
    assert lines == ["error: PERM Host or domain name not found. Name "
                     "service error for name=nowhere.example.org type=MX: "
                     "Host not found"]
    rc, lines, _ = dnsq(dns, "a", "nowhere.example.org")
    assert rc == 1
    assert lines[0].startswith("error: PERM Host or domain name not found.")


def test_servfail_and_refused(dns):
    rc, lines, took = dnsq(dns, "mx", "servfail.example.org", timeout=20)
    assert rc == 1
    assert lines[0].startswith("error: TEMP Name service error for "
                               "name=servfail.example.org type=MX")
    rc, lines, _ = dnsq(dns, "mx", "refused.example.org", timeout=20)
    assert rc == 1
    assert lines[0].startswith("error: TEMP ")


def test_dead_forwarder_times_out(dns):
    port = dead_port()
    rc, lines, took = dnsq(dns, "mx", "example.net", timeout=2,
                           spec="127.0.0.1@%d" % port)
    assert rc == 1
    assert lines == ["error: TEMP Name service error for name=example.net "
                     "type=MX: timed out after 2s"]
    assert took < 10


def test_silent_server_times_out(dns):
    rc, lines, took = dnsq(dns, "mx", "dropped.example.org", timeout=2)
    assert rc == 1
    assert lines[0].startswith("error: TEMP ")
    assert took < 10


def test_mx_host_without_address_skipped(dns):
    rc, lines, _ = dnsq(dns, "-v", "mx", "skip.example.org")
    assert rc == 0
    assert status(lines)["partial"] == "0"
    assert rows(lines) == [(30, "ok.example.org", "ipv4", "192.0.2.50")]


def test_no_mx_host_has_address(dns):
    rc, lines, _ = dnsq(dns, "mx", "allgone.example.org")
    assert rc == 1
    assert lines[0].startswith("error: PERM no MX host for "
                               "allgone.example.org has an address")


def test_mx_host_servfail_is_temporary(dns):
    rc, lines, _ = dnsq(dns, "mx", "broken.example.org", timeout=20)
    assert rc == 1
    assert lines[0].startswith("error: TEMP Name service error for "
                               "name=sf.example.org")


def test_partial_when_primary_silent(dns):
    rc, lines, took = dnsq(dns, "-v", "mx", "partial.example.org", timeout=2)
    assert rc == 0
    assert status(lines)["partial"] == "1"
    assert rows(lines) == [(20, "ok.example.org", "ipv4", "192.0.2.50")]
    assert took < 10


def test_one_family_failing_is_not_partial(dns):
    rc, lines, _ = dnsq(dns, "-v", "mx", "half.example.org", timeout=20)
    assert rc == 0
    assert status(lines)["partial"] == "0"
    assert rows(lines) == [(10, "halfmx.example.org", "ipv4", "192.0.2.62")]
    assert ("halfmx.example.org", "AAAA") in dns.queries


def test_duplicate_exchangers(dns):
    rc, lines, _ = dnsq(dns, "mx", "dup.example.org")
    assert rc == 0
    assert rows(lines) == [(10, "ok.example.org", "ipv4", "192.0.2.50"),
                           (20, "mx.mixednull.example.org", "ipv4",
                            "192.0.2.40")]


def test_large_answer_over_tcp(dns):
    rc, lines, _ = dnsq(dns, "-f", "ipv4", "a", "big.example.org")
    assert ("big.example.org", "A") in dns.tcp_queries
    assert rc == 0
    got = rows(lines)
    assert sorted(r[3] for r in got) == sorted(
        "198.51.100.%d" % i for i in range(1, 101))


def test_cname(dns):
    rc, lines, _ = dnsq(dns, "-f", "ipv4", "a", "alias.example.org")
    assert rc == 0
    assert rows(lines) == [(0, "alias.example.org", "ipv4", "192.0.2.50")]


def test_malformed_names_not_asked(dns):
    before = len(dns.queries)
    rc, lines, _ = dnsq(dns, "mx", "bad..example.org")
    assert rc == 1
    assert lines == ["error: PERM malformed domain name"]
    rc, lines, _ = dnsq(dns, "a", "bad host")
    assert lines == ["error: PERM malformed host name"]
    assert dns.queries[before:] == []


def test_address_literal(dns):
    rc, lines, _ = dnsq(dns, "a", "192.0.2.99")
    assert rc == 0
    assert lines == ["0 192.0.2.99 ipv4 192.0.2.99"]


def test_concurrent_lookups(dns):
    rc, lines, _ = dnsq(dns, "-p", "ipv4", "mx", "nomx.example.net",
                        "null.example.org", "skip.example.org",
                        "nowhere.example.org", timeout=10)
    assert rc == 1
    assert lines == [
        "nomx.example.net: 0 nomx.example.net ipv4 192.0.2.30",
        "nomx.example.net: 0 nomx.example.net ipv6 2001:db8::30",
        "null.example.org: error: NULLMX Domain null.example.org does not "
        "accept mail (nullMX)",
        "skip.example.org: 30 ok.example.org ipv4 192.0.2.50",
        "nowhere.example.org: error: PERM Host or domain name not found. "
        "Name service error for name=nowhere.example.org type=MX: Host not "
        "found",
    ]


def test_cancel_and_free(dns):
    rc, lines, _ = dnsq(dns, "-C", "mx", "example.net", "partial.example.org")
    assert (rc, lines) == (0, ["cancelled"])
    rc, lines, _ = dnsq(dns, "-F", "mx", "example.net", "dropped.example.org")
    assert (rc, lines) == (0, ["freed"])


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="valgrind not installed")
@pytest.mark.parametrize("args", [
    ("mx", "example.net"),
    ("mx", "partial.example.org"),
    ("mx", "null.example.org", "nowhere.example.org", "skip.example.org"),
    ("-C", "mx", "example.net", "dropped.example.org"),
    ("-F", "mx", "example.net", "dropped.example.org"),
    ("a", "big.example.org", "192.0.2.1", "bad..name"),
])
def test_no_leaks(dns, args):
    rc, lines, _ = dnsq(dns, *args, timeout=2, valgrind=True)
    assert rc in (0, 1), lines


def test_system_resolver(dns):
    # Empty dns_resolver: the servers of /etc/resolv.conf. "localhost" is
    # answered by libunbound itself, so no network is needed.
    rc, lines, _ = dnsq(dns, "-v", "-p", "ipv4", "mx", "localhost",
                        spec="")
    assert rc == 0, lines
    assert status(lines)["implicit"] == "1"
    assert rows(lines) == [(0, "localhost", "ipv4", "127.0.0.1"),
                           (0, "localhost", "ipv6", "::1")]


def test_bad_resolver_setting(dns):
    rc, lines, _ = dnsq(dns, "mx", "example.net", spec="ns.example.net")
    assert rc == 2
