"""benchlib - throwaway MTA instances, sinks and /proc sampling for make bench

Used by tools/bench/bench.py (the Sendarix vs Postfix benchmark) and
tools/bench/c10k.py. Standard library only; run with Debian's
/usr/bin/python3, as root (Postfix's master must start as root).

  ProcTree(pid)          CPU seconds and PSS/RSS of a process and all its
                         descendants, from /proc
  Sampler(tree)          a thread that keeps the peak summed PSS (or RSS)
  PostfixInstance        Debian's Postfix with its own config, queue and
                         data directories under a temp dir
  SendarixInstance       master -f -c DIR with the programs of a build dir
  OpenSmtpdInstance      OpenSMTPD (Debian's, unpacked by tools/install-deps)
                         with its own smtpd.conf, spool and control socket
                         under a temp dir (bind-mounted in a private mount
                         namespace over the compiled-in paths)
  SmtpSink / SandboxSink the receiving server and its message counter
"""

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
POSTFIX = "/usr/sbin/postfix"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
# smtp-source lacks STARTTLS: the TLS row uses this one (tests/helpers)
TLS_SOURCE = os.path.join("tests", "helpers", "smtp_tls_source")
# Debian's opensmtpd conflicts with postfix, so tools/install-deps unpacks
# it here instead of installing it
OPENSMTPD = os.environ.get("BENCH_OPENSMTPD",
                           "/opt/sendarix-bench/opensmtpd/usr/sbin/smtpd")
# OpenSMTPD compiles in a listen backlog of 5 (SMTPD_BACKLOG), which
# smtp-source's simultaneous connects overflow (each dropped SYN: a 1 s
# retransmission). The bench preloads this shim (tools/bench/
# listen_backlog.c, built by make) into it to listen with this backlog,
# as a build with a larger SMTPD_BACKLOG would.
LISTEN_SHIM = os.path.join("tools", "listen_backlog.so")
OPENSMTPD_BACKLOG = 4096


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(cond, timeout, interval=0.02):
    """Poll cond() until true; return its value, or None after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def raise_nofile(want=None):
    """Raise this process's soft RLIMIT_NOFILE (to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None or hard == resource.RLIM_INFINITY \
        else min(want, hard)
    if target != resource.RLIM_INFINITY and target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# -- /proc ------------------------------------------------------------------

def _read_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in ticks, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return (int(rest[1]), int(rest[11]) + int(rest[12]),
            int(rest[13]) + int(rest[14]))


