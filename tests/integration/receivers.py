"""Receiving SMTP servers for delivery tests: aiosmtpd in a thread."""

import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP

from conftest import free_port


class Recorder:
    """aiosmtpd handler that keeps every message and counts sessions."""

    def __init__(self):
        self.messages = []          # (mail_from, rcpt_tos, content bytes)
        self.connections = 0
        self.lock = threading.Lock()
        self.reply = None           # e.g. "451 4.3.0 try later" to refuse

    async def handle_DATA(self, server, session, envelope):
        if self.reply:
            return self.reply
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  envelope.original_content))
        return "250 2.0.0 Ok: stored"


class CountingSMTP(AioSMTP):
    def connection_made(self, transport):
        self.event_handler.connections += 1
        super().connection_made(transport)


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, decode_data=False,
                            enable_SMTPUTF8=True)


def aiosmtpd_receiver(host="127.0.0.1", port=None):
    """Start an aiosmtpd receiver; returns (controller, recorder)."""
    rec = Recorder()
    ctl = CountingController(rec, hostname=host, port=port or free_port(host))
    ctl.start()
    return ctl, rec
