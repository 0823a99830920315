#!/usr/bin/python3
"""crash - exactly once under kills and reloads (make bench-crash)

usage: tools/bench/crash BUILD_DIR [--messages N] [--sessions N] [--runs N]
                         [--reject-every N] [--duration S] [--out FILE]

Starts a throwaway Sendarix (benchlib.SendarixInstance: master -f -c DIR
with the shipped services, relayhost = the receiver, retries after 1-2 s)
and a CrashReceiver (crashload.py: aiosmtpd on loopback that counts copies
per recipient, rejects 1 in REJECT_EVERY recipients with 550 and reads the
failure notifications that come back). Sends MESSAGES messages (default
10,000) from SESSIONS concurrent SMTP sessions (default 20) and, while
they flow, SIGKILLs smtpd, cleanup, qmgr, smtp-out and bounce in turn and
runs `sendarix reload` three times. After the queue drained, prints per
event: when it happened, how many messages were accepted by then, how long
master took to replace the processes, the receiver's replies on the wire
at that moment, and the lost, stranded (left in active/), duplicate and
duplicate-notification counts charged to it; then the totals.

With --runs N the scenario is repeated on a fresh instance each time and a
summary line per run follows. The tables go to stdout and to
BUILD_DIR/bench-crash.txt (or --out), the numbers to the .json beside it.
Exit status 1 when a run misses the goal of issue 10 (anything lost or
left in the queue, a duplicate that was not a reply on the wire at an
smtp-out kill, or a duplicate notification that was not in flight at a
kill of bounce or cleanup).

Needs python3-aiosmtpd (tools/install-deps installs it); not root, not
Postfix.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import crashload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

RETRY = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
         "queue_run_delay": "1s"}


def log(msg):
    print("bench-crash: " + msg, flush=True)


def one_run(build, a, n):
    """One scenario on a fresh instance: the LoadResult."""
    rec = crashload.CrashReceiver().start()
    inst = bl.SendarixInstance(build, ROOT, sink_port=rec.port, extra=RETRY)
    try:
        inst.start()
        services = {}
        for line in inst.master_cf.splitlines():
            w = line.split()
            services[w[7]] = services.get(w[7], 0) + \
                (int(w[6]) if w[6].isdigit() else 2)
        target = crashload.Target(
            inst.pid, inst.conf, inst.queue, inst.log_file, "127.0.0.1",
            inst.port, os.path.join(build, "bin", "sendarix"), services)
        if not crashload.wait_settled(target, 20):
            raise RuntimeError("the services did not start:\n" +
                               inst.log_tail())
        res = crashload.run_load(
            target, rec, count=a.messages, sessions=a.sessions,
            reject_every=a.reject_every, drain_timeout=a.drain_timeout,
            duration=a.duration,
            progress=lambda m: log("run %d: %s" % (n, m)))
        if not res.ok():
            q = target.sendarix("queue", "list")
            res.note = "queue list:\n%s%s\nlog lines of %s:\n%s" % (
                q.stdout[-3000:], q.stderr, ", ".join(res.suspects()),
                target.lines_about(res.suspects())[-6000:])
        return res
    finally:
        inst.remove()
        rec.stop()


def on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    ap = argparse.ArgumentParser(prog="tools/bench/crash")
    ap.add_argument("build")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--reject-every", type=int, default=20,
                    help="1 in N recipients get 550 (0: none)")
    ap.add_argument("--duration", type=float,
                    help="pace the messages over this many seconds "
                    "(default: as fast as the MTA takes them)")
    ap.add_argument("--drain-timeout", type=float, default=300)
    ap.add_argument("--out", help="table file (default BUILD/bench-crash"
                    ".txt; the JSON goes beside it)")
    a = ap.parse_args(argv)
    build = os.path.abspath(a.build)
    for prog in ("master", "smtpd", "cleanup", "qmgr", "smtp-out", "bounce",
                 "sendarix"):
        if not os.access(os.path.join(build, "bin", prog), os.X_OK):
            sys.exit("bench-crash: %s/bin/%s is missing; run make first" % (
                build, prog))
    out = a.out or os.path.join(build, "bench-crash.txt")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always",
                          "--dirty"], capture_output=True,
                         text=True).stdout.strip() or "?"
    head = ("crash bench: %d messages, %d sessions, 1 in %d recipients "
            "rejected; SIGKILL of each daemon in turn and 3 reloads; "
            "%s, %s, %d CPUs, load %.1f before" % (
                a.messages, a.sessions, a.reject_every, rev,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                os.cpu_count(), os.getloadavg()[0]))
    text = [head, ""]
    data = {"meta": {"head": head, "rev": rev}, "runs": []}
    failed = 0
    for n in range(1, a.runs + 1):
        res = one_run(build, a, n)
        table = "run %d of %d\n%s" % (n, a.runs, res.table())
        if not res.ok():
            failed += 1
            table += "GOAL MISSED: %s\n" % ", ".join(
                w for w, bad in (
                    ("not drained", not res.drained),
                    ("lost", res.lost), ("stranded", res.stranded),
                    ("left in the queue", any(res.left.values())),
                    ("duplicates not on the wire", res.unjustified),
                    ("duplicate notifications not in flight",
                     res.unjustified_notices)) if bad)
            table += getattr(res, "note", "")
        print(table, flush=True)
        text.append(table)
        data["runs"].append(res.as_dict())
    if a.runs > 1:
        summary = ["run  lost  stranded  dups  on-wire dups  dup notices"]
        for n, r in enumerate(data["runs"], 1):
            summary.append("%3d  %4d  %8d  %4d  %12d  %11d" % (
                n, r["lost"], r["stranded"], r["duplicates"],
                r["duplicates_on_wire"], r["duplicate_notices"]))
        text.append("\n".join(summary) + "\n")
        print(text[-1])
    verdict = "crash bench: %d of %d runs met the goal (0 lost, 0 " \
        "stranded, duplicates only of replies on the wire at an smtp-out " \
        "kill, duplicate notifications only of notices in flight at a " \
        "bounce or cleanup kill)" % (a.runs - failed, a.runs)
    print(verdict)
    text.append(verdict + "\n")
    with open(out, "w") as f:
        f.write("\n".join(text))
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