def listen_overflows():
    """The kernel's count of SYNs dropped because a listen queue was full
    (TcpExt ListenOverflows, for the whole machine), or None."""
    try:
        with open("/proc/net/netstat") as f:
            rows = [line.split() for line in f if line.startswith("TcpExt:")]
        return int(dict(zip(rows[0], rows[1]))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def proc_name(pid):
    """basename of argv[0], or ''."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""
    return os.path.basename(argv0.split()[0]) if argv0 else ""


def proc_limit_nofile(pid):
    """The soft 'Max open files' limit of a process, or None."""
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _mem_kb(pid, field):
    """PSS (from smaps_rollup) or RSS (from status) of one process, in kB."""
    if field == "Pss":
        path, key = "/proc/%d/smaps_rollup" % pid, "Pss:"
    else:
        path, key = "/proc/%d/status" % pid, "VmRSS:"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def mem_field():
    """Pss when /proc/self/smaps_rollup exists, else Rss."""
    return "Pss" if os.path.exists("/proc/self/smaps_rollup") else "Rss"


class ProcTree:
    """A root process and its descendants, found afresh on every call."""

    def __init__(self, root_pid):
        self.root = root_pid

    def pids(self):
        children = {}
        for pid in all_pids():
            st = _read_stat(pid)
            if st:
                children.setdefault(st[0], []).append(pid)
        out, todo = [], [self.root]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, ()))
        return out

    def cpu_seconds(self):
        """utime+stime of every live member plus the cutime+cstime of all
        (children that were reaped count through their parent)."""
        ticks = 0
        for pid in self.pids():
            st = _read_stat(pid)
            if st:
                ticks += st[1] + st[2]
        return ticks / CLK_TCK

    def memory_kb(self, field=None):
        field = field or mem_field()
        return sum(_mem_kb(p, field) for p in self.pids())

    def named(self, name):
        return [p for p in self.pids() if proc_name(p) == name]


class Sampler(threading.Thread):
    """Samples the summed memory of a ProcTree every interval seconds."""

    def __init__(self, tree, interval=0.1, field=None):
        super().__init__(daemon=True)
        self.tree = tree
        self.interval = interval
        self.field = field or mem_field()
        self.peak_kb = 0
        self.peak_procs = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while True:
            pids = self.tree.pids()
            kb = sum(_mem_kb(p, self.field) for p in pids)
            self.peak_kb = max(self.peak_kb, kb)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.samples += 1
            if self._halt.wait(self.interval):
                break

    def stop(self):
        self._halt.set()
        self.join()
        return self.peak_kb


# -- sinks ------------------------------------------------------------------

class SmtpSink:
    """Postfix's smtp-sink; count() is the number of messages (DATA ".")
    it has received, read from its -c running counters."""

    kind = "smtp-sink"

    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None
        self._mesg = 0
        self._thread = None

    def start(self):
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-c", "-u", "postfix", "-m", "1024",
             "127.0.0.1:%d" % self.port, "1024"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not wait_for(lambda: port_open(self.port)
                        or self.proc.poll() is not None, 10):
            raise RuntimeError("smtp-sink did not listen")
        if self.proc.poll() is not None:
            raise RuntimeError("smtp-sink exited")
        # the probe connection above counts as a session, not a message
        return self

    def _read(self):
        pat = re.compile(rb"mesg=(\d+)")
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            buf += chunk
            parts = re.split(rb"[\r\n]", buf)
            buf = parts.pop()
            for p in parts:
                m = pat.search(p)
                if m:
                    self._mesg = int(m.group(1))

    def count(self):
        return self._mesg

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class SandboxSink:
    """sendarix sandbox with a rule table; count() is the number of
    recipients it has accepted (its -s statistics file)."""

    kind = "sandbox"

    def __init__(self, build, rules, port=None, tls=None):
        self.tls = tls              # (certfile, keyfile): offer STARTTLS
        self.port = port or free_port()
        # test equipment, not a queue: on tmpfs when there is one, so
        # that its file per message costs the shared CPUs little
        self.dir = _mkdtemp("bench-sandbox-", SINK_DIR)
        self.build = build
        self.rules_text = rules
        self.proc = None

    def start(self):
        rules = os.path.join(self.dir, "rules")
        with open(rules, "w") as f:
            f.write(self.rules_text)
        self.stats = os.path.join(self.dir, "stats.json")
        self.log = open(os.path.join(self.dir, "log"), "w")
        conf = os.path.join(self.dir, "conf")
        os.makedirs(conf)
        with open(os.path.join(conf, "main.cf"), "w") as f:
            f.write("# sandbox for make bench\n")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "bin", "sendarix"), "-c", conf,
             "sandbox",
             "-l", "127.0.0.1:%d" % self.port, "-d",
             os.path.join(self.dir, "maildir"), "-s", self.stats,
             "-r", "pcre:" + rules, "-n", "sink.bench.test", "-t", "60"]
            + (["-c", self.tls[0], "-k", self.tls[1]] if self.tls else []),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        ok = wait_for(lambda: (os.path.exists(self.stats)
                               and port_open(self.port))
                      or self.proc.poll() is not None, 10)
        if not ok or self.proc.poll() is not None:
            self.log.flush()
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                text = f.read()[-1000:]
            self.stop()
            raise RuntimeError("sandbox did not start: " + text)
        return self

    def stats_now(self):
        try:
            with open(self.stats) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def count(self):
        return int(self.stats_now().get("recipients_accepted", 0))

    def tls_messages(self):
        return int(self.stats_now().get("messages_tls", 0))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# -- MTA instances ----------------------------------------------------------

# where the sandbox sink keeps what it receives
SINK_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access(
    "/dev/shm", os.W_OK) else "/tmp"


def _mkdtemp(prefix, top="/tmp"):
    d = tempfile.mkdtemp(prefix=prefix, dir=top)
    os.chmod(d, 0o755)
    return d


def count_files(top, subdirs):
    n = 0
    for sub in subdirs:
        for _dirpath, _dirs, files in os.walk(os.path.join(top, sub)):
            n += sum(1 for f in files if not f.startswith("."))
    return n


def count_in_log(path, text):
    try:
        with open(path, "rb") as f:
            return f.read().count(text.encode())
    except OSError:
        return 0


POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
local     unix - n n - - local
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
tlsmgr    unix - - n 1000? 1 tlsmgr
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixInstance:
    """A throwaway Postfix: config, queue, data and log under one temp dir,
    smtpd on a free loopback port, relayhost = the sink. Never touches
    /etc/postfix or port 25."""

    name = "postfix"

    def __init__(self, sink_port, extra=None):
        self.top = _mkdtemp("bench-postfix-")
        self.conf = os.path.join(self.top, "conf")
        self.queue = os.path.join(self.top, "queue")
        self.data = os.path.join(self.top, "data")
        self.log_file = os.path.join(self.top, "maillog")
        self.port = free_port()
        self.pid = None
        for d in (self.conf, self.queue, self.data):
            os.makedirs(d)
        shutil.chown(self.data, "postfix")
        params = [
            ("compatibility_level", "3.6"),
            ("queue_directory", self.queue),
            ("data_directory", self.data),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("myhostname", "postfix.bench.test"),
            ("inet_interfaces", "127.0.0.1"),
            ("inet_protocols", "ipv4"),
            ("mydestination", ""),
            ("mynetworks", "127.0.0.0/8"),
            ("relayhost", "[127.0.0.1]:%d" % sink_port),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("local_recipient_maps", ""),
            ("maillog_file", self.log_file),
            ("maillog_file_prefixes", self.top),
            ("smtp_tls_security_level", "none"),
            ("smtpd_tls_security_level", "none"),
        ]
        # the row's parameters replace the defaults above (no "overriding
        # earlier entry" warnings in every process)
        params = list(dict(params, **(extra or {})).items())
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in params:
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(port=self.port))
        # Postfix waits until a table file is a few seconds old before it
        # trusts it (it may still be being edited): date them back.
        past = time.time() - 60
        for f in ("main.cf", "master.cf"):
            os.utime(os.path.join(self.conf, f), (past, past))

    def _postfix(self, *args):
        # postfix(1) writes its errors to stderr only when that is a tty;
        # maillog_file has them either way.
        return subprocess.run([POSTFIX, "-c", self.conf] + list(args),
                              stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)

    def start(self):
        r = self._postfix("start")
        pidfile = os.path.join(self.queue, "pid", "master.pid")

        def ready():
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                os.kill(pid, 0)
            except (OSError, ValueError):
                return None
            return pid if port_open(self.port) else None
        self.pid = wait_for(ready, 20)
        if r.returncode != 0 or not self.pid:
            raise RuntimeError("postfix did not start (rc %d): %s%s\n%s" % (
                r.returncode, r.stdout, r.stderr, self.log_tail()))
        self.tree = ProcTree(self.pid)
        return self

    def queue_count(self):
        return count_files(self.queue, ("maildrop", "incoming", "active",
                                        "deferred", "hold"))

    def sent_count(self):
        return count_in_log(self.log_file, "status=sent")

    def log_tail(self, n=20):
        try:
            with open(self.log_file, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.pid:
            self._postfix("stop")
            if not wait_for(lambda: not _alive(self.pid), 20):
                _kill_tree(self.pid)
            self.pid = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.top, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:data.rindex(b")") + 3] != b"Z"
    except OSError:
        return False


def _kill_tree(pid):
    for p in ProcTree(pid).pids():
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


SENDARIX_SERVICES = [
    # name, type, maxproc, command; maxproc from conf/master.cf when listed
    ("smtp", "inet", "1", "smtpd"),
    ("cleanup", "unix", "1", "cleanup"),
    ("qmgr", "unix", "1", "qmgr"),
    ("smtp", "unix", "-", "smtp-out"),
    ("bounce", "unix", "-", "bounce"),
]


def shipped_maxproc(root):
    """{(name, type): maxproc} from the shipped conf/master.cf."""
    out = {}
    try:
        with open(os.path.join(root, "conf", "master.cf")) as f:
            for line in f:
                w = line.split()
                if len(w) >= 8 and not line[0].isspace() and w[0][0] != "#":
                    out[(w[0], w[1])] = w[6]
    except OSError:
        pass
    return out


class ForegroundMta:
    """What an MTA run in the foreground under a temp dir shares: its log
    tail, a stop by SIGTERM (killed after 20 s), and removal."""

    def log_tail(self, n=20):
        try:
            with open(self.log_file, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                _kill_tree(self.proc.pid)
                self.proc.wait()
        self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.top, ignore_errors=True)


class SendarixInstance(ForegroundMta):
    """master -f -c DIR with the programs of BUILD/bin, like
    tests/integration/conftest.py; delivery services are configured when
    their programs exist (relayhost = the sink)."""

    name = "sendarix"

    def __init__(self, build, root, sink_port=None, extra=None,
                 smtpd_only=False):
        self.build = os.path.abspath(build)
        self.bin = os.path.join(self.build, "bin")
        self.top = _mkdtemp("bench-sendarix-")
        self.conf = os.path.join(self.top, "conf")
        self.queue = os.path.join(self.top, "queue")
        self.log_file = os.path.join(self.top, "maillog")
        self.port = free_port()
        self.proc = None
        self.pid = None
        os.makedirs(self.conf)
        self.delivery = has_delivery(self.build) and not smtpd_only
        params = [
            ("queue_directory", self.queue),
            ("daemon_directory", self.bin),
            ("maillog_file", self.log_file),
            ("myhostname", "sendarix.bench.test"),
            ("mynetworks", "127.0.0.0/8"),
            ("inet_protocols", "ipv4"),
        ]
        if self.delivery and sink_port:
            params.append(("relayhost", "[127.0.0.1]:%d" % sink_port))
        params += list((extra or {}).items())
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in params:
                f.write("%s = %s\n" % (k, v))
        shipped = shipped_maxproc(root)
        lines = []
        for name, typ, maxproc, cmd in SENDARIX_SERVICES:
            if cmd != "smtpd" and cmd != "cleanup" and not self.delivery:
                continue
            if not os.path.exists(os.path.join(self.bin, cmd)):
                continue
            maxproc = shipped.get((name, typ), maxproc)
            listen = "127.0.0.1:%d" % self.port if typ == "inet" else name
            lines.append("%s %s n - n - %s %s" % (
                listen, typ, maxproc, cmd) if typ == "inet" else
                "%s %s - - n - %s %s" % (listen, typ, maxproc, cmd))
        self.master_cf = "\n".join(lines) + "\n"
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(self.master_cf)

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "master"), "-f", "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.top, "master.stderr"), "w"))
        self.pid = self.proc.pid
        ok = wait_for(lambda: port_open(self.port)
                      or self.proc.poll() is not None, 20)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError("sendarix master did not start:\n" +
                               self.log_tail())
        self.tree = ProcTree(self.pid)
        # every service process is up (master starts them all at once)
        want = sum(1 for line in self.master_cf.splitlines() if line)
        wait_for(lambda: len(self.tree.pids()) > want, 5)
        return self

    def queue_count(self):
        return count_files(self.queue, ("incoming", "active", "deferred",
                                        "hold"))

    def sent_count(self):
        return count_in_log(self.log_file, "status=sent")



OPENSMTPD_CONF = """\
# throwaway OpenSMTPD for make bench
listen on 127.0.0.1 port {port} hostname opensmtpd.bench.test
action "relay" relay host smtp://127.0.0.1:{sink}
match from local for any action "relay"
"""


def make_cert(top, cn):
    """A self-signed RSA 2048 certificate and key under top; the pair of
    paths. The key is root's, mode 0600, as Sendarix's smtpd demands:
    every MTA reads it as root before it drops privileges."""
    cert = os.path.join(top, "bench-cert.pem")
    key = os.path.join(top, "bench-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=" + cn], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    return cert, key


# the client's HELO name and the mail domains of tools/bench/bench.py
LOOKED_UP = ("client.bench.example", "dest.bench.example")


def listen_backlog(port, host="127.0.0.1"):
    """The backlog of the socket listening on host:port (ss -ltn shows
    it as Send-Q of a listening socket), or None."""
    try:
        r = subprocess.run(["ss", "-Hltn", "src", "%s:%d" % (host, port)],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] == "LISTEN":
            return int(f[2])
    return None


def opensmtpd_missing(build=None):
    """Why OpenSMTPD cannot run here, or None when it can."""
    import pwd
    if not os.access(OPENSMTPD, os.X_OK):
        return "%s missing (tools/install-deps unpacks it)" % OPENSMTPD
    if build and not os.access(os.path.join(build, LISTEN_SHIM), os.R_OK):
        return "%s missing (make builds it)" % os.path.join(build,
                                                            LISTEN_SHIM)
    for user in ("opensmtpd", "opensmtpq"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return "user %s missing (tools/install-deps)" % user
    if not os.path.isdir("/var/lib/opensmtpd/empty"):
        return "/var/lib/opensmtpd/empty missing (tools/install-deps)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) missing"
    return None


def opensmtpd_version():
    try:
        r = subprocess.run([OPENSMTPD, "-h"], capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(r"OpenSMTPD\s+(\S+)", r.stdout + r.stderr)
    return m.group(1) if m else "?"


class OpenSmtpdInstance(ForegroundMta):
    """A throwaway OpenSMTPD: smtpd -d -f TOP/smtpd.conf as root, listening
    on a free loopback port and relaying everything to the sink. Its spool
    (/var/spool/smtpd) and control socket (/var/run/smtpd.sock) are
    compiled in, so it runs in a private mount namespace (unshare -m) with
    TOP/spool bind-mounted over /var/spool and TOP/run over /run: the host's
    directories are never written. TOP/resolv.conf ("lookup file": names
    from /etc/hosts only) is bound over /etc/resolv.conf there too. Logs
    (-d: to stderr) go to TOP/maillog."""

    name = "opensmtpd"

    def __init__(self, sink_port, shim=None):
        self.shim = shim
        self.backlog = None
        self.top = _mkdtemp("bench-opensmtpd-")
        self.spool = os.path.join(self.top, "spool")
        self.rundir = os.path.join(self.top, "run")
        self.conf = os.path.join(self.top, "smtpd.conf")
        self.log_file = os.path.join(self.top, "maillog")
        self.queue = os.path.join(self.spool, "smtpd")
        self.port = free_port()
        self.proc = None
        self.pid = None
        for d in (self.spool, self.rundir):
            os.makedirs(d)
            os.chmod(d, 0o755)
        # OpenSMTPD's resolver (libasr) looks up the client's and the
        # relay's names itself; a DNS server that does not answer costs
        # each session its 5 s timeout. Postfix and Sendarix get loopback
        # from /etc/hosts: make OpenSMTPD read only that, too.
        self.resolv = os.path.join(self.top, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("lookup file\n")
        # and the names smtp-source gives (HELO, sender and recipient
        # domains), which it looks up too: each miss cost about a second
        self.hosts = os.path.join(self.top, "hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1 localhost opensmtpd.bench.test %s\n"
                    "::1 localhost\n" % " ".join(LOOKED_UP))
        with open(self.conf, "w") as f:
            f.write(OPENSMTPD_CONF.format(port=self.port, sink=sink_port))

    def start(self):
        run = os.path.realpath("/var/run")
        script = ('mount --bind "$1" /var/spool && mount --bind "$2" "$3" '
                  '&& mount --bind "$6" /etc/resolv.conf '
                  '&& mount --bind "$7" /etc/hosts '
                  '&& exec "$4" -d -f "$5"')
        self._log = open(self.log_file, "w")
        env = dict(os.environ)
        if self.shim:
            env["LD_PRELOAD"] = self.shim
            env["LISTEN_BACKLOG"] = str(OPENSMTPD_BACKLOG)
        # unshare and sh exec, so the pid is smtpd's parent process
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             script, "sh", self.spool, self.rundir, run, OPENSMTPD,
             self.conf, self.resolv, self.hosts],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            env=env)
        self.pid = self.proc.pid
        ok = wait_for(lambda: port_open(self.port)
                      or self.proc.poll() is not None, 20)
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("opensmtpd did not start:\n" +
                               self.log_tail())
        self.tree = ProcTree(self.pid)
        self.backlog = listen_backlog(self.port)
        return self

    def queue_count(self):
        return count_files(self.queue, ("incoming", "queue", "temporary"))

    def sent_count(self):
        return count_in_log(self.log_file, 'result="Ok"')



def has_delivery(build):
    """True when the delivery daemons (qmgr, smtp-out) are built."""
    b = os.path.join(build, "bin")
    return all(os.access(os.path.join(b, p), os.X_OK)
               for p in ("qmgr", "smtp-out"))
