"""IMAP4rev1/rev2 (RFC 3501, RFC 9051) parsing and responses."""
