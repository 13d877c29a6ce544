"""The guards of every YAML document tmf reads (specs, overrides, game files): the size of a
composed document once its aliases are expanded, counted without expanding them (against alias
bombs, "billion laughs"); duplicate keys refused with both lines; numbers in scientific notation
read as numbers; integers too large for a float found with their key."""

from __future__ import annotations

import re
from typing import Any

import yaml


class SelfReference(ValueError):
    """An alias refers to a node that contains it (a recursive structure)."""


def expanded_size(root: yaml.Node, cap: int) -> int:
    """Nodes of the document with every alias expanded, capped at ``cap + 1``. An alias is one
    node object referenced many times, so memoising over the node graph visits each distinct
    node once, even for an alias bomb. Raises ``SelfReference`` for a recursive alias."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SelfReference("an alias refers to itself (a recursive structure)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = min(total, cap + 1)
        return sizes[key]

    return size(root)


# --------------------------------------------------------------------------------------------
# the reading rules every YAML file of tmf shares (specs, --set, --sweep, game files)
# --------------------------------------------------------------------------------------------
# YAML 1.1 reads 1e-9 and 1E6 as strings (its floats need a dot and a signed exponent): tmf
# reads every plain scalar that is a number in scientific notation as a float, as people
# write them.
SCIENTIFIC = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
MERGE = "tag:yaml.org,2002:merge"


class DuplicateKey(Exception):
    """A mapping gives the same key twice (YAML loaders keep the last one silently)."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"key {key!r} is given twice")
        self.key, self.first, self.second = key, first, second
        shown = repr(key) if len(repr(key)) <= 40 else repr(key)[:37] + "..."
        self.problem = f"the key {shown} is given twice (lines {first} and {second})"


def strict(loader: type[Any]) -> type[Any]:
    """A subclass of the PyYAML loader class ``loader`` that reads scientific notation as
    numbers and refuses duplicate keys (``DuplicateKey``, with both line numbers)."""

    class Strict(loader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == MERGE or not isinstance(key_node, yaml.ScalarNode):
                        continue  # merges may override; a non-scalar key fails on its own
                    key = self.construct_object(key_node, deep=False)
                    try:
                        first = seen.get(key)
                    except TypeError:
                        continue
                    line = key_node.start_mark.line + 1
                    if first is not None:
                        raise DuplicateKey(key, first, line)
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    Strict.add_implicit_resolver("tag:yaml.org,2002:float", SCIENTIFIC,
                                 list("-+0123456789."))
    Strict.__name__ = Strict.__qualname__ = f"Strict{loader.__name__}"
    return Strict


def too_large(data: Any, path: str = "") -> tuple[str, int] | None:
    """The first integer in ``data`` that no float can hold (beyond 1.8e308), with its dotted
    key (``game.params.kappa``, ``bound_check.agents[1]``); None when there is none."""
    if isinstance(data, bool):
        return None
    if isinstance(data, int):
        try:
            float(data)
        except OverflowError:
            return path, data
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            found = too_large(value, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found = too_large(value, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def show_integer(value: int) -> str:
    """A huge integer as people can read it in one line: its first digits and its length."""
    text = str(abs(value))
    sign = "-" if value < 0 else ""
    return f"{sign}{text[:12]}... ({len(text)} digits)" if len(text) > 20 else sign + text
