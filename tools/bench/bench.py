#!/usr/bin/python3
"""bench - Sendarix against Postfix and OpenSMTPD, same machine, same run

usage: tools/bench/run BUILD_DIR [--quick | --smoke] [--reps N]
                       [--workloads a,b,...] [--out FILE] [--no-durability]
                       [--no-opensmtpd]

Runs each workload through a throwaway Postfix (Debian's package, own
config/queue/data under a temp dir, relayhost = the sink) and a throwaway
Sendarix (master -f -c DIR with BUILD_DIR/bin), with Postfix's smtp-source
as the client and smtp-sink (or, for the 4xx workload, `sendarix sandbox`)
as the receiving server. Loopback only; fsync on in both (Postfix's default,
always in Sendarix); TLS off except in the TLS row (4k-tls-s10: STARTTLS
from BUILD_DIR/tests/helpers/smtp_tls_source, which is smtp-source with
STARTTLS, into each MTA, and from each MTA to a sandbox offering STARTTLS,
one self-signed RSA 2048 certificate for all). The two instances of a workload run side by
side and take turns, repetition by repetition; the table has medians.
OpenSMTPD (Debian's, unpacked by tools/install-deps) is a third instance
on the workloads it can run (not the 4xx one: its retry times are built
in); when it is missing the table says why. Its listen backlog (5,
compiled in) is raised to 4096 by BUILD/tools/listen_backlog.so, an
LD_PRELOAD shim, so smtp-source's simultaneous connects are not dropped.

Per workload and MTA:
  accepted/s   messages / wall time of smtp-source (all 250s received)
  delivered/s  messages / time from smtp-source's start until the sink has
               them all (smtp-sink: its "mesg" counter; sandbox: accepted
               recipients / recipients per message); n/a when the build has
               no delivery daemons (qmgr, smtp-out) yet
  CPU ms/msg   utime+stime (+ reaped children) of the MTA's process tree
               (master and descendants) from /proc, end minus start, / msgs
  peak MB      the peak over 100 ms samples of the summed PSS of the tree
  ratio        S/P = Sendarix / Postfix, S/O = Sendarix / OpenSMTPD

Before the workloads, a durability check straces Sendarix's cleanup and
smtpd on a short run: every "250 ... queued as ID" must come after the
fsync of the file, its rename into incoming/ and an fsync of incoming/.
If it fails, the table says so at the top.

The table is printed and written to BUILD_DIR/bench-results.txt, the data
to BUILD_DIR/bench-results.json. Needs root (Postfix's master), postfix,
strace. Ctrl-C stops and removes every instance.
"""

import argparse
import json
import os
import platform
import re
import signal
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

SENDER = "sender@client.bench.example"
RCPT = "rcpt@dest.bench.example"

# name, label, sessions, messages, size, recipients/message, sink, options:
#   postfix    extra main.cf parameters for this row's Postfix
#   opensmtpd  None to run OpenSMTPD too, else why it does not (footnote)
#   smoke      False: not in --smoke (too big to scale down usefully)
NO_RETRY = ("OpenSMTPD's retry times are built in (its first retry of a "
            "4xx comes about 7 minutes later; smtpd.conf has no knob), so the "
            "greylist row would measure its scheduler's wait, not its speed")
NO_TLS = ("OpenSMTPD 6.8.0p2, as Debian 12 ships it, fails every TLS "
          "handshake under OpenSSL 3 (\"io-error: ... EVP lib\": its "
          "privilege-separated key signing; OpenSMTPD issues #1171 and "
          "#1239)")
SAME_AS_200 = ("OpenSMTPD has no process limit to raise: its numbers are "
               "those of the 4k-s200 row")
WORKLOADS = [
    ("4k-s1", "4 KiB, 1 session", 1, 600, 4096, 1, "sink", {}),
    ("4k-s10", "4 KiB, 10 sessions", 10, 2000, 4096, 1, "sink", {}),
    ("4k-s50", "4 KiB, 50 sessions", 50, 3000, 4096, 1, "sink", {}),
    ("4k-s200", "4 KiB, 200 sessions", 200, 3000, 4096, 1, "sink", {}),
    # the fair comparison at 200 sessions: Postfix's default_process_limit
    # (100) would otherwise leave half of the clients in the listen queue
    ("4k-s200-pl300", "4 KiB, 200 sess, Postfix limit 300", 200, 3000,
     4096, 1, "sink", {"postfix": {"default_process_limit": "300"},
                       "opensmtpd": SAME_AS_200}),
    ("100k-s10", "100 KiB, 10 sessions", 10, 600, 102400, 1, "sink", {}),
    ("4k-r10-s10", "4 KiB, 10 rcpt/msg, 10 sess", 10, 800, 4096, 10,
     "sink", {}),
    ("4k-4xx-s10", "4 KiB, 20% rcpt 4xx once, 10 sess", 10, 1000, 4096, 1,
     "sandbox", {"opensmtpd": NO_RETRY}),
    # STARTTLS on both sides of each MTA: smtp_tls_source -S in, a sandbox
    # sink offering STARTTLS out (TLS 1.3, self-signed, unverified)
    ("4k-tls-s10", "4 KiB, STARTTLS in+out, 10 sess", 10, 2000, 4096, 1,
     "tls-sandbox", {"tls": True, "opensmtpd": NO_TLS}),
    # steady state: long enough for queues, caches and the file system's
    # inode allocation to settle (a tenth of it with --quick)
    ("4k-s20-20k", "4 KiB, 20 sessions, steady state", 20, 20000, 4096, 1,
     "sink", {"smoke": False}),
]
# the workloads --smoke runs OpenSMTPD on (it may be missing; the rest of
# the smoke run stays Postfix against Sendarix to keep make check fast)
SMOKE_OPENSMTPD = ("4k-s10",)
# messages per repetition for OpenSMTPD at most (see run_workload)
OPENSMTPD_MAX = 300
MTAS = ("postfix", "sendarix", "opensmtpd")
# the listen backlogs OpenSMTPD's instances had (ss -ltn), for the note
OPENSMTPD_BACKLOGS = set()

