"""Typed, documented parameters shared by games and solvers (one validation path for both).

A parameter is a dataclass field made with ``param(default, doc, low=, high=)``; ``build``
checks user values against the field's type and range and reports the exact spec key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any, TypeVar

from tmfcli.errors import SpecError

T = TypeVar("T")


class ParamError(ValueError):
    """A parameter is invalid; ``build`` adds the spec key and file."""

    def __init__(self, name: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.name = name
        self.problem = problem
        self.fix = fix


def param(default: Any, doc: str, low: float | None = None, high: float | None = None,
          low_open: bool = False) -> Any:
    """A parameter field: default, one-line doc and an optional range (checked per element)."""
    meta = {"doc": doc, "low": low, "high": high, "low_open": low_open}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


def fields_of(cls: type) -> list[dataclasses.Field[Any]]:
    """The user-settable parameter fields of a dataclass, in declaration order."""
    return [f for f in dataclasses.fields(cls) if f.init and "doc" in f.metadata]


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[operator]


def describe(cls: type) -> list[tuple[str, str, str]]:
    """(name, default, doc) of each parameter, for listings and docs."""
    out = []
    for f in fields_of(cls):
        d = default_of(f)
        shown = ", ".join(f"{v:g}" for v in d) if isinstance(d, tuple) else f"{d!r}"
        out.append((f.name, shown, str(f.metadata["doc"])))
    return out


def build(cls: type[T], values: dict[str, Any] | None, prefix: str, source: str,
          what: str) -> T:
    """Instantiate ``cls`` from user ``values``; errors name ``<prefix>.<parameter>``."""
    fields = {f.name: f for f in fields_of(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if key not in fields:
            valid = ", ".join(fields) or "none"
            raise SpecError(f"{prefix}.{key}", f"unknown parameter of {what}",
                            f"valid parameters: {valid}", source)
        kwargs[key] = _coerce(value, fields[key], f"{prefix}.{key}", source)
    try:
        return cls(**kwargs)
    except ParamError as err:
        raise SpecError(f"{prefix}.{err.name}", err.problem, err.fix, source) from None


def _coerce(value: Any, f: dataclasses.Field[Any], key: str, source: str) -> Any:
    default = default_of(f)
    meta = f.metadata
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SpecError(key, f"expected true or false, got {value!r}",
                            "write true or false", source)
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or not value:
            raise SpecError(key, f"expected a list of numbers, got {value!r}",
                            f"write it as a YAML list, e.g. {list(default)}", source)
        items = tuple(_number(v, float, key, source) for v in value)
    else:
        items = (_number(value, type(default), key, source),)
    low, high = meta.get("low"), meta.get("high")
    for item in items:
        too_low = low is not None and (item <= low if meta.get("low_open") else item < low)
        if too_low or (high is not None and item > high) or not math.isfinite(item):
            lo = "" if low is None else ("> " if meta.get("low_open") else ">= ") + f"{low:g}"
            hi = "" if high is None else f"<= {high:g}"
            allowed = " and ".join(s for s in (lo, hi) if s) or "finite"
            raise SpecError(key, f"{item!r} is out of range", f"use a value {allowed}", source)
    return items if isinstance(default, tuple) else items[0]


def _number(value: Any, kind: type, key: str, source: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(key, f"expected a number, got {value!r}",
                        f"write a {kind.__name__}, e.g. {kind(1)!r}", source)
    if not math.isfinite(value):
        raise SpecError(key, f"{value!r} is not a finite number", "write a finite number",
                        source)
    if kind is int:
        if float(value) != int(value):
            raise SpecError(key, f"expected a whole number, got {value!r}",
                            "write an integer", source)
        return int(value)
    return float(value)
