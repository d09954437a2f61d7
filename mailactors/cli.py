"""The command line: parse arguments, then call one function. No logic here.

Every command finds its configuration the same way: the global -config option, else
the MAILACTORS_CONF environment variable, else ./mailactors.conf.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mailactors",
        description="mailactors: a self-hosted mail server built as supervised actors",
    )
    p.add_argument(
        "-config",
        "--config",
        dest="config",
        metavar="FILE",
        help="mailactors.conf to use (default: $MAILACTORS_CONF, else ./mailactors.conf)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ls = sub.add_parser(
        "localserve",
        help="run a local mail server for development and testing (any password accepted)",
    )
    ls.add_argument(
        "-dir", "--dir", dest="dir", metavar="D",
        help="directory for config, certificate and data (default: the user config dir)",
    )
    ls.add_argument(
        "-ip", "--ip", dest="ip", metavar="IP",
        help="IP address to listen on (written into the config on first run)",
    )

    bk = sub.add_parser(
        "backup",
        help="consistent copy of every database and message file of the configured data "
        "directory, also while the server runs",
    )
    bk.add_argument("destdir", metavar="DESTDIR", help="new or empty directory for the backup")

    vd = sub.add_parser(
        "verifydata",
        help="check a data directory (e.g. a backup before restoring it); changes nothing",
    )
    vd.add_argument("datadir", metavar="DATADIR", help="data directory to check")

    sub.add_parser(
        "setadminpassword",
        help="set the password of the admin web pages (asked twice, or one line from a pipe)",
    )

    gt = sub.add_parser("gentestdata", help="write a deterministic data directory for tests")
    gt.add_argument("dir", metavar="DIR", help="new or empty directory to write")

    _report_commands(sub)

    cfg = sub.add_parser("config", help="configuration commands")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    cfg_sub.required = True
    test = cfg_sub.add_parser("test", help="check a configuration, print every error")
    test.add_argument("file", nargs="?", metavar="FILE", help="mailactors.conf to check")
    dr = cfg_sub.add_parser("dnsrecords", help="print the DNS records of a domain as a zone file")
    dr.add_argument("domain", metavar="DOMAIN")
    dc = cfg_sub.add_parser(
        "dnscheck", help="look up a domain's DNS records: ok / missing / wrong per record"
    )
    dc.add_argument("domain", metavar="DOMAIN")

    qs = sub.add_parser(
        "quickstart",
        help="write a configuration for a new mail server with one account, print its DNS records",
    )
    qs.add_argument("address", metavar="ADDRESS", help="the first account's address, e.g. you@example.com")
    qs.add_argument(
        "-hostname", "--hostname", dest="hostname", metavar="HOST",
        help="host name of the mail server (default: mail.<domain>)",
    )
    qs.add_argument(
        "-dir", "--dir", dest="dir", metavar="D", default=".",
        help="directory for the config files, keys and data (default: the current directory)",
    )

    sm = sub.add_parser(
        "sendmail",
        help="submit a message from stdin through the submission listener (a /usr/sbin/sendmail)",
    )
    sm.add_argument("-t", dest="extract", action="store_true", help="recipients from To/Cc/Bcc")
    sm.add_argument("-f", dest="sender", metavar="FROM", help="envelope sender")
    sm.add_argument("-i", dest="ignore_dots", action="store_true", help="accepted and ignored")
    sm.add_argument("-o", dest="options", action="append", metavar="OPT", help="ignored (-oi)")
    sm.add_argument(
        "-sendmail-config", "--sendmail-config", dest="sendmail_config", metavar="FILE",
        help="sendmail.conf (default: $MAILACTORS_SENDMAIL_CONF, else the user config dir)",
    )
    sm.add_argument("recipients", nargs="*", metavar="RCPT")
    return p


def _report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """dmarc, tlsrpt, mtasts, dane and queue commands (see actors/clicommands.py)."""
    dm = sub.add_parser("dmarc", help="DMARC: lookups, received and outgoing aggregate reports")
    dm_sub = dm.add_subparsers(dest="action", metavar="ACTION")
    dm_sub.required = True
    dm_sub.add_parser("lookup", help="show the DMARC record of a domain").add_argument(
        "domain", metavar="DOMAIN"
    )
    dm_sub.add_parser(
        "parsereport", help="parse an aggregate report (XML, .gz, .zip or a report message)"
    ).add_argument("file", metavar="FILE")
    dm_sub.add_parser("evaluations", help="evaluations waiting to be reported")
    send = dm_sub.add_parser(
        "sendreports", help="send the aggregate reports of the hours that have ended, now"
    )
    send.add_argument(
        "--dry-run", "-dry-run", dest="dry_run", metavar="DIR",
        help="write every report that would be sent (the current hour too) as .eml files "
        "into DIR; change nothing",
    )

    tr = sub.add_parser("tlsrpt", help="TLS reporting: lookups, received and outgoing reports")
    tr_sub = tr.add_subparsers(dest="action", metavar="ACTION")
    tr_sub.required = True
    tr_sub.add_parser("lookup", help="show the TLSRPT record of a domain").add_argument(
        "domain", metavar="DOMAIN"
    )
    tr_sub.add_parser(
        "parsereport", help="parse a TLS report (JSON, .gz or a report message)"
    ).add_argument("file", metavar="FILE")
    tr_sub.add_parser("results", help="TLS results collected, not yet reported")
    send = tr_sub.add_parser(
        "sendreports", help="send the TLS reports of the days that have ended, now"
    )
    send.add_argument(
        "--dry-run", "-dry-run", dest="dry_run", metavar="DIR",
        help="write every report that would be sent (today too) as .eml files into DIR; "
        "change nothing",
    )

    ms = sub.add_parser("mtasts", help="MTA-STS lookups")
    ms_sub = ms.add_subparsers(dest="action", metavar="ACTION")
    ms_sub.required = True
    ms_sub.add_parser(
        "lookup", help="look up and fetch the MTA-STS policy of a domain"
    ).add_argument("domain", metavar="DOMAIN")

    da = sub.add_parser("dane", help="DANE checks")
    da_sub = da.add_subparsers(dest="action", metavar="ACTION")
    da_sub.required = True
    dial = da_sub.add_parser(
        "dialmx", help="show the MX hosts of a domain, their TLSA records, and verify them"
    )
    dial.add_argument("domain", metavar="DOMAIN")
    dial.add_argument("--port", type=int, default=25, help="SMTP port (default 25)")
    dial.add_argument("--timeout", type=float, default=30.0, help="connect timeout in seconds")

    qu = sub.add_parser("queue", help="the outgoing queue of the running server")
    qu_sub = qu.add_subparsers(dest="action", metavar="ACTION")
    qu_sub.required = True
    qu_sub.add_parser("list", help="list queued messages and their recipients")
    for action, text in (
        ("kick", "retry recipients now (all when no id is given)"),
        ("hold", "keep recipients from being retried until kicked"),
        ("drop", "remove recipients without delivering or notifying"),
    ):
        qu_sub.add_parser(action, help=text).add_argument(
            "ids", nargs="*", type=int, metavar="RCPT-ID"
        )
    qu_sub.add_parser("dump", help="print a queued message").add_argument(
        "ids", nargs=1, type=int, metavar="MESSAGE-ID"
    )


def _install_stop_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    if hasattr(signal, "SIGUSR1"):
        import pykka.debug

        signal.signal(signal.SIGUSR1, pykka.debug.log_thread_tracebacks)


def _config_path(args: argparse.Namespace) -> Path:
    """-config, else $MAILACTORS_CONF, else ./mailactors.conf."""
    from mailactors.conf import find_config_file

    return find_config_file(args.config, os.environ, Path.cwd())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "localserve":
        from mailactors.actors.localserve import run_localserve

        stop = threading.Event()
        _install_stop_signals(stop)
        directory = Path(args.dir) if args.dir else None
        if directory is None and args.config:
            directory = Path(args.config).parent
        return run_localserve(directory, args.ip, stop)
    if args.command == "backup":
        from mailactors.storage.backup import run_backup

        return run_backup(_config_path(args), Path(args.destdir), sys.stdout, sys.stderr)
    if args.command == "verifydata":
        from mailactors.storage.verify import run_verifydata

        return run_verifydata(Path(args.datadir), sys.stdout, sys.stderr)
    if args.command == "gentestdata":
        from mailactors.storage.gentestdata import run_gentestdata

        return run_gentestdata(Path(args.dir), sys.stdout, sys.stderr)
    if args.command in ("dmarc", "tlsrpt", "mtasts", "dane", "queue"):
        from mailactors.actors.clicommands import run

        return run(args.command, args.action, args, sys.stdout, sys.stderr)
    if args.command == "config" and args.config_command == "test":
        from mailactors.conf.check import run_config_test

        path = Path(args.file) if args.file else _config_path(args)
        return run_config_test(path, sys.stdout, sys.stderr)
    if args.command == "config" and args.config_command in ("dnsrecords", "dnscheck"):
        path = _config_path(args)
        if args.config_command == "dnsrecords":
            from mailactors.conf.dnsrecords import run_dnsrecords

            return run_dnsrecords(path, args.domain, sys.stdout, sys.stderr)
        from mailactors.actors.dnscheck import run_dnscheck

        return run_dnscheck(path, args.domain, sys.stdout, sys.stderr)
    if args.command == "quickstart":
        from mailactors.actors.quickstart import run_quickstart

        return run_quickstart(args.address, Path(args.dir), args.hostname, sys.stdout, sys.stderr)
    if args.command == "sendmail":
        from datetime import UTC, datetime

        from mailactors.net.sendmail import run_sendmail

        return run_sendmail(
            args.recipients,
            extract_recipients=args.extract,
            sender=args.sender,
            config_path=Path(args.sendmail_config) if args.sendmail_config else None,
            stdin=sys.stdin.buffer,
            stderr=sys.stderr,
            environ=os.environ,
            now=datetime.now(UTC).astimezone(),
        )
    if args.command == "setadminpassword":
        from mailactors.web.setpassword import run_setadminpassword

        return run_setadminpassword(_config_path(args), sys.stdin, sys.stdout, sys.stderr)
    raise AssertionError(f"unhandled command {args.command}")


def entry() -> None:
    sys.exit(main())
