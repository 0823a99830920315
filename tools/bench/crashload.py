"""crashload - a mail load with daemon kills and reloads, and its accounting

The scenario of Sendarix issue 10 ("exactly once"), shared by
tests/integration/test_exactly_once.py (make check) and `tools/bench/crash`
(make bench-crash):

  CrashReceiver  an aiosmtpd server on loopback that plays every remote
                 server: counts the copies of each recipient it accepts,
                 rejects recipients whose address starts with "reject" with
                 550 at RCPT, reads the failure notifications (RFC 3464)
                 that come back to the senders, can hold its RCPT or DATA
                 replies on a gate the caller controls, and notes each
                 "250" to DATA that was still on the wire when its
                 connection closed (the client never sent another command)
  Target         a running Sendarix: master's pid, its config and queue
                 directories, its log; kills master's children by program
                 name, reloads, lists the queue
  run_load()     COUNT messages from SESSIONS concurrent smtplib sessions,
                 one recipient each, 1 in REJECT_EVERY rejected by the
                 receiver, each with a unique X-Seq header; while it runs,
                 the EVENTS (SIGKILL of a daemon, `sendarix reload`) fire in
                 turn, each once a fraction of the messages has been
                 accepted and after the previous one has settled (master
                 restarted the victim / started the new generation);
                 then waits for the queue to drain and returns a LoadResult
  LoadResult     lost, stranded, duplicates and duplicate notifications,
                 in total and per event, and the table that prints them

Accounting. A message counts as accepted when its client saw 250 after
DATA. It is lost when its recipient was neither delivered (accepted by the
receiver) nor, for a rejected recipient, reported in a failure
notification to its sender. Stranded: queue files still in active/ (or
incoming/, deferred/) after the drain. A duplicate is a second (third...)
copy of a recipient at the receiver (a repeated copy of one notification
message counts as a duplicate delivery to its recipient); a duplicate
notification a second failure notification, with its own Message-ID,
about one recipient. Messages whose client did not see the 250
(its session broke under a kill) are not accounted; the client goes on with
a new sequence number.

Attribution. A duplicate whose earlier copy's 250 was on the wire at an
event (see below) is charged to that event; otherwise to the event that
killed or retired (reload) the smtp-out or the qmgr that handled its
earlier copy, as the log names them ("to=<...>, ... status=sent" and "(queue active)" lines);
when the log does not have every copy (smtp-out died before it logged),
to the last event before the repeated copy among those after the message
was accepted. A duplicate notification is charged to the kill of bounce or
cleanup that broke its request (the log's warning about it, within 2 s):
cleanup may have queued the notice and its answer was on the wire, the
notice counterpart of a lost 250; otherwise by time like a duplicate. Lost
and stranded messages to the first event after their 250 to the client
(or the last event, for those accepted after it).
"Replies on the wire" of an event are the receiver's 250s to DATA whose
connection closed, without another command from the client, within a few
seconds after the event: the only deliveries whose outcome the client may
never have seen (or never recorded). A duplicate of such a recipient, at an
smtp-out kill, is unavoidable in SMTP; any other duplicate is a bug.

Standard library plus python3-aiosmtpd (a test dependency, installed by
tools/install-deps).
"""

import asyncio
import os
import re
import signal
import smtplib
import subprocess
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

# The scenario: each daemon killed in turn, three reloads.
DEFAULT_EVENTS = [
    (0.08, "kill smtpd"),
    (0.18, "reload"),
    (0.28, "kill cleanup"),
    (0.38, "kill qmgr"),
    (0.48, "reload"),
    (0.58, "kill smtp-out"),
    (0.68, "kill bounce"),
    (0.78, "reload"),
]

SERVICES = ("smtpd", "cleanup", "qmgr", "smtp-out", "bounce")

# A receiver's 250 whose connection closed within this many seconds after
# an event counts as on the wire at that event.
ON_WIRE_WINDOW = 5.0

QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


# -- the receiver -----------------------------------------------------------

class _Handler:
    """aiosmtpd hooks for CrashReceiver."""

    def __init__(self, rec):
        self.rec = rec

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        rec = self.rec
        await rec._hold(rec.rcpt_gate)
        if address.lower().startswith(rec.reject_prefix):
            with rec.lock:
                rec.rejected.setdefault(address, []).append(time.monotonic())
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        rec = self.rec
        await rec._hold(rec.data_gate)
        rec._record(envelope, session.peer)
        session.pending_reply = list(envelope.rcpt_tos)
        return "250 2.0.0 Ok: stored"


