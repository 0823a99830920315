"""Smoke run of the benchmark harness (tools/bench).

make check keeps `make bench` working by running it tiny: every workload
with a few dozen messages, one repetition, through both Postfix and
Sendarix, plus c10k with a few hundred sessions. The assertions are about
the harness producing a complete table with numbers and the durability
check passing, never about timings.

Needs root (Postfix's master starts as root), Debian's postfix package
(smtp-source, smtp-sink) and strace; skipped otherwise. OpenSMTPD (the
second peer, unpacked by tools/install-deps) runs on one smoke workload
when it is there; without it the table must say why it did not run.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

BENCH = os.path.join(ROOT, "tools", "bench")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="the Postfix side of the bench needs root"),
    pytest.mark.skipif(not all(os.access(p, os.X_OK) for p in (
        "/usr/sbin/postfix", "/usr/sbin/smtp-source", "/usr/sbin/smtp-sink"))
        or not shutil.which("strace"),
        reason="postfix (smtp-source, smtp-sink) and strace are needed"),
]


def delivery_built():
    return all(os.access(os.path.join(BUILD, "bin", p), os.X_OK)
               for p in ("qmgr", "smtp-out"))


def opensmtpd_here():
    return os.access("/opt/sendarix-bench/opensmtpd/usr/sbin/smtpd",
                     os.X_OK) and os.path.isdir("/var/lib/opensmtpd/empty")


def leftover_dirs():
    # the sandbox sinks live on /dev/shm when there is one (benchlib)
    return {d for top in ("/tmp", "/dev/shm") if os.path.isdir(top)
            for d in os.listdir(top)
            if d.startswith(("bench-postfix-", "bench-sendarix-",
                             "bench-sandbox-", "bench-opensmtpd-"))}


def test_bench_smoke_table_is_complete(tmp_path):
    before = leftover_dirs()
    out = tmp_path / "bench.txt"
    r = subprocess.run([os.path.join(BENCH, "run"), BUILD, "--smoke",
                        "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = out.read_text()
    data = json.loads((tmp_path / "bench.json").read_text())

    # the durability statement was checked, and passed
    assert data["meta"]["durability_ok"] is True
    assert "PASS" in data["meta"]["durability"]
    assert data["meta"]["durability"] in text
    assert "fsync on" in text and "TLS off" in text

    names = [w["name"] for w in data["workloads"]]
    # the steady-state 20,000-message row is not in --smoke
    assert names == ["4k-s1", "4k-s10", "4k-s50", "4k-s200",
                     "4k-s200-pl300", "100k-s10", "4k-r10-s10",
                     "4k-4xx-s10", "4k-tls-s10"]
    assert "TLS: off in every row but 4k-tls-s10" in text
    assert "default_process_limit = 300" in text
    deliver = delivery_built()
    for w in data["workloads"]:
        assert w["label"] in text
        for mta in ("postfix", "sendarix"):
            res = w[mta]
            assert res["errors"] == [], (w["name"], mta, res["errors"])
            assert res["accepted_per_s"] > 0
            assert res["cpu_ms_per_msg"] >= 0
            assert res["peak_mb"] > 0
            if mta == "postfix" or deliver:
                assert res["delivered_per_s"] > 0, (w["name"], mta)
                for run in w["runs"][mta]:
                    # every recipient was logged as sent, once
                    assert run["log_sent"] == run["log_sent_expected"], \
                        (w["name"], mta, run)
            else:
                assert res["delivered_per_s"] is None
    # OpenSMTPD: measured on 4k-s10 when installed, else the reason
    byname = {w["name"]: w for w in data["workloads"]}
    if opensmtpd_here():
        w = byname["4k-s10"]
        res = w["opensmtpd"]
        assert res["errors"] == [], res["errors"]
        assert res["accepted_per_s"] > 0 and res["delivered_per_s"] > 0
        for run in w["runs"]["opensmtpd"]:
            assert run["log_sent"] == run["log_sent_expected"], run
        assert w["ratios_opensmtpd"]["accepted_per_s"] > 0
        assert len([l for l in text.splitlines()
                    if l.split()[:1] == ["S/O"]]) == 1
        # rows it does not run on say why, in a footnote
        assert byname["4k-4xx-s10"]["opensmtpd_skip"]
        assert "] opensmtpd not run: OpenSMTPD's retry times" in text
    else:
        assert "OpenSMTPD: not run: " in text
    # a ratio row per workload
    ratio_rows = [l for l in text.splitlines() if l.split()[:1] == ["S/P"]]
    assert len(ratio_rows) == len(names)
    for row in ratio_rows:
        # accepted, CPU and memory ratios are numbers (delivered too once
        # Sendarix delivers)
        cells = row.split()[1:]
        assert len(cells) == 4
        for i, c in enumerate(cells):
            if i == 1 and not deliver:
                assert c == "n/a"
            elif i == 2 and c == "n/a":
                # CPU is counted in 10 ms ticks: a smoke-sized run can
                # show none for one MTA, and then there is no ratio.
                pass
            else:
                assert c.endswith("x") and float(c[:-1]) >= 0, row

    # every instance and sink of this run was stopped and removed (other
    # benchmarks may run on the machine at the same time: only this run's
    # directories, which the JSON lists, are checked)
    made = data["meta"]["dirs"]
    assert made and all(d.startswith(("/tmp/bench-", "/dev/shm/bench-"))
                        for d in made)
    assert {os.path.basename(d) for d in made} & leftover_dirs() <= before
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                        text=True).stdout
    for d in made:
        assert d not in ps, d


def test_c10k_smoke():
    r = subprocess.run([os.path.join(BENCH, "c10k"), BUILD,
                        "--sessions", "300", "--sources", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "300 of 300 sessions open" in r.stdout
    assert "Sendarix RSS with 300 idle sessions" in r.stdout
    assert "fresh session: greeting after" in r.stdout
    assert "c10k: PASS" in r.stdout
