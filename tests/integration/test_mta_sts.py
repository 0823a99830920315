"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) in smtp-out.

A real master with smtpd, cleanup and smtp-out (no qmgr: the test plays
qmgr as test_smtp_out.py does). DNS comes from tests/integration/
dnsserver.py: the MX records of example.net, the _mta-sts TXT record and
the address of mta-sts.example.net (127.0.0.1). The policy is served by
a local HTTPS server (https_server.py) whose certificate for
mta-sts.example.net comes from a throw-away CA given to smtp-out with
smtp_mta_sts_CAfile; its port is smtp_mta_sts_port (443 in real life).
The MX hosts are `sendarix sandbox` sinks on 127.0.0.2 (clear text)
and 127.0.0.3 (STARTTLS with a certificate for mx2.example.net from the
same CA, which smtp-out trusts through smtp_tls_CAfile): "enforce"
requires verified TLS with the MX host's name (level secure).
"""

import contextlib
import json
import os
import subprocess
import time

import pytest

from conftest import (SENDARIX, maps_libcurl, restart_without_libcurl,
                      wait_for, without_libcurl)
from dnsserver import DnsServer
from https_server import CertAuthority, HttpsServer
from test_smtp_out import (deliver, inject, mx_port, no_crashes,  # noqa: F401
                           sandboxes, smtp_out_mta)

POLICY_PATH = "/.well-known/mta-sts.txt"


def policy(mode, *mx, max_age=86400):
    lines = ["version: STSv1", "mode: %s" % mode]
    lines += ["mx: %s" % m for m in mx]
    lines.append("max_age: %d" % max_age)
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def sts_env(ca, mta_factory, sandboxes):
    """DNS, HTTPS policy server, two MX sinks and an MTA with MTA-STS on."""
    port = mx_port()
    cert, key = ca.issue("mta-sts.example.net")
    mx2_cert, mx2_key = ca.issue("mx2.example.net")
    zone = {
        "example.net": ["MX 10 mx1.example.net.", "MX 20 mx2.example.net."],
        "mx1.example.net": ["A 127.0.0.2"],
        "mx2.example.net": ["A 127.0.0.3"],
        "_mta-sts.example.net": ['TXT "v=STSv1; id=1;"'],
        "mta-sts.example.net": ["A 127.0.0.1"],
    }
    routes = {POLICY_PATH: (200, "text/plain",
                            policy("enforce", "mx2.example.net"))}

    class Env:
        pass

    env = Env()
    env.https = HttpsServer(routes, cert, key).start()
    env.routes = routes
    # TTL 0: a changed record is seen at once (libunbound caches).
    with DnsServer(zone, ttl=0) as dns:
        env.dns = dns
        env.mta = smtp_out_mta(mta_factory, {
            "dns_resolver": dns.spec,
            "smtp_default_port": str(port),
            "smtp_connection_cache_time_limit": "0",
            "smtp_mta_sts_enable": "yes",
            "smtp_mta_sts_port": str(env.https.port),
            "smtp_mta_sts_CAfile": ca.cafile,
            "smtp_mta_sts_timeout": "10s",
            "smtp_tls_rpt_enable": "yes",
            "smtp_tls_CAfile": ca.cafile,
        })
        env.mx1 = sandboxes(addr="127.0.0.2", port=port)
        env.mx2 = sandboxes(addr="127.0.0.3", port=port,
                            args=["-c", mx2_cert, "-k", mx2_key])
        env.port = port

        def restart_mx2(args=()):
            env.mx2.stop()
            env.mx2 = sandboxes(addr="127.0.0.3", port=port,
                                args=list(args))
        env.restart_mx2 = restart_mx2
        yield env
    env.https.stop()


def send(env, rcpt):
    qid = inject(env.mta, [rcpt])
    return deliver(env.mta, qid, [rcpt], "example.net")[0]


def tlsrpt_records(env):
    d = os.path.join(env.mta.queue_dir, "data", "tlsrpt")
    out = []
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, name)) as f:
            out += [json.loads(line) for line in f]
    return out


def test_enforce_skips_mx_outside_policy(sts_env):
    res = send(sts_env, "a@example.net")
    assert res["status"] == "sent", sts_env.mta.log()
    # mx1 is the better MX but not in the policy: mx2 gets the mail.
    assert res["relay"] == "mx2.example.net[127.0.0.3]:%d" % sts_env.port, \
        sts_env.mta.log()
    assert len(sts_env.mx1.messages()) == 0
    assert len(sts_env.mx2.messages()) == 1
    log = sts_env.mta.log()
    assert "MTA-STS policy for example.net fetched: id=1 mode=enforce" in log
    assert ("MX host mx1.example.net is not in the policy, skipped"
            in log)
    assert sts_env.https.hits[POLICY_PATH] == 1
    # Level secure with the MX host name: verified TLS.
    assert ("Verified TLS connection established to mx2.example.net"
            "[127.0.0.3]" in log)
    assert "tls=TLSv1.3:" in log or "tls=TLSv1.2:" in log
    recs = tlsrpt_records(sts_env)
    assert any(r["result"] == "validation-failure"
               and r["mx"] == "mx1.example.net" and r["policy-type"] == "sts"
               for r in recs), recs
    assert any(r["result"] == "success" and r["mx"] == "mx2.example.net"
               for r in recs), recs
    # The policy is cached on disk with its id.
    with open(os.path.join(sts_env.mta.queue_dir, "data", "mta-sts",
                           "example.net")) as f:
        assert f.read().startswith("id: 1\n")


def test_enforce_no_mx_left_defers(sts_env):
    sts_env.routes[POLICY_PATH] = (200, "text/plain",
                                   policy("enforce", "*.other.example"))
    res = send(sts_env, "b@example.net")
    assert res["status"] == "deferred", res
    assert res["dsn"] == "4.7.5"
    assert "no MX host matches the policy" in res["reply"]
    assert len(sts_env.mx1.messages()) == 0
    assert len(sts_env.mx2.messages()) == 0


def test_enforce_requires_starttls(sts_env):
    sts_env.restart_mx2()                   # no STARTTLS
    res = send(sts_env, "b2@example.net")
    assert res["status"] == "deferred", res
    assert res["dsn"] == "4.7.4"
    assert "TLS is required, but was not offered" in res["reply"]
    assert len(sts_env.mx2.messages()) == 0
    assert any(r["result"] == "starttls-not-supported"
               for r in tlsrpt_records(sts_env))


def test_enforce_requires_mx_name_in_certificate(sts_env, ca):
    cert, key = ca.issue("other.example.org")
    sts_env.restart_mx2(["-c", cert, "-k", key])
    res = send(sts_env, "b3@example.net")
    assert res["status"] == "deferred", res
    assert res["dsn"] == "4.7.5"
    assert "Server certificate not verified" in res["reply"]
    assert len(sts_env.mx2.messages()) == 0
    recs = tlsrpt_records(sts_env)
    assert any(r["result"] == "certificate-host-mismatch"
               and r["mx"] == "mx2.example.net" for r in recs), recs


def test_testing_logs_but_delivers(sts_env):
    sts_env.routes[POLICY_PATH] = (200, "text/plain",
                                   policy("testing", "mx2.example.net"))
    res = send(sts_env, "c@example.net")
    assert res["status"] == "sent", res
    assert res["relay"] == "mx1.example.net[127.0.0.2]:%d" % sts_env.port
    log = sts_env.mta.log()
    assert ("MX host mx1.example.net is not in the policy, would be "
            "skipped in enforce mode" in log)
    # mx1 has no STARTTLS: testing only logs it.
    assert ("would fail in enforce mode: starttls-not-supported" in log)


def test_fetch_failure_without_cache(sts_env, tmp_path):
    sts_env.routes[POLICY_PATH] = (404, "text/plain", "no policy here")
    res = send(sts_env, "d@example.net")
    # RFC 8461 section 5: no policy, normal delivery to the best MX.
    assert res["status"] == "sent", res
    assert res["relay"] == "mx1.example.net[127.0.0.2]:%d" % sts_env.port
    assert "MTA-STS policy fetch for example.net failed" in \
        sts_env.mta.log()
    recs = tlsrpt_records(sts_env)
    fail = [r for r in recs if r["result"] == "sts-policy-fetch-error"]
    assert fail and fail[0]["domain"] == "example.net", recs
    assert "HTTP status 404" in fail[0]["reason"]

    # The daily report (RFC 8460 section 4).
    day = sorted(os.listdir(os.path.join(sts_env.mta.queue_dir, "data",
                                         "tlsrpt")))[0]
    out = tmp_path / "reports"
    p = sts_env.mta.sendarix("tlsrpt", "-d", day, "-o", str(out))
    assert "1 report for %s" % day in p.stdout
    files = os.listdir(str(out))
    assert len(files) == 1 and "!example.net!" in files[0]
    assert files[0].endswith(".json")
    with open(os.path.join(str(out), files[0])) as f:
        rep = json.load(f)
    assert rep["date-range"]["start-datetime"] == day + "T00:00:00Z"
    assert rep["contact-info"]
    pol = rep["policies"][0]
    assert pol["policy"]["policy-type"] == "sts"
    assert pol["policy"]["policy-domain"] == "example.net"
    assert pol["summary"]["total-failure-session-count"] >= 1
    det = pol["failure-details"][0]
    assert det["result-type"] == "sts-policy-fetch-error"
    assert det["failed-session-count"] >= 1


def test_libcurl_loaded_only_with_mta_sts(sts_env, mta_factory, sandboxes):
    # lib/http loads libcurl (dlopen) only in a process that uses HTTP.
    res = send(sts_env, "m@example.net")
    assert res["relay"].startswith("mx2.example.net"), res
    pids = sts_env.mta.child_pids("smtp-out")
    assert pids and all(maps_libcurl(p) for p in pids)
    pids = sts_env.mta.child_pids("smtpd")
    assert pids and not any(maps_libcurl(p) for p in pids)
    # smtp-out without MTA-STS, after a delivery: libcurl never mapped.
    sb = sandboxes()
    plain = smtp_out_mta(mta_factory)
    qid = inject(plain, ["p@example.net"])
    res = deliver(plain, qid, ["p@example.net"], "[127.0.0.1]:%d" % sb.port)
    assert res[0]["status"] == "sent", res
    pids = plain.child_pids("smtp-out")
    assert pids and not any(maps_libcurl(p) for p in pids)


def test_without_libcurl_the_fetch_fails(sts_env):
    # libcurl.so.4 cannot be loaded: smtp-out says so and goes on as when
    # the policy cannot be fetched (RFC 8461 section 5: no policy).
    restart_without_libcurl(sts_env.mta)
    res = send(sts_env, "n@example.net")
    assert res["status"] == "sent", res
    assert res["relay"] == "mx1.example.net[127.0.0.2]:%d" % sts_env.port
    log = sts_env.mta.log()
    assert "warning: http: cannot load libcurl.so.4: " in log
    assert "MTA-STS policy fetch for example.net failed" in log
    assert sts_env.https.hits.get(POLICY_PATH, 0) == 0
    recs = tlsrpt_records(sts_env)
    fail = [r for r in recs if r["result"] == "sts-policy-fetch-error"]
    assert fail and "cannot load libcurl.so.4" in fail[0]["reason"], recs


def test_cache_used_when_server_gone(sts_env):
    res = send(sts_env, "e@example.net")
    assert res["relay"].startswith("mx2.example.net"), res
    assert sts_env.https.hits[POLICY_PATH] == 1
    sts_env.https.stop()
    # A new smtp-out process: the policy comes from data/mta-sts/.
    sts_env.mta.stop()
    sts_env.mta.start()
    wait_for(lambda: os.path.exists(os.path.join(sts_env.mta.queue_dir,
                                                 "private", "smtp")),
             what="private/smtp")
    res = send(sts_env, "f@example.net")
    assert res["status"] == "sent", res
    assert res["relay"].startswith("mx2.example.net"), res
    assert len(sts_env.mx1.messages()) == 0


def test_new_id_fetches_again(sts_env):
    res = send(sts_env, "g@example.net")
    assert res["relay"].startswith("mx2.example.net"), res
    # Same id: the cached policy, no fetch.
    res = send(sts_env, "h@example.net")
    assert sts_env.https.hits[POLICY_PATH] == 1
    # A new id and a new policy: fetched again and applied.
    sts_env.routes[POLICY_PATH] = (200, "text/plain",
                                   policy("enforce", "*.example.net"))
    set_txt(sts_env.dns, "_mta-sts.example.net", "v=STSv1; id=2;")
    before = len(tlsrpt_records(sts_env))
    res = send(sts_env, "i@example.net")
    assert sts_env.https.hits[POLICY_PATH] == 2
    assert "fetched: id=2 mode=enforce" in sts_env.mta.log()
    # mx1 is in the new policy, so it is tried first, but it has no
    # STARTTLS: refused under enforce, and mx2 gets the mail.
    assert res["relay"].startswith("mx2.example.net"), res
    new = tlsrpt_records(sts_env)[before:]
    assert any(r["result"] == "starttls-not-supported"
               and r["mx"] == "mx1.example.net" for r in new), new
    assert not any(r["result"] == "validation-failure" for r in new), new


def test_no_policy_found_recorded_per_connection(sts_env):
    from dnslib import RR
    # example.org has no _mta-sts record: its MX is mx1 (no STARTTLS),
    # then mx2 (STARTTLS).
    sts_env.dns.records["example.org."] = RR.fromZone(
        "example.org. 0 IN MX 10 mx2.example.net.")
    qid = inject(sts_env.mta, ["n@example.org"])
    res = deliver(sts_env.mta, qid, ["n@example.org"], "example.org")[0]
    assert res["status"] == "sent", res
    recs = [r for r in tlsrpt_records(sts_env)
            if r["domain"] == "example.org"]
    assert len(recs) == 1, recs
    assert recs[0]["policy-type"] == "no-policy-found"
    assert recs[0]["result"] == "success"
    assert recs[0]["mx"] == "mx2.example.net"
    sts_env.dns.records["example.org."] = RR.fromZone(
        "example.org. 0 IN MX 10 mx1.example.net.")
    qid = inject(sts_env.mta, ["o@example.org"])
    res = deliver(sts_env.mta, qid, ["o@example.org"], "example.org")[0]
    assert res["status"] == "sent", res
    recs = [r for r in tlsrpt_records(sts_env)
            if r["domain"] == "example.org"]
    assert len(recs) == 2, recs
    assert recs[1]["policy-type"] == "no-policy-found"
    assert recs[1]["result"] == "starttls-not-supported"
    assert recs[1]["mx"] == "mx1.example.net"


def test_concurrent_deliveries_share_one_fetch(sts_env):
    import threading
    sts_env.https.delay = 1.0               # the fetch takes a while
    qids = [inject(sts_env.mta, ["c%d@example.net" % i]) for i in range(3)]
    results = [None] * 3

    def run(i):
        results[i] = deliver(sts_env.mta, qids[i], ["c%d@example.net" % i],
                             "example.net")[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in results:
        assert r and r["status"] == "sent", results
        assert r["relay"].startswith("mx2.example.net"), results
    # Three deliveries waited on one fetch.
    assert sts_env.https.hits[POLICY_PATH] == 1
    assert sts_env.mta.log().count("MTA-STS policy for example.net "
                                   "fetched") == 1


def test_policy_refreshed_in_background(sts_env):
    # max_age 6s: a used policy is refreshed halfway (3s), without a delivery.
    sts_env.routes[POLICY_PATH] = (200, "text/plain",
                                   policy("enforce", "mx2.example.net",
                                          max_age=6))
    res = send(sts_env, "r@example.net")
    assert res["status"] == "sent", res
    assert sts_env.https.hits[POLICY_PATH] == 1
    wait_for(lambda: sts_env.https.hits[POLICY_PATH] >= 2, timeout=10,
             what="the background refresh")
    sts_env.mta.wait_log("MTA-STS policy for example.net fetched: id=1 "
                         "mode=enforce max_age=6 (background refresh)")
    # The refreshed policy serves the next delivery: no fetch, no wait.
    res = send(sts_env, "s@example.net")
    assert res["status"] == "sent", res
    assert res["relay"].startswith("mx2.example.net"), res
    assert sts_env.https.hits[POLICY_PATH] == 2


def set_txt(dns, name, text):
    from dnslib import RR
    rr = RR.fromZone('%s. 60 IN TXT "%s"' % (name, text))[0]
    key = name.lower() + "."
    dns.records[key] = [r for r in dns.records.get(key, [])
                        if r.rtype != rr.rtype] + [rr]


# -- TLS-RPT: sending the reports (RFC 8460 section 5) ---------------------

FULL_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
sendmail unix n - n - 1 cleanup
qmgr    unix - - n - 1 qmgr
smtp    unix - - n - 1 smtp-out
bounce  unix - - n - 1 bounce
"""


