"""A DNSSEC-signed test zone and a small authoritative server for it.

    zone = SignedZone("example.net", {
        "mx.example.net": ["A 127.0.0.2"],
        "_25._tcp.mx.example.net": ["TLSA 3 1 1 " + "ab" * 32],
    })
    zone.tamper("_25._tcp.bad.example.net", "TLSA 3 1 1 " + "cd" * 32)
    with SignedDnsServer(zone) as dns:
        anchor = zone.write_anchor(tmp_path / "anchor")   # DNSKEY line
        run(["dnsrr", "-r", dns.spec, "-T", anchor, "tlsa", "..."])

The zone is signed at start with one ECDSA P-256 key (algorithm 13,
flags 257) made with python3-cryptography, through dnspython's
dns.dnssec.sign(): every RRset gets an RRSIG, and an NSEC chain covers
every name, so that libunbound, given the key as trust anchor, can
validate positive answers, NODATA and NXDOMAIN. tamper() adds an RRset
whose signature was made over other data: it validates as "bogus".

The server answers on 127.0.0.1 at a free port, UDP and TCP, in threads
of the test process. With the DO bit it adds the RRSIGs; negative
answers carry the SOA, every NSEC record and their signatures (the
zone is small: the validator picks the proofs it needs).
"""

import socket
import struct
import threading
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["SignedZone", "SignedDnsServer"]

IN = dns.rdataclass.IN


class SignedZone:
    def __init__(self, origin, records, ttl=60):
        self.origin = dns.name.from_text(origin)
        self.ttl = ttl
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.dnskey = dns.dnssec.make_dnskey(
            self.key.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
            flags=257)
        self.rrsets = {}            # (name, rdtype) -> RRset
        self.sigs = {}              # (name, rdtype) -> RRSIG RRset
        o = origin.rstrip(".")
        self._add(self.origin, "SOA", "ns.%s. hostmaster.%s. 1 3600 600 "
                  "86400 %d" % (o, o, ttl))
        self._add(self.origin, "NS", "ns.%s." % o)
        self._add(dns.name.from_text("ns." + o), "A", "127.0.0.1")
        self.rrsets[(self.origin, dns.rdatatype.DNSKEY)] = \
            dns.rrset.from_rdata(self.origin, ttl, self.dnskey)
        for name, rrs in records.items():
            for rr in rrs:
                rtype, _, data = rr.partition(" ")
                self._add(dns.name.from_text(name), rtype, data)
        self._tampered = []
        self._nsec()
        for key, rrset in list(self.rrsets.items()):
            self.sigs[key] = self._sign(rrset)

    def _add(self, name, rtype, data):
        rdtype = dns.rdatatype.from_text(rtype)
        rd = dns.rdata.from_text(IN, rdtype, data, origin=self.origin,
                                 relativize=False)
        key = (name, rdtype)
        if key not in self.rrsets:
            self.rrsets[key] = dns.rrset.RRset(name, IN, rdtype)
            self.rrsets[key].update_ttl(self.ttl)
        self.rrsets[key].add(rd)

    def _nsec(self):
        names = sorted({n for n, _ in self.rrsets})
        for i, name in enumerate(names):
            nxt = names[(i + 1) % len(names)]
            types = sorted({dns.rdatatype.to_text(t)
                            for n, t in self.rrsets if n == name}
                           | {"RRSIG", "NSEC"})
            self._add(name, "NSEC", "%s %s" % (nxt, " ".join(types)))

    def _sign(self, rrset):
        now = int(time.time())
        sig = dns.dnssec.sign(rrset, self.key, self.origin, self.dnskey,
                              inception=now - 3600, expiration=now + 86400)
        return dns.rrset.from_rdata(rrset.name, rrset.ttl, sig)

    def add_signed(self, name, rr):
        """Add one record after start: signed, in the NSEC chain."""
        self._add(dns.name.from_text(name), *rr.split(" ", 1))
        self._resign()

    def _resign(self):
        for k in [k for k in self.rrsets if k[1] == dns.rdatatype.NSEC]:
            del self.rrsets[k]
        self._nsec()
        for key, rrset in self.rrsets.items():
            if key not in self._tampered:
                self.sigs[key] = self._sign(rrset)

    def tamper(self, name, rr):
        """Add an RRset whose RRSIG was made over other data: bogus."""
        name = dns.name.from_text(name)
        rtype, _, data = rr.partition(" ")
        rdtype = dns.rdatatype.from_text(rtype)
        good = dns.rrset.from_text(name, self.ttl, IN, rdtype, data)
        sig = self._sign(good)
        bad = dns.rrset.RRset(name, IN, rdtype)
        bad.update_ttl(self.ttl)
        for rd in good:
            wire = bytearray(rd.to_digestable())
            wire[-1] ^= 0xff
            bad.add(dns.rdata.from_wire(IN, rdtype, bytes(wire), 0,
                                        len(wire)))
        self.rrsets[(name, rdtype)] = bad
        self._tampered.append((name, rdtype))
        self._resign()
        self.sigs[(name, rdtype)] = sig

    def write_anchor(self, path):
        """The zone's key as a trust anchor file; return its path."""
        with open(str(path), "w") as f:
            f.write("%s %d IN DNSKEY %s\n" % (self.origin, self.ttl,
                                              self.dnskey.to_text()))
        return str(path)

    def answer(self, query):
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        do = bool(query.ednsflags & dns.flags.DO)
        q = query.question[0]
        name, rdtype = q.name, q.rdtype
        if not name.is_subdomain(self.origin):
            resp.set_rcode(dns.rcode.REFUSED)
            return resp
        key = (name, rdtype)
        if key in self.rrsets:
            resp.answer.append(self.rrsets[key])
            if do:
                resp.answer.append(self.sigs[key])
            return resp
        exists = any(n == name or n.is_subdomain(name)
                     for n, _ in self.rrsets)
        if not exists:
            resp.set_rcode(dns.rcode.NXDOMAIN)
        soa = (self.origin, dns.rdatatype.SOA)
        resp.authority.append(self.rrsets[soa])
        if do:
            resp.authority.append(self.sigs[soa])
            for k, rrset in self.rrsets.items():
                if k[1] == dns.rdatatype.NSEC:
                    resp.authority.append(rrset)
                    resp.authority.append(self.sigs[k])
        return resp


