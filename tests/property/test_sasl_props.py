"""Property tests: SASL parsers and the SCRAM server take any input without crashing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.sasl.errors import SaslError, ScramError
from mailactors.protocol.sasl.plain import make_plain, parse_plain
from mailactors.protocol.sasl.saslprep import saslprep
from mailactors.protocol.sasl.scram import ScramClient, ScramServer, derive_credentials

CREDS = derive_credentials("pencil", b"salt", 4096)
NONCE_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(st.binary(max_size=600))
def test_parse_plain_any_bytes(data: bytes) -> None:
    try:
        authzid, authcid, password = parse_plain(data)
    except SaslError:
        return
    assert make_plain(authcid, password, authzid) == data


@given(st.text(max_size=20), st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_plain_roundtrip(authzid: str, authcid: str, password: str) -> None:
    if "\x00" in authzid + authcid + password:
        return
    assert parse_plain(make_plain(authcid, password, authzid)) == (authzid, authcid, password)


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_scram_server_any_messages(first: bytes, final: bytes) -> None:
    server = ScramServer("servernonce")
    try:
        server.client_first(first)
    except ScramError:
        return
    server.server_first(CREDS)
    try:
        server.client_final(final)
    except ScramError:
        return
    raise AssertionError("a random client-final-message must not pass the proof check")


@settings(max_examples=30, deadline=None)
@given(
    username=st.text(min_size=1, max_size=20).filter(lambda u: u.isprintable()),
    nonce=NONCE_TEXT.filter(lambda n: "," not in n),
)
def test_scram_roundtrip_any_username(username: str, nonce: str) -> None:
    server = ScramServer("sn")
    client = ScramClient(username, "pencil", nonce)
    assert server.client_first(client.client_first()) == username
    client.server_final(server.client_final(client.server_first(server.server_first(CREDS))))


@given(st.text(max_size=30))
def test_saslprep_total(text: str) -> None:
    try:
        prepared = saslprep(text, allow_unassigned=True)
    except SaslError:
        return
    # Preparation is idempotent on its own output.
    assert saslprep(prepared, allow_unassigned=True) == prepared
