"""Smoke run of the benchmark harness (tools/bench).

make check keeps `make bench` working by running it tiny: every workload
with a few dozen messages, one repetition, through both Postfix and
Sendarix, plus c10k with a few hundred sessions. The assertions are about
the harness producing a complete table with numbers and the durability
check passing, never about timings.

Needs root (Postfix's master starts as root), Debian's postfix package
(smtp-source, smtp-sink) and strace; skipped otherwise.
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


def leftover_dirs():
    return {d for d in os.listdir("/tmp")
            if d.startswith(("bench-postfix-", "bench-sendarix-",
                             "bench-sandbox-"))}


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
    assert names == ["4k-s1", "4k-s10", "4k-s50", "4k-s200", "100k-s10",
                     "4k-r10-s10", "4k-4xx-s10"]
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

    # every instance and sink was stopped and removed
    assert leftover_dirs() <= before
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                        text=True).stdout
    assert "bench-postfix-" not in ps and "bench-sendarix-" not in ps


def test_c10k_smoke():
    r = subprocess.run([os.path.join(BENCH, "c10k"), BUILD,
                        "--sessions", "300", "--sources", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "300 of 300 sessions open" in r.stdout
    assert "Sendarix RSS with 300 idle sessions" in r.stdout
    assert "fresh session: greeting after" in r.stdout
    assert "c10k: PASS" in r.stdout
