"""Configuration errors: each names its file, line and key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigErrors"]


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem in a configuration file, shown as "file:line: key: message".

    ``key`` is the dotted path of the setting (e.g. "listeners.public.smtp.port");
    it is empty for problems of the file as a whole (unreadable, invalid YAML).
    """

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.file}:{self.line}: {self.key}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ConfigErrors(Exception):
    """Every error found while loading the configuration files."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors: list[ConfigError] = list(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)

    def __reduce__(self) -> tuple[type[ConfigErrors], tuple[list[ConfigError]]]:
        return (type(self), (self.errors,))
