"""DANE (RFC 7672) in smtp-out: the levels dane and dane-only against a
DNSSEC-signed zone.

signed_dns.py serves example.net signed with a fresh key, which smtp-out
gets as dns_trust_anchor_file; the MX hosts are one `sendarix sandbox`
with STARTTLS on 127.0.0.2 (a certificate from a throw-away CA that
smtp-out does not trust: only TLSA records can authenticate it). Each
domain dN.example.net has its own MX host name with its own TLSA state.
The test plays qmgr, as test_smtp_out.py does.
"""

import hashlib
import os
import re
import shutil
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from https_server import CertAuthority
from signed_dns import SignedDnsServer, SignedZone
from test_smtp_out import (deliver, inject, no_crashes,  # noqa: F401
                           sandboxes, smtp_out_mta, free_port)


def spki_sha256(cert_file):
    with open(cert_file, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def dane_env(tmp_path, mta_factory, sandboxes):
    ca = CertAuthority(tmp_path / "ca")
    cert, key = ca.issue("mx.example.net")
    good = spki_sha256(cert)
    zone = SignedZone("example.net", {
        "d1.example.net": ["MX 10 mx1.example.net."],
        "d2.example.net": ["MX 10 mx2.example.net."],
        "d3.example.net": ["MX 10 mx3.example.net."],
        "d4.example.net": ["MX 10 mx4.example.net."],
        "d5.example.net": ["MX 10 mx5.example.net."],
        "mx1.example.net": ["A 127.0.0.2"],
        "mx2.example.net": ["A 127.0.0.2"],
        "mx3.example.net": ["A 127.0.0.2"],
        "mx4.example.net": ["A 127.0.0.2"],
        "mx5.example.net": ["A 127.0.0.2"],
    }, ttl=0)
    port = free_port("127.0.0.2")
    # d1: a matching DANE-EE record; d2: a wrong one; d3: none (proven);
    # d4: a bogus (badly signed) answer; d5: only an unusable PKIX-EE.
    zone.add_signed("_%d._tcp.mx1.example.net" % port, "TLSA 3 1 1 " + good)
    zone.add_signed("_%d._tcp.mx2.example.net" % port,
                    "TLSA 3 1 1 " + "00" * 32)
    zone.tamper("_%d._tcp.mx4.example.net" % port, "TLSA 3 1 1 " + good)
    zone.add_signed("_%d._tcp.mx5.example.net" % port, "TLSA 1 1 1 " + good)
    # The anchor must be readable by mail_owner when the tests run as root.
    tadir = tempfile.mkdtemp(prefix="sendarix-ta-", dir="/tmp")
    os.chmod(tadir, 0o755)
    anchor = zone.write_anchor(os.path.join(tadir, "anchor"))
    os.chmod(anchor, 0o644)
    with SignedDnsServer(zone) as dns:
        class Env:
            pass
        env = Env()
        env.sink = sandboxes(addr="127.0.0.2", port=port,
                             args=["-c", cert, "-k", key])
        env.port = port

        def make(level):
            env.mta = smtp_out_mta(mta_factory, {
                "dns_resolver": dns.spec,
                "dns_trust_anchor_file": anchor,
                "smtp_default_port": str(port),
                "smtp_connection_cache_time_limit": "0",
                "smtp_tls_security_level": level,
                "inet_protocols": "ipv4",
                "smtp_tls_rpt_enable": "yes",
            })
            return env.mta
        env.make = make
        yield env
    shutil.rmtree(tadir, ignore_errors=True)


def tlsrpt_records(env):
    import json
    d = os.path.join(env.mta.queue_dir, "data", "tlsrpt")
    out = []
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, name)) as f:
            out += [json.loads(line) for line in f]
    return out


def send(env, domain):
    rcpt = "user@" + domain
    qid = inject(env.mta, [rcpt])
    return deliver(env.mta, qid, [rcpt], domain)[0]


def test_dane_match_delivers_verified(dane_env):
    dane_env.make("dane")
    res = send(dane_env, "d1.example.net")
    assert res["status"] == "sent", dane_env.mta.log()
    log = dane_env.mta.log()
    assert "DANE TLSA DANE-EE(3) 1 1 at depth 0 authenticated " \
        "mx1.example.net[127.0.0.2]" in log
    assert "Verified TLS connection established to " \
        "mx1.example.net[127.0.0.2]" in log
    assert re.search(r"to=<user@d1.example.net>.*status=sent.*"
                     r"tls=TLSv1\.[23]:[^:]+:Verified", log), log
    assert len(dane_env.sink.messages()) == 1
    recs = tlsrpt_records(dane_env)
    assert any(r["policy-type"] == "tlsa" and r["result"] == "success"
               and r["domain"] == "d1.example.net"
               and r["policy"].startswith("3 1 1 ") for r in recs), recs


def test_dane_mismatch_defers(dane_env):
    dane_env.make("dane")
    res = send(dane_env, "d2.example.net")
    assert res["status"] == "deferred", res
    assert res["dsn"] == "4.7.5"
    assert "Server certificate not trusted (DANE)" in res["reply"]
    assert len(dane_env.sink.messages()) == 0
    assert "Untrusted TLS connection established to mx2.example.net" \
        in dane_env.mta.log()
    assert any(r["policy-type"] == "tlsa"
               and r["result"] == "validation-failure"
               for r in tlsrpt_records(dane_env))


def test_dane_without_tlsa_is_opportunistic(dane_env):
    dane_env.make("dane")
    res = send(dane_env, "d3.example.net")
    assert res["status"] == "sent", res
    assert "Untrusted TLS connection established to mx3.example.net" \
        in dane_env.mta.log()


def test_dane_only_without_tlsa_defers(dane_env):
    dane_env.make("dane-only")
    res = send(dane_env, "d3.example.net")
    assert res["status"] == "deferred", res
    assert "has no TLSA records" in res["reply"]
    res = send(dane_env, "d1.example.net")
    assert res["status"] == "sent", res


def test_dane_bogus_tlsa_defers(dane_env):
    dane_env.make("dane")
    res = send(dane_env, "d4.example.net")
    assert res["status"] == "deferred", res
    assert "TLSA lookup error" in res["reply"]
    assert "DNSSEC validation failed" in res["reply"]


def test_dane_unusable_tlsa_is_encrypt(dane_env):
    dane_env.make("dane")
    res = send(dane_env, "d5.example.net")
    assert res["status"] == "sent", res
    assert "Untrusted TLS connection established to mx5.example.net" \
        in dane_env.mta.log()
