"""master: sockets, process supervision, reload, stop, and sendarix
start/stop/reload/status.

Most tests run master with a small stand-in service,
helpers/echo_daemon.py, so that they depend on master alone: it takes its
listening sockets at fd 3.. the way every Sendarix daemon does, greets
each connection with "hello SERVICE PID" and echoes lines back as
"PID: line". Tests at the end use the real smtpd and cleanup.
"""

import glob
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import BIN, SENDARIX, free_port, port_open, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ECHO = os.path.join(HERE, "helpers", "echo_daemon.py")
MASTER = os.path.join(BIN, "master")

pytestmark = pytest.mark.skipif(not os.path.exists(MASTER),
                                reason="master is not built")


# -- helpers -------------------------------------------------------------

def echo_pids(master_pid):
    """pids of master's children that run the echo daemon."""
    out = subprocess.run(["pgrep", "-P", str(master_pid)],
                         capture_output=True, text=True).stdout.split()
    pids = []
    for p in out:
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if b"echo_daemon.py" in f.read():
                    pids.append(int(p))
        except OSError:
            pass
    return sorted(pids)


def mail_owner_value(user):
    """SENDARIX_MAIL_OWNER as master should make it: name:uid:gid:groups."""
    import pwd
    pw = pwd.getpwnam(user)
    groups = os.getgrouplist(user, pw.pw_gid)
    return "%s:%d:%d:%s" % (user, pw.pw_uid, pw.pw_gid,
                            ",".join(str(g) for g in groups))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class Client:
    """A line-based connection to the echo daemon."""

    def __init__(self, port, host="127.0.0.1", family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        self.buf = b""
        greeting = self.line()
        m = re.match(r"hello (\S+) (\d+)$", greeting)
        assert m, greeting
        self.service = m.group(1)
        self.pid = int(m.group(2))

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().rstrip("\r")

    def echo(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def close(self):
        self.sock.close()


def records(prefix):
    """The JSON files echo_daemon wrote for record=prefix, oldest first."""
    out = []
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            info = json.load(f)
        info["mtime"] = os.stat(path).st_mtime
        info["pid"] = int(path.rsplit(".", 1)[1])
        out.append(info)
    return sorted(out, key=lambda r: r["mtime"])


def write_master_cf(m, text):
    with open(os.path.join(m.conf_dir, "master.cf"), "w") as f:
        f.write(text.format(listen="127.0.0.1:%d" % m.port, port=m.port))


def pid_file(m):
    return os.path.join(m.queue_dir, "pid", "master.pid")


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def stopper():
    """Stops masters started with "sendarix start" (not Mta.start)."""
    started = []
    yield started.append
    for m in started:
        try:
            with open(pid_file(m)) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid > 1 and alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not alive(pid), timeout=20, what="master exit")


# -- sockets and processes -----------------------------------------------

def test_inet_service_runs_maxproc_processes(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 3 %s\n" % ECHO)
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 3, what="3 children")
    pids = echo_pids(m.proc.pid)
    seen = set()
    for i in range(30):
        c = Client(m.port)
        assert c.service == "127.0.0.1:%d" % m.port
        assert c.echo("line %d" % i) == "%d: line %d" % (c.pid, i)
        seen.add(c.pid)
        c.close()
    assert seen <= set(pids)
    assert "daemon started -- version 0.1, configuration " + \
        os.path.realpath(m.conf_dir) in m.log()
    # Still exactly 3: nobody exited, nobody extra was started.
    assert echo_pids(m.proc.pid) == pids


def test_default_process_limit(mta_factory):
    m = mta_factory(main={"default_process_limit": "4"},
                    master_cf="{listen} inet n - n - - %s\n" % ECHO)
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 4, what="4 children")