class _SMTP(SMTP):
    """aiosmtpd's SMTP, noting a 250 to DATA not followed by a command."""

    def _confirmed(self):
        if self.session is not None:
            self.session.pending_reply = None

    async def smtp_MAIL(self, arg):
        self._confirmed()
        await super().smtp_MAIL(arg)

    async def smtp_RSET(self, arg):
        self._confirmed()
        await super().smtp_RSET(arg)

    async def smtp_NOOP(self, arg):
        self._confirmed()
        await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg):
        self._confirmed()
        self.session.quit = True
        await super().smtp_QUIT(arg)

    def connection_made(self, transport):
        self.event_handler.rec.connections += 1
        super().connection_made(transport)

    def connection_lost(self, error):
        pending = getattr(self.session, "pending_reply", None)
        rec = self.event_handler.rec
        with rec.lock:
            if pending:
                rec.on_wire.append((time.monotonic(), pending))
            rec.closes.append((time.monotonic(), self.session.peer,
                               pending, getattr(self.session, "quit",
                                                False)))
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self):
        return _SMTP(self.handler, hostname="sink.crash.test",
                     decode_data=False, enable_SMTPUTF8=True)


_FINAL = re.compile(rb"Final-Recipient: *rfc822; *([^\r\n]+)\r?\n"
                    rb"Action: *([a-z]+)", re.I)


_MSGID = re.compile(rb"^Message-ID: *(\S+)", re.I | re.M)


class CrashReceiver:
    """An aiosmtpd server that counts copies per recipient (see above)."""

    def __init__(self, host="127.0.0.1", port=None, reject_prefix="reject"):
        self.host = host
        self.port = port
        self.reject_prefix = reject_prefix
        self.lock = threading.Lock()
        self.deliveries = {}	# recipient -> [monotonic time of each 250]
        self.notices = {}	# recipient -> [time of each failure notice]
        self.delays = {}	# recipient -> [time of each delay notice]
        self.rejected = {}	# recipient -> [time of each 550 at RCPT]
        self.notice_copies = {}	# (rcpts, Message-ID) -> [time of each]
        self.peers = {}		# recipient -> [client address of each copy]
        self.closes = []	# (time, peer, pending rcpts, QUIT seen)
        self.messages = []	# (mail_from, rcpts, content) of every 250
        self.on_wire = []	# (close time, rcpts) of unconfirmed 250s
        self.connections = 0
        self.held = 0		# replies being held right now
        self.data_gate = threading.Event()
        self.data_gate.set()
        self.rcpt_gate = threading.Event()
        self.rcpt_gate.set()
        self._ctl = None

    def start(self):
        if self.port is None:
            import socket
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        self._ctl = _Controller(_Handler(self), hostname=self.host,
                                port=self.port)
        self._ctl.start()
        return self

    def stop(self):
        self.data_gate.set()
        self.rcpt_gate.set()
        if self._ctl:
            self._ctl.stop()
            self._ctl = None

    async def _hold(self, gate):
        if gate.is_set():
            return
        with self.lock:
            self.held += 1
        try:
            while not gate.is_set():
                await asyncio.sleep(0.01)
        finally:
            with self.lock:
                self.held -= 1

    def _record(self, envelope, peer=None):
        now = time.monotonic()
        content = envelope.original_content or b""
        with self.lock:
            self.messages.append((envelope.mail_from,
                                  list(envelope.rcpt_tos), content))
            if envelope.mail_from in ("", "<>", None):
                # a second copy of one notification is a repeated
                # delivery, not a second notification
                m = _MSGID.search(content)
                key = (tuple(envelope.rcpt_tos),
                       m.group(1) if m else len(self.messages))
                copies = self.notice_copies.setdefault(key, [])
                copies.append(now)
                if len(copies) > 1:
                    return
                for addr, action in _FINAL.findall(content):
                    addr = addr.decode(errors="replace").strip()
                    table = self.notices if action.lower() == b"failed" \
                        else self.delays
                    table.setdefault(addr, []).append(now)
                return
            for r in envelope.rcpt_tos:
                self.deliveries.setdefault(r, []).append(now)
                self.peers.setdefault(r, []).append(peer)

    def copies(self, addr):
        with self.lock:
            return len(self.deliveries.get(addr, ()))

    def notice_count(self, addr):
        with self.lock:
            return len(self.notices.get(addr, ()))