class SignedDnsServer:
    def __init__(self, zone):
        self.zone = zone
        self.queries = []
        for _ in range(50):
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.tcp.bind(("127.0.0.1", 0))
            self.port = self.tcp.getsockname()[1]
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.udp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        self.tcp.listen(16)
        self.spec = "127.0.0.1@%d" % self.port
        self._stop = False
        self._threads = []

    def _reply(self, wire, maxsize):
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            return None
        self.queries.append((str(q.question[0].name).rstrip(".").lower(),
                             dns.rdatatype.to_text(q.question[0].rdtype)))
        resp = self.zone.answer(q)
        try:
            return resp.to_wire(max_size=maxsize)
        except dns.exception.TooBig:
            resp = dns.message.make_response(q)
            resp.flags |= dns.flags.TC
            return resp.to_wire()

    def _udp_loop(self):
        self.udp.settimeout(0.2)
        while not self._stop:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                size = dns.message.from_wire(wire).payload
            except Exception:
                continue
            out = self._reply(wire, max(512, size))
            if out:
                self.udp.sendto(out, peer)

    def _tcp_loop(self):
        self.tcp.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    n = struct.unpack("!H", conn.recv(2))[0]
                    wire = b""
                    while len(wire) < n:
                        chunk = conn.recv(n - len(wire))
                        if not chunk:
                            break
                        wire += chunk
                    out = self._reply(wire, 65535)
                    if out:
                        conn.sendall(struct.pack("!H", len(out)) + out)
                except (OSError, struct.error):
                    pass

    def start(self):
        for fn in (self._udp_loop, self._tcp_loop):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop = True
        for t in self._threads:
            t.join()
        self.udp.close()
        self.tcp.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