def test_child_arguments_environment_and_fds(mta_factory, tmp_path,
                                             monkeypatch):
    rec = str(tmp_path / "rec")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("SECRET_THING", "must-not-leak")
    m = mta_factory(master_cf=(
        "{listen} inet n - n - 1 %s -o smtpd_banner=hi\n"
        "  -o syslog_name=sendarix/echo record=%s extra\n" % (ECHO, rec)))
    wait_for(lambda: records(rec), what="record file")
    r = records(rec)[0]
    conf = os.path.realpath(m.conf_dir)
    assert r["argv"][1:] == [
        "-n", "127.0.0.1:%d" % m.port, "-t", "inet", "-c", conf,
        "-o", "smtpd_banner=hi", "-o", "syslog_name=sendarix/echo",
        "record=" + rec, "extra"]
    env = r["env"]
    assert env["SENDARIX_LISTEN_FDS"] == "1"
    assert env["SENDARIX_CONFIG_DIR"] == conf
    assert env.get("TZ") == "UTC"
    assert "SECRET_THING" not in env
    assert "PATH" not in env
    # (make asan passes the sanitizer options through import_environment)
    assert set(env) <= {"TZ", "LANG", "SENDARIX_LISTEN_FDS",
                        "SENDARIX_CONFIG_DIR", "LC_CTYPE", "ASAN_OPTIONS",
                        "UBSAN_OPTIONS", "LSAN_OPTIONS",
                        "SENDARIX_MAIL_OWNER"}
    # As root, master hands down mail_owner's uid, gid and groups.
    if os.geteuid() == 0:
        assert env["SENDARIX_MAIL_OWNER"] == mail_owner_value("sendarix")
    else:
        assert "SENDARIX_MAIL_OWNER" not in env
    # fds 0-2, the one listener, and the fd that listed /proc/self/fd.
    assert r["nfds"] == 1
    assert [fd for fd in r["fds"] if fd != max(r["fds"])] == [0, 1, 2, 3]
    assert r["socknames"] == [repr(("127.0.0.1", m.port))]
    assert r["cwd"] == m.queue_dir


def test_unix_services_private_and_public(mta_factory, tmp_path):
    rec = str(tmp_path / "rec")
    m = mta_factory(master_cf=(
        "{listen} inet n - n - 1 %s\n"
        "privsvc unix - - n - 1 %s record=%s\n"
        "pubsvc unix n - n - 1 %s\n" % (ECHO, ECHO, rec, ECHO)))
    priv = os.path.join(m.queue_dir, "private", "privsvc")
    pub = os.path.join(m.queue_dir, "public", "pubsvc")
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 3, what="3 children")
    assert stat.S_ISSOCK(os.stat(priv).st_mode)
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pub).st_mode) == 0o666
    wait_for(lambda: records(rec), what="record file")
    assert records(rec)[0]["argv"][1:5] == ["-n", "privsvc", "-t", "unix"]
    for path, name in ((priv, "privsvc"), (pub, "pubsvc")):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        assert s.recv(100).decode().startswith("hello %s " % name)
        s.close()


def test_unix_socket_stale_file_replaced(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s\n"
                    "stale unix - - n - 1 %s\n" % (ECHO, ECHO), start=False)
    os.makedirs(os.path.join(m.queue_dir, "private"))
    path = os.path.join(m.queue_dir, "private", "stale")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                       # a socket file nobody listens on
    m.start()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    assert c.recv(100).startswith(b"hello stale ")
    c.close()


def test_queue_tree_and_pid_file(mta):
    q = mta.queue_dir
    for d in ("tmp", "incoming", "active", "deferred", "hold", "corrupt",
              "private"):
        assert stat.S_IMODE(os.stat(os.path.join(q, d)).st_mode) == 0o700, d
    assert stat.S_IMODE(os.stat(os.path.join(q, "public")).st_mode) == 0o711
    assert stat.S_IMODE(os.stat(os.path.join(q, "pid")).st_mode) == 0o755
    with open(pid_file(mta)) as f:
        assert int(f.read()) == mta.proc.pid
    if os.geteuid() == 0:
        import pwd
        owner = pwd.getpwnam("sendarix").pw_uid
        assert os.stat(os.path.join(q, "incoming")).st_uid == owner
        assert os.stat(os.path.join(q, "pid")).st_uid == 0


def test_plain_port_loopback_only(mta_factory):
    port = free_port()
    m = mta_factory(main={"inet_interfaces": "loopback-only",
                          "inet_protocols": "ipv4"},
                    master_cf="%d inet n - n - 1 %s\n" % (port, ECHO),
                    start=False)
    m.port = port
    m.start()
    c = Client(port)
    assert c.service == str(port)
    c.close()


def test_plain_port_address_list_ipv6(mta_factory):
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    port = free_port()
    m = mta_factory(main={"inet_interfaces": "127.0.0.1, [::1]"},
                    master_cf="%d inet n - n - 1 %s\n" % (port, ECHO),
                    start=False)
    m.port = port
    m.start()
    Client(port).close()
    Client(port, host="::1", family=socket.AF_INET6).close()


