"""IMAP4rev1/rev2 (RFC 3501, RFC 9051) parsing and responses, sans-IO.

    framing.py    CommandReader: bytes -> RawCommand / Continue / FramingError, literals, limits
    parser.py     parse_command(RawCommand) -> a command from commands.py, or ParseError
    commands.py   one frozen dataclass per command
    grammar.py    the ABNF primitives (astring, mailbox, flags, dates, sequence-set)
    fetchattr.py  FETCH attributes, sections, partials; searchkey.py: SEARCH criteria
    sequence.py   SequenceSet; mutf7.py: modified UTF-7 mailbox names
    response.py   tagged/untagged responses, response codes, strings, ESEARCH, VANISHED
"""
