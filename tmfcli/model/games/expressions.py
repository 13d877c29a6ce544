"""The expression language of data games: parsed once into a tree, evaluated over batched mu.

An entry of a game table may be a number or an expression such as ``"s1 / (s1 + mu[o])"``.
The text is tokenised and parsed here by a small recursive-descent parser (never Python's
``eval``/``exec``/``compile``): the only things an expression can name are numbers, the game's
parameters, the step ``t``, the population distribution ``mu[...]`` indexed by an observation
name, and the functions of ``FUNCTIONS``. Nothing else exists: no attributes, calls of other
names, subscripts of anything but ``mu``, strings outside ``mu[...]``, or Python builtins.

Grammar (lowest precedence first; comparisons do not chain)::

    expr    := or ['if' or 'else' expr]
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | compare
    compare := sum [('<' | '<=' | '>' | '>=' | '==' | '!=') sum]
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/') unary)*
    unary   := ('-' | '+') unary | power
    power   := atom ['**' unary]
    atom    := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | 'mu' '[' index ']' | '(' expr ')'
    index   := 'observation name' | "observation name" | NAME     (o, next: bound by the table)

Truth values are 1.0 and 0.0; ``a if c else b`` and ``where(c, a, b)`` select elementwise.
A tree is evaluated on mu of shape (..., O) and gives an array of shape (...) (or a float when
it does not depend on mu): one evaluation serves every replica of a batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

MAX_LENGTH = 2000  # characters of one expression
MAX_DEPTH = 40     # nesting of sub-expressions
MAX_NODES = 400    # nodes of one tree

FUNCTIONS: dict[str, tuple[int, int | None]] = {  # name: (fewest, most arguments)
    "min": (2, None), "max": (2, None), "exp": (1, 1), "log": (1, 1), "sqrt": (1, 1),
    "abs": (1, 1), "clip": (3, 3), "where": (3, 3),
}
KEYWORDS = ("and", "or", "not", "if", "else")
RESERVED = ("mu", "t", "o", "next", *KEYWORDS, *FUNCTIONS)
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")

# A node is a tuple whose first item says what it is:
#   ("num", float) ("param", name) ("t",) ("mu", index) ("neg", x) ("not", x)
#   ("bin", op, x, y) with op in + - * / ** < <= > >= == != and or
#   ("call", name, (x, ...)) ("if", condition, then, otherwise)
# mu's index is an observation name (str) before binding and an integer position after it.
Node = tuple[Any, ...]


class ExpressionError(ValueError):
    """An expression is malformed or refers to an unknown name; ``fix`` says what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/<>()\[\],])
