"""The BODY and BODYSTRUCTURE fetch items (RFC 3501 7.4.2 and 9, RFC 9051 7.5.2)."""

from __future__ import annotations

from mailactors.protocol.mime.envelope import envelope, format_envelope
from mailactors.protocol.mime.headers import Params
from mailactors.protocol.mime.imapstring import NIL, imap_string, imap_text
from mailactors.protocol.mime.tree import Part

__all__ = ["bodystructure"]

# A multipart with no body parts cannot be written (RFC 3501 9: body-type-mpart =
# 1*body SP media-subtype); like other servers we show one empty text/plain part.
_EMPTY_TEXT_PART = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_TEXT_PART_EXT = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
_EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def _params(params: Params) -> bytes:
    # body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
    if not params:
        return NIL
    return (
        b"(" + b" ".join(imap_text(name) + b" " + imap_text(value) for name, value in params) + b")"
    )


def _disposition(part: Part) -> bytes:
    # body-fld-dsp = "(" string SP body-fld-param ")" / nil
    if part.disposition is None:
        return NIL
    kind, params = part.disposition
    return b"(" + imap_text(kind) + b" " + _params(params) + b")"


def _language(part: Part) -> bytes:
    # body-fld-lang = nstring / "(" string *(SP string) ")"
    if not part.language:
        return NIL
    if len(part.language) == 1:
        return imap_text(part.language[0])
    return b"(" + b" ".join(imap_text(tag) for tag in part.language) + b")"


def _extension_tail(part: Part) -> bytes:
    # body-fld-dsp SP body-fld-lang SP body-fld-loc, shared by both extension forms.
    return _disposition(part) + b" " + _language(part) + b" " + imap_text(part.location)


def bodystructure(part: Part, extensible: bool) -> bytes:
    """BODYSTRUCTURE (`extensible`) or BODY of the message whose top entity is `part`."""
    out: list[bytes] = []
    _write(part, extensible, out)
    return b"".join(out)


def _write(part: Part, extensible: bool, out: list[bytes]) -> None:
    if part.is_multipart:
        out.append(b"(")
        if part.children:
            for child in part.children:
                _write(child, extensible, out)
        else:
            out.append(_EMPTY_TEXT_PART_EXT if extensible else _EMPTY_TEXT_PART)
        out.append(b" " + imap_text(part.media_subtype))
        if extensible:
            # body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang
            #                  [SP body-fld-loc *(SP body-extension)]]]
            out.append(b" " + _params(part.params) + b" " + _extension_tail(part))
        out.append(b")")
        return
    # body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
    # body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
    #               body-fld-octets
    out.append(b"(")
    out.append(imap_text(part.media_type) + b" " + imap_text(part.media_subtype) + b" ")
    out.append(_params(part.params) + b" " + imap_text(part.content_id) + b" ")
    out.append(imap_text(part.description) + b" ")
    out.append(
        imap_string(part.transfer_encoding.encode("utf-8", "surrogateescape"))
        if part.transfer_encoding is not None
        else b'"7bit"'
    )
    out.append(b" %d" % part.size)
    if part.is_message:
        # body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines
        if part.children:
            enclosed = part.children[0]
            out.append(b" " + format_envelope(envelope(enclosed)) + b" ")
            _write(enclosed, extensible, out)
        else:
            # Past MAX_NESTING_DEPTH the enclosed message is not parsed.
            out.append(b" " + _EMPTY_ENVELOPE + b" ")
            out.append(_EMPTY_TEXT_PART_EXT if extensible else _EMPTY_TEXT_PART)
        out.append(b" %d" % part.lines)
    elif part.is_text:
        # body-type-text = media-text SP body-fields SP body-fld-lines
        out.append(b" %d" % part.lines)
    if extensible:
        # body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
        #                  *(SP body-extension)]]]
        out.append(b" " + imap_text(part.md5) + b" " + _extension_tail(part))
    out.append(b")")
