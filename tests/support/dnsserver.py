"""A small authoritative DNS server on 127.0.0.1 for tests (UDP and TCP, one thread).

    with DnsTestServer('example.com. TXT "v=spf1 -all"', authenticated={"example.com"}) as dns:
        resolver = DnsResolver([dns.nameserver])
        dns.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")

Zones are zone-file text (names relative to "." unless the text has $ORIGIN, or
to the key of a {origin: text} mapping; $TTL defaults to 300; no SOA needed);
`records` adds (name, type, value) triples as `add` does.
Names under `authenticated` get the AD bit, as from a validating resolver, when
the query asks for it (AD or DO set); names in `servfail` get SERVFAIL, names in
`drop` no answer at all (the client times out). UDP answers larger than
`truncate_udp_over` bytes (or the client's EDNS payload, or 512) come back
truncated, so the client retries over TCP. CNAME chains within the served data
are followed. `queries` logs (name, type, "udp" | "tcp") of every query.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import dns.zone

_Key = tuple[dns.name.Name, dns.rdatatype.RdataType]


def _name(text: str | dns.name.Name) -> dns.name.Name:
    return text if isinstance(text, dns.name.Name) else dns.name.from_text(text)


def _text(name: str | dns.name.Name) -> str:
    """The form of the name sets: lower case, no trailing dot."""
    return (name.to_text() if isinstance(name, dns.name.Name) else name).rstrip(".").lower()


class DnsTestServer:
    def __init__(
        self,
        zones: str | Mapping[str, str] = "",
        *,
        records: Iterable[tuple[str, str, str]] = (),
        authenticated: Iterable[str] = (),
        servfail: Iterable[str] = (),
        drop: Iterable[str] = (),
        truncate_udp_over: int | None = None,
        ttl: int = 300,
    ) -> None:
        self.ttl = ttl
        # Sets of names (lower case, no trailing dot) that tests may change at runtime.
        self.authenticated = {_text(n) for n in authenticated}
        self.servfail = {_text(n) for n in servfail}
        self.drop = {_text(n) for n in drop}
        self.truncate_udp_over = truncate_udp_over
        self.queries: list[tuple[str, str, str]] = []
        self.errors: list[Exception] = []  # raised again on exit: a server bug fails the test
        self._data: dict[_Key, dns.rdataset.Rdataset] = {}
        self._lock = threading.Lock()
        for origin, text in ({".": zones} if isinstance(zones, str) else zones).items():
            zone = dns.zone.from_text(
                f"$TTL {ttl}\n{text}", origin=origin, relativize=False, check_origin=False
            )
            for name, rdataset in zone.iterate_rdatasets():
                self._data[(name, rdataset.rdtype)] = rdataset
        for owner, rdtype, value in records:
            self.add(owner, rdtype, value)
        self._stop = threading.Event()
        self._udp, self._tcp = self._bind()
        self.port: int = self._udp.getsockname()[1]
        self.nameserver = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="dns-test-server", daemon=True)

    # Data

    def add(
        self, name: str, rdtype: str, value: str | Sequence[str], ttl: int | None = None
    ) -> None:
        """Add a record; a TXT value is the literal text (a sequence: several strings)."""
        key = (_name(name), dns.rdatatype.from_text(rdtype))
        if key[1] == dns.rdatatype.TXT:
            texts = [value] if isinstance(value, str) else list(value)
            strings = [s.encode() for s in texts]
            if isinstance(value, str):  # split at the 255-byte limit (RFC 1035 section 3.3)
                strings = [strings[0][i : i + 255] for i in range(0, len(strings[0]), 255)] or [b""]
            rdata: dns.rdata.Rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, key[1], strings)
        else:
            assert isinstance(value, str)
            rdata = dns.rdata.from_text(dns.rdataclass.IN, key[1], value, origin=dns.name.root, relativize=False)
        with self._lock:
            rdataset = self._data.setdefault(key, dns.rdataset.Rdataset(dns.rdataclass.IN, key[1]))
            rdataset.add(rdata, self.ttl if ttl is None else ttl)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        """Remove the records of one type of a name, or all of them."""
        owner = _name(name)
        with self._lock:
            for key in [k for k in self._data if k[0] == owner]:
                if rdtype is None or key[1] == dns.rdatatype.from_text(rdtype):
                    del self._data[key]

    def _exists(self, name: dns.name.Name) -> bool:
        # A name with records or with names below it exists (RFC 8020: empty
        # non-terminals are NODATA, not NXDOMAIN).
        return any(owner.is_subdomain(name) for owner, _ in self._data)

    def _under(self, name: dns.name.Name, zones: set[str]) -> bool:
        text = _text(name)
        return any(text == zone or text.endswith("." + zone) for zone in zones)

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to a query; None means no response at all (drop)."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        name, rdtype = question.name, question.rdtype
        with self._lock:
            if _text(name) in self.drop:
                return None
            if _text(name) in self.servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response
            secure = self._under(name, self.authenticated)
            for _ in range(16):  # follow CNAMEs within our data (RFC 1034 section 4.3.2)
                found = self._data.get((name, rdtype))
                if found is None and rdtype != dns.rdatatype.CNAME:
                    found = self._data.get((name, dns.rdatatype.CNAME))
                if found is None:
                    if not self._exists(name):
                        response.set_rcode(dns.rcode.NXDOMAIN)
                    break
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, found.rdtype)
                for rdata in found:
                    rrset.add(rdata, found.ttl)
                response.answer.append(rrset)
                secure = secure and self._under(name, self.authenticated)
                if found.rdtype == rdtype:
                    break
                name = found[0].target
        # RFC 6840 section 5.7 / RFC 3225: AD only to a client that asks (AD or DO).
        if secure and (query.flags & dns.flags.AD or query.ednsflags & dns.flags.DO):
            response.flags |= dns.flags.AD
        return response

    # Network

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            return udp, tcp
        raise OSError("no free port for both UDP and TCP")

    def _log(self, wire: bytes, transport: str) -> dns.message.Message | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None  # garbage in: no answer, like many servers
        question = query.question[0] if query.question else None
        if question is not None:
            rdtype = dns.rdatatype.to_text(question.rdtype)
            with self._lock:
                self.queries.append(
                    (question.name.to_text().rstrip(".").lower(), rdtype, transport)
                )
        return query

    def _serve_udp(self) -> None:
        wire, peer = self._udp.recvfrom(65535)
        query = self._log(wire, "udp")
        response = self.answer(query) if query is not None else None
        if query is None or response is None:
            return
        limit = query.payload if query.edns >= 0 else 512
        if self.truncate_udp_over is not None:
            limit = min(limit, self.truncate_udp_over)
        out = response.to_wire(max_size=65535)
        if len(out) > limit:
            response.answer.clear()
            response.flags |= dns.flags.TC
            out = response.to_wire(max_size=65535)
        self._udp.sendto(out, peer)

    def _serve_tcp(self) -> None:
        conn, _ = self._tcp.accept()
        with conn:
            conn.settimeout(2.0)
            try:
                while not self._stop.is_set():
                    header = _read_exactly(conn, 2)
                    if header is None:
                        return
                    wire = _read_exactly(conn, int.from_bytes(header, "big"))
                    query = self._log(wire or b"", "tcp")
                    response = self.answer(query) if query is not None else None
                    if response is None:
                        return
                    out = response.to_wire(max_size=65535)
                    conn.sendall(len(out).to_bytes(2, "big") + out)
            except (OSError, TimeoutError):
                return

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, self._serve_udp)
            selector.register(self._tcp, selectors.EVENT_READ, self._serve_tcp)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    try:
                        key.data()
                    except Exception as exc:
                        self.errors.append(exc)

    def __enter__(self) -> DnsTestServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._udp.close()
        self._tcp.close()
        if self.errors and exc_type is None:
            raise self.errors[0]


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
