#!/usr/bin/python3
"""c10k - 10,000 concurrent idle SMTP sessions against Sendarix

usage: tools/bench/c10k BUILD_DIR [--sessions N] [--sources K]
                          [--clients C] [--smtpd-procs P]

Starts a throwaway Sendarix (master -f -c DIR with BUILD_DIR/bin; the
delivery services too when they are built, relayhost = an smtp-sink),
opens N sessions (default 10,000) from K loopback source addresses
(127.0.0.2 ... ; default 4) and reads each 220 greeting, then leaves them
idle and reports:
  - the RSS (and PSS) of all Sendarix processes together, per process,
    against the goal of issue 12 (10,000 sessions in under 40 MB);
  - whether a fresh session is still served promptly: the time to its
    greeting and to complete one transaction (EHLO, MAIL, RCPT, DATA,
    QUIT);
  - that the idle sessions are still open afterwards.

File descriptors: this script raises its own soft RLIMIT_NOFILE to the
hard limit, and raises it before starting master so that master and smtpd
inherit it; smtpd's actual limit is read from /proc and reported. The
client addresses are in mynetworks, which is the default
smtpd_client_connection_exceptions, so the per-client connection limit
does not apply. Exit status 0 when every session opened and the fresh
session was served within 1 s (greeting) and 2 s (transaction).

More sessions than one process may hold descriptors for (the hard
RLIMIT_NOFILE, which only CAP_SYS_RESOURCE may raise): the sessions are
opened by C client processes (default: as many as the limit needs) and
served by P smtpd processes (maxproc of the smtp service; default: as many
as the limit needs, else the shipped value), and smtpd_max_sessions is
raised so that it refuses none of them. Use --sources so that no source
address needs more than the ephemeral port range
(net.ipv4.ip_local_port_range) holds.
"""

import argparse
import errno
import multiprocessing
import os
import selectors
import socket
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GOAL_MB = 40                    # for 10,000 sessions (issue 12); scaled for more


def open_sessions(port, n, sources, inflight=500, timeout=120):
    """n sessions that have read their 220 greeting; (socks, failures)."""
    sel = selectors.DefaultSelector()
    done, failures = [], []
    started = 0
    pending = 0
    deadline = time.monotonic() + timeout
    while len(done) + len(failures) < n:
        while pending < inflight and started < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.bind((sources[started % len(sources)], 0))
                rc = s.connect_ex(("127.0.0.1", port))
            except OSError as e:
                s.close()
                failures.append(str(e))
                started += 1
                continue
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                failures.append(os.strerror(rc))
                started += 1
                continue
            sel.register(s, selectors.EVENT_READ, [b""])
            started += 1
            pending += 1
        if time.monotonic() > deadline:
            break
        for key, _ in sel.select(timeout=1.0):
            s, buf = key.fileobj, key.data
            try:
                data = s.recv(4096)
            except OSError as e:
                data, err = None, str(e)
            if not data:
                sel.unregister(s)
                s.close()
                pending -= 1
                failures.append("closed before greeting" if data == b""
                                else err)
                continue
            buf[0] += data
            if b"\r\n" in buf[0]:
                sel.unregister(s)
                pending -= 1
                if buf[0].startswith(b"220"):
                    done.append(s)
                else:
                    failures.append(buf[0][:80].decode(errors="replace"))
                    s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
        failures.append("no greeting in time")
    sel.close()
    return done, failures


def smtp_reply(f):
    """Read one (multi-line) SMTP reply; its code."""
    while True:
        line = f.readline()
        if not line:
            raise OSError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3])


