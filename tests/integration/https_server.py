"""A test CA and a small HTTPS server for tests (openssl CLI, http.server).

    ca = CertAuthority(tmp_path)                  # ca.cafile: the CA certificate
    cert, key = ca.issue("mta-sts.example.net", ips=["127.0.0.1"])
    with HttpsServer({"/.well-known/mta-sts.txt": (200, "text/plain",
                      POLICY)}, cert, key) as srv:
        fetch("https://mta-sts.example.net:%d/..." % srv.port)

The CA and the certificates are made with the openssl command (RSA 2048,
SHA-256, valid for a day, subjectAltName DNS and IP entries). The server
answers GET from a dict path -> (status, content type, body) that may be
changed while it runs; other paths get 404; a POST gets the same answer
and is kept in ``posts`` as (path, content type, body). It counts
requests in ``hits`` (path -> number). ``delay`` (seconds) makes every answer wait,
in the server thread only. It listens on 127.0.0.1 at a free port unless
given one; stop() closes it (then nothing listens there).
"""

import http.server
import os
import ssl
import subprocess
import threading
import time

__all__ = ["CertAuthority", "HttpsServer"]


def _run(args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class CertAuthority:
    """A throw-away certificate authority in a folder."""

    def __init__(self, folder, name="Sendarix Test CA"):
        self.dir = str(folder)
        os.makedirs(self.dir, exist_ok=True)
        self.cafile = os.path.join(self.dir, "ca.pem")
        self.cakey = os.path.join(self.dir, "ca.key")
        self.serial = 1
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
              "-sha256", "-days", "2", "-subj", "/CN=%s" % name,
              "-keyout", self.cakey, "-out", self.cafile], self.dir)

    def issue(self, cn, names=(), ips=()):
        """A certificate for cn (+ names, ips); return (cert, key) paths."""
        self.serial += 1
        base = os.path.join(self.dir, "%s-%d" % (cn, self.serial))
        san = ["DNS:%s" % cn] + ["DNS:%s" % n for n in names] + \
            ["IP:%s" % i for i in ips]
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % ",".join(san))
            f.write("extendedKeyUsage=serverAuth\n")
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
              "-subj", "/CN=%s" % cn, "-keyout", base + ".key",
              "-out", base + ".csr"], self.dir)
        _run(["openssl", "x509", "-req", "-in", base + ".csr", "-CA",
              self.cafile, "-CAkey", self.cakey, "-set_serial",
              str(self.serial), "-days", "1", "-sha256", "-extfile", ext,
              "-out", base + ".pem"], self.dir)
        return base + ".pem", base + ".key"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server.owner
        srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
        if srv.delay:
            time.sleep(srv.delay)
        status, ctype, body = srv.routes.get(self.path,
                                             (404, "text/plain", "not found"))
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 (http.server's name)
        srv = self.server.owner
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
        srv.posts.append((self.path, self.headers.get("Content-Type", ""),
                          body))
        status, ctype, text = srv.routes.get(self.path,
                                             (404, "text/plain", "not found"))
        if isinstance(text, str):
            text = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass


class HttpsServer:
    """HTTPS on 127.0.0.1 with a given certificate, in a thread."""

    def __init__(self, routes, cert, key, host="127.0.0.1", port=0):
        self.routes = routes
        self.hits = {}
        self.posts = []             # (path, content type, body) of POSTs
        self.delay = 0
        self.httpd = http.server.ThreadingHTTPServer((host, port), _Handler)
        self.httpd.owner = self
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread:
            self.httpd.shutdown()
            self.thread.join()
            self.thread = None
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
