"""A small authoritative DNS server for tests (python3-dnslib).

It answers on 127.0.0.1 at one free port, over UDP and TCP, from a zone
given as zone-file text or as a dict, in threads of the test process:

    from dnsserver import DnsServer

    zone = {
        "example.net": ["MX 10 mx1.example.net.", "MX 20 mx2"],
        "mx1.example.net": ["A 192.0.2.1", "AAAA 2001:db8::1"],
        "mx2.example.net": {"A": ["192.0.2.2", "192.0.2.3"]},
    }
    with DnsServer(zone, origin="example.net") as dns:
        run(["dnsq", "-r", dns.spec, "mx", "example.net"])

Dict keys are absolute owner names (the final dot is optional; "@" is
the origin); a value is a list of "TYPE RDATA" strings or a dict TYPE ->
RDATA string or list. Names inside RDATA without a final dot, and owner
names in zone text, are relative to origin (default: the root). An SOA
for the origin is made up when the zone has none, and goes in the
authority section of negative answers.

Use names under example.net/.com/.org, not .test, .invalid or .localhost:
libunbound answers those special-use domains itself (NXDOMAIN) and never
asks the server.

Answers are what an authoritative server says: the records of the asked
type (following in-zone CNAMEs), NOERROR with no data when the name exists
(or is an empty non-terminal) without that type, NXDOMAIN otherwise.
Names in ``servfail`` get SERVFAIL, names in ``refused`` REFUSED, and
queries for names in ``drop`` get no answer at all (a dead server); an
entry "name/TYPE" (e.g. "mx.example.net/AAAA") does so for that type only.
These sets (normalised: lower case, final dot), and ``records``, may be
changed while the server runs. Every query
is appended to ``queries`` as (name, type) with the name in lower case and
without its final dot, e.g. ("mx1.example.net", "A"); those that came over
TCP also to ``tcp_queries``. UDP answers larger than the client's EDNS
size (512 without EDNS) are truncated (TC), so that clients retry on TCP.

start_dns_server() / stop_dns_server() are the same as functional helpers;
dead_port() gives a UDP+TCP port where nothing answers.
"""

import select
import socket
import struct
import threading

from dnslib import DNSRecord, QTYPE, RCODE, RR

__all__ = ["DnsServer", "start_dns_server", "stop_dns_server", "dead_port"]


def _norm(name):
    name = str(name).lower()
    return name if name.endswith(".") else name + "."


def _norm_match(entry):
    """"name" or "name/TYPE" as matched by DnsServer._hit()."""
    name, _, rtype = str(entry).partition("/")
    return _norm(name) + ("/" + rtype.upper() if rtype else "")


