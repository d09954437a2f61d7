"""`python -m mailactors`."""

from mailactors.cli import entry

if __name__ == "__main__":
    entry()