# The 4xx workload: recipients whose sequence number (smtp-source -N)
# ends in 0 or 5 are greylisted for a second: the first attempt gets 450,
# the retry is accepted. Both MTAs retry after 1-2 s.
SANDBOX_RULES = """\
/^[0-9]*[05]rcpt-/  GREYLIST 1
/^/                 OK
"""
POSTFIX_PARAMS = {
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
    "queue_run_delay": "1s",
}
# Sendarix retries what looks like greylisting after its own delay
# (Postfix does not tell greylisting apart): the same 1 s for both
SENDARIX_PARAMS = dict(POSTFIX_PARAMS, greylist_retry_time="1s")

_cleanup = []
_made = []          # every instance's and sink's temp dir (in the JSON)
TLS_SOURCE = [None]     # BUILD/tests/helpers/smtp_tls_source
_cert = []          # (certfile, keyfile) of the TLS row, made once


def bench_cert():
    """The self-signed certificate every MTA and sink of the TLS row
    uses."""
    if not _cert:
        top = bl._mkdtemp("bench-tls-")
        _made.append(top)
        _cert.append(bl.make_cert(top, "bench.test"))
    return _cert[0]


def tls_params():
    """main.cf parameters for STARTTLS in and out, the same names in
    Postfix and Sendarix: offered to clients, used when the next hop
    offers it (the sink does)."""
    cert, key = bench_cert()
    return {"smtpd_tls_cert_file": cert, "smtpd_tls_key_file": key,
            "smtpd_tls_security_level": "may",
            "smtp_tls_security_level": "may"}


def log(msg):
    print(msg, flush=True)


# -- one measured run -------------------------------------------------------

_runs = [0]


def smtp_source(inst, sessions, count, size, rcpts, timeout, tls=False):
    # smtp-source -N numbers recipients from 1 in every run: a run number
    # in the address keeps them unique across runs (greylisting is per
    # sender, recipient and client, so a repeated one would pass at once)
    _runs[0] += 1
    rcpt = RCPT.replace("@", "-%d@" % _runs[0])
    cmd = [bl.SMTP_SOURCE, "-4", "-N", "-M", "client.bench.example",
           "-f", SENDER, "-t", rcpt, "-s", str(sessions), "-m", str(count),
           "-l", str(size)]
    if tls:
        # the same load with STARTTLS (smtp-source has none)
        cmd = [TLS_SOURCE[0], "-S", "-N", "-M", "client.bench.example",
               "-f", SENDER, "-t", rcpt, "-s", str(sessions), "-m",
               str(count), "-l", str(size)]
    if rcpts > 1:
        cmd += ["-r", str(rcpts)]
    cmd.append("127.0.0.1:%d" % inst.port)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return r.returncode, (r.stdout + r.stderr).strip()[-500:]
    except subprocess.TimeoutExpired:
        return -1, "smtp-source timed out after %ds" % timeout


