"""DANE seam: TLSA lookups validated by libunbound against a local trust
anchor (RFC 7672 needs DNSSEC-secure TLSA records).

signed_dns.py serves a zone signed with a fresh key (dnspython +
python3-cryptography); tests/helpers/dnsrr runs lib/util/dns.c's
dns_lookup_rr() with dns_set_trust_anchor() on that key. The matching
of TLSA records against certificates is tests/unit/tls_dane_test.c.
"""

import os
import subprocess

import pytest

from conftest import BUILD
from signed_dns import SignedDnsServer, SignedZone

DNSRR = os.path.join(BUILD, "tests", "helpers", "dnsrr")
HASH = "3b" * 32


def dnsrr(*args):
    p = subprocess.run([DNSRR] + list(args), capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    zone = SignedZone("example.net", {
        "example.net": ["MX 10 mx.example.net."],
        "mx.example.net": ["A 127.0.0.2"],
        "_25._tcp.mx.example.net": ["TLSA 3 1 1 " + HASH,
                                    "TLSA 1 1 1 " + HASH],
        "_mta-sts.example.net": ['TXT "v=STSv1; id=7;"'],
    })
    zone.tamper("_25._tcp.bad.example.net", "TLSA 3 1 1 " + HASH)
    anchor = zone.write_anchor(tmp_path_factory.mktemp("ta") / "anchor")
    with SignedDnsServer(zone) as server:
        yield server, anchor


def test_tlsa_secure(signed):
    server, anchor = signed
    rc, out = dnsrr("-r", server.spec, "-T", anchor, "tlsa",
                    "_25._tcp.mx.example.net")
    assert rc == 0, out
    assert "status=OK secure=1 bogus=0 count=2" in out
    assert "3 1 1 %s usable=1" % HASH in out
    assert "1 1 1 %s usable=0" % HASH in out


def test_tlsa_without_anchor_is_insecure(signed):
    server, _ = signed
    rc, out = dnsrr("-r", server.spec, "tlsa", "_25._tcp.mx.example.net")
    assert rc == 0, out
    assert "status=OK secure=0" in out


def test_tlsa_bogus(signed):
    server, anchor = signed
    rc, out = dnsrr("-r", server.spec, "-T", anchor, "tlsa",
                    "_25._tcp.bad.example.net")
    assert rc == 1, out
    assert "status=TEMPFAIL secure=0 bogus=1" in out
    assert "DNSSEC validation failed" in out


def test_tlsa_secure_denial(signed):
    # No TLSA record, and the zone proves it (NSEC): DANE does not apply.
    server, anchor = signed
    rc, out = dnsrr("-r", server.spec, "-T", anchor, "tlsa",
                    "_25._tcp.nodane.example.net")
    assert rc == 1, out
    assert "status=NOTFOUND secure=1 bogus=0" in out


def test_txt_secure(signed):
    server, anchor = signed
    rc, out = dnsrr("-r", server.spec, "-T", anchor, "txt",
                    "_mta-sts.example.net")
    assert rc == 0, out
    assert "secure=1" in out and "v=STSv1; id=7;" in out
