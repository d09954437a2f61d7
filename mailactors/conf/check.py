"""`mailactors config test`: check the configuration files and report every problem."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from mailactors.conf.load import ConfigPaths, check_config

__all__ = ["run_config_test"]


def run_config_test(path: Path, stdout: TextIO, stderr: TextIO) -> int:
    """Print each error as "file:line: key: message" to stderr and return 1, or report OK and return 0."""
    errors = check_config(path)
    for error in errors:
        print(error, file=stderr)
    if errors:
        print(f"{len(errors)} error(s) in the configuration", file=stderr)
        return 1
    paths = ConfigPaths.for_static(path)
    print(f"config OK: {paths.static} and {paths.domains}", file=stdout)
    return 0
