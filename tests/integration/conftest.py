"""Shared fixtures for the integration tests.

Every test that needs a running mail system uses the ``mta`` fixture: a
throwaway config directory and queue directory under pytest's tmp_path, a
free loopback port for the smtp service, and a real master started in the
foreground (``master -f -c DIR``). The test gets an ``Mta`` object; at the
end master is stopped with SIGTERM and waited for.

Tests that want other settings ask for ``mta_factory`` and call it with
main.cf overrides (a dict) and/or a full master.cf text.
"""

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SENDARIX_BUILD", os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "bin")
SENDARIX = os.path.join(BIN, "sendarix")


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, interval=0.02, what="condition"):
    """Poll cond() until it is true; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


DEFAULT_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
"""

# Every daemon a message passes through, from smtpd to delivery.
FULL_MASTER_CF = """\
{listen} inet n - n - 1 smtpd
cleanup unix - - n - 1 cleanup
qmgr    unix - - n - 1 qmgr
smtp    unix - - n - 1 smtp-out
bounce  unix - - n - 1 bounce
"""


class Mta:
    def __init__(self, tmp_path, main=None, master_cf=None, port=None):
        self.tmp = tmp_path
        self.conf_dir = str(tmp_path / "conf")
        self.queue_dir = str(tmp_path / "queue")
        self.log_file = str(tmp_path / "maillog")
        self.port = port or free_port()
        self.host = "127.0.0.1"
        os.makedirs(self.conf_dir, exist_ok=True)
        params = {
            "queue_directory": self.queue_dir,
            "daemon_directory": BIN,
            "maillog_file": self.log_file,
            "myhostname": "mx.test.example",
            "mynetworks": "127.0.0.0/8 [::1]/128",
            # No DNS unless a test asks (and brings its own server).
            "smtpd_peername_lookup": "no",
        }
        # Under "make asan", daemons must get the sanitizer options too.
        san = [v for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
               if v in os.environ]
        if san:
            params["import_environment"] = " ".join(["TZ", "LANG"] + san)
        params.update(main or {})
        self.params = params
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            for k, v in params.items():
                f.write("%s = %s\n" % (k, v))
        text = master_cf if master_cf is not None else DEFAULT_MASTER_CF
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write(text.format(listen="127.0.0.1:%d" % self.port,
                                port=self.port))
        self.proc = None

    # -- lifecycle ---------------------------------------------------------
    def start(self, wait_port=True):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "master"), "-f", "-c", self.conf_dir],
            stdin=subprocess.DEVNULL)
        if wait_port:
            wait_for(lambda: port_open(self.port) or self.proc.poll() is not None,
                     what="master to listen on port %d" % self.port)
            assert self.proc.poll() is None, "master exited: %s" % self.log()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # -- helpers -----------------------------------------------------------
    def sendarix(self, *args, check=True, input=None):
        """Run the sendarix command against this instance."""
        r = subprocess.run([SENDARIX, "-c", self.conf_dir] + list(args),
                           capture_output=True, text=True, input=input,
                           timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("sendarix %s failed (%d): %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def queue_files(self, queue="incoming"):
        """Queue IDs in one queue (deferred/ is hashed one level deep)."""
        d = os.path.join(self.queue_dir, queue)
        out = []
        for root, dirs, files in os.walk(d):
            out.extend(n for n in files if not n.startswith("."))
        return sorted(out)

    def wait_log(self, text, timeout=10.0):
        return wait_for(lambda: text in self.log(), timeout=timeout,
                        what="log line containing %r" % text)

    def child_pids(self, name):
        """pids of master's children running the program `name`."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                             capture_output=True, text=True).stdout.split()
        pids = []
        for p in out:
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode()
            except OSError:
                continue
            if os.path.basename(argv0) == name:
                pids.append(int(p))
        return pids


@pytest.fixture
def mta_factory(tmp_path):
    """Make Mta instances; each is stopped at the end of the test.

    As root, master drops its children to mail_owner (the "sendarix" user
    that tools/install-deps creates), which cannot enter pytest's private
    tmp_path: the instance then lives in a fresh 0755 folder under /tmp.
    """
    made = []
    cleanup_dirs = []

    def make(main=None, master_cf=None, start=True, subdir=None):
        if os.geteuid() == 0:
            top = tempfile.mkdtemp(prefix="sendarix-test-", dir="/tmp")
            os.chmod(top, 0o755)
            cleanup_dirs.append(top)
            base = pathlib.Path(top) / (subdir or "mta%d" % len(made))
        else:
            base = tmp_path / (subdir or "mta%d" % len(made))
        base.mkdir()
        os.chmod(str(base), 0o755)
        m = Mta(base, main=main, master_cf=master_cf)
        made.append(m)
        if start:
            m.start()
        return m

    yield make
    for m in made:
        m.stop()
    for d in cleanup_dirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def mta(mta_factory):
    return mta_factory()


# -- libcurl out of reach ----------------------------------------------------
def libcurl_path():
    """The file the dynamic linker loads for libcurl.so.4, or None."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True,
                             text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        name, _, path = line.strip().partition(" => ")
        if name.startswith("libcurl.so.4 ") and "x86-64" in name:
            return os.path.realpath(path)
    return None


def without_libcurl(argv):
    """argv, wrapped to run where dlopen("libcurl.so.4") fails.

    A private mount namespace (unshare -m) in which libcurl.so.4 is
    /dev/null: lib/http loads libcurl with dlopen() and must report that
    it cannot, as any other program there sees the system unchanged.
    Skips the test when that cannot be arranged (not root, no unshare).
    """
    lib = libcurl_path()
    if os.geteuid() != 0 or lib is None or shutil.which("unshare") is None:
        pytest.skip("needs root, unshare(1) and libcurl.so.4")
    return ["unshare", "-m", "sh", "-c",
            'mount --bind /dev/null "$0" && exec "$@"', lib] + list(argv)


def restart_without_libcurl(m):
    """Stop m's master and start it again where libcurl cannot load."""
    m.stop()
    m.proc = subprocess.Popen(
        without_libcurl([os.path.join(BIN, "master"), "-f", "-c",
                         m.conf_dir]), stdin=subprocess.DEVNULL)
    wait_for(lambda: port_open(m.port) or m.proc.poll() is not None,
             what="master to listen on port %d" % m.port)
    assert m.proc.poll() is None, "master exited: %s" % m.log()
    return m


def maps_libcurl(pid):
    """Whether process pid has libcurl mapped."""
    with open("/proc/%d/maps" % pid) as f:
        return "/libcurl.so" in f.read()