""", re.VERBOSE)


def tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens; anything outside the language is an error naming the character."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long",
                              f"keep it under {MAX_LENGTH}, or split it into parameters")
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos]!r} at position {pos + 1}",
                                  "use numbers, names, mu['obs'], + - * / **, comparisons, "
                                  "and, or, not, if/else and " + ", ".join(FUNCTIONS))
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0
        self.nodes = 0

    def peek(self) -> str:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else ""

    def next(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ExpressionError("expression ends too early", "complete the expression")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expect(self, text: str) -> None:
        kind, got = self.next() if self.pos < len(self.tokens) else ("", "the end")
        if got != text or kind == "string":
            raise ExpressionError(f"expected {text!r} but found {got!r}",
                                  "check brackets and commas")

    def node(self, *items: Any) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression has more than {MAX_NODES} parts",
                                  "split it into parameters")
        return tuple(items)

    def nested(self, rule: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested more than {MAX_DEPTH} levels deep",
                                  "flatten it, or split it into parameters")
        try:
            return rule()
        finally:
            self.depth -= 1

    def parse(self) -> Node:
        if not self.tokens:
            raise ExpressionError("empty expression", "write a number or an expression")
        tree = self.expr()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.peek()!r} after a complete expression",
                                  "check for a missing operator or an extra bracket")
        return tree

    def expr(self) -> Node:
        return self.nested(self._expr)

    def _expr(self) -> Node:
        then = self.or_()
        if self.peek() == "if":
            self.next()
            condition = self.or_()
            self.expect("else")
            return self.node("if", condition, then, self.expr())
        return then

    def chain(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        """operand (op operand)*, left-associative."""
        left = operand()
        while self.peek() in ops:
            op = self.next()[1]
            left = self.node("bin", op, left, operand())
        return left

    def or_(self) -> Node:
        return self.chain(("or",), self.and_)

    def and_(self) -> Node:
        return self.chain(("and",), self.not_)

    def not_(self) -> Node:
        if self.peek() == "not":
            self.next()
            return self.node("not", self.nested(self.not_))
        return self.compare()

    def compare(self) -> Node:
        left = self.sum()
        if self.peek() in COMPARISONS:
            op = self.next()[1]
            left = self.node("bin", op, left, self.sum())
            if self.peek() in COMPARISONS:
                raise ExpressionError("chained comparison", "write (a < b) and (b < c)")
        return left

    def sum(self) -> Node:
        return self.chain(("+", "-"), self.product)

    def product(self) -> Node:
        return self.chain(("*", "/"), self.unary)

    def unary(self) -> Node:
        if self.peek() in ("-", "+"):
            op = self.next()[1]
            inner = self.nested(self.unary)
            return self.node("neg", inner) if op == "-" else inner
        base = self.atom()
        if self.peek() == "**":
            self.next()
            return self.node("bin", "**", base, self.nested(self.unary))
        return base

    def atom(self) -> Node:
        kind, text = self.next()
        if kind == "number":
            value = float(text)
            if not math.isfinite(value):
                raise ExpressionError(f"number {text} is too large", "use a finite number")
            return self.node("num", value)
        if kind == "string":
            raise ExpressionError(f"text {text} outside mu[...]",
                                  "observation names are only used as mu['name']")
        if text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r}", "check the expression's syntax")
        if text in KEYWORDS:
            raise ExpressionError(f"unexpected keyword {text!r}", "check the expression's syntax")
        if text == "mu":
            self.expect("[")
            index_kind, index = self.next()
            if index_kind == "string":
                index = index[1:-1]
            elif index_kind != "name":
                raise ExpressionError(f"mu[{index}] is not indexed by a name",
                                      "write mu['observation name'], mu[o] or mu[next]")
            self.expect("]")
            return self.node("mu", index)
        if self.peek() == "(":
            return self.call(text)
        if text == "t":
            return self.node("t")
        if text in ("o", "next"):
            raise ExpressionError(f"{text!r} stands for an observation and is only used as "
                                  f"mu[{text}]", f"write mu[{text}]")
        return self.node("param", text)

    def call(self, name: str) -> Node:
        if name not in FUNCTIONS:
            raise ExpressionError(f"unknown function {name!r}",
                                  f"use one of: {', '.join(FUNCTIONS)}")
        self.expect("(")
        args = [self.expr()]
        while self.peek() == ",":
            self.next()
            args.append(self.expr())
        self.expect(")")
        low, high = FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            wanted = f"{low}" if low == high else f"at least {low}"
            raise ExpressionError(f"{name}() takes {wanted} arguments, got {len(args)}",
                                  f"give {name}() {wanted} arguments")
        return self.node("call", name, tuple(args))


def parse(text: str | float | int) -> Node:
    """The tree of an expression (a YAML number becomes a constant)."""
    if isinstance(text, bool):
        raise ExpressionError(f"{text!r} is not a number", "write a number or an expression")
    if isinstance(text, int | float):
        if not math.isfinite(float(text)):
            raise ExpressionError(f"{text!r} is not finite", "write a finite number")
        return ("num", float(text))
    if not isinstance(text, str):
        raise ExpressionError(f"expected a number or an expression, got {type(text).__name__}",
                              "write a number or an expression in quotes")
    return _Parser(text).parse()


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------
def walk(node: Node) -> list[Node]:
    """Every node of the tree, root first."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        kind = n[0]
        if kind in ("neg", "not"):
            stack.append(n[1])
        elif kind == "bin":
            stack.extend((n[2], n[3]))
        elif kind == "call":
            stack.extend(n[2])
        elif kind == "if":
            stack.extend(n[1:])
    return out


def parameters_used(node: Node) -> set[str]:
    return {n[1] for n in walk(node) if n[0] == "param"}


def depends_on_mu(node: Node) -> bool:
    return any(n[0] == "mu" for n in walk(node))


def depends_on_t(node: Node) -> bool:
    return any(n[0] == "t" for n in walk(node))