def test_bracketed_ipv6_service(mta_factory):
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    port = free_port()
    m = mta_factory(master_cf="[::1]:%d inet n - n - 1 %s\n" % (port, ECHO),
                    start=False)
    m.start(wait_port=False)
    wait_for(lambda: echo_pids(m.proc.pid), what="child")
    c = wait_for(lambda: _try(lambda: Client(port, "::1", socket.AF_INET6)),
                 what="IPv6 service")
    assert c.service == "[::1]:%d" % port
    c.close()
    assert not port_open(port)      # not on IPv4


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


# -- supervision -----------------------------------------------------------

def test_killed_child_is_logged_and_restarted(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 2 %s\n" % ECHO)
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 2, what="2 children")
    victim = echo_pids(m.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    m.wait_log("warning: process %s pid %d killed by signal 9"
               % (ECHO, victim))
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 2
             and victim not in echo_pids(m.proc.pid),
             what="replacement child")
    assert Client(m.port).echo("x").endswith(": x")


def test_failing_child_restarts_with_backoff(mta_factory, tmp_path):
    rec = str(tmp_path / "rec")
    m = mta_factory(main={"master_restart_min_delay": "1s",
                          "master_restart_max_delay": "2s"},
                    master_cf="{listen} inet n - n - 1 %s record=%s exit=3\n"
                    % (ECHO, rec), start=False)
    m.start(wait_port=False)
    wait_for(lambda: len(records(rec)) >= 4, timeout=20, what="4 starts")
    log = m.log()
    assert re.search(r"warning: process %s pid \d+ exit status 3"
                     % re.escape(ECHO), log)
    delays = [int(d) for d in re.findall(r"restarting in (\d+) s", log)]
    assert delays[:3] == [1, 2, 2]
    starts = [r["mtime"] for r in records(rec)]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps[0] >= 0.8 and gaps[1] >= 1.8 and gaps[2] >= 1.8, gaps
    assert gaps[0] < 1.9, gaps


def test_child_exiting_zero_is_replaced_at_once(mta_factory, tmp_path):
    rec = str(tmp_path / "rec")
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s record=%s "
                    "sleep=1.2 exit=0\n" % (ECHO, rec), start=False)
    m.start(wait_port=False)
    wait_for(lambda: len(records(rec)) >= 3, timeout=15, what="3 starts")
    log = m.log()
    assert "restarting in" not in log
    assert "warning" not in log


def test_exec_failure_is_logged_and_retried(mta_factory):
    # A missing program is refused at start (test_check.py); one that
    # goes away while master runs is logged and retried.
    m = mta_factory(main={"master_restart_min_delay": "1s"}, start=False)
    prog = os.path.join(str(m.tmp), "daemon")
    with open(ECHO) as src, open(prog, "w") as dst:
        dst.write(src.read())
    os.chmod(prog, 0o755)
    write_master_cf(m, "{listen} inet n - n - 1 %s\n" % prog)
    m.start()
    def kids():
        out = subprocess.run(["pgrep", "-P", str(m.proc.pid)],
                             capture_output=True, text=True).stdout.split()
        found = []
        for p in out:
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if prog.encode() in f.read():
                        found.append(int(p))
            except OSError:
                pass
        return found
    kid = wait_for(kids, what="child")[0]
    os.unlink(prog)
    os.kill(kid, signal.SIGKILL)
    m.wait_log("exec %s: No such file or directory" % prog)
    m.wait_log("warning: process %s pid" % prog)
    m.wait_log("restarting in 1 s")
    assert m.proc.poll() is None


# -- reload ----------------------------------------------------------------