def measure(inst, sink, wl, count, delivery):
    """One run of count messages; a dict of raw results."""
    _, _, sessions, _, size, rcpts, kind = wl[:7]
    expected = count if kind == "sink" else count * rcpts
    per_msg = 1 if kind == "sink" else rcpts
    base = sink.count()
    sent0 = inst.sent_count()
    cpu0 = inst.tree.cpu_seconds()
    ovf0 = bl.listen_overflows()
    sampler = bl.Sampler(inst.tree, 0.1)
    sampler.start()
    stat0 = machine_cpu()
    t0 = time.monotonic()
    tls0 = sink.tls_messages() if wl[7].get("tls") else 0
    rc, out = smtp_source(inst, sessions, count, size, rcpts,
                          timeout=max(120, count // 5),
                          tls=wl[7].get("tls", False))
    t_acc = time.monotonic() - t0
    res = {"messages": count, "accept_s": t_acc, "source_rc": rc}
    ovf1 = bl.listen_overflows()
    if ovf0 is not None and ovf1 is not None:
        # SYNs the kernel dropped (machine-wide) while smtp-source ran:
        # each costs its client a 1 s retransmission
        res["listen_overflows"] = ovf1 - ovf0
    if rc != 0:
        res["error"] = "smtp-source: " + out
    if delivery:
        # at least 5 messages a second: OpenSMTPD relays at 12-24/s
        limit = max(90.0, count / 5.0)
        got = bl.wait_for(lambda: sink.count() - base >= expected, limit,
                          interval=0.005)
        t_del = time.monotonic() - t0
        res["machine_busy"] = machine_busy(stat0, machine_cpu())
        if got:
            res["deliver_s"] = t_del
        else:
            res["error"] = res.get("error", "") + \
                " delivery incomplete: sink has %d of %d after %.0fs" % (
                    (sink.count() - base) // per_msg, count, t_del)
        # let the MTA finish its bookkeeping (queue file removal) before
        # the CPU sample; the time is not in delivered/s
        bl.wait_for(lambda: inst.queue_count() == 0, 30, interval=0.05)
    else:
        time.sleep(0.2)
    if wl[7].get("tls") and delivery:
        # proof that the MTA spoke TLS to the sink, not only to the source
        res["sink_tls_messages"] = sink.tls_messages() - tls0
        if res["sink_tls_messages"] != expected:
            res["error"] = res.get("error", "") + (
                " only %d of %d messages reached the sink under TLS" % (
                    res["sink_tls_messages"], expected))
    res["peak_kb"] = sampler.stop()
    res["peak_procs"] = sampler.peak_procs
    res["cpu_s"] = inst.tree.cpu_seconds() - cpu0
    if delivery:
        time.sleep(0.1)
        res["log_sent"] = inst.sent_count() - sent0
        res["log_sent_expected"] = count * rcpts
    return res


def machine_cpu():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)      # idle, iowait
    return sum(v) - idle, sum(v)


def machine_busy(a, b):
    """The fraction of the machine's CPUs busy between two samples:
    the MTA, the client, the sink and anything else running."""
    total = b[1] - a[1]
    return (b[0] - a[0]) / total if total > 0 else None


def warm_up(inst, sink, wl, delivery):
    """A short run at the same concurrency, so both MTAs have their
    processes running and caches warm before the measured runs."""
    _, _, sessions, _, size, rcpts, kind = wl[:7]
    n = max(20, sessions * 2)
    base = sink.count()
    smtp_source(inst, sessions, n, size, rcpts, timeout=120,
                tls=wl[7].get("tls", False))
    if delivery:
        expected = n if kind == "sink" else n * rcpts
        bl.wait_for(lambda: sink.count() - base >= expected, 60)
        bl.wait_for(lambda: inst.queue_count() == 0, 30)


def make_sink(wl, build):
    if wl[6] == "sandbox":
        return bl.SandboxSink(build, SANDBOX_RULES).start()
    if wl[6] == "tls-sandbox":
        return bl.SandboxSink(build, "/^/ OK\n", tls=bench_cert()).start()
    return bl.SmtpSink().start()


def run_workload(wl, count, reps, build, delivery_s, warm=True,
                 opensmtpd=False):
    """The MTAs side by side, alternating; {mta: [run, ...]}."""
    sinks, insts = {}, {}
    names = ("postfix", "sendarix") + (("opensmtpd",) if opensmtpd else ())
    try:
        for name in names:
            sinks[name] = make_sink(wl, build)
            _cleanup.append(sinks[name])
            if hasattr(sinks[name], "dir"):
                _made.append(sinks[name].dir)
            tls = tls_params() if wl[7].get("tls") else {}
            if name == "postfix":
                inst = bl.PostfixInstance(sinks[name].port, dict(
                    POSTFIX_PARAMS, **wl[7].get("postfix", {}), **tls))
            elif name == "opensmtpd":
                inst = bl.OpenSmtpdInstance(
                    sinks[name].port, os.path.join(build, bl.LISTEN_SHIM))
            else:
                inst = bl.SendarixInstance(build, ROOT, sinks[name].port,
                                           dict(SENDARIX_PARAMS, **tls))
            _cleanup.append(inst)
            _made.append(inst.top)
            insts[name] = inst.start()
            if name == "opensmtpd":
                OPENSMTPD_BACKLOGS.add(inst.backlog)
        delivery = {"postfix": True, "sendarix": delivery_s,
                    "opensmtpd": True}
        for name in insts if warm else ():
            warm_up(insts[name], sinks[name], wl, delivery[name])
        runs = {name: [] for name in names}
        # OpenSMTPD relays 7-18 messages a second here (one connection at
        # a time to the sink, compiled-in gaps): fewer messages for it,
        # or one full run takes hours; its rates are per message anyway
        counts = {name: count for name in names}
        if "opensmtpd" in counts:
            counts["opensmtpd"] = min(count, OPENSMTPD_MAX)
        for rep in range(reps):
            for name in names:
                r = measure(insts[name], sinks[name], wl, counts[name],
                            delivery[name])
                runs[name].append(r)
                log("  %-9s rep %d: %s" % (name, rep + 1,
                                           brief(r, counts[name])))
        return runs
    finally:
        for name in list(insts):
            insts[name].remove()
            _cleanup.remove(insts[name])
        for name in list(sinks):
            sinks[name].stop()
            _cleanup.remove(sinks[name])


def brief(r, count):
    s = "accepted %.0f/s" % (count / r["accept_s"])
    if "deliver_s" in r:
        s += ", delivered %.0f/s" % (count / r["deliver_s"])
    s += ", cpu %.2f ms/msg, peak %.1f MB (%d procs)" % (
        1000 * r["cpu_s"] / count, r["peak_kb"] / 1024.0, r["peak_procs"])
    if "log_sent" in r and r["log_sent"] != r["log_sent_expected"]:
        s += ", log status=sent %d of %d" % (r["log_sent"],
                                             r["log_sent_expected"])
    if r.get("error"):
        s += " ERROR: " + r["error"].strip()
    return s


def summarize(runs):
    """Medians over the repetitions of one MTA (each run's own message
    count: OpenSMTPD's may be smaller)."""
    def med(vals):
        return statistics.median(vals) if vals else None
    acc = [r["messages"] / r["accept_s"] for r in runs
           if r["source_rc"] == 0]
    dlv = [r["messages"] / r["deliver_s"] for r in runs if "deliver_s" in r]
    cpu = [1000.0 * r["cpu_s"] / r["messages"] for r in runs
           if "cpu_s" in r]
    mem = [r["peak_kb"] / 1024.0 for r in runs if "peak_kb" in r]
    errors = [r["error"].strip() for r in runs if r.get("error")]
    ovf = [r["listen_overflows"] for r in runs if "listen_overflows" in r]
    if not runs:
        errors.append("no runs")
    return {"accepted_per_s": med(acc), "delivered_per_s": med(dlv),
            "cpu_ms_per_msg": med(cpu), "peak_mb": med(mem),
            "listen_overflows": sum(ovf) if ovf else None,
            "errors": errors, "reps": len(runs)}


# -- durability -------------------------------------------------------------

TRACE_LINE = re.compile(
    r"^(\d+)\s+(\d+\.\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*?)"
    r"(?:<unfinished \.\.\.>|= (-?\d+)[^<]*<(\d+\.\d+)>)\s*$")


def parse_trace(path):
    """[(start, end, pid, syscall, args, ret)] from strace -f -ttt -T -y."""
    events, pending = [], {}
    with open(path, errors="replace") as f:
        for line in f:
            m = TRACE_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            pid, ts = int(m.group(1)), float(m.group(2))
            if m.group(3):                       # resumed
                start, name, args0 = pending.pop(pid, (ts, m.group(3), ""))
                args = args0 + m.group(5)
            else:
                start, name, args = ts, m.group(4), m.group(5)
                if m.group(6) is None:           # unfinished
                    pending[pid] = (start, name, args)
                    continue
            if m.group(6) is None:
                continue
            dur = float(m.group(7))
            events.append((start, start + dur, pid, name, args,
                           int(m.group(6))))
    return events


def durability_check(build, count=40, sessions=4):
    """Strace cleanup (fsync/rename) and smtpd (replies) on a short accept
    run; return (ok, statement, details)."""
    inst = bl.SendarixInstance(build, ROOT, None, None, smtpd_only=True)
    _cleanup.append(inst)
    _made.append(inst.top)
    straces = []
    try:
        inst.start()
        cleanups = inst.tree.named("cleanup")
        smtpds = inst.tree.named("smtpd")
        if not cleanups or not smtpds:
            return False, "durability: FAILED (no cleanup/smtpd process " \
                "to trace)", {}
        specs = [("cleanup", cleanups,
                  "fsync,fdatasync,rename,renameat,renameat2"),
                 ("smtpd", smtpds, "write,writev,sendmsg,sendto")]
        files = {}
        for name, pids, calls in specs:
            out = os.path.join(inst.top, "strace-%s.txt" % name)
            files[name] = out
            cmd = ["strace", "-f", "-ttt", "-T", "-y", "-s", "200",
                   "-e", "trace=" + calls, "-o", out]
            for p in pids:
                cmd += ["-p", str(p)]
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            straces.append(p)
            want = len(pids)
            seen = []

            def reader(proc=p, seen=seen):
                for line in proc.stderr:
                    if "attached" in line:
                        seen.append(line)
            threading.Thread(target=reader, daemon=True).start()
            if not bl.wait_for(lambda: len(seen) >= want, 10):
                return False, "durability: FAILED (strace could not " \
                    "attach)", {}
        rc, out = smtp_source(inst, sessions, count, 4096, 1, 120)
        time.sleep(0.3)
        for p in straces:
            p.send_signal(signal.SIGINT)
            p.wait(10)
        straces = []
        if rc != 0:
            return False, "durability: FAILED (smtp-source: %s)" % out, {}
        cl = parse_trace(files["cleanup"])
        sm = parse_trace(files["smtpd"])
        if os.environ.get("BENCH_KEEP_TRACE"):
            for f in files.values():
                subprocess.run(["cp", f, "/tmp/"])
        return judge(cl, sm, count, inst.queue)
    finally:
        for p in straces:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                p.wait(10)
        inst.remove()
        _cleanup.remove(inst)


def judge(cl, sm, count, queue):
    fd_path = re.compile(r"^\d+<([^>]*)>")
    fsyncs = []                      # (start, end, path)
    renames = {}                     # queue id -> (start, end, src)
    tmpdir = os.path.join(queue, "tmp") + "/"
    incoming = os.path.join(queue, "incoming")
    for start, end, _pid, name, args, ret in cl:
        if ret != 0:
            continue
        if name in ("fsync", "fdatasync"):
            m = fd_path.match(args)
            if m:
                fsyncs.append((start, end, m.group(1)))
        elif name.startswith("rename"):
            # renameat*(DIRFD<dir>, "path", DIRFD<dir>, "path", ...) or
            # rename("path", "path"); relative paths against the dirfd
            # strace -y shows, else against the queue directory
            paths = [os.path.normpath(os.path.join(d or queue, p))
                     for d, p in re.findall(
                         r'(?:(?:AT_FDCWD|\d+)(?:<([^>]*)>)?, )?"([^"]*)"',
                         args)]
            if len(paths) == 2 and paths[1].startswith(incoming + "/"):
                qid = paths[1].rsplit("/", 1)[1]
                renames[qid] = (start, end, paths[0])
    replies = {}
    qpat = re.compile(r"250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)")
    for start, _end, _pid, name, args, _ret in sm:
        for qid in qpat.findall(args):
            replies.setdefault(qid, start)
    file_fsyncs = [f for f in fsyncs if f[2].startswith(tmpdir)]
    dir_fsyncs = [f for f in fsyncs if f[2].rstrip("/") == incoming]
    good, bad = 0, []
    for qid, t_reply in replies.items():
        rn = renames.get(qid)
        if not rn:
            bad.append("%s: no rename into incoming/" % qid)
            continue
        ok_file = any(f[2] == rn[2] and f[1] <= rn[0] for f in file_fsyncs)
        ok_dir = any(d[0] >= rn[1] and d[1] <= t_reply for d in dir_fsyncs)
        if ok_file and ok_dir:
            good += 1
        else:
            bad.append("%s: file fsync before rename %s, dir fsync between "
                       "rename and 250 %s" % (qid, ok_file, ok_dir))
    ok = good == count and len(replies) == count
    statement = (
        "durability: %d messages through Sendarix under strace; %d file "
        "fsyncs in tmp/, %d renames into incoming/, %d fsyncs of incoming/ "
        "(group commit); %d of %d \"250 ... queued as\" replies came after "
        "the message's file fsync, rename and directory fsync: %s" % (
            count, len(file_fsyncs), len(renames), len(dir_fsyncs), good,
            count, "PASS" if ok else "FAILED"))
    return ok, statement, {"messages": count, "file_fsyncs":
                           len(file_fsyncs), "renames": len(renames),
                           "dir_fsyncs": len(dir_fsyncs),
                           "replies_after_fsync": good,
                           "replies": len(replies), "problems": bad[:10]}


# -- table ------------------------------------------------------------------

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def run_metric(r, key):
    """One run's value of a table metric, or None."""
    n = r["messages"]
    if key == "accepted_per_s":
        return n / r["accept_s"] if r.get("source_rc") == 0 else None
    if key == "delivered_per_s":
        return n / r["deliver_s"] if "deliver_s" in r else None
    if key == "cpu_ms_per_msg":
        return 1000.0 * r["cpu_s"] / n if "cpu_s" in r else None
    return r["peak_kb"] / 1024.0 if "peak_kb" in r else None


def paired_ratio(runs, key, peer="postfix"):
    """Median over repetitions of Sendarix/peer, each repetition's
    Sendarix run paired with the peer's run of the same repetition (the
    machine is shared: pairing cancels most of the drift in its load)."""
    vals = []
    for p, s in zip(runs.get(peer, []), runs["sendarix"]):
        a, b = run_metric(s, key), run_metric(p, key)
        if a is not None and b:
            vals.append(a / b)
    return statistics.median(vals) if vals else None


def ratio(v, spec=".2f"):
    return "n/a" if v is None else format(v, spec) + "x"


def table(results, meta):
    lines = []
    peers = "Postfix %s" % meta["postfix_version"]
    if meta.get("opensmtpd_version"):
        peers += " and OpenSMTPD %s" % meta["opensmtpd_version"]
    lines.append("Sendarix vs %s, same machine, same run (%s)" % (
        peers, meta["date"]))
    lines.append("host: %d CPUs, %s; /tmp on %s; loopback only; client "
                 "smtp-source (smtp_tls_source -S in the TLS row), one "
                 "connection per message" % (
                     meta["cpus"], meta["kernel"], meta["tmpfs"]))
    lines.append("fsync on (Postfix default; Sendarix always; OpenSMTPD "
                 "default), TLS off but in the TLS row; medians of %d "
                 "repetition(s)" %
                 meta["reps"])
    lines.append(meta["durability"])
    if not meta["durability_ok"]:
        lines.append("*** DURABILITY CHECK FAILED: these numbers are not a "
                     "result ***")
    if not meta["delivery"]:
        lines.append("NOTE: this Sendarix build has no delivery daemons: "
                     "it only accepts (delivered/s n/a), while Postfix also "
                     "delivers during the run, so accepted/s and CPU are "
                     "not like for like.")
    if meta.get("opensmtpd_off"):
        lines.append("OpenSMTPD: not run: %s" % meta["opensmtpd_off"])
    lines.append("")
    row = "%-36s %-9s %11s %12s %11s %8s"
    hdr = row % (
        "workload", "MTA", "accepted/s", "delivered/s", "CPU ms/msg",
        "peak MB")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    notes = []
    for wl_name, label, count, res in results:
        first = label
        second = "(%d msgs)" % count
        names = ["postfix", "sendarix"]
        if res.get("opensmtpd") or res.get("opensmtpd_skip"):
            names.append("opensmtpd")
        for name in names:
            r = res.get(name)
            if r is None:
                why = res["opensmtpd_skip"]
                if why not in notes:
                    notes.append(why)
                lines.append(row % (first, name, "not run [%d]" % (
                    notes.index(why) + 1), "", "", ""))
            else:
                lines.append(row % (
                    first, name, fmt(r["accepted_per_s"], ".0f"),
                    fmt(r["delivered_per_s"], ".0f"),
                    fmt(r["cpu_ms_per_msg"], ".3f"),
                    fmt(r["peak_mb"], ".1f")))
            first, second = second, ""
        for tag, key in (("S/P", "ratios"), ("S/O", "ratios_o")):
            if res.get(key):
                lines.append(row % (
                    first, tag, ratio(res[key]["accepted_per_s"]),
                    ratio(res[key]["delivered_per_s"]),
                    ratio(res[key]["cpu_ms_per_msg"]),
                    ratio(res[key]["peak_mb"])))
                first = ""
        for name in names:
            r = res.get(name) or {}
            for e in r.get("errors", [])[:2]:
                lines.append("    %s: %s" % (name, e[:200]))
            if r.get("listen_overflows"):
                lines.append("    %s: %d SYNs dropped on a full listen "
                             "queue while it ran [L]" % (
                                 name, r["listen_overflows"]))
    lines.append("")
    lines.append("accepted/s: messages / smtp-source wall time. "
                 "delivered/s: messages / time from the first connect until "
                 "the sink has them all (smtp-sink's message counter; for "
                 "the 4xx workload the sandbox's accepted recipients). "
                 "CPU: utime+stime of the MTA's process tree incl. reaped "
                 "children. peak MB: max summed %s of the tree, 100 ms "
                 "samples. S/P = Sendarix / Postfix and S/O = Sendarix / "
                 "OpenSMTPD, each the median of the repetitions' paired "
                 "ratios: above 1 means Sendarix is faster (rates), below 1 "
                 "that it uses less (CPU, memory). 4k-s200-pl300: Postfix "
                 "with default_process_limit = 300 (4k-s200: its default, "
                 "100). Load average before/after: %s / %s." % (
                     meta["mem_field"], meta["load_before"],
                     meta.get("load_after", "?")))
    if any((res.get(m) or {}).get("listen_overflows")
           for _, _, _, res in results for m in MTAS):
        lines.append("[L] TcpExt ListenOverflows (machine-wide) during "
                     "the MTA's smtp-source runs; each dropped SYN costs a "
                     "client "
                     "a 1 s retransmission.")
    if meta.get("opensmtpd_version"):
        lines.append("OpenSMTPD's listen backlog raised from 5 to %s by an "
                     "LD_PRELOAD shim (tools/bench/listen_backlog.c; ss -ltn "
                     "showed it), as a build with a larger SMTPD_BACKLOG "
                     "would: with 5, smtp-source's simultaneous connects "
                     "overflow it and each dropped SYN costs a 1 s "
                     "retransmission." % (
                         "/".join(str(b) for b in
                                  sorted(meta.get("opensmtpd_backlogs") or
                                         [bl.OPENSMTPD_BACKLOG]))))
        lines.append("OpenSMTPD sends at most %d messages a repetition "
                     "(fewer than the row's count): it relays 7-18 a second "
                     "here (one connection at a time to the sink, "
                     "compiled-in pauses), so a full-size run would take "
                     "hours; its rates and CPU are per message." %
                     OPENSMTPD_MAX)
    for i, why in enumerate(notes):
        lines.append("[%d] opensmtpd not run: %s." % (i + 1, why))
    lines.extend(limit_lines(results, meta))
    lines.append("TLS: off in every row but 4k-tls-s10, where each MTA "
                 "offers STARTTLS to the source (smtp_tls_source -S, which "
                 "uses it) and uses it to the sink (a sandbox offering it; "
                 "self-signed, unverified; security level may in Postfix "
                 "and Sendarix); every run "
                 "checks that every message reached the sink under TLS.")
    return "\n".join(lines) + "\n"


# -- the physical floor -----------------------------------------------------

def disk_probe(n, writers=1):
    """Messages a second the disk allows when each is only what the
    queue's durability needs: a 4 KiB file written and fsynced in tmp/,
    renamed into incoming/, and incoming/ fsynced, by "writers" threads
    at once (each with its own directory fsync), on the file system of
    the bench's queues. Nothing else: no SMTP, no process."""
    top = bl._mkdtemp("bench-disk-")
    tmp, inc = os.path.join(top, "tmp"), os.path.join(top, "incoming")
    os.mkdir(tmp)
    os.mkdir(inc)
    data = b"x" * 4096

    def one(w):
        dfd = os.open(inc, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(n):
                name = "%d.%d" % (w, i)
                fd = os.open(os.path.join(tmp, name),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, data)
                os.fsync(fd)
                os.close(fd)
                os.rename(os.path.join(tmp, name), os.path.join(inc, name))
                os.fsync(dfd)
        finally:
            os.close(dfd)
    try:
        threads = [threading.Thread(target=one, args=(w,))
                   for w in range(writers)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return writers * n / (time.monotonic() - t0)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def limit_lines(results, meta):
    """For the rows short of 3x Postfix: how far the physical limit is."""
    out = []
    disk1, disk4 = meta.get("disk_1"), meta.get("disk_4")
    if disk1:
        out.append("Limits measured in this run: the disk takes %.2f ms "
                   "for one message's 4 KiB write, file fsync, rename and "
                   "directory fsync (%.0f/s with one writer, %.0f/s with "
                   "four)." % (1000.0 / disk1, disk1, disk4 or 0))
    for name, _label, count, res in results:
        p = (res.get("postfix") or {}).get("delivered_per_s")
        rat = (res.get("ratios") or {}).get("delivered_per_s")
        if not p or rat is None or rat >= 3.0:
            continue
        need = 3 * p
        if name == "4k-s1" and disk1:
            out.append("  %s: 3x Postfix is %.0f/s, %.2f ms a message; "
                       "the disk alone takes %.2f ms of it, which leaves "
                       "%.2f ms for the 8 SMTP round trips (connect to "
                       "QUIT), smtpd -> cleanup -> smtpd (the queue ID "
                       "comes before 354) and the group commit, one "
                       "after the other." % (
                           name, need, 1000.0 / need, 1000.0 / disk1,
                           1000.0 / need - 1000.0 / disk1))
        elif name == "4k-4xx-s10":
            ceil = count / 1.0
            line = ("  %s: every greylisted recipient waits 1 s before "
                    "its retry (in both MTAs); with no other cost at all, "
                    "delivered/s would be at most %d messages / 1 s = "
                    "%.0f/s, %.2fx Postfix's %.0f/s." % (
                        name, count, ceil, ceil / p, p))
            acc = (res.get("sendarix") or {}).get("accepted_per_s")
            got = (res.get("sendarix") or {}).get("delivered_per_s")
            if acc and got:
                best = count / (count / acc + 1.0)
                line += (" At Sendarix's acceptance rate in this row "
                         "(%.0f/s), the last first attempt comes after "
                         "%.2f s and its retry 1 s later: at best %.0f/s "
                         "(%.2fx); it delivered %.0f/s." % (
                             acc, count / acc, best, best / p, got))
            out.append(line)
        else:
            busy = [r.get("machine_busy") for r in
                    res.get("runs", {}).get("sendarix", [])]
            busy = [b for b in busy if b is not None]
            out.append("  %s: %.2fx; 3x Postfix is %.0f/s.%s" % (
                name, rat, need, (
                    " The machine's %d CPUs were %.0f%% busy during "
                    "Sendarix's runs and %.0f%% during Postfix's (MTA, "
                    "client and sink together; time waiting for the "
                    "disk counts as idle)." % (
                        os.cpu_count(), 100 * statistics.median(busy),
                        100 * statistics.median(
                            [r["machine_busy"] for r in
                             res["runs"].get("postfix", [])
                             if r.get("machine_busy") is not None]
                            or [0])))
                    if busy else ""))
    return out


# -- main -------------------------------------------------------------------

def preflight():
    missing = [p for p in (bl.POSTFIX, bl.SMTP_SOURCE, bl.SMTP_SINK,
                           "/usr/bin/strace") if not os.access(p, os.X_OK)]
    if missing:
        sys.exit("bench: missing %s (apt-get install postfix strace)" %
                 ", ".join(missing))
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (Postfix's master starts as root)")


def meta_info(reps, delivery):
    v = subprocess.run(["/usr/sbin/postconf", "-d", "-h", "mail_version"],
                       capture_output=True, text=True).stdout.strip()
    fs = subprocess.run(["df", "-T", "/tmp"], capture_output=True,
                        text=True).stdout.splitlines()
    return {"postfix_version": v or "?", "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "tmpfs": fs[1].split()[1] if len(fs) > 1 else "?",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "reps": reps, "delivery": delivery,
            "load_before": "%.1f" % os.getloadavg()[0],
            "mem_field": bl.mem_field()}


def on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    ap = argparse.ArgumentParser(prog="tools/bench/run")
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true",
                    help="a tenth of the messages, one repetition")
    ap.add_argument("--smoke", action="store_true",
                    help="a few hundred messages in all (make check)")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--workloads", help="comma-separated names")
    ap.add_argument("--out", help="table file (default BUILD/bench-results"
                    ".txt; the JSON goes beside it)")
    ap.add_argument("--no-durability", action="store_true")
    ap.add_argument("--no-opensmtpd", action="store_true",
                    help="Postfix and Sendarix only")
    a = ap.parse_args(argv)
    preflight()
    build = os.path.abspath(a.build)
    TLS_SOURCE[0] = os.path.join(build, bl.TLS_SOURCE)
    for prog in ("master", "smtpd", "cleanup", "sendarix"):
        if not os.access(os.path.join(build, "bin", prog), os.X_OK):
            sys.exit("bench: %s/bin/%s is missing; run make first" % (
                build, prog))
    reps = a.reps or (1 if (a.quick or a.smoke) else 3)
    wls = WORKLOADS
    if a.workloads:
        names = a.workloads.split(",")
        wls = [w for w in WORKLOADS if w[0] in names]
        if len(wls) != len(names):
            sys.exit("bench: workloads are " +
                     ", ".join(w[0] for w in WORKLOADS))
    elif a.smoke:
        wls = [w for w in WORKLOADS if w[7].get("smoke", True)]
    out = a.out or os.path.join(build, "bench-results.txt")
    delivery = bl.has_delivery(build)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    bl.raise_nofile()

    meta = meta_info(reps, delivery)
    osd_off = ("--no-opensmtpd" if a.no_opensmtpd
               else bl.opensmtpd_missing(build))
    if osd_off:
        meta["opensmtpd_off"] = osd_off
    else:
        meta["opensmtpd_version"] = bl.opensmtpd_version()
    try:
        if a.no_durability:
            ok, stmt, det = False, "durability: not checked (--no-" \
                "durability)", {}
        else:
            log("durability check (strace on a short Sendarix run) ...")
            ok, stmt, det = durability_check(build,
                                             count=20 if a.smoke else 40)
        log(stmt)
        meta.update(durability=stmt, durability_ok=ok,
                    durability_detail=det)
        log("disk probe (write, fsync, rename, directory fsync) ...")
        meta["disk_1"] = disk_probe(60 if a.smoke else 400)
        meta["disk_4"] = disk_probe(30 if a.smoke else 200, writers=4)
        log("disk: %.0f/s with one writer, %.0f/s with four" % (
            meta["disk_1"], meta["disk_4"]))
        results = []
        for wl in wls:
            count = wl[3]
            if a.quick:
                count = max(50, count // 10)
            if a.smoke:
                count = 40 if wl[2] > 10 else 20
            log("%s: %s, %d messages x %d rep(s)" % (wl[0], wl[1], count,
                                                     reps))
            skip = osd_off or wl[7].get("opensmtpd")
            if not skip and a.smoke and wl[0] not in SMOKE_OPENSMTPD:
                skip = "not in --smoke (only %s)" % ", ".join(
                    SMOKE_OPENSMTPD)
            try:
                try:
                    runs = run_workload(wl, count, reps, build, delivery,
                                        warm=not a.smoke,
                                        opensmtpd=not skip)
                except RuntimeError as e:
                    if skip or "opensmtpd" not in str(e):
                        raise
                    # OpenSMTPD failed to start: the row without it
                    skip = str(e).splitlines()[0]
                    log("  %s; again without it" % skip)
                    runs = run_workload(wl, count, reps, build, delivery,
                                        warm=not a.smoke)
            except (RuntimeError, OSError) as e:
                log("  FAILED: %s" % e)
                runs = {"postfix": [], "sendarix": [], "error": str(e)}
            res = {m: summarize(runs[m])
                   for m in MTAS if m in runs}
            keys = ("accepted_per_s", "delivered_per_s", "cpu_ms_per_msg",
                    "peak_mb")
            res["ratios"] = {k: paired_ratio(runs, k) for k in keys}
            if "opensmtpd" in runs:
                res["ratios_o"] = {k: paired_ratio(runs, k, "opensmtpd")
                                   for k in keys}
            elif skip and skip != osd_off:
                res["opensmtpd_skip"] = skip
            res["runs"] = runs
            if runs.get("error"):
                res["sendarix"]["errors"].append(runs["error"])
            results.append((wl[0], wl[1], count, res))
    except KeyboardInterrupt:
        log("bench: interrupted; removing the instances")
        return 130
    finally:
        for obj in reversed(_cleanup):
            try:
                obj.remove() if hasattr(obj, "remove") else obj.stop()
            except Exception as e:      # keep cleaning up the rest
                log("bench: cleanup: %s" % e)
    meta["load_after"] = "%.1f" % os.getloadavg()[0]
    meta["opensmtpd_backlogs"] = sorted(b for b in OPENSMTPD_BACKLOGS if b)
    meta["dirs"] = _made
    text = table(results, meta)
    print()
    print(text, end="")
    with open(out, "w") as f:
        f.write(text)
    jpath = os.path.splitext(out)[0] + ".json"
    with open(jpath, "w") as f:
        json.dump({"meta": meta, "workloads": [
            {"name": n, "label": lab, "messages": c, "postfix": r["postfix"],
             "sendarix": r["sendarix"], "opensmtpd": r.get("opensmtpd"),
             "opensmtpd_skip": r.get("opensmtpd_skip"),
             "ratios": r["ratios"], "ratios_opensmtpd": r.get("ratios_o"),
             "runs": r["runs"]}
            for n, lab, c, r in results]}, f, indent=1)
    log("written: %s %s" % (out, jpath))
    return 0 if ok or a.no_durability else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
