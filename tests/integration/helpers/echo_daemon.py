#!/usr/bin/python3
"""echo_daemon - a tiny service for master's integration tests.

master starts it like any Sendarix daemon:

    echo_daemon.py -n NAME -t TYPE -c DIR [-v] [-C] [-o name=value]... [args]

with listening sockets at fds 3.. (SENDARIX_LISTEN_FDS=N). It accepts on
all of them and answers each connection with "hello NAME PID\\r\\n", then
echoes every line back as "PID: line". It behaves like the server
skeleton on signals: SIGTERM exits 0 at once; SIGHUP closes the listeners,
finishes the open sessions and exits 0 when none is left.

Arguments after the options:
  record=PATH   write argv, the environment, the fds and the uid as JSON
                to PATH.PID at start
  sleep=S       sleep S seconds first (before exit=)
  exit=N        exit with status N right after start (after record=)
  ignore_term=1 ignore SIGTERM (to test master's stop timeout)
"""

import json
import os
import selectors
import signal
import socket
import sys
import time


def main():
    args = sys.argv[1:]
    opts = {"-o": []}
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "-t", "-c"):
            opts[a] = args[i + 1]
            i += 2
        elif a == "-o":
            opts["-o"].append(args[i + 1])
            i += 2
        elif a in ("-v", "-C"):
            opts[a] = True
            i += 1
        else:
            rest = args[i:]
            break
    nfds = int(os.environ.get("SENDARIX_LISTEN_FDS", "0"))
    name = opts.get("-n", "echo")
    extra = dict(a.split("=", 1) for a in rest if "=" in a)

    if "record" in extra:
        open_fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
        info = {"argv": sys.argv, "env": dict(os.environ), "nfds": nfds,
                "fds": open_fds, "uid": os.getuid(), "cwd": os.getcwd(),
                "socknames": []}
        for fd in range(3, 3 + nfds):
            s = socket.socket(fileno=os.dup(fd))
            info["socknames"].append(repr(s.getsockname()))
            s.close()
        tmp = "%s-tmp.%d" % (extra["record"], os.getpid())
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.rename(tmp, "%s.%d" % (extra["record"], os.getpid()))
    if "sleep" in extra:
        time.sleep(float(extra["sleep"]))
    if "exit" in extra:
        sys.exit(int(extra["exit"]))

    sel = selectors.DefaultSelector()
    listeners = []
    for fd in range(3, 3 + nfds):
        s = socket.socket(fileno=fd)
        s.setblocking(False)
        listeners.append(s)
        sel.register(s, selectors.EVENT_READ, "listen")
    sessions = {}
    stopping = [False]
    pid = os.getpid()

    # Signals arrive through a pipe so the loop sees them.
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGTERM, lambda *a: None)
    signal.signal(signal.SIGHUP, lambda *a: None)
    sel.register(rfd, selectors.EVENT_READ, "signal")

    while True:
        if stopping[0] and not sessions:
            sys.exit(0)
        for key, _ in sel.select(1.0):
            if key.data == "signal":
                for b in os.read(rfd, 64):
                    if b == signal.SIGTERM and "ignore_term" not in extra:
                        sys.exit(0)
                    if b == signal.SIGHUP and not stopping[0]:
                        stopping[0] = True
                        for s in listeners:
                            sel.unregister(s)
                            s.close()
                        listeners = []
            elif key.data == "listen":
                if stopping[0]:
                    continue        # closed by SIGHUP in this round
                try:
                    c, _ = key.fileobj.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                c.setblocking(True)
                c.sendall(b"hello %s %d\r\n" % (name.encode(), pid))
                c.setblocking(False)
                sessions[c] = b""
                sel.register(c, selectors.EVENT_READ, "session")
            else:
                c = key.fileobj
                try:
                    data = c.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(c)
                    c.close()
                    del sessions[c]
                    continue
                buf = sessions[c] + data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    c.setblocking(True)
                    try:
                        c.sendall(b"%d: %s\n" % (pid, line.rstrip(b"\r")))
                    except OSError:
                        pass
                    c.setblocking(False)
                sessions[c] = buf


if __name__ == "__main__":
    main()
