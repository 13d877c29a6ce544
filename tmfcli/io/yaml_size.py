"""The size of a composed YAML document once its aliases are expanded, counted without
expanding them: the guard of specs and game files against alias bombs ("billion laughs")."""

from __future__ import annotations

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
