"""The outgoing-delivery commands against a running server and a test DNS server:
`tlsrpt lookup|parsereport|results|sendreports [--dry-run]`, `mtasts lookup`,
`dane dialmx DOMAIN --port P` and `queue list|hold|kick|drop|dump`, run as a user runs
them (`python -m mailactors -config ...`); `mtasts lookup`'s fetch of a policy from a
port other than 443 runs in this process."""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]
from test_outbound_e2e import (  # type: ignore[import-not-found]
    Outbound,
    outbound_server,
    wait_for,
    write_ca,
)
from unit.actors.test_delivery import (  # type: ignore[import-not-found]
    DAY,
    NOW,
    Behavior,
    Servers,
    make_cert,
    server_context,
)
from unit.actors.test_reporter import PolicyHttpsServer  # type: ignore[import-not-found]
from unit.protocol.test_pkix import Issued  # type: ignore[import-not-found]

import mailactors.actors.clicommands as clicommands
from mailactors.actors.localserve import ensure_localserve_files
from mailactors.net.https import fetch_policy
from mailactors.storage.tlsrptdb import ResultStore

log = logging.getLogger("mailactors.tests")
PKIX_IP, DANE_IP, DEAD_IP = "127.0.0.2", "127.0.0.5", "127.0.0.77"
TLSRPT_TXT = "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example,https://reports.example/tlsrpt"


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_cert("CLI Test CA", ca=True, not_before=NOW - 400 * DAY)


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailactors", "-config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "MAILACTORS_CONF"},
    )


def _pending(world: Outbound) -> list[str]:
    store = ResultStore(world.data_dir / "tlsrptresult.db", readonly=True)
    store.init()
    try:
        return [e.policy_domain for e in store.pending()]
    finally:
        store.close()


# --- tlsrpt and queue against a running server -------------------------------------------------


ZONE = f"""
pkix.example. MX 10 mx.pkix.example.
mx.pkix.example. A {PKIX_IP}
_smtp._tls.pkix.example. TXT "{TLSRPT_TXT}"
dead.example. MX 10 mx.dead.example.
mx.dead.example. A {DEAD_IP}
reports.example. MX 10 mx.pkix.example.
"""


def test_tlsrpt_and_queue_commands(tmp_path: Path, ca: Issued, servers: Servers) -> None:
    pkix = servers.start(
        PKIX_IP, Behavior(tls=server_context(tmp_path, make_cert("mx.pkix.example", issuer=ca)))
    )
    with outbound_server(
        tmp_path / "ls", ZONE, delivery_port=servers.port, ca=ca, tls_reports=True
    ) as world:
        conf = world.config.path
        # lookup, with the configured name servers.
        found = run(conf, "tlsrpt", "lookup", "pkix.example")
        assert found.returncode == 0, found.stderr
        assert found.stdout.splitlines() == [
            "record at: _smtp._tls.pkix.example",
            f"record: {TLSRPT_TXT}",
            "rua: mailto:tlsrpt@reports.example",
            "rua: https://reports.example/tlsrpt",
        ]
        missing = run(conf, "tlsrpt", "lookup", "dead.example")
        assert missing.returncode == 1
        assert (
            missing.stdout
            == "record at: _smtp._tls.dead.example\nno TLSRPT record: none published\n"
        )

        # A delivery today: its result is listed, not yet reported.
        world.submit(["a@pkix.example"], "one for pkix")
        wait_for(lambda: pkix.received, "the delivery")
        wait_for(lambda: _pending(world) == ["pkix.example"], "the TLS result")
        results = run(conf, "tlsrpt", "results")
        assert results.returncode == 0, results.stderr
        today = datetime.fromtimestamp(world.clock(), UTC).date()
        assert results.stdout == f"{today} pkix.example no-policy-found: 1 successful, 0 failed\n"

        # sendreports --dry-run: today's report as a file, nothing removed.
        preview = tmp_path / "preview"
        dry = run(conf, "tlsrpt", "sendreports", "--dry-run", str(preview))
        assert dry.returncode == 0, dry.stderr
        (eml,) = preview.glob("*.eml")
        assert eml.name.startswith("tls-report-pkix.example-")
        assert dry.stdout.splitlines()[0] == (
            f"{eml}: pkix.example, to tlsrpt@reports.example, https://reports.example/tlsrpt"
        )
        assert _pending(world) == ["pkix.example"]
        # parsereport reads our own report back; a broken file is refused.
        parsed = run(conf, "tlsrpt", "parsereport", str(eml))
        assert parsed.returncode == 0, parsed.stderr
        assert '"policy_domain": "pkix.example"' in parsed.stdout
        assert '"successful": 1' in parsed.stdout
        broken = tmp_path / "broken.json"
        broken.write_text('{"organization-name": "x", "policies": [')
        refused = run(conf, "tlsrpt", "parsereport", str(broken))
        assert refused.returncode == 1
        assert refused.stderr.startswith("tlsrpt parsereport: not a TLS report")

        # sendreports through the control socket: nothing is due on the same day ...
        none_due = run(conf, "tlsrpt", "sendreports")
        assert (none_due.returncode, none_due.stdout) == (0, "no reports due\n"), none_due.stderr
        # ... and the next day (the server's clock) the report is queued and sent.
        world.clock.offset += 86400
        sent = run(conf, "tlsrpt", "sendreports")
        assert sent.returncode == 0, sent.stderr
        begin = int(datetime.combine(today, datetime.min.time(), UTC).timestamp())
        assert sent.stdout.splitlines() == [
            f"pkix.example {begin}: queued, to tlsrpt@reports.example,"
            " https://reports.example/tlsrpt"
        ]
        wait_for(lambda: len(pkix.received) == 2, "the report at reports.example's MX")
        assert pkix.received[1].recipients == ["tlsrpt@reports.example"]
        assert b"TLS-Report-Domain: pkix.example" in pkix.received[1].data
        wait_for(lambda: "pkix.example" not in _pending(world), "the reported results removed")

        _queue_commands(world, conf)