def _bind_pair(host):
    """Bind a UDP and a TCP socket to the same free port."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((host, 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
        except OSError:
            tcp.close()
            udp.close()
            continue
        return udp, tcp, port
    raise RuntimeError("no free UDP+TCP port pair")


def dead_port(host="127.0.0.1"):
    """A port with nothing listening on UDP or TCP (right now)."""
    udp, tcp, port = _bind_pair(host)
    udp.close()
    tcp.close()
    return port


class DnsServer:
    def __init__(self, zone, origin=".", ttl=300, servfail=(), refused=(),
                 drop=(), host="127.0.0.1"):
        self.origin = _norm(origin)
        self.ttl = ttl
        self.host = host
        self.servfail = {_norm_match(n) for n in servfail}
        self.refused = {_norm_match(n) for n in refused}
        self.drop = {_norm_match(n) for n in drop}
        self.records = self._load(zone)
        self.queries = []
        self.tcp_queries = []
        self.port = None
        self._stop = threading.Event()
        self._threads = []
        self._udp = self._tcp = None
        self._lock = threading.Lock()

    # Zone loading.

    def _load(self, zone):
        if isinstance(zone, dict):
            lines = []
            for name, rrs in zone.items():
                if isinstance(rrs, dict):
                    items = []
                    for rtype, data in rrs.items():
                        if isinstance(data, str):
                            data = [data]
                        items += ["%s %s" % (rtype, d) for d in data]
                    rrs = items
                owner = name if name == "@" else _norm(name)
                for rr in rrs:
                    lines.append("%s %d IN %s" % (owner, self.ttl, rr))
            text = "\n".join(lines)
        else:
            text = zone
        text = "$ORIGIN %s\n$TTL %d\n%s\n" % (self.origin, self.ttl, text)
        records = {}
        for rr in RR.fromZone(text):
            records.setdefault(_norm(rr.rname), []).append(rr)
        if not any(rr.rtype == QTYPE.SOA for rr in records.get(self.origin, [])):
            soa = RR.fromZone("%s %d IN SOA ns.%s hostmaster.%s 1 3600 600 "
                              "86400 %d" % (self.origin, self.ttl,
                                            self.origin.lstrip("."),
                                            self.origin.lstrip("."),
                                            self.ttl))[0]
            self._soa = soa
        else:
            self._soa = [rr for rr in records[self.origin]
                         if rr.rtype == QTYPE.SOA][0]
        return records

    def _exists(self, name):
        if name in self.records:
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.records)

    # Answering.

    @staticmethod
    def _hit(names, qname, qtype):
        return qname in names or "%s/%s" % (qname, qtype) in names

    def answer(self, data, tcp=False):
        """The reply for one query packet, or None to stay silent."""
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        if not req.questions:
            return None
        q = req.q
        qname = _norm(q.qname)
        with self._lock:
            self.queries.append((qname.rstrip("."), QTYPE.get(q.qtype)))
            if tcp:
                self.tcp_queries.append(self.queries[-1])
        qtype = QTYPE.get(q.qtype)
        if self._hit(self.drop, qname, qtype):
            return None
        reply = req.reply(aa=1, ra=1)
        if self._hit(self.servfail, qname, qtype):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if self._hit(self.refused, qname, qtype):
            reply.header.rcode = RCODE.REFUSED
            return reply
        name = qname
        for _ in range(8):
            rrs = self.records.get(name, [])
            match = [rr for rr in rrs
                     if rr.rtype == q.qtype or q.qtype == QTYPE.ANY]
            if match:
                for rr in match:
                    reply.add_answer(rr)
                return reply
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if not cname:
                break
            reply.add_answer(cname[0])
            name = _norm(cname[0].rdata.label)
        if not self._exists(name):
            if name == qname or not reply.rr:
                reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(self._soa)
        return reply

    def _pack(self, req_data, reply, udp):
        packet = reply.pack()
        if udp:
            limit = 512
            try:
                req = DNSRecord.parse(req_data)
                for rr in req.ar:
                    if rr.rtype == QTYPE.OPT:
                        limit = max(512, rr.rclass)
            except Exception:
                pass
            if len(packet) > limit:
                packet = reply.truncate().pack()
        return packet

    def _udp_loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self._udp], [], [], 0.1)
            if not r:
                continue
            try:
                data, peer = self._udp.recvfrom(65535)
            except OSError:
                continue
            reply = self.answer(data)
            if reply is not None:
                try:
                    self._udp.sendto(self._pack(data, reply, True), peer)
                except OSError:
                    pass

    def _tcp_conn(self, conn):
        conn.settimeout(5)
        try:
            while not self._stop.is_set():
                head = conn.recv(2)
                if len(head) < 2:
                    return
                (length,) = struct.unpack("!H", head)
                data = b""
                while len(data) < length:
                    chunk = conn.recv(length - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = self.answer(data, tcp=True)
                if reply is None:
                    continue
                packet = self._pack(data, reply, False)
                conn.sendall(struct.pack("!H", len(packet)) + packet)
        except OSError:
            pass
        finally:
            conn.close()

    def _tcp_loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self._tcp], [], [], 0.1)
            if not r:
                continue
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._tcp_conn, args=(conn,),
                                 daemon=True)
            t.start()

    # Life cycle.

    @property
    def spec(self):
        """The dns_resolver value that points at this server."""
        return "%s@%d" % (self.host, self.port)

    def start(self):
        self._udp, self._tcp, self.port = _bind_pair(self.host)
        self._tcp.listen(16)
        for loop in (self._udp_loop, self._tcp_loop):
            t = threading.Thread(target=loop, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._threads = []
        for s in (self._udp, self._tcp):
            if s is not None:
                s.close()
        self._udp = self._tcp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def start_dns_server(zone, **kwargs):
    """Start a DnsServer (see the class) and return it."""
    return DnsServer(zone, **kwargs).start()


def stop_dns_server(server):
    """Stop a server from start_dns_server(); accepts None."""
    if server is not None:
        server.stop()