def fresh_transaction(port, source="127.0.0.1"):
    """(seconds to greeting, seconds for the whole transaction, error)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                     source_address=(source, 0))
    except OSError as e:
        return None, None, "connect: %s" % e
    f = s.makefile("rb")
    try:
        if smtp_reply(f) != 220:
            return None, None, "no 220 greeting"
        t_greet = time.monotonic() - t0
        for cmd, want in ((b"EHLO c10k.bench.example", 250),
                          (b"MAIL FROM:<c10k@client.bench.example>", 250),
                          (b"RCPT TO:<rcpt@dest.bench.example>", 250),
                          (b"DATA", 354),
                          (b"Subject: c10k\r\n\r\nfresh session\r\n.", 250),
                          (b"QUIT", 221)):
            s.sendall(cmd + b"\r\n")
            code = smtp_reply(f)
            if code != want:
                return t_greet, None, "%s got %d" % (
                    cmd.split(b"\r")[0].decode(), code)
        return t_greet, time.monotonic() - t0, None
    except OSError as e:
        return None, None, str(e)
    finally:
        f.close()
        s.close()


def client_worker(conn, port, n, sources):
    """One client process: open n sessions, report, check, close."""
    socks, failures = open_sessions(port, n, sources)
    conn.send((len(socks), failures[:1], len(failures)))
    conn.recv()                 # the parent has measured: check them
    conn.send(still_open(socks))
    conn.recv()                 # done: close
    for s in socks:
        s.close()


class Clients:
    """Sessions held by several client processes (one descriptor limit
    each); the same answers as open_sessions() and still_open()."""

    def __init__(self, port, n, sources, nclients):
        ctx = multiprocessing.get_context("fork")
        self.workers = []
        for i in range(nclients):
            share = n // nclients + (1 if i < n % nclients else 0)
            parent, child = ctx.Pipe()
            p = ctx.Process(target=client_worker,
                            args=(child, port, share, sources))
            p.start()
            self.workers.append((p, parent))

    def opened(self):
        """(sessions open, failures: first few, count)."""
        ok, first, nfail = 0, [], 0
        for _, conn in self.workers:
            n, f, nf = conn.recv()
            ok, first, nfail = ok + n, first + f, nfail + nf
        return ok, first, nfail

    def still_open(self, sample=200):
        alive = total = 0
        for _, conn in self.workers:
            conn.send("check")
        for _, conn in self.workers:
            a, t = conn.recv()
            alive, total = alive + a, total + t
        return alive, total

    def close(self):
        for p, conn in self.workers:
            try:
                conn.send("close")
            except OSError:
                pass
        for p, _ in self.workers:
            p.join(30)


def set_smtpd_procs(inst, procs):
    """Run "procs" smtpd processes (master.cf maxproc of the smtp
    service), before inst.start()."""
    lines = []
    for line in inst.master_cf.splitlines():
        f = line.split()
        if len(f) == 8 and f[1] == "inet" and f[7] == "smtpd":
            f[6] = str(procs)
            line = " ".join(f)
        lines.append(line)
    inst.master_cf = "\n".join(lines) + "\n"
    with open(os.path.join(inst.conf, "master.cf"), "w") as f:
        f.write(inst.master_cf)


def still_open(socks, sample=200):
    """How many of a sample of idle sessions are still open."""
    step = max(1, len(socks) // sample)
    alive = total = 0
    for s in socks[::step]:
        total += 1
        try:
            data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if data:
                alive += 1      # something to read (e.g. a 421): not idle
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive, total


def main(argv):
    ap = argparse.ArgumentParser(prog="tools/bench/c10k")
    ap.add_argument("build")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--clients", type=int, default=0,
                    help="client processes (default: as the limit needs)")
    ap.add_argument("--smtpd-procs", type=int, default=0,
                    help="smtpd processes (default: as the limit needs)")
    a = ap.parse_args(argv)
    build = os.path.abspath(a.build)
    soft, hard = bl.raise_nofile()
    need = a.sessions + 200
    print("c10k: RLIMIT_NOFILE soft %d hard %d (inherited by master and "
          "smtpd)" % (soft, hard))
    per_proc = max(1000, soft - 300)    # sessions one process may hold
    nclients = a.clients or -(-a.sessions // per_proc)
    procs = a.smtpd_procs or (-(-a.sessions // per_proc)
                              if soft < need else 0)
    if soft < need and (nclients < 2 or procs < 2):
        print("c10k: WARNING: %d sessions need about %d descriptors; the "
              "limit is %d (raise the hard limit: ulimit -Hn)" % (
                  a.sessions, need, soft))
    elif soft < need:
        print("c10k: %d sessions over %d client processes and %d smtpd "
              "processes (the limit is %d descriptors a process)" % (
                  a.sessions, nclients, procs, soft))
    sources = ["127.0.0.%d" % (2 + i) for i in range(a.sources)]
    sink = inst = clients = None
    socks = []
    try:
        sink = bl.SmtpSink().start() if bl.has_delivery(build) else None
        # smtpd_max_sessions (default 20000) must not refuse any of them.
        extra = ({"smtpd_max_sessions": str(a.sessions + 100)}
                 if a.sessions + 100 > 20000 else None)
        inst = bl.SendarixInstance(build, ROOT, sink.port if sink else None,
                                   extra=extra)
        if procs:
            set_smtpd_procs(inst, procs)
        inst.start()
        if procs > 1:
            bl.wait_for(lambda: len(inst.tree.named("smtpd")) >= procs, 10)
        smtpds = inst.tree.named("smtpd")
        each = -(-a.sessions // max(1, len(smtpds))) + 200
        for p in smtpds:
            lim = bl.proc_limit_nofile(p)
            print("c10k: smtpd[%d] open-files limit %s%s" % (
                p, lim, "" if lim is None or lim >= each
                else "  <-- TOO LOW for %d sessions" % (each - 200)))
        base_kb = inst.tree.memory_kb("Rss")
        t0 = time.monotonic()
        if nclients > 1:
            clients = Clients(inst.port, a.sessions, sources, nclients)
            nopen, failures, nfail = clients.opened()
        else:
            socks, failures = open_sessions(inst.port, a.sessions, sources)
            nopen, nfail = len(socks), len(failures)
        t_open = time.monotonic() - t0
        print("c10k: %d of %d sessions open with their 220 greeting in "
              "%.1fs from %d source addresses%s; %d failed%s" % (
                  nopen, a.sessions, t_open, len(sources),
                  " by %d client processes" % nclients if clients else "",
                  nfail, (" (first: %s)" % failures[0])
                  if failures else ""))
        time.sleep(1.0)
        rss = inst.tree.memory_kb("Rss")
        pss = inst.tree.memory_kb("Pss") if bl.mem_field() == "Pss" else None
        goal = GOAL_MB * max(1, a.sessions // 10000)
        print("c10k: Sendarix RSS with %d idle sessions: %.1f MB (%.1f MB "
              "before; PSS %s); goal < %d MB: %s" % (
                  nopen, rss / 1024.0, base_kb / 1024.0,
                  "%.1f MB" % (pss / 1024.0) if pss is not None else "n/a",
                  goal, "met" if rss / 1024.0 < goal else "NOT met"))
        for p in inst.tree.pids():
            print("c10k:   %-10s pid %-7d RSS %.1f MB" % (
                bl.proc_name(p), p, bl._mem_kb(p, "Rss") / 1024.0))
        t_greet, t_txn, err = fresh_transaction(inst.port)
        prompt = err is None and t_greet < 1.0 and t_txn < 2.0
        if err:
            print("c10k: fresh session FAILED: %s" % err)
        else:
            print("c10k: fresh session: greeting after %.1f ms, one "
                  "transaction done after %.1f ms: %s" % (
                      1000 * t_greet, 1000 * t_txn,
                      "prompt" if prompt else "NOT prompt"))
        alive, total = (clients.still_open() if clients
                        else still_open(socks))
        print("c10k: idle sessions still open afterwards: %d of %d sampled"
              % (alive, total))
        ok = nopen == a.sessions and prompt and alive == total
        print("c10k: %s" % ("PASS" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        for s in socks:
            s.close()
        if clients:
            clients.close()
        if inst:
            inst.remove()
        if sink:
            sink.stop()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
