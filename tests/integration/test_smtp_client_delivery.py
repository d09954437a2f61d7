"""net/smtpclient.deliver against a real localserve and against small hostile servers."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Served, log, start_localserve  # type: ignore[import-not-found]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailactors.actors.localserve import ensure_localserve_files
from mailactors.conf.localserve import LOCALSERVE_CERT_FILE, LOCALSERVE_KEY_FILE
from mailactors.net.smtpclient import FailureKind, SessionResult, Transaction, deliver
from mailactors.protocol.smtp.client import Timeouts


def message(subject: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        b"From: <sender@example.org>\r\nTo: <mailactors@localhost>\r\n"
        b"Subject: " + subject.encode() + b"\r\n\r\n" + body
    )


# --- a test CA ------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


class Pki:
    def __init__(self) -> None:
        self.ca, self.ca_key = make_ca("mailactors test CA")
        self.leaf, self.leaf_key = make_leaf(self.ca, self.ca_key)

    def pem(self, cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem(self.ca).decode())


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture
def server(tmp_path: Path, pki: Pki) -> Iterator[Served]:
    """localserve with a certificate issued by our test CA (chain: leaf, CA)."""
    directory = tmp_path / "localserve"
    ensure_localserve_files(directory, "127.0.0.1", log)
    (directory / LOCALSERVE_CERT_FILE).write_bytes(pki.pem(pki.leaf) + pki.pem(pki.ca))
    (directory / LOCALSERVE_KEY_FILE).write_bytes(
        pki.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    served = start_localserve(directory)
    try:
        yield served
    finally:
        served.stop()


FAST = Timeouts(greeting=10, mail=10, rcpt=10, data_init=10, data_block=10, data_final=10, other=10)


def replies(result: SessionResult) -> list[dict[str, int]]:
    return [{r.recipient: r.code for r in t.recipients} for t in result.transactions]


# --- against localserve ---------------------------------------------------------------


def test_plain_delivery_several_recipients_and_transactions(server: Served) -> None:
    first = message("first", b"line\r\n.dot line\r\n")
    second = message("second")
    result = deliver(
        ("127.0.0.1", server.port("smtp")),
        ehlo_name="client.example.net",
        timeouts=FAST,
        source_ip="127.0.0.1",
        transactions=[
            Transaction(
                "sender@example.org",
                (
                    "mailactors@localhost",
                    "rcpttopermerror@localhost",
                    "rcpttotemperror@localhost",
                    "other@localhost",
                ),
                first,
            ),
            Transaction("sender@example.org", ("permerror@localhost",), second),
            Transaction("", ("temperror@localhost",), second),
        ],
    )
    assert result.failure is None and result.tls is None
    assert result.greeting is not None and result.greeting.code == 220
    assert result.capabilities is not None and result.capabilities.pipelining
    assert replies(result) == [
        {
            "mailactors@localhost": 250,
            "rcpttopermerror@localhost": 550,
            "rcpttotemperror@localhost": 451,
            "other@localhost": 250,
        },
        {"permerror@localhost": 550},
        {"temperror@localhost": 451},
    ]
    outcome = {r.recipient: r for r in result.transactions[0].recipients}
    assert outcome["rcpttopermerror@localhost"].permanent
    assert not outcome["rcpttotemperror@localhost"].permanent
    assert outcome["mailactors@localhost"].delivered and not outcome["mailactors@localhost"].local
    assert result.transactions[0].delivered == ("mailactors@localhost", "other@localhost")
    server.stop()
    stored = server.inbox()
    assert len(stored) == 2  # one copy per accepted recipient
    assert all(s.endswith(first) for s in stored)


def test_starttls_with_a_verified_certificate_and_requiretls(
    server: Served, pki: Pki, tmp_path: Path
) -> None:
    body = tmp_path / "message.eml"
    body.write_bytes(message("tls", "Grüße\r\n".encode() + b"x" * 200_000 + b"\r\n"))
    with body.open("rb") as f:
        result = deliver(
            ("127.0.0.1", server.port("smtp")),
            ehlo_name="client.example.net",
            tls_context=pki.client_context(),
            server_hostname="localhost",
            tls_required=True,
            timeouts=FAST,
            transactions=[
                Transaction("sender@example.org", ("mailactors@localhost",), f, requiretls=True)
            ],
        )
    assert result.failure is None
    assert replies(result) == [{"mailactors@localhost": 250}]
    assert result.tls is not None and result.tls.version in ("TLSv1.2", "TLSv1.3")
    assert result.tls.cipher
    chain = result.tls.peer_chain_der
    assert chain[0] == pki.leaf.public_bytes(serialization.Encoding.DER)
    assert result.capabilities is not None and result.capabilities.requiretls
    server.stop()
    (stored,) = server.inbox()
    assert stored.endswith(body.read_bytes())
    assert b"TLS1." in stored


def test_requiretls_without_tls_is_refused_locally(server: Served) -> None:
    result = deliver(
        ("127.0.0.1", server.port("smtp")),
        ehlo_name="client.example.net",
        timeouts=FAST,
        transactions=[
            Transaction("s@example.org", ("mailactors@localhost",), message("x"), requiretls=True),
            Transaction("s@example.org", ("mailactors@localhost",), message("y")),
        ],
    )
    assert result.failure is None
    (refused,) = result.transactions[0].recipients
    assert refused.local and refused.permanent and refused.enhanced == "5.7.30"
    assert result.transactions[1].delivered == ("mailactors@localhost",)


def test_untrusted_certificate_fails_the_handshake(server: Served) -> None:
    other = Pki()
    result = deliver(
        ("127.0.0.1", server.port("smtp")),
        ehlo_name="client.example.net",
        tls_context=other.client_context(),
        server_hostname="localhost",
        tls_required=True,
        timeouts=FAST,
        transactions=[Transaction("s@example.org", ("mailactors@localhost",), message("x"))],
    )
    assert result.failure is not None and result.failure.kind is FailureKind.TLS_HANDSHAKE
    (outcome,) = result.transactions[0].recipients
    assert outcome.local and not outcome.permanent and outcome.enhanced == "4.7.5"
    assert result.tls is None


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = deliver(
        ("127.0.0.1", port),
        ehlo_name="client.example.net",
        transactions=[Transaction("s@example.org", ("a@example.org",), b"x")],
        connect_timeout=5,
    )
    assert result.failure is not None and result.failure.kind is FailureKind.CONNECT_REFUSED
    assert result.transactions[0].recipients[0].enhanced == "4.4.1"


# --- hostile servers ------------------------------------------------------------------

Script = Callable[[socket.socket], None]


class HostileServer:
    """Accepts one connection on 127.0.0.1 and runs a script on it in a thread."""

    def __init__(self, script: Script) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.script = script
        self.received = bytearray()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="hostile-smtp", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)
                self.script(conn)
        except BaseException as exc:  # reported by close()
            self.error = exc

    def close(self) -> None:
        self.thread.join(15)
        self.listener.close()
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def read_line(conn: socket.socket, received: bytearray | None = None) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        ch = conn.recv(1)
        if not ch:
            break
        line += ch
    if received is not None:
        received += line
    return bytes(line)


@pytest.fixture
def hostile() -> Iterator[Callable[[Script], HostileServer]]:
    servers: list[HostileServer] = []

    def start(script: Script) -> HostileServer:
        servers.append(HostileServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def run(server: HostileServer, **kwargs: object) -> SessionResult:
    args: dict[str, object] = {
        "ehlo_name": "client.example.net",
        "timeouts": FAST,
        "transactions": [
            Transaction("s@example.org", ("a@example.org", "b@example.org"), b"x\r\n")
        ],
    }
    args.update(kwargs)
    return deliver(("127.0.0.1", server.port), **args)  # type: ignore[arg-type]


def test_starttls_required_but_not_offered(hostile: Callable[[Script], HostileServer]) -> None:
    seen: list[bytes] = []

    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 hostile.example ESMTP\r\n")
        seen.append(read_line(conn))
        conn.sendall(b"250-hostile.example\r\n250 PIPELINING\r\n")
        seen.append(read_line(conn))
        conn.sendall(b"221 bye\r\n")

    server = hostile(script)
    result = run(server, tls_context=ssl.create_default_context(), tls_required=True)
    server.close()
    assert seen == [b"EHLO client.example.net\r\n", b"QUIT\r\n"]
    assert result.failure is not None and result.failure.kind is FailureKind.STARTTLS_MISSING
    assert {r.enhanced for r in result.transactions[0].recipients} == {"4.7.0"}


def test_garbage_reply_is_a_protocol_violation(hostile: Callable[[Script], HostileServer]) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 hostile.example\r\n")
        read_line(conn)
        conn.sendall(b"250 hostile.example\r\n")
        read_line(conn)  # MAIL (no PIPELINING)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n")
        read_line(conn)  # wait until the client closes

    server = hostile(script)
    result = run(server)
    server.close()
    assert result.failure is not None and result.failure.kind is FailureKind.PROTOCOL
    for r in result.transactions[0].recipients:
        assert r.local and r.code == 451 and r.enhanced == "4.5.0"


def test_slow_server_times_out(hostile: Callable[[Script], HostileServer]) -> None:
    release = threading.Event()

    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 hostile.example\r\n")
        read_line(conn)
        release.wait(10)  # never answers EHLO in time

    server = hostile(script)
    result = run(server, timeouts=Timeouts(other=0.3))
    release.set()
    server.close()
    assert result.failure is not None and result.failure.kind is FailureKind.TIMEOUT
    assert {r.enhanced for r in result.transactions[0].recipients} == {"4.4.2"}


def test_421_mid_transaction_and_pipelined_group(
    hostile: Callable[[Script], HostileServer],
) -> None:
    received = bytearray()

    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 hostile.example\r\n")
        read_line(conn, received)
        conn.sendall(b"250-hostile.example\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n")
        for _ in range(4):  # MAIL, RCPT, RCPT, DATA in one group
            read_line(conn, received)
        conn.sendall(b"250 2.1.0 ok\r\n550 5.1.1 unknown\r\n421 4.3.2 shutting down\r\n")

    server = hostile(script)
    result = run(
        server,
        transactions=[
            Transaction("s@example.org", ("a@example.org", "b@example.org", "c@example.org"), b"x"),
            Transaction("s@example.org", ("d@example.org",), b"y"),
        ],
    )
    server.close()
    assert received.startswith(
        b"EHLO client.example.net\r\nMAIL FROM:<s@example.org>\r\n"
        b"RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
    )
    assert result.failure is not None and result.failure.kind is FailureKind.CLOSED
    assert result.failure.reply is not None and result.failure.reply.code == 421
    assert replies(result) == [
        {"a@example.org": 550, "b@example.org": 421, "c@example.org": 421},
        {"d@example.org": 421},
    ]
    assert not result.transactions[0].recipients[1].local


def test_server_closing_without_a_word(hostile: Callable[[Script], HostileServer]) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 hostile.example\r\n")

    server = hostile(script)
    result = run(server)
    server.close()
    assert result.failure is not None and result.failure.kind in (
        FailureKind.CLOSED,
        FailureKind.PROTOCOL,
    )
    assert all(not r.delivered and not r.permanent for r in result.transactions[0].recipients)


def test_554_greeting_is_reported_with_the_servers_reply(
    hostile: Callable[[Script], HostileServer],
) -> None:
    seen: list[bytes] = []

    def script(conn: socket.socket) -> None:
        conn.sendall(b"554 hostile.example no service for you\r\n")
        seen.append(read_line(conn))
        conn.sendall(b"221 bye\r\n")

    server = hostile(script)
    result = run(server)
    server.close()
    assert seen == [b"QUIT\r\n"]
    assert result.failure is not None and result.failure.kind is FailureKind.GREETING_REJECTED
    assert result.greeting is not None and result.greeting.code == 554
    assert {r.code for r in result.transactions[0].recipients} == {554}


def test_size_refusal_is_local_and_the_session_goes_on(
    hostile: Callable[[Script], HostileServer],
) -> None:
    received = bytearray()

    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 hostile.example\r\n")
        read_line(conn, received)
        conn.sendall(b"250-hostile.example\r\n250-SIZE 100\r\n250 8BITMIME\r\n")
        read_line(conn, received)  # MAIL of the small message (the big one is never sent)
        conn.sendall(b"250 ok\r\n")
        read_line(conn, received)
        conn.sendall(b"250 ok\r\n")
        read_line(conn, received)
        conn.sendall(b"354 go\r\n")
        while not received.endswith(b"\r\n.\r\n"):
            read_line(conn, received)
        conn.sendall(b"250 queued\r\n")
        read_line(conn, received)
        conn.sendall(b"221 bye\r\n")

    server = hostile(script)
    result = run(
        server,
        transactions=[
            Transaction("s@example.org", ("big@example.org",), b"x" * 200),
            Transaction("s@example.org", ("small@example.org",), "Grüße\r\n".encode()),
        ],
    )
    server.close()
    assert result.failure is None
    (big,) = result.transactions[0].recipients
    assert big.local and big.permanent and big.enhanced == "5.3.4"
    assert result.transactions[1].delivered == ("small@example.org",)
    assert b"MAIL FROM:<s@example.org> SIZE=9 BODY=8BITMIME\r\n" in received
    assert b"big@example.org" not in received
    assert received.endswith("DATA\r\nGrüße\r\n.\r\nQUIT\r\n".encode())