def store_record(mta, day, **rec):
    d = os.path.join(mta.queue_dir, "data", "tlsrpt")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, day), "a") as f:
        f.write(json.dumps(rec) + "\n")


def test_tlsrpt_send_by_mail_and_https(ca, mta_factory, tmp_path):
    import email
    import gzip
    from receivers import aiosmtpd_receiver

    ctl, rec = aiosmtpd_receiver()
    cert, key = ca.issue("reports.example.org")
    https = HttpsServer({"/v1/tlsrpt": (200, "text/plain", "thanks")},
                        cert, key).start()
    rua = ("mailto:tls-reports@example.org,"
           "https://reports.example.org:%d/v1/tlsrpt" % https.port)
    zone = {
        "_smtp._tls.example.net": ['TXT "v=TLSRPTv1; rua=%s"' % rua],
        # Two records: RFC 8460 3 says the domain has none.
        "_smtp._tls.example.com": ['TXT "v=TLSRPTv1; rua=mailto:a@b.org"',
                                   'TXT "v=TLSRPTv1; rua=mailto:c@b.org"'],
        "reports.example.org": ["A 127.0.0.1"],
    }
    try:
        with DnsServer(zone, ttl=0) as dns:
            mta = mta_factory(main={
                "dns_resolver": dns.spec,
                "relayhost": "[127.0.0.1]:%d" % ctl.port,
                "mydomain": "sender.example",
                "smtp_tls_rpt_CAfile": ca.cafile,
                "smtp_tls_rpt_store_lifetime": "2d",
            }, master_cf=FULL_MASTER_CF)
            now = time.time()
            day = time.strftime("%Y-%m-%d", time.gmtime(now))
            old = time.strftime("%Y-%m-%d", time.gmtime(now - 5 * 86400))
            pol = policy("enforce", "mx2.example.net")
            store_record(mta, day, time=int(now), domain="example.net",
                         **{"policy-type": "sts", "policy": pol,
                            "result": "success", "mx": "mx2.example.net"})
            store_record(mta, day, time=int(now), domain="example.net",
                         **{"policy-type": "sts", "policy": pol,
                            "result": "starttls-not-supported",
                            "mx": "mx1.example.net",
                            "receiving-ip": "127.0.0.2"})
            store_record(mta, day, time=int(now), domain="example.com",
                         **{"policy-type": "no-policy-found",
                            "result": "success", "mx": "mx.example.com"})
            store_record(mta, old, time=int(now - 5 * 86400),
                         domain="example.net",
                         **{"policy-type": "sts", "result": "success"})
            out = str(tmp_path / "reports")
            p = mta.sendarix("tlsrpt", "--send", "-d", day, "-o", out)
            assert "2 reports for %s" % day in p.stdout
            assert ("example.net: sent to mailto:tls-reports@example.org"
                    in p.stdout), p.stdout
            assert ("example.net: sent to https://reports.example.org"
                    in p.stdout), p.stdout
            assert "example.com: no TLS-RPT record, not sent" in p.stdout
            # The store of 5 days ago is gone (lifetime 2d), today's stays.
            store = os.listdir(os.path.join(mta.queue_dir, "data",
                                            "tlsrpt"))
            assert old not in store and day in store, store
            assert "1 old store file removed" in p.stdout

            # HTTPS: one POST of the gzip-compressed JSON report.
            assert len(https.posts) == 1
            path, ctype, body = https.posts[0]
            assert path == "/v1/tlsrpt"
            assert ctype == "application/tlsrpt+gzip"
            rep = json.loads(gzip.decompress(body))
            assert rep["organization-name"] == "sender.example"
            assert rep["report-id"] == "%s_example.net@sender.example" % day
            assert rep["policies"][0]["policy"]["policy-domain"] == \
                "example.net"
            assert rep["policies"][0]["summary"] == {
                "total-successful-session-count": 1,
                "total-failure-session-count": 1}

            # Mail: through cleanup, qmgr and smtp-out to the receiver.
            wait_for(lambda: rec.messages, timeout=30,
                     what="the report mail")
            mail_from, rcpts, content = rec.messages[0]
            assert rcpts == ["tls-reports@example.org"]
            assert mail_from == "postmaster@sender.example"
            msg = email.message_from_bytes(content)
            assert msg.get_content_type() == "multipart/report"
            assert msg.get_param("report-type") == "tlsrpt"
            assert msg["TLS-Report-Domain"] == "example.net"
            assert msg["TLS-Report-Submitter"] == "sender.example"
            assert msg["TLS-Required"] == "No"
            assert msg["Subject"] == (
                "Report Domain: example.net Submitter: sender.example "
                "Report-ID: <%s_example.net@sender.example>" % day)
            parts = [q for q in msg.walk() if not q.is_multipart()]
            assert [q.get_content_type() for q in parts] == [
                "text/plain", "application/tlsrpt+gzip"]
            gz = parts[1]
            start = rep["date-range"]["start-datetime"]
            t0 = int(time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%SZ"))
                     - time.timezone)
            assert gz.get_filename() == \
                "sender.example!example.net!%d!%d.json.gz" % (t0, t0 + 86400)
            assert json.loads(gzip.decompress(gz.get_payload(decode=True))) \
                == rep

            # Run again: nothing is sent twice.
            p = mta.sendarix("tlsrpt", "--send", "-d", day, "-o", out)
            assert p.stdout.count("example.net: already sent to") == 2, \
                p.stdout
            assert len(https.posts) == 1
            assert len(rec.messages) == 1
            assert mta.queue_files("incoming") == []
            assert mta.queue_files("active") == []
    finally:
        https.stop()
        ctl.stop()


