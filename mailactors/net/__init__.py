"""Blocking network clients used by actors and the command line (DNS, ...)."""
