"""Errors of the SASL mechanisms (RFC 4422)."""

from __future__ import annotations


class SaslError(ValueError):
    """The client's SASL message is malformed or the exchange failed.

    Messages never contain the client's payload or password.
    """


class ScramError(SaslError):
    """A SCRAM (RFC 5802) exchange failed: malformed message or bad proof."""
