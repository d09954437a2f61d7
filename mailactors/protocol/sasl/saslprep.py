"""SASLprep (RFC 4013): the stringprep (RFC 3454) profile for user names and passwords."""

from __future__ import annotations

import stringprep
import unicodedata

from mailactors.protocol.sasl.errors import SaslError

# RFC 4013 section 2.3: prohibited output.
_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII space characters
    stringprep.in_table_c21,  # ASCII control characters
    stringprep.in_table_c22,  # non-ASCII control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogate codes
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties or deprecated
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """Prepare `text` per RFC 4013; raise SaslError (without the text) when it is prohibited.

    RFC 4013 section 2.5: stored strings must not contain unassigned code points, queries
    may (RFC 3454 section 7). Pass allow_unassigned=True for queries.
    """
    # RFC 4013 section 2.1: non-ASCII space (C.1.2) maps to SPACE, B.1 maps to nothing.
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    # RFC 4013 section 2.2: Unicode normalization form KC.
    prepared = unicodedata.normalize("NFKC", mapped)
    for c in prepared:
        if any(check(c) for check in _PROHIBITED):
            raise SaslError("string contains a character prohibited by SASLprep (RFC 4013 2.3)")
        if not allow_unassigned and stringprep.in_table_a1(c):
            raise SaslError("string contains an unassigned code point (RFC 4013 2.5)")
    # RFC 4013 section 2.4 / RFC 3454 section 6: bidirectional characters.
    if any(stringprep.in_table_d1(c) for c in prepared):
        if any(stringprep.in_table_d2(c) for c in prepared):
            raise SaslError("string mixes right-to-left and left-to-right characters (RFC 3454 6)")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise SaslError("right-to-left string must start and end with RandALCat (RFC 3454 6)")
    return prepared
