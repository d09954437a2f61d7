"""MIME messages for IMAP: parse once, then serve ENVELOPE, BODYSTRUCTURE, sections, search.

The implementation lives in `mailactors.protocol.mime`; this module is its public face.

    part = parse_message(data)
    format_envelope(envelope(part))          # FETCH ENVELOPE
    bodystructure(part, extensible=True)     # FETCH BODYSTRUCTURE (False: BODY)
    section(data, part, "1.2.HEADER")        # FETCH BODY[1.2.HEADER]
    binary_section(data, part, "2")          # FETCH BINARY[2]
    Summary.from_bytes(summarize(data))      # cached per message by the store
"""

from __future__ import annotations

from mailactors.protocol.mime.address import Address, parse_address_list
from mailactors.protocol.mime.bodystructure import bodystructure
from mailactors.protocol.mime.encoding import (
    UnknownTransferEncoding,
    decode_encoded_words,
    decode_transfer_encoding,
)
from mailactors.protocol.mime.envelope import Envelope, envelope, format_envelope
from mailactors.protocol.mime.headers import HeaderField, decode_params
from mailactors.protocol.mime.search import header_values, sent_date, text_contains
from mailactors.protocol.mime.section import (
    SectionLike,
    SectionNode,
    SectionSpec,
    binary_section,
    parse_section_spec,
    resolve_part,
    section,
)
from mailactors.protocol.mime.summary import Outline, Summary, SummaryError, summarize
from mailactors.protocol.mime.tree import MAX_BODY_PARTS, MAX_NESTING_DEPTH, Part, parse_message

__all__ = [
    "MAX_BODY_PARTS",
    "MAX_NESTING_DEPTH",
    "Address",
    "Envelope",
    "HeaderField",
    "Outline",
    "Part",
    "SectionLike",
    "SectionNode",
    "SectionSpec",
    "Summary",
    "SummaryError",
    "UnknownTransferEncoding",
    "binary_section",
    "bodystructure",
    "decode_encoded_words",
    "decode_params",
    "decode_transfer_encoding",
    "envelope",
    "format_envelope",
    "header_values",
    "parse_address_list",
    "parse_message",
    "parse_section_spec",
    "resolve_part",
    "section",
    "sent_date",
    "summarize",
    "text_contains",
]
