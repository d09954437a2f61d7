"""DKIM verification with key records from a real DNS server on 127.0.0.1 (DnsResolver)."""

from __future__ import annotations

from support.dnsserver import DnsTestServer

from mailactors.net.resolver import DnsResolver
from mailactors.protocol.dkim import (
    DkimKey,
    DkimStatus,
    dns_txt_record,
    generate_private_key,
    load_private_key,
    sign,
    verify,
)

NOW = 1_790_000_000
RSA_KEY = load_private_key(generate_private_key("rsa"))  # 2048 bits: a record over 255 bytes
ED_KEY = load_private_key(generate_private_key("ed25519"))

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: over the wire\r\n"
    b"\r\n"
    b"Hello Bob.\r\n"
)

# RFC 8463 appendix A.2, as zone-file text.
RFC8463_ZONE = """
$ORIGIN football.example.com.
brisbane._domainkey IN TXT ("v=DKIM1; k=ed25519; "
    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
test._domainkey IN TXT ("v=DKIM1; k=rsa; "
    "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB")
"""

RFC8463_MESSAGE = (
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    b" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    b" date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    b" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    b" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)


def signed(selector: str, key: DkimKey, message: bytes = MESSAGE) -> bytes:
    field = sign(message, domain="example.org", selector=selector, key=key, now=NOW)
    return field + message


def test_keys_published_in_dns() -> None:
    with DnsTestServer() as dns:
        # The 2048-bit RSA record is longer than one character-string: add() splits it.
        rsa_record = dns_txt_record(RSA_KEY)
        assert len(rsa_record) > 255
        dns.add("rsa._domainkey.example.org", "TXT", rsa_record)
        dns.add("ed._domainkey.example.org", "TXT", dns_txt_record(ED_KEY))
        dns.add("revoked._domainkey.example.org", "TXT", "v=DKIM1; k=ed25519; p=")
        resolver = DnsResolver([dns.nameserver])

        once = signed("ed", ED_KEY)
        twice = sign(once, domain="example.org", selector="rsa", key=RSA_KEY, now=NOW) + once
        results = verify(twice, resolver, now=NOW)
        assert [(r.selector, r.status) for r in results] == [
            ("rsa", DkimStatus.PASS),
            ("ed", DkimStatus.PASS),
        ]
        tampered = signed("rsa", RSA_KEY).replace(b"Hello", b"Goodbye")
        [result] = verify(tampered, resolver, now=NOW)
        assert (
            result.status is DkimStatus.FAIL
            and result.problem is not None
            and "bh=" in result.problem
        )
        [result] = verify(signed("revoked", ED_KEY), resolver, now=NOW)
        assert result.status is DkimStatus.FAIL
        [result] = verify(signed("missing", ED_KEY), resolver, now=NOW)
        assert result.status is DkimStatus.PERMERROR
        assert ("missing._domainkey.example.org", "TXT", "udp") in dns.queries


def test_dns_failures_are_temperror() -> None:
    with DnsTestServer(
        servfail={"broken._domainkey.example.org"}, drop={"silent._domainkey.example.org"}
    ) as dns:
        resolver = DnsResolver([dns.nameserver], timeout=0.2, lifetime=0.5)
        [result] = verify(signed("broken", ED_KEY), resolver, now=NOW)
        assert result.status is DkimStatus.TEMPERROR
        [result] = verify(signed("silent", ED_KEY), resolver, now=NOW)
        assert result.status is DkimStatus.TEMPERROR


def test_rfc8463_example_over_dns() -> None:
    with DnsTestServer(RFC8463_ZONE) as dns:
        results = verify(RFC8463_MESSAGE, DnsResolver([dns.nameserver]), now=NOW)
        assert [r.status for r in results] == [DkimStatus.PASS, DkimStatus.PASS]
