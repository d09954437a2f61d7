"""MIME message parsing for IMAP: part tree with byte offsets, ENVELOPE, BODYSTRUCTURE, sections.

The public entry points are re-exported by `mailactors.protocol.message`.
"""
