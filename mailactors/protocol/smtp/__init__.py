"""SMTP (RFC 5321) server and client state machines."""