# -- the MTA under test -----------------------------------------------------

class Target:
    """A running Sendarix, seen from outside: master's pid and paths."""

    def __init__(self, master_pid, conf_dir, queue_dir, log_file, host, port,
                 sendarix, services=None):
        self.master_pid = master_pid
        # {program: processes master keeps running}
        self.services = services or {n: 1 for n in SERVICES}
        self.conf_dir = conf_dir
        self.queue_dir = queue_dir
        self.log_file = log_file
        self.host = host
        self.port = port
        self.sendarix_bin = sendarix

    def children(self, name=None):
        """pids of master's children (running the program `name`)."""
        out = subprocess.run(["pgrep", "-P", str(self.master_pid)],
                             capture_output=True, text=True).stdout.split()
        pids = []
        for p in out:
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode()
            except OSError:
                continue
            if name is None or os.path.basename(argv0) == name:
                pids.append(int(p))
        return pids

    def kill(self, name):
        """SIGKILL every process of one service; their pids."""
        pids = self.children(name)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def sendarix(self, *args):
        return subprocess.run([self.sendarix_bin, "-c", self.conf_dir]
                              + list(args), capture_output=True, text=True,
                              timeout=60)

    def reload(self):
        r = self.sendarix("reload")
        if r.returncode != 0:
            raise RuntimeError("sendarix reload failed: %s%s" % (
                r.stdout, r.stderr))

    def queue_files(self):
        """{queue: [path, ...]} of the queue's message files."""
        out = {}
        for q in QUEUES:
            files = []
            for root, _dirs, names in os.walk(os.path.join(self.queue_dir,
                                                           q)):
                files.extend(os.path.join(root, n) for n in names
                             if not n.startswith("."))
            out[q] = sorted(files)
        return out

    def queue_empty(self):
        return not any(self.queue_files().values())

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def lines_about(self, rcpts):
        """The log lines of the messages to these recipients and of the
        notifications about them."""
        log = self.log()
        qids = set()
        for r in rcpts:
            qids.update(re.findall(r"(\w+): to=<%s>" % re.escape(r), log))
        for q in list(qids):
            qids.update(re.findall(r"%s: \w+ [\w-]+ notification: (\w+)"
                                   % q, log))
        return "".join(ln for ln in log.splitlines(True)
                       if any(q in ln for q in qids))

    def log_tail(self, n=40):
        return "".join(self.log().splitlines(True)[-n:])


