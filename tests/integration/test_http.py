"""lib/http: asynchronous HTTPS GET on the event loop (libcurl multi).

Runs tests/helpers/https_get against a local HTTPS server whose
certificate comes from a throw-away test CA (https_server.py): the host
name in the URL is pinned to 127.0.0.1 with -r, as smtp-out does after
its own DNS lookup.
"""

import os
import subprocess

import pytest

from conftest import BUILD, without_libcurl
from https_server import HttpsServer, CertAuthority

HELPER = os.path.join(BUILD, "tests", "helpers", "https_get")
HOST = "mta-sts.example.net"


def run(*args, timeout=30):
    p = subprocess.run([HELPER] + list(args), capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def server(ca):
    cert, key = ca.issue(HOST)
    routes = {"/ok": (200, "text/plain", "version: STSv1\n"),
              "/big": (200, "text/plain", "x" * 100000),
              "/gone": (404, "text/plain", "nope")}
    with HttpsServer(routes, cert, key) as srv:
        yield srv


def url(srv, path):
    return "https://%s:%d%s" % (HOST, srv.port, path)


def pin(srv):
    return "%s:%d:127.0.0.1" % (HOST, srv.port)


def test_get_ok(ca, server):
    rc, out = run("-c", ca.cafile, "-r", pin(server), url(server, "/ok"))
    assert rc == 0, out
    assert "status=200 len=15 type=text/plain" in out
    assert "version: STSv1" in out


def test_status_and_parallel(ca, server):
    rc, out = run("-c", ca.cafile, "-r", pin(server), url(server, "/ok"),
                  url(server, "/gone"), url(server, "/ok"))
    assert rc == 0, out
    assert out.count("status=200") == 2
    assert "status=404" in out
    assert server.hits["/ok"] == 2


def test_untrusted_certificate(server):
    # Without the test CA the system store does not know the issuer.
    rc, out = run("-r", pin(server), url(server, "/ok"))
    assert rc == 1
    assert "error:" in out and "certificate" in out.lower()


def test_wrong_host_name(ca, server):
    other = "other.example.net"
    rc, out = run("-c", ca.cafile, "-r", "%s:%d:127.0.0.1" % (other,
                                                            server.port),
                  "https://%s:%d/ok" % (other, server.port))
    assert rc == 1
    assert "error:" in out


def test_body_limit(ca, server):
    rc, out = run("-c", ca.cafile, "-r", pin(server), "-m", "65536",
                  url(server, "/big"))
    assert rc == 1
    assert "response body exceeds 65536 bytes" in out


def test_only_https(ca, server):
    rc, out = run("-c", ca.cafile, "http://%s:%d/ok" % (HOST, server.port))
    assert rc == 1
    assert "not an https:// URL" in out


def test_timeout_does_not_block_loop(ca, server):
    server.delay = 3
    rc, out = run("-c", ca.cafile, "-r", pin(server), "-t", "1",
                  url(server, "/ok"))
    assert rc == 1
    assert "error:" in out and "timed out" in out
    # The 10 ms ticker kept running while the request waited.
    ticks = int(out.strip().splitlines()[-1].split("=")[1])
    assert ticks >= 50, out


def test_refused(ca):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, out = run("-c", ca.cafile, "-r", "%s:%d:127.0.0.1" % (HOST, port),
                  "https://%s:%d/ok" % (HOST, port))
    assert rc == 1
    assert "error:" in out


def test_cancel(ca, server):
    rc, out = run("-c", ca.cafile, "-r", pin(server), "-C",
                  url(server, "/ok"), url(server, "/ok"))
    assert rc == 0, out
    assert "cancelled count=0" in out


def test_without_libcurl(ca, server):
    # lib/http loads libcurl.so.4 when it is first used; if it cannot,
    # it says so once and every request fails like an unreachable server.
    p = subprocess.run(without_libcurl([HELPER, "-c", ca.cafile, "-r",
                                        pin(server), url(server, "/ok")]),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    assert "%s error: cannot load libcurl.so.4: " % url(server, "/ok") \
        in p.stdout
    assert "cannot load libcurl.so.4" in p.stderr
    assert server.hits.get("/ok", 0) == 0
