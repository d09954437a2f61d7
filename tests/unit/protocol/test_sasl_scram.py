"""SCRAM-SHA-256 (RFC 5802, RFC 7677) and SASLprep (RFC 4013)."""

from __future__ import annotations

import base64

import pytest

from mailactors.protocol.sasl.errors import SaslError, ScramError
from mailactors.protocol.sasl.saslprep import saslprep
from mailactors.protocol.sasl.scram import (
    ScramClient,
    ScramCredentials,
    ScramServer,
    derive_credentials,
    new_nonce,
    verify_password,
)

# RFC 7677 section 3, the example exchange (user "user", password "pencil").
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
PENCIL = derive_credentials("pencil", SALT, 4096)


def rfc_server() -> ScramServer:
    server = ScramServer(SERVER_NONCE)
    assert server.client_first(CLIENT_FIRST) == "user"
    assert server.server_first(PENCIL) == SERVER_FIRST
    return server


def test_rfc7677_server_side() -> None:
    assert rfc_server().client_final(CLIENT_FINAL) == SERVER_FINAL


def test_rfc7677_client_side() -> None:
    client = ScramClient("user", "pencil", "rOprNGfwEbeRWgbNEkqO")
    assert client.client_first() == CLIENT_FIRST
    assert client.server_first(SERVER_FIRST) == CLIENT_FINAL
    client.server_final(SERVER_FINAL)
    with pytest.raises(ScramError, match="signature mismatch"):
        client.server_final(b"v=" + base64.b64encode(b"\x00" * 32))
    with pytest.raises(ScramError):
        client.server_final(b"e=invalid-proof")


def test_verify_password() -> None:
    assert verify_password(PENCIL, "pencil")
    assert not verify_password(PENCIL, "Pencil")
    assert not verify_password(PENCIL, "pencil\x07")  # prohibited by SASLprep: simply wrong
    # SASLprep: U+00AD (soft hyphen) maps to nothing, U+2168 ROMAN NUMERAL NINE -> "IX".
    creds = derive_credentials("IX", b"salt", 4096)
    assert verify_password(creds, "I\u00adX")
    assert verify_password(creds, "\u2168")


def test_wrong_proof_and_tampering() -> None:
    proof_changed = CLIENT_FINAL[:-5] + b"AAAA="
    with pytest.raises(ScramError, match="invalid proof"):
        rfc_server().client_final(proof_changed)
    with pytest.raises(ScramError, match="nonce mismatch"):
        rfc_server().client_final(CLIENT_FINAL.replace(b"k0,p=", b"k1,p="))
    with pytest.raises(ScramError, match="channel binding"):
        rfc_server().client_final(CLIENT_FINAL.replace(b"c=biws", b"c=eSws"))
    server = rfc_server()
    server.client_final(CLIENT_FINAL)
    with pytest.raises(ScramError, match="already finished"):
        server.client_final(CLIENT_FINAL)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (b"p=tls-unique,,n=user,r=abc", "channel binding is not supported"),
        (b"n,,m=ext,n=user,r=abc", "mandatory extension"),
        (b"n,,n=user", "needs n= and r="),
        (b"x,,n=user,r=abc", "gs2-cbind-flag"),
        (b"n,a=other,n=user,r=abc", "authorization identity differs"),
        (b"n,,n=us=3Xer,r=abc", "escape"),
        (b"n,,n=user,r=a,b", "malformed attribute"),
        (b"n,,n=user,r=", "invalid client nonce"),
        (b"\xff", "UTF-8"),
    ],
)
def test_bad_client_first(message: bytes, error: str) -> None:
    with pytest.raises(ScramError, match=error):
        ScramServer("nonce").client_first(message)


def test_saslname_escapes_and_authzid() -> None:
    server = ScramServer("sn")
    assert server.client_first(b"y,a=a=3Db=2Cc,n=a=3Db=2Cc,r=cn") == "a=b,c"
    client = ScramClient("a=b,c", "pw", "cn")
    assert client.client_first() == b"n,,n=a=3Db=2Cc,r=cn"


def test_sequence_errors() -> None:
    server = ScramServer("sn")
    with pytest.raises(ScramError):
        server.server_first(PENCIL)
    with pytest.raises(ScramError):
        server.client_final(CLIENT_FINAL)
    with pytest.raises(ValueError):
        ScramServer("bad,nonce")
    with pytest.raises(ScramError):
        ScramClient("u", "p", "cn").server_final(SERVER_FINAL)


def test_client_rejects_bad_server_first() -> None:
    client = ScramClient("user", "pencil", "rOprNGfwEbeRWgbNEkqO")
    with pytest.raises(ScramError, match="extend"):
        client.server_first(b"r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    with pytest.raises(ScramError, match="iteration"):
        client.server_first(b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1")
    with pytest.raises(ScramError, match="needs r=, s= and i="):
        client.server_first(b"s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOx,i=4096")


def test_round_trip_with_random_nonces() -> None:
    creds = derive_credentials("correct horse", b"pepper", 4096)
    server = ScramServer(new_nonce())
    client = ScramClient("mjl", "correct horse", new_nonce())
    assert server.client_first(client.client_first()) == "mjl"
    final = client.server_first(server.server_first(creds))
    client.server_final(server.client_final(final))


def test_credentials_repr_hides_keys() -> None:
    text = repr(PENCIL)
    assert PENCIL.stored_key.hex() not in text and repr(PENCIL.server_key) not in text
    assert isinstance(PENCIL, ScramCredentials)


def test_derive_credentials_validation() -> None:
    with pytest.raises(ValueError):
        derive_credentials("pw", b"", 4096)
    with pytest.raises(ValueError):
        derive_credentials("pw", b"salt", 0)
    with pytest.raises(SaslError):
        derive_credentials("bell\x07", b"salt", 4096)


@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        # RFC 4013 section 3 examples.
        ("I\u00adX", "IX"),
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("a\u00a0b", "a b"),  # non-ASCII space maps to SPACE
    ],
)
def test_saslprep_rfc4013_examples(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize(
    "text",
    [
        "\u0007",  # RFC 4013 section 3: prohibited character
        "\u0627\u0031",  # RFC 4013 section 3: bidi check fails
        "\u0627a\u0627",  # RandALCat mixed with LCat
        "\ue000",  # private use
    ],
)
def test_saslprep_errors(text: str) -> None:
    with pytest.raises(SaslError):
        saslprep(text)


def test_saslprep_unassigned() -> None:
    unassigned = "\U000e0002"  # unassigned in Unicode 3.2 (RFC 3454 table A.1)
    with pytest.raises(SaslError):
        saslprep("a" + unassigned)
    assert saslprep("a" + unassigned, allow_unassigned=True) == "a" + unassigned