def wait_until(cond, timeout, interval=0.02):
    """Poll cond() until true; its value, or None after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_settled(target, timeout=30.0):
    """Until master runs just its configured processes (no old generation
    left after a reload, no victim waiting for its restart)."""
    def settled():
        names = {}
        for p in target.children():
            try:
                with open("/proc/%d/cmdline" % p, "rb") as f:
                    n = os.path.basename(f.read().split(b"\0")[0].decode())
            except OSError:
                return False
            names[n] = names.get(n, 0) + 1
        return names == target.services
    return wait_until(settled, timeout)


# -- the load ---------------------------------------------------------------

class Event:
    def __init__(self, action, at, accepted, pids):
        self.action = action	# "kill qmgr", "reload"
        self.at = at		# monotonic time it happened
        self.accepted = accepted	# messages accepted by then
        self.pids = pids	# killed (or retired) pids
        self.wall = time.time()	# the same moment, for the log
        self.settle = None	# seconds until master had replaced them
        self.on_wire = 0
        self.dups = []
        self.dup_notices = []
        self.lost = []
        self.stranded = []
        self.on_wire_dups = 0
        self.notices_in_flight = 0

    def victim(self):
        return self.action.split()[1] if self.action.startswith("kill ") \
            else None


class LoadResult:
    def __init__(self):
        self.count = 0
        self.sessions = 0
        self.accepted = {}	# seq -> (rcpt, 250 time)
        self.unacked = 0	# transactions without a 250 (sessions broke)
        self.client_errors = {}
        self.events = []
        self.elapsed_load = 0.0
        self.elapsed_total = 0.0
        self.drained = False
        self.lost = []		# recipients
        self.stranded = []	# queue file paths left in active/
        self.left = {}		# queue -> files left after the drain
        self.dups = 0
        self.dup_notices = 0
        self.unattributed = []	# (kind, rcpt) not after any event
        self.unjustified_notices = []	# duplicate notices not explained
        #			  by a kill of bounce or cleanup mid-request
        self.unjustified = []	# duplicates not explained by a reply on
        #			  the wire at an smtp-out kill
        self.delivered = 0
        self.notified = 0
        self.rejected_rcpts = 0

    def as_dict(self):
        """The numbers, for JSON."""
        return {
            "messages": self.count, "sessions": self.sessions,
            "accepted": len(self.accepted), "broken": self.unacked,
            "client_errors": self.client_errors,
            "load_s": round(self.elapsed_load, 2),
            "total_s": round(self.elapsed_total, 2),
            "drained": self.drained, "delivered": self.delivered,
            "notified": self.notified, "lost": len(self.lost),
            "stranded": len(self.stranded),
            "left": {q: len(v) for q, v in self.left.items()},
            "duplicates": self.dups,
            "duplicates_on_wire": self.dups - len(self.unjustified),
            "duplicate_notices": self.dup_notices,
            "duplicate_notices_in_flight": self.dup_notices - len(
                self.unjustified_notices),
            "events": [{
                "event": e.action, "at_s": round(e.at - self.t0, 2),
                "accepted": e.accepted, "settle_s": e.settle,
                "on_wire": e.on_wire, "lost": len(e.lost),
                "stranded": len(e.stranded), "duplicates": len(e.dups),
                "duplicates_on_wire": e.on_wire_dups,
                "duplicate_notices": len(e.dup_notices),
                "duplicate_notices_in_flight": e.notices_in_flight}
                for e in self.events],
        }

    def suspects(self, n=5):
        """Some recipients behind what went wrong, to look up in the log."""
        out = list(self.unjustified[:n]) + list(self.lost[:n])
        out += [r for e in self.events for r in e.dup_notices][:n]
        return out

    def ok(self):
        """The issue's goal: nothing lost or left, duplicates only of
        replies on the wire at an smtp-out kill, duplicate notifications
        only of a notice whose request a kill of bounce or cleanup broke
        after cleanup may have queued it."""
        return (self.drained and not self.lost and not self.stranded
                and not any(self.left.values()) and not self.unjustified
                and not self.unjustified_notices)

    def table(self):
        """The per-event table and the totals, as text."""
        t0 = self.t0
        rows = [("event", "at s", "acc'd", "settle s", "on wire", "lost",
                 "stranded", "dups", "dup notices")]
        for e in self.events:
            rows.append((e.action, "%.1f" % (e.at - t0), str(e.accepted),
                         "%.1f" % e.settle if e.settle is not None else "-",
                         str(e.on_wire), str(len(e.lost)),
                         str(len(e.stranded)), str(len(e.dups)),
                         str(len(e.dup_notices))))
        rows.append(("total", "", str(len(self.accepted)), "",
                     str(sum(e.on_wire for e in self.events)),
                     str(len(self.lost)), str(len(self.stranded)),
                     str(self.dups), str(self.dup_notices)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for n, r in enumerate(rows):
            lines.append("  ".join(c.ljust(widths[i]) if i == 0 else
                                   c.rjust(widths[i])
                                   for i, c in enumerate(r)))
            if n == 0 or n == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        summary = (
            "%d messages accepted over %d sessions in %.1f s (%d "
            "transactions broken by the kills, not counted); drained %s "
            "%.1f s after the start; %d recipients delivered, %d rejected "
            "recipients notified; lost %d, stranded %d, left in queue %s, "
            "duplicates %d (%d with the reply on the wire at an smtp-out "
            "kill), duplicate notifications %d (%d with their request to "
            "bounce broken by a kill of bounce or cleanup)" % (
                len(self.accepted), self.sessions, self.elapsed_load,
                self.unacked, "in" if self.drained else "NOT in",
                self.elapsed_total, self.delivered, self.notified,
                len(self.lost), len(self.stranded),
                {q: len(v) for q, v in self.left.items() if v} or "none",
                self.dups, self.dups - len(self.unjustified),
                self.dup_notices,
                self.dup_notices - len(self.unjustified_notices)))
        return "\n".join(lines) + "\n" + summary + "\n"


def _rcpt_for(seq, reject_every):
    if reject_every and seq % reject_every == reject_every // 2:
        return "reject-%d@dest.crash.example" % seq
    return "r-%d@dest.crash.example" % seq


def _message(seq, rcpt, size):
    head = ("From: <s-%d@client.crash.example>\r\nTo: <%s>\r\n"
            "Subject: crash load %d\r\nX-Seq: %d\r\n\r\n" % (
                seq, rcpt, seq, seq)).encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    return head + line * max(1, size // len(line))


def run_load(target, receiver, count=10000, sessions=20, events=None,
             reject_every=20, size=512, drain_timeout=120.0,
             stall_timeout=30.0, duration=None, progress=None):
    """Run the scenario (see the module comment); a LoadResult. With
    duration, the clients are paced to spread the messages over that many
    seconds (so that events are seconds apart, longer than a retry)."""
    events = DEFAULT_EVENTS if events is None else events
    res = LoadResult()
    res.count, res.sessions = count, sessions
    lock = threading.Lock()
    cond = threading.Condition(lock)
    state = {"seq": 0, "inflight": 0, "done_clients": 0,
             "gate": int(events[0][0] * count) + max(1, count // 50)
             if events else None}
    say = progress or (lambda msg: None)

    def next_seq():
        with cond:
            while True:
                if len(res.accepted) + state["inflight"] >= count:
                    return None
                gate = state["gate"]
                if gate is None or len(res.accepted) < gate:
                    break
                cond.wait(0.5)
            state["inflight"] += 1
            state["seq"] += 1
            seq = state["seq"]
        if duration:
            due = res.t0 + min(seq, count) * duration / count
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)	# pacing the load, not waiting
        return seq

    def finish(seq, rcpt, ok, err=None):
        with cond:
            state["inflight"] -= 1
            if ok:
                res.accepted[seq] = (rcpt, time.monotonic())
            else:
                res.unacked += 1
                k = type(err).__name__
                res.client_errors[k] = res.client_errors.get(k, 0) + 1
            cond.notify_all()

    def client():
        s = None
        try:
            while True:
                seq = next_seq()
                if seq is None:
                    break
                rcpt = _rcpt_for(seq, reject_every)
                try:
                    if s is None:
                        s = smtplib.SMTP(target.host, target.port,
                                         timeout=60)
                    s.sendmail("s-%d@client.crash.example" % seq, [rcpt],
                               _message(seq, rcpt, size))
                except (smtplib.SMTPException, OSError) as e:
                    finish(seq, rcpt, False, e)
                    if s is not None:
                        try:
                            s.close()
                        except OSError:
                            pass
                    s = None
                    # master restarts a killed smtpd after a moment
                    time.sleep(0.05)
                    continue
                finish(seq, rcpt, True)
        finally:
            if s is not None:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass
            with cond:
                state["done_clients"] += 1
                cond.notify_all()

    margin = max(1, count // 50)

    def new_generation(before):
        return all(set(target.children(n)) - before
                   for n in target.services)

    def fire(frac, action, next_frac):
        threshold = int(frac * count)
        with cond:
            while len(res.accepted) < threshold and \
                    state["done_clients"] < sessions:
                cond.wait(0.5)
        before = set(target.children())
        at = time.monotonic()
        if action == "reload":
            target.reload()
            pids = sorted(before)
        else:
            name = action.split()[1]
            pids = target.kill(name)
            if not pids:
                raise RuntimeError("no %s process to kill" % name)
        with cond:
            ev = Event(action, at, len(res.accepted), pids)
            # the clients may go on up to a little past the next event's
            # threshold, so that the events stay spread over the load
            state["gate"] = None if next_frac is None else \
                int(next_frac * count) + margin
            cond.notify_all()
        say("%.1fs %s (pids %s) after %d accepted" % (
            at - res.t0, action, " ".join(map(str, pids)), ev.accepted))
        # Settled when master runs a new process of every service (after a
        # reload) or of the victim. A retired smtpd lives on as long as
        # its clients keep their sessions: that is not waited for.
        if action == "reload":
            ok = wait_until(lambda: new_generation(before), 60)
        else:
            ok = wait_until(lambda: set(target.children(name)) - set(pids),
                            60)
        if ok:
            ev.settle = time.monotonic() - at
        res.events.append(ev)

    res.t0 = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(sessions)]
    for t in threads:
        t.start()
    event_error = None
    try:
        for i, (frac, action) in enumerate(events):
            nxt = events[i + 1][0] if i + 1 < len(events) else None
            fire(frac, action, nxt)
    except Exception as e:	# report it after the clients stopped
        event_error = e
        with cond:
            state["gate"] = None
            cond.notify_all()
    for t in threads:
        t.join()
    res.elapsed_load = time.monotonic() - res.t0
    say("%.1fs load done: %d accepted, %d broken transactions" % (
        res.elapsed_load, len(res.accepted), res.unacked))
    if event_error:
        raise event_error

    def accounted():
        for seq, (rcpt, _t) in res.accepted.items():
            if rcpt.startswith(receiver.reject_prefix):
                if not receiver.notice_count(rcpt):
                    return False
            elif not receiver.copies(rcpt):
                return False
        return True

    # Drain: until the queue is empty, one generation of daemons runs and
    # every accepted recipient is accounted for; give up after
    # drain_timeout, or when nothing moved for stall_timeout (retries come
    # every few seconds in these set-ups, so a still queue is stuck).
    progress_mark = {"sig": None, "at": time.monotonic()}

    def done_or_stuck():
        if target.queue_empty() and wait_settled(target, 0) and accounted():
            return "drained"
        files = target.queue_files()
        with receiver.lock:
            sig = (len(receiver.messages),
                   sum(len(v) for v in receiver.rejected.values()),
                   tuple(len(v) for v in files.values()))
        now = time.monotonic()
        if sig != progress_mark["sig"]:
            progress_mark["sig"], progress_mark["at"] = sig, now
        elif now - progress_mark["at"] > stall_timeout:
            return "stuck"
        return None

    how = wait_until(done_or_stuck, drain_timeout, interval=0.2)
    res.drained = how == "drained"
    res.elapsed_total = time.monotonic() - res.t0
    say("%.1fs %s" % (res.elapsed_total, "drained" if res.drained else
                      "NOT drained (%s)" % (how or "timed out")))
    _account(res, target, receiver)
    return res


def _first_event(events, start):
    """The first event at or after start."""
    for e in events:
        if e.at >= start - 0.01:
            return e
    return None


def _charge(events, start):
    """The event a lost or stranded message is charged to: the first at
    or after its 250, else the last before it."""
    e = _first_event(events, start)
    if e is None and events and events[-1].at < start:
        e = events[-1]
    return e


def _cause(events, start, end):
    """The last event before end (and after start, when known)."""
    found = None
    for e in events:
        if e.at <= end and (start is None or e.at >= start - 0.01):
            found = e
    return found


_SENT = re.compile(r"sendarix/smtp-out\[(\d+)\]: (\w+): to=<([^>]*)>.*"
                   r"status=sent")
_ACTIVE = re.compile(r"sendarix/qmgr\[(\d+)\]: (\w+): from=<.*\(queue "
                     r"active\)")


def _sent_by(log):
    """{recipient: [(smtp-out pid, qmgr pid), ...]}: who sent each copy,
    by the log (the qmgr that last activated the queue file before)."""
    active = {}
    out = {}
    for line in log.splitlines():
        m = _ACTIVE.search(line)
        if m:
            active[m.group(2)] = int(m.group(1))
            continue
        m = _SENT.search(line)
        if m:
            out.setdefault(m.group(3), []).append(
                (int(m.group(1)), active.get(m.group(2))))
    return out


def _culprit(events, procs):
    """The first event that killed or retired one of procs."""
    for e in events:
        if set(e.pids) & set(p for p in procs if p):
            return e
    return None


def _log_time(line):
    """The wall-clock time of a log line ("Dec  3 12:24:37 ...")."""
    try:
        st = time.strptime(line[:15], "%b %d %H:%M:%S")
    except ValueError:
        return None
    now = time.localtime()
    return time.mktime((now.tm_year,) + tuple(st)[1:8] + (-1,))


def _notice_in_flight(events, log, rcpt):
    """The kill of bounce or cleanup that broke the request for rcpt's
    notice after cleanup may have queued it (qmgr: "bounce service ...
    connection closed before the reply"; bounce: "... not sent: ...
    cleanup service unavailable"), within 2 s of the line; or None."""
    qids = set(re.findall(r"(\w+): to=<%s>" % re.escape(rcpt), log))
    for line in log.splitlines():
        m = re.search(r"\]: (?:warning: )?(\w+): (?:bounce service \("
                      r"failure notice\): connection closed before the "
                      r"reply|sender non-delivery notification to <[^>]*> "
                      r"not sent: 4\.3\.0 cleanup service unavailable)",
                      line)
        if not m or m.group(1) not in qids:
            continue
        victim = "bounce" if "bounce service" in line else "cleanup"
        when = _log_time(line)
        for e in events:
            if e.victim() == victim and when is not None and \
                    abs(e.wall - when) <= 2:
                return e
    return None


def _seq_of_file(path):
    try:
        with open(path, "rb") as f:
            m = re.search(rb"X-Seq: (\d+)", f.read())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _account(res, target, receiver):
    """Fill in lost, stranded, duplicates and their attribution."""
    events = sorted(res.events, key=lambda e: e.at)
    with receiver.lock:
        deliveries = {k: list(v) for k, v in receiver.deliveries.items()}
        # repeated copies of a notification count as repeated deliveries
        # to its envelope recipient (the sender of the bounced message)
        for (rcpts, _id), times in receiver.notice_copies.items():
            if len(times) > 1 and len(rcpts) == 1:
                deliveries[rcpts[0]] = list(times)
        notices = {k: list(v) for k, v in receiver.notices.items()}
        on_wire = list(receiver.on_wire)
    res.left = target.queue_files()
    res.stranded = list(res.left["active"])
    by_seq = {seq: rcpt for seq, (rcpt, _t) in res.accepted.items()}

    # replies on the wire, per event
    wire_rcpts = {}
    for t_close, rcpts in on_wire:
        e = None
        for cand in events:
            if cand.at - 0.01 <= t_close <= cand.at + ON_WIRE_WINDOW:
                e = cand
        if e is not None:
            e.on_wire += len(rcpts)
            for r in rcpts:
                wire_rcpts[r] = e

    for seq, (rcpt, t_acc) in sorted(res.accepted.items()):
        reject = rcpt.startswith(receiver.reject_prefix)
        got = notices.get(rcpt, []) if reject else deliveries.get(rcpt, [])
        if reject:
            res.rejected_rcpts += 1
            res.notified += bool(got)
        else:
            res.delivered += bool(got)
        if not got:
            res.lost.append(rcpt)
            e = _charge(events, t_acc)
            if e:
                e.lost.append(rcpt)
            else:
                res.unattributed.append(("lost", rcpt))
    for path in res.stranded:
        seq = _seq_of_file(path)
        t_acc = res.accepted.get(seq, (None, None))[1]
        e = _charge(events, t_acc) if t_acc is not None else None
        if e:
            e.stranded.append(path)

    # duplicates: every copy after the first, of any recipient (accepted
    # or not: a message whose 250 the client missed still arrives once),
    # charged to the event whose kill closed the connection with that
    # recipient's 250 on it; else by the log when it names the processes
    # of each copy; else to the last event before the repeated copy
    accepted_at = {rcpt: t for rcpt, t in res.accepted.values()}
    sent = _sent_by(target.log())
    for rcpt, times in deliveries.items():
        for n, t in enumerate(times[1:]):
            res.dups += 1
            e = wire_rcpts.get(rcpt)
            if e is None and len(sent.get(rcpt, ())) == len(times):
                e = _culprit(events, sent[rcpt][n])
            if e is None:
                e = _cause(events, accepted_at.get(rcpt), t)
            if e is None:
                res.unattributed.append(("duplicate", rcpt))
                res.unjustified.append(rcpt)
                continue
            e.dups.append(rcpt)
            if e.victim() == "smtp-out" and wire_rcpts.get(rcpt) is e:
                e.on_wire_dups += 1
            else:
                res.unjustified.append(rcpt)
    log = target.log()
    for rcpt, times in notices.items():
        for t in times[1:]:
            res.dup_notices += 1
            e = _notice_in_flight(events, log, rcpt)
            if e is not None:
                e.notices_in_flight += 1
            else:
                res.unjustified_notices.append(rcpt)
                e = _cause(events, accepted_at.get(rcpt), t)
            if e is None:
                res.unattributed.append(("duplicate notice", rcpt))
            else:
                e.dup_notices.append(rcpt)
    res.by_seq = by_seq
