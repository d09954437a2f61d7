"""mailactors: a self-hosted mail server built as supervised actors."""

__version__ = "0.1.0"
