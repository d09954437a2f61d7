"""SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding: server and client.

Theory of operation (RFC 5802 section 3):

    client-first   n,,n=user,r=<client nonce>
    server-first   r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
    client-final   c=biws,r=<full nonce>,p=<base64 ClientProof>
    server-final   v=<base64 ServerSignature>

    SaltedPassword  := Hi(Normalize(password), salt, i)      (PBKDF2-HMAC-SHA-256)
    ClientKey       := HMAC(SaltedPassword, "Client Key")
    StoredKey       := H(ClientKey)
    ServerKey       := HMAC(SaltedPassword, "Server Key")
    AuthMessage     := client-first-message-bare "," server-first-message ","
                       client-final-message-without-proof
    ClientSignature := HMAC(StoredKey, AuthMessage)
    ClientProof     := ClientKey XOR ClientSignature
    ServerSignature := HMAC(ServerKey, AuthMessage)

Randomness: the caller passes the nonce into ScramServer and ScramClient, so the state
machines stay deterministic and testable against RFC 7677 section 3; `new_nonce()` is
the one place that draws it (stdlib `secrets`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from mailactors.protocol.sasl.errors import SaslError, ScramError
from mailactors.protocol.sasl.saslprep import saslprep

MECHANISM = "SCRAM-SHA-256"
# RFC 7677 section 4: "the hash iteration-count announced by a server SHOULD be at least 4096".
DEFAULT_ITERATIONS = 4096
# Our own bound so a hostile server cannot make a client spin (not from an RFC).
MAX_ITERATIONS = 10_000_000
# Our own bound on SCRAM messages; real ones are well under 1 KiB.
MAX_MESSAGE = 4096
_HASH = "sha256"
_KEY_SIZE = 32  # SHA-256 output length


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What a server stores for a SCRAM-SHA-256 user (RFC 5802 section 3); no password."""

    salt: bytes
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, _HASH).digest()


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _salted_password(password: str, salt: bytes, iterations: int, *, query: bool) -> bytes:
    # RFC 5802 section 2.2: Normalize(str) applies SASLprep, password as a stored string.
    prepared = saslprep(password, allow_unassigned=query)
    return hashlib.pbkdf2_hmac(_HASH, prepared.encode("utf-8"), salt, iterations)


def _keys(salted: bytes) -> tuple[bytes, bytes, bytes]:
    client_key = _hmac(salted, b"Client Key")
    return client_key, _h(client_key), _hmac(salted, b"Server Key")