def test_reload_keeps_open_sessions_and_sockets(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s\n" % ECHO)
    old = Client(m.port)
    old_pid = old.pid
    sock_inode = os.readlink("/proc/%d/fd/3" % old_pid)
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log("reload -- version 0.1, configuration "
               + os.path.realpath(m.conf_dir))
    wait_for(lambda: [p for p in echo_pids(m.proc.pid) if p != old_pid],
             what="new child")
    new_pid = [p for p in echo_pids(m.proc.pid) if p != old_pid][0]
    # The new child got the very same listening socket.
    assert os.readlink("/proc/%d/fd/3" % new_pid) == sock_inode
    # New connections go to the new child...
    wait_for(lambda: Client(m.port).pid == new_pid, what="new child serving")
    # ...while the open session still works on the old one.
    assert old.echo("still there") == "%d: still there" % old_pid
    assert alive(old_pid)
    old.close()
    wait_for(lambda: not alive(old_pid), what="old child to exit")
    time.sleep(0.3)
    # Not restarted, not complained about, and exactly one child left.
    assert echo_pids(m.proc.pid) == [new_pid]
    assert "pid %d" % old_pid not in m.log()


def test_reload_no_connection_refused(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 2 %s\n" % ECHO)
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 2, what="2 children")
    failures = 0
    for i in range(6):
        m.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                Client(m.port).close()
            except (OSError, EOFError):
                failures += 1
    assert failures == 0


def test_reload_adds_and_removes_services(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s\n"
                    "gone unix - - n - 1 %s\n" % (ECHO, ECHO))
    gone = os.path.join(m.queue_dir, "private", "gone")
    wait_for(lambda: os.path.exists(gone), what="unix socket")
    port2 = free_port()
    write_master_cf(m, "{listen} inet n - n - 1 %s\n"
                    "127.0.0.1:%d inet n - n - 2 %s\n" % (ECHO, port2, ECHO))
    m.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: port_open(port2), what="new service")
    c = Client(port2)
    assert c.service == "127.0.0.1:%d" % port2
    c.close()
    wait_for(lambda: not os.path.exists(gone), what="socket removed")
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 3, what="1 + 2 children")
    assert Client(m.port).echo("a").endswith(": a")


def test_reload_with_bad_master_cf_keeps_old(mta_factory):
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s\n" % ECHO)
    before = echo_pids(m.proc.pid)
    write_master_cf(m, "{listen} bogus n - n - 1 %s\n" % ECHO)
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log("keeping the old configuration")
    time.sleep(0.3)
    assert echo_pids(m.proc.pid) == before
    assert Client(m.port).pid == before[0]


def test_reload_applies_new_main_cf(mta_factory, tmp_path):
    rec = str(tmp_path / "rec")
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s record=%s\n"
                    % (ECHO, rec))
    wait_for(lambda: len(records(rec)) == 1, what="first child")
    with open(os.path.join(m.conf_dir, "main.cf"), "a") as f:
        f.write("import_environment = TZ LANG MYVAR=hello\n")
    m.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(records(rec)) == 2, what="second child")
    assert records(rec)[1]["env"].get("MYVAR") == "hello"


# -- stop --------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_stops_everything(mta_factory, sig):
    m = mta_factory(master_cf="{listen} inet n - n - 2 %s\n"
                    "sock unix - - n - 1 %s\n" % (ECHO, ECHO))
    wait_for(lambda: len(echo_pids(m.proc.pid)) == 3, what="3 children")
    kids = echo_pids(m.proc.pid)
    m.proc.send_signal(sig)
    assert m.proc.wait(timeout=15) == 0
    assert "terminating on signal %d" % sig in m.log()
    for k in kids:
        assert not alive(k)
    assert not os.path.exists(pid_file(m))
    assert not os.path.exists(os.path.join(m.queue_dir, "private", "sock"))
    assert not port_open(m.port)


def test_stop_timeout_kills_stubborn_child(mta_factory):
    m = mta_factory(main={"master_stop_timeout": "1s"},
                    master_cf="{listen} inet n - n - 1 %s ignore_term=1\n"
                    % ECHO)
    kid = wait_for(lambda: echo_pids(m.proc.pid), what="child")[0]
    Client(m.port).close()          # its signal handlers are in place
    t0 = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(timeout=15) == 0
    assert 0.8 <= time.monotonic() - t0 < 5
    assert not alive(kid)
    assert "killing them" in m.log()