def bind(node: Node, params: Mapping[str, float], observations: Mapping[str, int],
         local: Mapping[str, int] | None = None) -> Node:
    """Replace parameters by their values and mu's names by positions; fold constants.

    ``local`` binds ``o`` (and ``next``) for one table entry. Unknown names raise
    ``ExpressionError`` naming the valid ones.
    """
    local = local or {}
    kind = node[0]
    if kind == "param":
        if node[1] not in params:
            valid = ", ".join(params) or "none"
            raise ExpressionError(f"unknown name {node[1]!r}",
                                  f"use a parameter ({valid}), t, or mu['observation']")
        return ("num", float(params[node[1]]))
    if kind == "mu":
        index = node[1]
        if isinstance(index, int):  # already bound
            return node
        if index in local:
            return ("mu", local[index])
        if index in ("o", "next"):
            raise ExpressionError(f"mu[{index}] is not defined in this table",
                                  "mu[o] is the entry's observation (every table), mu[next] "
                                  "the next observation (kernels P and P0)")
        if index not in observations:
            raise ExpressionError(f"unknown observation {index!r} in mu[...]",
                                  f"use one of: {', '.join(observations)}")
        return ("mu", observations[index])
    if kind in ("num", "t"):
        return node
    if kind in ("neg", "not"):
        out: Node = (kind, bind(node[1], params, observations, local))
    elif kind == "bin":
        out = ("bin", node[1], bind(node[2], params, observations, local),
               bind(node[3], params, observations, local))
    elif kind == "call":
        out = ("call", node[1], tuple(bind(a, params, observations, local) for a in node[2]))
    else:  # "if"
        out = ("if", *(bind(n, params, observations, local) for n in node[1:]))
    if not depends_on_mu(out) and not depends_on_t(out):  # a constant: fold it, unless it
        value, problem = check(out, np.zeros((1, 1)), 0)   # fails (the checks report that)
        if problem is None and np.isfinite(value[0]):
            return ("num", float(value[0]))
    return out


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------
def _truth(x: Any) -> Any:
    return np.asarray(x) != 0


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power,
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal, "!=": np.not_equal,
    "and": lambda x, y: _truth(x) & _truth(y), "or": lambda x, y: _truth(x) | _truth(y),
}
_UNARY: dict[str, Callable[[Any], Any]] = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt,
                                           "abs": np.abs}


@dataclass
class Problem:
    """The first domain error met while checking: what, in which sub-expression, where."""

    what: str
    part: str
    probe: int


class _Checker:
    """Collects domain errors (division by zero, log of x <= 0, sqrt of x < 0) on probes."""

    def __init__(self, names: tuple[str, ...] = ()) -> None:
        self.problem: Problem | None = None
        self.names = names

    def flag(self, bad: Any, mask: Any, what: str, node: Node) -> None:
        if self.problem is not None:
            return
        hit = np.asarray(bad) & np.asarray(mask)
        if np.any(hit):
            probe = int(np.flatnonzero(np.broadcast_to(hit, np.shape(mask)).ravel())[0]) \
                if np.ndim(mask) else 0
            self.problem = Problem(what, show(node, self.names), probe)


def evaluate(node: Node, mu: Array, t: int, checker: _Checker | None = None,
             mask: Any = True) -> Any:
    """Value of a bound tree at mu (..., O): an array (...) or a float.

    With ``checker``, domain errors where ``mask`` is true are recorded (``where`` and
    ``if`` narrow the mask to the probes where each branch is taken).
    """
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "mu":
        return mu[..., node[1]]
    if kind == "t":
        return float(t)
    if kind == "neg":
        return np.negative(evaluate(node[1], mu, t, checker, mask))
    if kind == "not":
        return (~_truth(evaluate(node[1], mu, t, checker, mask))).astype(float)
    if kind == "bin":
        op = node[1]
        x = evaluate(node[2], mu, t, checker, mask)
        y = evaluate(node[3], mu, t, checker, mask)
        if checker is not None:
            if op == "/":
                checker.flag(np.asarray(y) == 0, mask, "divides by zero", node)
            elif op == "**":
                checker.flag((np.asarray(x) == 0) & (np.asarray(y) < 0), mask,
                             "raises zero to a negative power", node)
                checker.flag((np.asarray(x) < 0) & (np.asarray(y) != np.round(y)), mask,
                             "raises a negative number to a fractional power", node)
        value = _BINARY[op](x, y)
        return value.astype(float) if op in COMPARISONS or op in ("and", "or") else value
    if kind == "call":
        name, args = node[1], node[2]
        if name == "where":
            return _select(args[0], args[1], args[2], mu, t, checker, mask)
        values = [evaluate(a, mu, t, checker, mask) for a in args]
        if checker is not None and name == "log":
            checker.flag(np.asarray(values[0]) <= 0, mask, "takes the log of a number <= 0",
                         node)
        if checker is not None and name == "sqrt":
            checker.flag(np.asarray(values[0]) < 0, mask,
                         "takes the square root of a negative number", node)
        if name in _UNARY:
            return _UNARY[name](values[0])
        if name == "clip":
            return np.minimum(np.maximum(values[0], values[1]), values[2])
        reduce = np.minimum if name == "min" else np.maximum
        out = values[0]
        for v in values[1:]:
            out = reduce(out, v)
        return out
    # "if": then if condition else otherwise
    return _select(node[1], node[2], node[3], mu, t, checker, mask)


