"""Reading YAML node trees with line numbers, collecting errors instead of raising.

Files are composed (``yaml.compose``), not constructed, so every value keeps
the line it came from and each error can name file, line and key.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mailactors.conf.errors import ConfigError

__all__ = ["Field", "NodeReader", "join_key"]

_TAG_PREFIX = "tag:yaml.org,2002:"
_TAG_NAMES = {
    "str": "string",
    "int": "integer",
    "bool": "boolean",
    "float": "number",
    "null": "null",
    "timestamp": "timestamp",
    "binary": "binary",
    "map": "mapping",
    "omap": "ordered mapping",
    "pairs": "pairs",
    "set": "set",
    "seq": "list",
}


def join_key(parent: str, name: str) -> str:
    """Return the dotted path of ``name`` below ``parent``."""
    return f"{parent}.{name}" if parent else name


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _kind(node: Node) -> str:
    """Describe a node's type for an error message ("string", "list", ...)."""
    tag = str(node.tag)
    if tag.startswith(_TAG_PREFIX):
        return _TAG_NAMES.get(tag[len(_TAG_PREFIX) :], tag)
    return tag


def _char(character: object) -> str:
    return chr(character) if isinstance(character, int) else str(character)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG_PREFIX + "null"


@dataclass(frozen=True, slots=True)
class Field:
    """A value in the file: its dotted key, the line of the key, and the value node."""

    key: str
    key_line: int
    node: Node

    @property
    def line(self) -> int:
        """The line of the value."""
        return _line(self.node)


class NodeReader:
    """Reads one file's node tree; every problem is appended to ``errors``."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[ConfigError] = []
        self._constructor = SafeConstructor()

    def error(self, line: int, key: str, message: str) -> None:
        """Record an error at ``line`` for ``key``."""
        self.errors.append(ConfigError(self.file, line, key, message))

    def compose(self, text: str) -> Node | None:
        """Parse YAML text into a node tree; None for an empty file or a syntax error."""
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = int(mark.line) + 1 if mark is not None else 1
            parts = [p for p in (exc.context, exc.problem) if p]
            self.error(line, "", "invalid YAML: " + (", ".join(parts) or "syntax error"))
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1
            self.error(line, "", f"invalid YAML: character {_char(exc.character)!r} is not allowed")
        except yaml.YAMLError as exc:
            self.error(1, "", f"invalid YAML: {exc}")
        except RecursionError:
            self.error(1, "", "invalid YAML: nested too deeply")
        return None

    def _expect(self, field: Field, what: str) -> None:
        self.error(field.line, field.key, f"expected {what}, got {_kind(field.node)}")

    def _pairs(self, node: Node, key: str) -> list[Field] | None:
        """The entries of a mapping node (null counts as empty), or None if it is not a mapping."""
        if _is_null(node):
            return []
        if not isinstance(node, MappingNode):
            return None
        fields: list[Field] = []
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or _is_null(key_node):
                self.error(_line(key_node), key, f"keys must be strings, got {_kind(key_node)}")
                continue
            name = str(key_node.value)
            path = join_key(key, name)
            if name in seen:
                self.error(_line(key_node), path, f"duplicate key (first at line {seen[name]})")
                continue
            seen[name] = _line(key_node)
            fields.append(Field(path, _line(key_node), value_node))
        return fields

    def section(
        self,
        field: Field,
        *,
        known: Collection[str],
        required: Collection[str] = (),
    ) -> dict[str, Field]:
        """Read a mapping with a fixed set of keys; unknown and missing keys are errors."""
        fields = self._pairs(field.node, field.key)
        if fields is None:
            self._expect(field, "a mapping")
            return {}
        prefix = f"{field.key}." if field.key else ""
        result: dict[str, Field] = {}
        for item in fields:
            name = item.key[len(prefix) :]
            if name not in known:
                self.error(item.key_line, item.key, f"unknown key (known keys: {', '.join(known)})")
                continue
            result[name] = item
        for name in required:
            if name not in result:
                self.error(field.key_line, join_key(field.key, name), "missing required key")
        return result

    def entries(self, field: Field) -> list[tuple[str, Field]]:
        """Read a mapping whose keys are names chosen by the user (domains, listeners)."""
        fields = self._pairs(field.node, field.key)
        if fields is None:
            self._expect(field, "a mapping")
            return []
        prefix = f"{field.key}." if field.key else ""
        return [(item.key[len(prefix) :], item) for item in fields]

    def items(self, field: Field) -> list[Field]:
        """Read a list; each item is a Field keyed "key[i]"."""
        if _is_null(field.node):
            return []
        if not isinstance(field.node, SequenceNode):
            self._expect(field, "a list")
            return []
        return [
            Field(f"{field.key}[{i}]", _line(node), node) for i, node in enumerate(field.node.value)
        ]

    def string(self, field: Field, *, allow_empty: bool = False) -> str | None:
        """Read a string value; None (and an error) for other types."""
        node = field.node
        if not isinstance(node, ScalarNode) or node.tag != _TAG_PREFIX + "str":
            self._expect(field, "a string")
            return None
        value = str(node.value)
        if not value and not allow_empty:
            self.error(field.line, field.key, "must not be empty")
            return None
        return value

    def integer(self, field: Field, *, minimum: int, maximum: int | None = None) -> int | None:
        """Read an integer within [minimum, maximum]."""
        node = field.node
        if not isinstance(node, ScalarNode) or node.tag != _TAG_PREFIX + "int":
            self._expect(field, "an integer")
            return None
        try:
            value = int(self._constructor.construct_yaml_int(node))
        except (ValueError, yaml.YAMLError):
            self.error(field.line, field.key, f"invalid integer {node.value!r}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            self.error(field.line, field.key, f"{value} is out of range ({bounds})")
            return None
        return value

    def boolean(self, field: Field) -> bool | None:
        """Read a boolean (true/false)."""
        node = field.node
        if not isinstance(node, ScalarNode) or node.tag != _TAG_PREFIX + "bool":
            self._expect(field, "a boolean (true or false)")
            return None
        try:
            return bool(self._constructor.construct_yaml_bool(node))
        except (KeyError, ValueError, yaml.YAMLError):
            self.error(field.line, field.key, f"invalid boolean {node.value!r}")
            return None