def test_second_master_on_same_queue_refused(mta):
    r = subprocess.run([MASTER, "-f", "-c", mta.conf_dir],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "the mail system is already running (pid %d)" % mta.proc.pid \
        in r.stderr + mta.log()
    assert mta.proc.poll() is None
    assert os.path.exists(pid_file(mta))


def test_master_usage_error():
    r = subprocess.run([MASTER, "-x"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2
    assert "usage" in r.stderr


# -- sendarix start | stop | reload | status -----------------------------

def test_sendarix_start_status_reload_stop(mta_factory, stopper):
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s\n" % ECHO,
                    start=False)
    stopper(m)
    r = m.sendarix("status", check=False)
    assert r.returncode == 1 and "not running" in r.stderr

    r = m.sendarix("start")
    assert port_open(m.port)        # ready when start returns
    with open(pid_file(m)) as f:
        pid = int(f.read())
    assert alive(pid)
    r = m.sendarix("status")
    assert "the mail system is running: PID: %d" % pid in r.stderr

    r = m.sendarix("start", check=False)
    assert r.returncode == 1 and "already running" in r.stderr

    c = Client(m.port)
    r = m.sendarix("reload")
    assert "refreshing the mail system" in r.stderr
    m.wait_log("reload -- version")
    assert c.echo("ok") == "%d: ok" % c.pid
    c.close()

    r = m.sendarix("stop")
    assert "the mail system is stopped" in r.stderr
    assert not alive(pid)
    assert not os.path.exists(pid_file(m))
    r = m.sendarix("status", check=False)
    assert r.returncode == 1
    r = m.sendarix("stop", check=False)
    assert r.returncode == 1 and "not running" in r.stderr
    r = m.sendarix("reload", check=False)
    assert r.returncode == 1 and "not running" in r.stderr


def test_sendarix_start_after_crash(mta_factory, stopper):
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s\n" % ECHO,
                    start=False)
    stopper(m)
    m.sendarix("start")
    with open(pid_file(m)) as f:
        pid = int(f.read())
    kid = wait_for(lambda: echo_pids(pid), what="child")[0]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), what="master gone")
    # The children follow their master.
    wait_for(lambda: not alive(kid), what="child gone")
    assert os.path.exists(pid_file(m))          # stale
    r = m.sendarix("status", check=False)
    assert r.returncode == 1 and "not running" in r.stderr
    m.sendarix("start")
    assert Client(m.port).echo("back").endswith(": back")
    m.sendarix("stop")


def test_sendarix_start_reports_errors(mta_factory, stopper):
    # The port is taken: start fails and says why.
    m = mta_factory(master_cf="{listen} inet n - n - 1 %s\n" % ECHO,
                    start=False)
    stopper(m)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", m.port))
    blocker.listen(1)
    try:
        r = m.sendarix("start", check=False)
        assert r.returncode == 1
        assert "Address already in use" in r.stderr
    finally:
        blocker.close()
    r = m.sendarix("status", check=False)
    assert r.returncode == 1

    # master.cf does not parse: start refuses before running master.
    write_master_cf(m, "{listen} inet n - n - 1\n")
    r = m.sendarix("start", check=False)
    assert r.returncode == 1
    assert "master.cf" in r.stderr


# -- with the real daemons ----------------------------------------------

def _have(*names):
    return all(os.path.exists(os.path.join(BIN, n)) for n in names)