def _queue_commands(world: Outbound, conf: Path) -> None:
    world.submit(["someone@dead.example"], "stuck")
    listed = wait_for(
        lambda: (
            (r := run(conf, "queue", "list")).returncode == 0
            and "attempts=1" in r.stdout
            and r.stdout
        ),
        "a failed attempt in queue list",
    )
    (message,) = world.queue()
    (rcpt,) = message["recipients"]
    mid, rid = message["id"], rcpt["id"]
    lines = listed.splitlines()
    assert lines[0].startswith(f"message {mid} (mail, ")
    assert "from <mailactors@localhost> queued " in lines[0]
    assert lines[1].startswith(f"  rcpt {rid}: someone@dead.example attempts=1 next=")
    assert lines[2] == (
        "    last error: 451 4.4.1 connection refused: [Errno 111] Connection refused"
    )

    dump = run(conf, "queue", "dump", str(mid))
    assert dump.returncode == 0, dump.stderr
    assert "Subject: stuck" in dump.stdout and "Hello." in dump.stdout
    assert run(conf, "queue", "dump", "999").stderr == "queue dump: no queued message 999\n"

    held = run(conf, "queue", "hold", str(rid))
    assert (held.returncode, held.stdout) == (0, "hold: 1 recipients\n"), held.stderr
    assert (
        f"  rcpt {rid}: someone@dead.example attempts=1 next=" in run(conf, "queue", "list").stdout
    )
    assert " held" in run(conf, "queue", "list").stdout
    # A held recipient is not tried, even when due.
    world.clock.offset += 3600
    world.tick_queue()
    time.sleep(0.3)
    assert world.queue()[0]["recipients"][0]["attempts"] == 1
    # kick releases it and tries at once.
    kicked = run(conf, "queue", "kick", str(rid))
    assert (kicked.returncode, kicked.stdout) == (0, "kick: 1 recipients\n"), kicked.stderr
    wait_for(lambda: world.queue()[0]["recipients"][0]["attempts"] == 2, "the kicked attempt")
    assert not world.queue()[0]["recipients"][0]["held"]
    no_ids = run(conf, "queue", "drop")
    assert no_ids.returncode == 1 and "drop needs recipient ids" in no_ids.stderr
    dropped = run(conf, "queue", "drop", str(rid))
    assert (dropped.returncode, dropped.stdout) == (0, "drop: 1 recipients\n"), dropped.stderr
    empty = run(conf, "queue", "list")
    assert (empty.returncode, empty.stdout) == (0, "queue is empty\n")
    # No DSN for a dropped recipient.
    assert not any(b"delivery-status" in d for _, d in world.mailbox("Inbox"))


def test_changing_commands_need_a_running_server(tmp_path: Path) -> None:
    conf = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
    data = conf.parent / "data"
    for command in (("queue", "list"), ("queue", "kick"), ("tlsrpt", "sendreports")):
        result = run(conf, *command)
        assert result.returncode == 1
        assert result.stderr == (
            f"{' '.join(command)}: no server is running on {data} (no control socket)\n"
        )


# --- mtasts and dane: lookups with the test DNS only ----------------------------------------------


def _tlsa(issued: Issued) -> str:
    spki = issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


def _lookup_config(directory: Path, nameserver: str, ca: Issued) -> Path:
    conf = ensure_localserve_files(directory, "127.0.0.1", log)
    write_ca(directory, ca)
    text = conf.read_text().replace("\ntls:\n", "\ntls:\n  ca_certs: [test-ca.pem]\n", 1)
    conf.write_text(text + f'dns:\n  nameservers: ["{nameserver}"]\n')
    return conf


STS_POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx.sts.example\r\nmax_age: 86400\r\n"
# Nothing listens on port 443 of this address.
DOWN_IP = "127.0.0.66"


