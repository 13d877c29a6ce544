"""A spec's text: read from its file (size, encoding, special files refused), parsed as strict
YAML within limits, and ``--set key.path=value`` overrides applied to the raw mapping (so they
are validated exactly like the file)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tmfcli.errors import SpecError
from tmfcli.io import user_files
from tmfcli.io.yaml_size import (
    DuplicateKey,
    SelfReference,
    expanded_size,
    strict,
)


def set_key(data: dict[str, Any], key: str, value: Any, source: str = "--set") -> None:
    """Set the dotted ``key`` of a raw spec mapping to ``value``, creating mappings on the way."""
    keys = key.strip().split(".")
    if not all(keys):
        raise SpecError(key, "empty key in override", "write --set key.path=value", source)
    node = data
    for i, part in enumerate(keys[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(".".join(keys[: i + 1]), "is not a mapping",
                            "override a key that holds key: value pairs", source)
        node = child
    node[keys[-1]] = copy.deepcopy(value)


MAX_SPEC_BYTES = 1 << 20  # a spec is a few hundred bytes; more is not a spec
MAX_DEPTH = 32            # nesting levels of a YAML document
MAX_NODES = 100_000       # YAML nodes after alias expansion (a "billion laughs" has 10^9)


class _Loader(strict(yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader, refusing nesting beyond ``MAX_DEPTH`` while composing (no
    RecursionError) and documents that expand to more than ``MAX_NODES`` nodes through aliases,
    before anything is constructed (no alias bomb is ever expanded); duplicate keys are
    refused and 1e-9 is a number (``yaml_size.strict``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _YamlLimit(f"nested deeper than {MAX_DEPTH} levels",
                                 self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _YamlLimit(Exception):
    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark


def parse_yaml(text: str, where: str, source: str) -> Any:
    """Parse one YAML document safely and within limits; problems are ``SpecError`` at
    ``where`` (a line number is added when known)."""
    try:  # the reader refuses control characters as the loader is made
        loader = _Loader(text)
    except yaml.YAMLError:
        raise SpecError(where, "not YAML text (it holds control characters)",
                        "save the file as plain YAML", source) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            if expanded_size(node, MAX_NODES) > MAX_NODES:
                raise _YamlLimit(f"expands to more than {MAX_NODES} values through aliases")
        except SelfReference as err:
            raise _YamlLimit(str(err)) from None
        return loader.construct_document(node)
    except DuplicateKey as err:
        raise SpecError(":".join(p for p in (where, f"line {err.second}") if p), err.problem,
                        "keep one of them (a YAML mapping holds each key once)",
                        source) from None
    except _YamlLimit as err:
        line = f"line {err.mark.line + 1}" if err.mark is not None else ""
        raise SpecError(":".join(p for p in (where, line) if p), err.problem,
                        "write the values out plainly (no deep nesting or alias chains)",
                        source) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else ""
        raise SpecError(":".join(p for p in (where, line) if p), "not valid YAML",
                        "fix the syntax at that line" if line else
                        "quote strings and write lists as [a, b]", source) from None
    finally:
        loader.dispose()


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a raw spec mapping.

    Errors name the override (``--set key.path=value``), not the spec file.
    """
    for item in overrides:
        where = _override(item)
        if "=" not in item:
            raise SpecError("", "override has no '='", "write --set key.path=value", where)
        path, _, text = item.partition("=")
        keys = path.strip().split(".")
        if not all(keys):
            raise SpecError("", "empty key in override", "write --set key.path=value", where)
        value = parse_yaml(text, "", where)
        if value is None:
            raise SpecError("", "the value is empty",
                            "give a value after '=', or leave the key out to use its default",
                            where)
        try:
            set_key(data, path, value, where)
        except SpecError as error:  # blame the override, not the spec file
            raise SpecError("", f"{error.key} {error.problem}", error.fix, where) from None
    return data


def _override(item: str) -> str:
    """How an override is named in messages: ``--set key=value``, a long value cut short."""
    return f"--set {item}" if len(item) <= 80 else f"--set {item[:77]}..."


def blame_override(error: SpecError, overrides: list[str]) -> SpecError:
    """The error re-addressed to the last override that set the failing key (or a key above
    or below it), so that ``--set`` mistakes are not reported as mistakes of the file."""
    key = error.key
    for item in reversed(overrides):
        path = item.partition("=")[0].strip()
        if key == path or key.startswith((path + ".", path + "[")) or \
                path.startswith(key + "."):
            rest = "" if key == path or path.startswith(key + ".") else key
            return SpecError(rest, error.problem, error.fix, _override(item))
    return error


def read_text(path: Path, source: str, what: str = "spec file") -> str:
    """The UTF-8 text of a small user file, or a ``SpecError`` saying what is wrong with it
    (special files such as FIFOs and devices are refused without being opened)."""

    def fail(problem: str, fix: str) -> SpecError:
        return SpecError("", problem, fix, source)

    return user_files.decode(user_files.read_bytes(path, fail, what, MAX_SPEC_BYTES), fail,
                             "YAML text file")


