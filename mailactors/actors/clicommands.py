"""The report, queue and lookup commands of the command line.

Commands that only read (lookups, parsereport, evaluations, results, dry runs)
work on the files and DNS directly; commands that change a running server's data
(sendreports, queue kick/drop/hold) ask the server over its control socket.
Each `run_*` function returns the process exit code.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mailactors.actors.dkimsign import DkimSetupError, DkimSigner
from mailactors.actors.reports import dry_run_name, pending_reports
from mailactors.conf import Config, ConfigErrors, find_config_file, load_config
from mailactors.log import configure_logging
from mailactors.net.control import ControlCommandFailed, ServerNotRunning, control_request
from mailactors.net.https import PolicyFetchError, fetch_policy
from mailactors.net.resolver import DnsResolver
from mailactors.net.smtpclient import deliver
from mailactors.net.tlstrust import load_trust
from mailactors.protocol import dane, dmarc, dmarcrpt, mtasts, mxselect, tlsrpt
from mailactors.protocol.dns import DnsError
from mailactors.storage.db import reading
from mailactors.storage.dmarcdb import EvaluationStore
from mailactors.storage.files import write_file_atomic
from mailactors.storage.queue import QueueStore
from mailactors.storage.tlsrptdb import ResultStore

log = logging.getLogger("mailactors.cli")

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class CommandFailed(Exception):
    """Print the message and exit non-zero."""


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _print_json(value: Any, out: IO[str]) -> None:
    out.write(json.dumps(_jsonable(value), indent=2, default=str) + "\n")


def _config(option: str | None, *, required: bool = True) -> Config | None:
    try:
        path = find_config_file(option, os.environ, Path.cwd())
    except Exception:
        if required:
            raise
        return None
    if not path.exists() and not required:
        return None
    return load_config(path)


def _resolver(config: Config | None) -> DnsResolver:
    servers = config.static.dns.nameservers if config is not None else ()
    return DnsResolver(servers or None)


def run(command: str, action: str, args: Any, out: IO[str], err: IO[str]) -> int:
    """Run `mailactors <command> <action> ...`."""
    configure_logging("warn")
    handlers = {
        ("dmarc", "lookup"): _dmarc_lookup,
        ("dmarc", "parsereport"): _dmarc_parsereport,
        ("dmarc", "evaluations"): _dmarc_evaluations,
        ("dmarc", "sendreports"): _sendreports,
        ("tlsrpt", "lookup"): _tlsrpt_lookup,
        ("tlsrpt", "parsereport"): _tlsrpt_parsereport,
        ("tlsrpt", "results"): _tlsrpt_results,
        ("tlsrpt", "sendreports"): _sendreports,
        ("mtasts", "lookup"): _mtasts_lookup,
        ("dane", "dialmx"): _dane_dialmx,
        ("queue", "list"): _queue_control,
        ("queue", "kick"): _queue_control,
        ("queue", "hold"): _queue_control,
        ("queue", "drop"): _queue_control,
        ("queue", "dump"): _queue_dump,
    }
    handler = handlers.get((command, action))
    if handler is None:
        err.write(f"unknown command: {command} {action}\n")
        return EXIT_USAGE
    try:
        return handler(command, action, args, out)
    except (CommandFailed, ServerNotRunning, ControlCommandFailed, DkimSetupError) as exc:
        err.write(f"{command} {action}: {exc}\n")
        return EXIT_FAIL
    except ConfigErrors as exc:
        err.write(f"{exc}\n")
        return EXIT_FAIL
    except (DnsError, OSError) as exc:
        err.write(f"{command} {action}: {exc}\n")
        return EXIT_FAIL


# --- DMARC -----------------------------------------------------------------------------


def _dmarc_lookup(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config, required=False)
    found = dmarc.lookup(_resolver(config), args.domain)
    out.write(f"domain: {args.domain}\norganizational domain: {found.org_domain}\n")
    out.write(f"status: {found.status}\n")
    if found.record is None:
        out.write("no DMARC record\n")
        return EXIT_FAIL if found.status in ("temperror", "permerror") else EXIT_OK
    out.write(f"record at: _dmarc.{found.record_domain}\n")
    out.write(f"record: {dmarc.format_record(found.record)}\n")
    return EXIT_OK


def _parse_report_file(
    path: str, parse: Callable[[bytes], Any], find: Callable[[bytes], bytes | None], what: str
) -> Any:
    """A report file: the report itself (XML, JSON, compressed) or a message carrying it."""
    data = Path(path).read_bytes()
    try:
        return parse(data)
    except ValueError as first:
        attachment = find(data)
        if attachment is None:
            raise CommandFailed(f"not a {what}: {first}") from None
        try:
            return parse(attachment)
        except ValueError as exc:
            raise CommandFailed(f"invalid {what}: {exc}") from None


def _dmarc_parsereport(command: str, action: str, args: Any, out: IO[str]) -> int:
    feedback = _parse_report_file(
        args.file, dmarcrpt.parse_report, dmarcrpt.find_report, "DMARC aggregate report"
    )
    _print_json(feedback, out)
    return EXIT_OK


def _dmarc_evaluations(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config)
    assert config is not None
    with reading(EvaluationStore, config.static.data_dir / "dmarceval.db", log) as store:
        pending = store.pending() if store is not None else []
    if not pending:
        out.write("no evaluations\n")
    for p in pending:
        oldest = datetime.fromtimestamp(p.oldest, UTC).isoformat()
        newest = datetime.fromtimestamp(p.newest, UTC).isoformat()
        out.write(f"{p.policy_domain}: {p.evaluations} evaluations, {oldest} .. {newest}\n")
    return EXIT_OK


def _sendreports(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config)
    assert config is not None
    kind = "dmarc" if command == "dmarc" else "tls"
    if args.dry_run is None:
        result = control_request(config.static.data_dir, f"{command}.sendreports")
        reports = result.get("reports", [])
        if not reports:
            out.write("no reports due\n")
        for r in reports:
            state = "queued" if r["queued"] else "NOT queued (will retry)"
            to = ", ".join(r["recipients"]) or "nobody"
            out.write(f"{r['domain']} {r['begin']}: {state}, to {to}\n")
            for problem in r["problems"]:
                out.write(f"  {problem}\n")
        return EXIT_OK
    return _dry_run(config, kind, Path(args.dry_run), out)


def _dry_run(config: Config, kind: str, directory: Path, out: IO[str]) -> int:
    """Write every report that would be sent, the current period included; change nothing."""
    reports = pending_reports(
        config,
        kind,
        _resolver(config),
        DkimSigner(config.domains),
        now=datetime.now(UTC),
        include_current=True,
        log=log,
    )
    directory.mkdir(parents=True, exist_ok=True)
    if not reports:
        out.write("no reports would be sent\n")
    for report in reports:
        target = directory / dry_run_name(report)
        write_file_atomic(target, report.message)
        to = ", ".join(report.recipients + report.https) or "nobody (no valid destination)"
        out.write(f"{target}: {report.policy_domain}, to {to}\n")
        for problem in report.problems:
            out.write(f"  {problem}\n")
    return EXIT_OK


# --- TLS reports ---------------------------------------------------------------------


def _tlsrpt_lookup(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config, required=False)
    found = tlsrpt.lookup_record(_resolver(config), args.domain)
    out.write(f"record at: {tlsrpt.record_name(args.domain)}\n")
    if found.record is None:
        out.write(f"no TLSRPT record: {found.error or 'none published'}\n")
        for txt in found.txt:
            out.write(f"TXT: {txt}\n")
        return EXIT_FAIL
    out.write(f"record: {found.txt[0]}\n")
    for uri in found.record.rua:
        out.write(f"rua: {uri}\n")
    return EXIT_OK


def _tlsrpt_parsereport(command: str, action: str, args: Any, out: IO[str]) -> int:
    report = _parse_report_file(args.file, tlsrpt.parse_report, tlsrpt.find_report, "TLS report")
    _print_json(report, out)
    return EXIT_OK


def _tlsrpt_results(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config)
    assert config is not None
    with reading(ResultStore, config.static.data_dir / "tlsrptresult.db", log) as store:
        entries = store.pending() if store is not None else []
    if not entries:
        out.write("no results\n")
    for e in entries:
        r = e.result
        flags = []
        if e.is_host:
            flags.append("host")
        if not e.send_report:
            flags.append("not reported")
        extra = f" ({', '.join(flags)})" if flags else ""
        out.write(
            f"{e.day} {e.policy_domain} {r.policy.policy_type}: {r.successful} successful,"
            f" {r.failed} failed{extra}\n"
        )
        for d in r.failure_details:
            out.write(
                f"  {d.result_type} x{d.failed_session_count}"
                f" mx={d.receiving_mx_hostname or '-'} ip={d.receiving_ip or '-'}\n"
            )
    return EXIT_OK


# --- MTA-STS and DANE ----------------------------------------------------------------


def _mtasts_lookup(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config, required=False)
    resolver = _resolver(config)
    found = mtasts.lookup_record(resolver, args.domain)
    out.write(f"record at: {mtasts.record_name(args.domain)}\nstatus: {found.status.value}\n")
    if found.record is None:
        if found.detail:
            out.write(f"detail: {found.detail}\n")
        return EXIT_OK if found.status == mtasts.RecordStatus.NONE else EXIT_FAIL
    out.write(f"id: {found.record.id}\npolicy url: {mtasts.policy_url(args.domain)}\n")
    trust = load_trust(config.static.tls_ca_certs if config is not None else ())
    try:
        text = fetch_policy(args.domain, resolver=resolver, trust=trust)
        policy = mtasts.parse_policy(text)
    except PolicyFetchError as exc:
        raise CommandFailed(
            f"fetching the policy failed ({exc.result_type}): {exc.detail}"
        ) from None
    except mtasts.StsPolicyError as exc:
        raise CommandFailed(f"invalid policy: {exc}") from None
    out.write(f"mode: {policy.mode.value}\nmax_age: {policy.max_age}\n")
    for mx in policy.mx:
        out.write(f"mx: {mx}\n")
    return EXIT_OK


def _dane_dialmx(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config, required=False)
    resolver = _resolver(config)
    hostname = config.static.hostname if config is not None else "localhost"
    try:
        targets = mxselect.mx_targets(resolver, args.domain)
    except mxselect.MxError as exc:
        raise CommandFailed(f"MX lookup: {exc.reason}") from None
    out.write(
        f"MX of {args.domain} (DNSSEC {'authenticated' if targets.authenticated else 'insecure'}):\n"
    )
    for mx in targets.hosts:
        out.write(f"- {mx.host} (preference {mx.preference})\n")
        try:
            addresses = mxselect.host_addresses(resolver, mx.host)
        except mxselect.MxError as exc:
            out.write(f"  addresses: {exc.reason}\n")
            continue
        out.write(
            f"  addresses: {', '.join(str(a) for a in addresses.addresses)}"
            f" ({'authenticated' if addresses.authenticated else 'insecure'})\n"
        )
        lookup = dane.lookup_tlsa(resolver, mx.host)
        answer = lookup.answer
        if isinstance(answer, DnsError):
            out.write(f"  TLSA {dane.tlsa_name(lookup.base_domain)}: lookup failed: {answer}\n")
            records: Sequence[Any] = ()
        else:
            records = answer.records
            state = "authenticated" if answer.authenticated else "insecure"
            out.write(f"  TLSA {dane.tlsa_name(lookup.base_domain)} ({state}):\n")
            for r in records:
                out.write(f"    {r.usage} {r.selector} {r.mtype} {r.data.hex()}\n")
        mode = dane.dane_applicable(
            targets.authenticated,
            addresses.authenticated,
            None if not (targets.authenticated and addresses.authenticated) else answer,
        )
        out.write(f"  DANE: {mode.value}\n")
        if not addresses.addresses:
            continue
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ip = str(addresses.addresses[0])
        result = deliver(
            (ip, args.port),
            ehlo_name=hostname,
            transactions=(),
            tls_context=ctx,
            server_hostname=mx.host,
            connect_timeout=args.timeout,
        )
        if result.failure is not None:
            out.write(f"  dial {ip}: {result.failure.kind.value}: {result.failure.detail}\n")
            continue
        if result.tls is None:
            out.write(f"  dial {ip}: no STARTTLS\n")
            continue
        out.write(f"  dial {ip}: {result.tls.version} {result.tls.cipher}\n")
        if mode == dane.DaneMode.NONE or not records:
            continue
        verdict = dane.verify_dane(
            records,
            result.tls.peer_chain_der,
            host_names=lookup.host_names,
            now=datetime.now(UTC),
        )
        outcome = "verified" if verdict.ok else f"FAILED ({verdict.result_type})"
        out.write(f"  DANE verification: {outcome}: {verdict.detail}\n")
    return EXIT_OK


# --- queue -----------------------------------------------------------------------------


def _queue_control(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config)
    assert config is not None
    ids = getattr(args, "ids", None) or None
    if action in ("drop", "hold") and not ids:
        raise CommandFailed(f"{action} needs recipient ids (see queue list)")
    result = control_request(
        config.static.data_dir, f"queue.{action}", {"ids": [int(i) for i in ids] if ids else None}
    )
    if action != "list":
        out.write(f"{action}: {result} recipients\n")
        return EXIT_OK
    if not result:
        out.write("queue is empty\n")
    for m in result:
        queued = datetime.fromtimestamp(m["queued_at"] / 1000, UTC).isoformat(timespec="seconds")
        out.write(
            f"message {m['id']} ({m['kind']}, {m['size']} bytes) from <{m['sender']}> queued {queued}\n"
        )
        for r in m["recipients"]:
            nxt = datetime.fromtimestamp(r["next_attempt"] / 1000, UTC).isoformat(
                timespec="seconds"
            )
            held = " held" if r["held"] else ""
            out.write(
                f"  rcpt {r['id']}: {r['address']} attempts={r['attempts']} next={nxt}{held}\n"
            )
            if r["last_error"]:
                out.write(f"    last error: {r['last_error']}\n")
    return EXIT_OK


def _queue_dump(command: str, action: str, args: Any, out: IO[str]) -> int:
    config = _config(args.config)
    assert config is not None
    store = QueueStore(config.static.data_dir / "queue", log, readonly=True)
    store.init()
    try:
        message_id = int(args.ids[0]) if args.ids else -1
        if store.message(message_id) is None:
            raise CommandFailed(f"no queued message {message_id}")
        with store.open_message(message_id) as f:
            data = f.read()
    finally:
        store.close()
    out.write(data.decode("utf-8", "replace"))
    return EXIT_OK