def test_mtasts_lookup(tmp_path: Path, ca: Issued, monkeypatch: pytest.MonkeyPatch) -> None:
    https = PolicyHttpsServer(server_context(tmp_path, make_cert("mta-sts.sts.example", issuer=ca)))
    https.policies["mta-sts.sts.example"] = (200, STS_POLICY)
    zone = f"""
_mta-sts.sts.example. TXT "v=STSv1; id=20261124"
mta-sts.sts.example. A 127.0.0.1
_mta-sts.down.example. TXT "v=STSv1; id=1"
mta-sts.down.example. A {DOWN_IP}
none.example. MX 10 mx.none.example.
"""
    try:
        with DnsTestServer(zone) as dns:
            conf = _lookup_config(tmp_path / "ls", dns.nameserver, ca)
            # The policy over HTTPS, verified with the configured CA. Policy hosts listen
            # on 443 (RFC 8461 3.3); here the fetch is pointed at the test server's port.
            monkeypatch.setattr(
                clicommands, "fetch_policy", functools.partial(fetch_policy, port=https.port)
            )
            monkeypatch.setattr(clicommands, "configure_logging", lambda level: None)
            out, err = io.StringIO(), io.StringIO()
            args = argparse.Namespace(config=str(conf), domain="sts.example")
            assert clicommands.run("mtasts", "lookup", args, out, err) == 0, err.getvalue()
            assert out.getvalue().splitlines() == [
                "record at: _mta-sts.sts.example",
                "status: found",
                "id: 20261124",
                "policy url: https://mta-sts.sts.example/.well-known/mta-sts.txt",
                "mode: enforce",
                "max_age: 86400",
                "mx: mx.sts.example",
            ]
            assert https.gets == ["mta-sts.sts.example"]
            # A policy host whose certificate we do not trust.
            https.ctx = server_context(tmp_path, make_cert("mta-sts.sts.example"))
            out, err = io.StringIO(), io.StringIO()
            assert clicommands.run("mtasts", "lookup", args, out, err) == 1
            assert err.getvalue().startswith(
                "mtasts lookup: fetching the policy failed (sts-webpki-invalid): "
            )

            # As a process (port 443): the record, then a clear failure to fetch.
            down = run(conf, "mtasts", "lookup", "down.example")
            assert down.returncode == 1
            assert down.stdout.splitlines() == [
                "record at: _mta-sts.down.example",
                "status: found",
                "id: 1",
                "policy url: https://mta-sts.down.example/.well-known/mta-sts.txt",
            ]
            assert down.stderr.startswith(
                f"mtasts lookup: fetching the policy failed (sts-policy-fetch-error): {DOWN_IP}: "
            )
            assert "refused" in down.stderr
            # No record: no MTA-STS, not an error.
            none = run(conf, "mtasts", "lookup", "none.example")
            assert none.returncode == 0, none.stderr
            assert none.stdout.splitlines()[:2] == [
                "record at: _mta-sts.none.example",
                "status: none",
            ]
    finally:
        https.close()


def test_dane_dialmx(tmp_path: Path, ca: Issued, servers: Servers) -> None:
    leaf = make_cert("mx.good.example")  # self-signed: DANE-EE does not need a CA
    servers.start(DANE_IP, Behavior(tls=server_context(tmp_path, leaf)))
    zone = f"""
good.example. MX 10 mx.good.example.
mx.good.example. A {DANE_IP}
_25._tcp.mx.good.example. TLSA {_tlsa(leaf)}
bad.example. MX 10 mx.bad.example.
mx.bad.example. A {DANE_IP}
_25._tcp.mx.bad.example. TLSA {_tlsa(make_cert("someone else"))}
insecure.example. MX 10 mx.insecure.example.
mx.insecure.example. A {DANE_IP}
"""
    with DnsTestServer(zone, authenticated={"good.example", "bad.example"}) as dns:
        conf = _lookup_config(tmp_path / "ls", dns.nameserver, ca)
        port = ("--port", str(servers.port), "--timeout", "5")
        good = run(conf, "dane", "dialmx", "good.example", *port)
        assert good.returncode == 0, good.stderr
        lines = good.stdout.splitlines()
        assert lines[:3] == [
            "MX of good.example (DNSSEC authenticated):",
            "- mx.good.example (preference 10)",
            f"  addresses: {DANE_IP} (authenticated)",
        ]
        assert lines[3] == "  TLSA _25._tcp.mx.good.example (authenticated):"
        assert lines[4] == "    " + _tlsa(leaf)
        assert lines[5] == "  DANE: required"
        assert lines[6].startswith(f"  dial {DANE_IP}: TLSv1.")
        assert lines[7].startswith("  DANE verification: verified")

        bad = run(conf, "dane", "dialmx", "bad.example", *port)
        assert bad.returncode == 0, bad.stderr
        assert "  DANE: required" in bad.stdout.splitlines()
        assert "  DANE verification: FAILED (" in bad.stdout

        insecure = run(conf, "dane", "dialmx", "insecure.example", *port)
        assert insecure.returncode == 0, insecure.stderr
        assert "MX of insecure.example (DNSSEC insecure):" in insecure.stdout
        assert "  DANE: none" in insecure.stdout.splitlines()
        assert "DANE verification" not in insecure.stdout