@contextlib.contextmanager
def tlsrpt_https(ca, mta_factory, status):
    """An https rua= endpoint for example.net that answers status, the
    DNS naming it, and an instance (not started: tlsrpt --send needs only
    its configuration) with one TLS-RPT record of today; yields
    (https, mta, day)."""
    cert, key = ca.issue("reports.example.org")
    https = HttpsServer({"/up": status}, cert, key).start()
    zone = {
        "_smtp._tls.example.net": [
            'TXT "v=TLSRPTv1; rua=https://reports.example.org:%d/up"'
            % https.port],
        "reports.example.org": ["A 127.0.0.1"],
    }
    try:
        with DnsServer(zone, ttl=0) as dns:
            mta = mta_factory(main={"dns_resolver": dns.spec,
                                    "smtp_tls_rpt_CAfile": ca.cafile},
                              start=False)
            day = time.strftime("%Y-%m-%d", time.gmtime())
            store_record(mta, day, time=int(time.time()),
                         domain="example.net",
                         **{"policy-type": "sts", "result": "success"})
            yield https, mta, day
    finally:
        https.stop()


def test_tlsrpt_send_failed_post_is_retried(ca, mta_factory, tmp_path):
    with tlsrpt_https(ca, mta_factory,
                      (503, "text/plain", "busy")) as (https, mta, day):
        out = str(tmp_path / "reports")
        args = ("tlsrpt", "--send", "-d", day, "-o", out)
        p = mta.sendarix(*args, check=False)
        assert p.returncode == 1, p
        assert "not sent: HTTP status 503" in p.stderr
        assert len(https.posts) == 1
        https.routes["/up"] = (200, "text/plain", "ok")
        p = mta.sendarix(*args)
        assert "example.net: sent to https://" in p.stdout
        assert len(https.posts) == 2
        p = mta.sendarix(*args)
        assert "example.net: already sent to https://" in p.stdout
        assert len(https.posts) == 2


def test_tlsrpt_send_without_libcurl(ca, mta_factory, tmp_path):
    # sendarix tlsrpt --send where libcurl.so.4 cannot be loaded: the
    # POST fails like a network error and the report is sent next time.
    with tlsrpt_https(ca, mta_factory,
                      (200, "text/plain", "ok")) as (https, mta, day):
        args = ["tlsrpt", "--send", "-d", day, "-o",
                str(tmp_path / "reports")]
        p = subprocess.run(without_libcurl(
            [SENDARIX, "-c", mta.conf_dir] + args),
            capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, p
        assert "not sent: cannot load libcurl.so.4: " in p.stderr
        assert len(https.posts) == 0
        p = mta.sendarix(*args)
        assert "example.net: sent to https://" in p.stdout
        assert len(https.posts) == 1
