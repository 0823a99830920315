"""smtpd TLS restrictions: reject_plaintext_session and client certificates.

Certificates (a CA, a client certificate it signed, a self-signed one) are
made per test with openssl(1). The peers are real: Python's ssl module
with load_cert_chain() on a raw socket, smtplib and openssl s_client
-cert/-key.
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

from test_tls_in import Client, make_cert, s_client, tls_factory  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl(1) not installed")


def tls_client(port, cert=None):
    """A Client after EHLO and STARTTLS, with "cert" (crt, key) or none."""
    c = Client(port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    c.sock = ctx.wrap_socket(c.sock)
    return c


# -- reject_plaintext_session ------------------------------------------------

def test_reject_plaintext_session(tls_factory):
    t = tls_factory({"smtpd_recipient_restrictions":
                     "reject_plaintext_session, permit"})
    with smtplib.SMTP("127.0.0.1", t.mta.port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, msg = s.rcpt("b@example.com")
        assert code == 450, msg
        assert msg == (b"4.7.1 <b@example.com>: Recipient address rejected: "
                       b"Session encryption is required")
        s.rset()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, msg = s.rcpt("b@example.com")
        assert code == 250, msg


def test_plaintext_reject_code(tls_factory):
    t = tls_factory({"smtpd_client_restrictions": "reject_plaintext_session",
                     "plaintext_reject_code": "554"})
    r = t.mta.sendarix("check", check=False)
    assert r.returncode == 0, r.stderr
    with smtplib.SMTP("127.0.0.1", t.mta.port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, msg = s.rcpt("b@example.com")
        assert code == 554, msg
        assert msg.startswith(b"5.7.1 <unknown[127.0.0.1]>: Client host "
                              b"rejected: Session encryption is required")