Compiled = Callable[[Array, int], Any]


def compile_tree(node: Node) -> Compiled:
    """A bound tree as nested Python closures f(mu, t): the same numpy operations as
    ``evaluate`` (so the same numbers), without dispatching on node kinds at every call."""
    kind = node[0]
    if kind == "num":
        value = node[1]
        return lambda mu, t: value
    if kind == "mu":
        index = node[1]
        return lambda mu, t: mu[..., index]
    if kind == "t":
        return lambda mu, t: float(t)
    if kind in ("neg", "not"):
        inner = compile_tree(node[1])
        if kind == "neg":
            return lambda mu, t: np.negative(inner(mu, t))
        return lambda mu, t: (~_truth(inner(mu, t))).astype(float)
    if kind == "bin":
        fn, x, y = _BINARY[node[1]], compile_tree(node[2]), compile_tree(node[3])
        if node[1] in COMPARISONS or node[1] in ("and", "or"):
            return lambda mu, t: fn(x(mu, t), y(mu, t)).astype(float)
        return lambda mu, t: fn(x(mu, t), y(mu, t))
    if kind == "if" or node[1] == "where":
        c, a, b = (compile_tree(n) for n in (node[1:] if kind == "if" else node[2]))
        return lambda mu, t: np.where(_truth(c(mu, t)), a(mu, t), b(mu, t))
    name, args = node[1], [compile_tree(a) for a in node[2]]
    if name in _UNARY:
        fn1, x1 = _UNARY[name], args[0]
        return lambda mu, t: fn1(x1(mu, t))
    if name == "clip":
        x, low, high = args
        return lambda mu, t: np.minimum(np.maximum(x(mu, t), low(mu, t)), high(mu, t))
    reduce = np.minimum if name == "min" else np.maximum

    def extreme(mu: Array, t: int) -> Any:
        out = args[0](mu, t)
        for f in args[1:]:
            out = reduce(out, f(mu, t))
        return out

    return extreme


def _select(cond: Node, then: Node, other: Node, mu: Array, t: int, checker: _Checker | None,
            mask: Any) -> Any:
    c = _truth(evaluate(cond, mu, t, checker, mask))
    a = evaluate(then, mu, t, checker, np.asarray(mask) & c)
    b = evaluate(other, mu, t, checker, np.asarray(mask) & ~c)
    return np.where(c, a, b)


def check(node: Node, mu: Array, t: int,
          names: tuple[str, ...] = ()) -> tuple[Array, Problem | None]:
    """Evaluate at probes mu (S, O) with domain checks; values broadcast to (S,).

    ``names`` (the observations) make the reported sub-expression readable."""
    checker = _Checker(names)
    with np.errstate(all="ignore"):
        value = np.broadcast_to(np.asarray(evaluate(node, mu, t, checker,
                                                    np.ones(mu.shape[:-1], dtype=bool)),
                                           dtype=float), mu.shape[:-1])
    return value, checker.problem


# --------------------------------------------------------------------------------------------
# showing
# --------------------------------------------------------------------------------------------
def show(node: Node, names: tuple[str, ...] = ()) -> str:
    """A readable text of a (bound or unbound) tree, fully bracketed."""
    kind = node[0]
    if kind == "num":
        return f"{node[1]:g}"
    if kind == "param":
        return str(node[1])
    if kind == "t":
        return "t"
    if kind == "mu":
        index = node[1]
        label = names[index] if isinstance(index, int) and index < len(names) else index
        return f"mu[{label!r}]" if isinstance(index, int) else f"mu[{index}]"
    if kind == "neg":
        return f"-{show(node[1], names)}"
    if kind == "not":
        return f"not {show(node[1], names)}"
    if kind == "bin":
        return f"({show(node[2], names)} {node[1]} {show(node[3], names)})"
    if kind == "call":
        return f"{node[1]}({', '.join(show(a, names) for a in node[2])})"
    return f"({show(node[2], names)} if {show(node[1], names)} else {show(node[3], names)})"
