"""Every SQL statement and every file write lives here."""