def derive_credentials(
    password: str, salt: bytes, iterations: int = DEFAULT_ITERATIONS
) -> ScramCredentials:
    """Compute the stored SCRAM-SHA-256 credentials for a password; SaslError if SASLprep fails."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    if not salt:
        raise ValueError("salt must not be empty")
    _, stored_key, server_key = _keys(_salted_password(password, salt, iterations, query=False))
    return ScramCredentials(salt, iterations, stored_key, server_key)


def verify_password(creds: ScramCredentials, password: str) -> bool:
    """Check a plain password (e.g. from AUTH PLAIN) against stored SCRAM credentials."""
    try:
        salted = _salted_password(password, creds.salt, creds.iterations, query=True)
    except SaslError:
        return False
    _, stored_key, _ = _keys(salted)
    return hmac.compare_digest(stored_key, creds.stored_key)


def new_nonce() -> str:
    """A fresh random nonce: printable ASCII without "," (RFC 5802 section 5.1, "r=")."""
    return secrets.token_urlsafe(18)


def _check_nonce(nonce: str) -> None:
    # RFC 5802 section 7: printable = %x21-2B / %x2D-7E ;; Printable ASCII except ","
    if not nonce or any(not (0x21 <= ord(c) <= 0x7E) or c == "," for c in nonce):
        raise ValueError("nonce must be printable ASCII without ','")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ScramError(f"invalid base64 in {what}") from None


def _decode_saslname(name: str) -> str:
    # RFC 5802 section 5.1: "=" is encoded as "=3D" and "," as "=2C"; any other "=" is invalid.
    out: list[str] = []
    i = 0
    while i < len(name):
        c = name[i]
        if c == "=":
            esc = name[i : i + 3]
            if esc == "=2C":
                out.append(",")
            elif esc == "=3D":
                out.append("=")
            else:
                raise ScramError("invalid '=' escape in user name")
            i += 3
        else:
            out.append(c)
            i += 1
    if not out:
        raise ScramError("empty user name")
    return "".join(out)


def _encode_saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _decode_message(msg: bytes, what: str) -> str:
    if len(msg) > MAX_MESSAGE:
        raise ScramError(f"{what} too long")
    try:
        return msg.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError(f"{what} is not valid UTF-8") from None


def _attributes(text: str, what: str) -> list[tuple[str, str]]:
    """Split "a=v,b=w" into pairs; attribute names are single letters (RFC 5802 section 5)."""
    pairs: list[tuple[str, str]] = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isascii() or not part[0].isalpha():
            raise ScramError(f"malformed attribute in {what}")
        pairs.append((part[0], part[2:]))
    return pairs


class ScramServer:
    """Server side of one SCRAM-SHA-256 exchange: client_first, server_first, client_final."""

    __slots__ = (
        "_server_nonce",
        "_gs2_header",
        "_client_first_bare",
        "_client_nonce",
        "_server_first",
        "_creds",
        "_done",
    )

    def __init__(self, nonce: str) -> None:
        _check_nonce(nonce)
        self._server_nonce = nonce
        self._gs2_header: str | None = None
        self._client_first_bare = ""
        self._client_nonce = ""
        self._server_first: str | None = None
        self._creds: ScramCredentials | None = None
        self._done = False

    def client_first(self, msg: bytes) -> str:
        """Parse client-first-message; return the user name (authcid) to look up.

        RFC 5802 section 7:
            gs2-header = gs2-cbind-flag "," [ authzid ] ","
            gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
            client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        An authzid other than the user name itself is refused (no proxy authorization).
        """
        if self._gs2_header is not None:
            raise ScramError("client-first-message already received")
        text = _decode_message(msg, "client-first-message")
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise ScramError("malformed client-first-message")
        flag, authzid_attr, bare = parts
        if flag.startswith("p="):
            # We advertise no SCRAM-SHA-256-PLUS, so channel binding cannot be negotiated.
            raise ScramError("channel binding is not supported (use SCRAM-SHA-256 with 'n')")
        if flag not in ("n", "y"):
            raise ScramError("malformed gs2-cbind-flag")
        authzid = ""
        if authzid_attr:
            if not authzid_attr.startswith("a="):
                raise ScramError("malformed authzid")
            authzid = _decode_saslname(authzid_attr[2:])
        attrs = _attributes(bare, "client-first-message")
        if attrs and attrs[0][0] == "m":
            # RFC 5802 section 5.1: "m" is reserved; a server MUST fail if it is present.
            raise ScramError("mandatory extension 'm' is not supported")
        if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r":
            raise ScramError("client-first-message needs n= and r=")
        username = _decode_saslname(attrs[0][1])
        client_nonce = attrs[1][1]
        try:
            _check_nonce(client_nonce)
        except ValueError:
            raise ScramError("invalid client nonce") from None
        if authzid and authzid != username:
            raise ScramError("authorization identity differs from user name")
        self._gs2_header = f"{flag},{authzid_attr},"
        self._client_first_bare = bare
        self._client_nonce = client_nonce
        return username

    def server_first(self, creds: ScramCredentials) -> bytes:
        """Build server-first-message: r=<nonce>,s=<salt>,i=<iterations>."""
        if self._gs2_header is None or self._server_first is not None:
            raise ScramError("server-first-message out of sequence")
        self._creds = creds
        salt = base64.b64encode(creds.salt).decode("ascii")
        nonce = self._client_nonce + self._server_nonce
        self._server_first = f"r={nonce},s={salt},i={creds.iterations}"
        return self._server_first.encode("ascii")

    def client_final(self, msg: bytes) -> bytes:
        """Check client-final-message; return server-final-message (v=...); ScramError on failure.

        RFC 5802 section 7:
            client-final-message-without-proof = channel-binding "," nonce ["," extensions]
            client-final-message = client-final-message-without-proof "," proof
        """
        if self._server_first is None or self._creds is None or self._gs2_header is None:
            raise ScramError("client-final-message out of sequence")
        if self._done:
            raise ScramError("exchange already finished")
        self._done = True
        text = _decode_message(msg, "client-final-message")
        without_proof, sep, proof_attr = text.rpartition(",")
        if not sep or not proof_attr.startswith("p="):
            raise ScramError("client-final-message needs p= last")
        attrs = _attributes(without_proof, "client-final-message")
        if len(attrs) < 2 or attrs[0][0] != "c" or attrs[1][0] != "r":
            raise ScramError("client-final-message needs c= and r=")
        # RFC 5802 section 5.1: c= is the base64 of the GS2 header (no cbind-data for "n"/"y").
        if _b64decode(attrs[0][1], "channel binding") != self._gs2_header.encode("utf-8"):
            raise ScramError("channel binding data does not match the GS2 header")
        if not hmac.compare_digest(
            attrs[1][1].encode("ascii", "replace"),
            (self._client_nonce + self._server_nonce).encode("ascii"),
        ):
            raise ScramError("nonce mismatch")
        proof = _b64decode(proof_attr[2:], "proof")
        if len(proof) != _KEY_SIZE:
            raise ScramError("invalid proof length")
        auth_message = ",".join((self._client_first_bare, self._server_first, without_proof))
        auth_bytes = auth_message.encode("utf-8")
        client_key = _xor(proof, _hmac(self._creds.stored_key, auth_bytes))
        if not hmac.compare_digest(_h(client_key), self._creds.stored_key):
            raise ScramError("invalid proof")
        signature = _hmac(self._creds.server_key, auth_bytes)
        return b"v=" + base64.b64encode(signature)


class ScramClient:
    """Client side of one SCRAM-SHA-256 exchange (for our SMTP/IMAP clients and tests)."""

    __slots__ = (
        "_username",
        "_password",
        "_client_nonce",
        "_client_first_bare",
        "_min_iterations",
        "_server_signature",
    )

    def __init__(
        self, username: str, password: str, nonce: str, *, min_iterations: int = DEFAULT_ITERATIONS
    ) -> None:
        _check_nonce(nonce)
        self._username = username
        self._password = password
        self._client_nonce = nonce
        self._client_first_bare = f"n={_encode_saslname(username)},r={nonce}"
        self._min_iterations = min_iterations
        self._server_signature: bytes | None = None

    def client_first(self) -> bytes:
        """client-first-message without channel binding and without authzid."""
        return ("n,," + self._client_first_bare).encode("utf-8")

    def server_first(self, msg: bytes) -> bytes:
        """Process server-first-message; return client-final-message with the proof."""
        text = _decode_message(msg, "server-first-message")
        attrs = _attributes(text, "server-first-message")
        if attrs and attrs[0][0] == "m":
            raise ScramError("mandatory extension 'm' is not supported")
        if len(attrs) < 3 or [a[0] for a in attrs[:3]] != ["r", "s", "i"]:
            raise ScramError("server-first-message needs r=, s= and i=")
        nonce, salt_b64, iter_text = (a[1] for a in attrs[:3])
        if not nonce.startswith(self._client_nonce) or len(nonce) == len(self._client_nonce):
            raise ScramError("server nonce does not extend the client nonce")
        salt = _b64decode(salt_b64, "salt")
        if not iter_text.isascii() or not iter_text.isdigit():
            raise ScramError("invalid iteration count")
        iterations = int(iter_text)
        if not self._min_iterations <= iterations <= MAX_ITERATIONS:
            raise ScramError("iteration count out of the accepted range")
        salted = _salted_password(self._password, salt, iterations, query=True)
        client_key, stored_key, server_key = _keys(salted)
        without_proof = f"c=biws,r={nonce}"
        auth_message = ",".join((self._client_first_bare, text, without_proof)).encode("utf-8")
        proof = _xor(client_key, _hmac(stored_key, auth_message))
        self._server_signature = _hmac(server_key, auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode("ascii")

    def server_final(self, msg: bytes) -> None:
        """Verify server-final-message (v=...); ScramError when the server is not authentic."""
        if self._server_signature is None:
            raise ScramError("server-final-message out of sequence")
        text = _decode_message(msg, "server-final-message")
        if text.startswith("e="):
            raise ScramError("server reported an error")
        if not text.startswith("v="):
            raise ScramError("malformed server-final-message")
        signature = _b64decode(text[2:], "server signature")
        if not hmac.compare_digest(signature, self._server_signature):
            raise ScramError("server signature mismatch")
