"""TLS contexts for listeners, from the configured key/certificate files."""

from __future__ import annotations

import ssl
from pathlib import Path


def server_tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, the certificate chain and key loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    # Session tickets would make sessions resumable; a mail server gains little.
    ctx.options |= ssl.OP_NO_TICKET
    return ctx