def smtp_read(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        lines.append(line.rstrip("\r\n"))
        if len(line) < 4 or line[3] != "-":
            return lines


def smtp_cmd(f, s, cmd):
    s.sendall(cmd.encode() + b"\r\n")
    return smtp_read(f)


@pytest.mark.skipif(not _have("smtpd", "cleanup"),
                    reason="smtpd and cleanup are not built")
def test_real_smtpd_session_survives_reload(mta):
    s = socket.create_connection((mta.host, mta.port), timeout=10)
    f = s.makefile("r", encoding="latin-1", newline="\n")
    assert smtp_read(f)[0].startswith("220 ")
    assert smtp_cmd(f, s, "EHLO client.example")[-1].startswith("250")
    old = set(mta.child_pids("smtpd"))
    mta.proc.send_signal(signal.SIGHUP)
    mta.wait_log("reload -- version")
    wait_for(lambda: set(mta.child_pids("smtpd")) - old, what="new smtpd")
    # The old session carries on and gets its message queued.
    assert smtp_cmd(f, s, "MAIL FROM:<a@client.example>")[0][:3] == "250"
    assert smtp_cmd(f, s, "RCPT TO:<b@mx.test.example>")[0][:3] in \
        ("250", "554", "550")
    s.sendall(b"QUIT\r\n")
    s.close()
    # A new session is served by the new smtpd.
    s2 = socket.create_connection((mta.host, mta.port), timeout=10)
    f2 = s2.makefile("r", encoding="latin-1", newline="\n")
    assert smtp_read(f2)[0].startswith("220 ")
    s2.close()
    wait_for(lambda: not (old & set(mta.child_pids("smtpd"))),
             what="old smtpd to exit")
    assert "warning: process" not in mta.log()


@pytest.mark.skipif(not _have("smtpd", "cleanup"),
                    reason="smtpd and cleanup are not built")
def test_real_daemons_drop_privileges(mta):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import pwd
    owner = pwd.getpwnam("sendarix").pw_uid

    def uids(pid):
        with open("/proc/%d/status" % pid) as f:
            return [int(u) for u in
                    [l for l in f if l.startswith("Uid:")][0].split()[1:]]

    for name in ("smtpd", "cleanup"):
        pids = wait_for(lambda: mta.child_pids(name), what=name)
        # A child is root from fork until the skeleton drops privileges.
        for p in pids:
            wait_for(lambda: uids(p) == [owner] * 4,
                     what="%s pid %d to run as sendarix" % (name, p))
    with open("/proc/%d/status" % mta.proc.pid) as f:
        assert [l for l in f if l.startswith("Uid:")][0].split()[1] == "0"


def nss_modules(path="/etc/nsswitch.conf"):
    """Modules other than files on the passwd, group and initgroups lines
    (files is built into glibc, the others are shared libraries)."""
    mods = set()
    try:
        with open(path) as f:
            for line in f:
                db, _, rest = line.partition("#")[0].partition(":")
                if db.strip() not in ("passwd", "group", "initgroups"):
                    continue
                for word in rest.split():
                    if not word.startswith("[") and word != "files":
                        mods.add(word)
    except FileNotFoundError:
        pass
    return mods


DAEMONS_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
sendmail unix n - n - 1 cleanup
pickup unix n - n 60 1 pickup
qmgr unix - - n - 1 qmgr
smtp unix - - n - 1 smtp-out
bounce unix - - n - 1 bounce
"""


@pytest.mark.skipif(not _have("smtpd", "cleanup", "pickup", "qmgr",
                              "smtp-out", "bounce"),
                    reason="the daemons are not all built")
def test_daemons_drop_without_name_service(mta_factory):
    """Every daemon runs as mail_owner with its groups, which master looked
    up and handed down (SENDARIX_MAIL_OWNER); no daemon loads a name
    service module (libnss_systemd, ...) to find them itself."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import pwd
    pw = pwd.getpwnam("sendarix")
    groups = sorted(set(os.getgrouplist("sendarix", pw.pw_gid)))
    m = mta_factory(master_cf=DAEMONS_MASTER_CF)

    def status(pid):
        with open("/proc/%d/status" % pid) as f:
            return dict(l.rstrip("\n").split(":\t", 1) for l in f
                        if ":\t" in l)

    def dropped(pid):
        return status(pid)["Uid"].split() == [str(pw.pw_uid)] * 4

    def check(names):
        pids = {}
        for name in names:
            pids[name] = wait_for(lambda: m.child_pids(name), what=name)
            for p in pids[name]:
                wait_for(lambda: dropped(p),
                         what="%s pid %d to run as sendarix" % (name, p))
                st = status(p)
                assert st["Gid"].split() == [str(pw.pw_gid)] * 4, (name, st)
                assert sorted(int(g) for g in st["Groups"].split()) == \
                    groups, (name, st)
                with open("/proc/%d/environ" % p, "rb") as f:
                    env = f.read().split(b"\0")
                assert ("SENDARIX_MAIL_OWNER=" + mail_owner_value(
                    "sendarix")).encode() in env, name
        return pids

    names = ("smtpd", "cleanup", "pickup", "qmgr", "smtp-out", "bounce")
    pids = check(names)
    # A reload looks mail_owner up again; the new processes get it too.
    old = set(sum(pids.values(), []))
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log("reload -- version")
    wait_for(lambda: all(set(m.child_pids(n)) - old for n in names),
             what="new processes after the reload")
    pids = check(names)
    assert "SENDARIX_MAIL_OWNER" not in m.log(), m.log()

    mods = nss_modules()
    if not mods:
        pytest.skip("nsswitch.conf has no passwd/group module other than "
                    "files: no daemon would map one either way")
    for name, plist in pids.items():
        for p in plist:
            if p in old:
                continue
            with open("/proc/%d/maps" % p) as f:
                libs = sorted({l.split()[-1] for l in f if "/libnss_" in l})
            assert libs == [], "%s maps %s (nsswitch.conf: %s)" % (
                name, libs, " ".join(sorted(mods)))
    # master itself asks in a short-lived child, so it stays clean too.
    with open("/proc/%d/maps" % m.proc.pid) as f:
        assert not [l for l in f if "/libnss_" in l]
