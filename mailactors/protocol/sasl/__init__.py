"""SASL mechanisms (RFC 4422): PLAIN, SCRAM-SHA-256."""
