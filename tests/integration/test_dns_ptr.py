"""lib/dns dns_lookup_ptr() against a real DNS server (dnsq ptr ADDR).

The client-name lookup of smtpd: the PTR names of an address, accepted
only when their A/AAAA records lead back to it (forward confirmation).
See test_dns.py for the helper and the server.
"""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import BUILD  # noqa: E402
from dnsserver import DnsServer  # noqa: E402

DNSQ = os.path.join(BUILD, "tests", "helpers", "dnsq")

pytestmark = pytest.mark.skipif(not os.path.exists(DNSQ),
                                reason="dnsq helper not built")

ZONE = {
    "5.0.0.127.in-addr.arpa": ["PTR client5.example.net."],
    "client5.example.net": ["A 127.0.0.5", "A 127.0.0.50"],
    "6.0.0.127.in-addr.arpa": ["PTR liar.example.net."],
    "liar.example.net": ["A 192.0.2.99"],
    "7.0.0.127.in-addr.arpa": ["PTR gone.example.net.",
                               "PTR client7.example.net."],
    "client7.example.net": ["A 127.0.0.7"],
    "10.0.0.127.in-addr.arpa": ["PTR sf.example.net."],
}


def ptr(dns, *addrs, timeout=5):
    r = subprocess.run([DNSQ, "-t", str(timeout), "-r", dns.spec, "ptr"]
                       + list(addrs), capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout.strip().splitlines()


def test_ptr_confirmed():
    with DnsServer(ZONE) as dns:
        assert ptr(dns, "127.0.0.5") == (0, ["0 client5.example.net ipv4 "
                                             "127.0.0.5"])
        # Any of the PTR names may confirm.
        assert ptr(dns, "127.0.0.7")[1] == ["0 client7.example.net ipv4 "
                                            "127.0.0.7"]
        # An IPv4-mapped IPv6 address is the IPv4 address.
        assert ptr(dns, "::ffff:127.0.0.5")[1] == [
            "0 client5.example.net ipv4 127.0.0.5"]
        assert ("client5.example.net", "AAAA") not in dns.queries


def test_ptr_not_confirmed():
    with DnsServer(ZONE, servfail=["sf.example.net"]) as dns:
        assert ptr(dns, "127.0.0.6") == (1, [
            "error: PERM hostname liar.example.net does not resolve to "
            "address 127.0.0.6"])
        assert ptr(dns, "127.0.0.8") == (1, [
            "error: PERM no PTR record for address 127.0.0.8"])
        code, out = ptr(dns, "127.0.0.10")
        assert code == 1 and out[0].startswith("error: TEMP "), out
        assert ptr(dns, "not-an-address") == (1, [
            "error: PERM malformed address"])


def test_ptr_timeout():
    with DnsServer(ZONE, drop=["5.0.0.127.in-addr.arpa"]) as dns:
        code, out = ptr(dns, "127.0.0.5", timeout=1)
        assert code == 1
        assert out == ["error: TEMP Name service error for "
                       "name=127.0.0.5 type=PTR: timed out after 1s"]


def test_ptr_loopback_is_localhost():
    with DnsServer(ZONE) as dns:
        assert ptr(dns, "127.0.0.1") == (0, ["0 localhost ipv4 127.0.0.1"])
        assert dns.queries == []
