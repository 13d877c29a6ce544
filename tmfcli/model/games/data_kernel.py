"""The compiled kernel of data games: a stack machine over the expression trees, in numba.

``tmfcli.model.compiled`` calls a game's kernel ``fill(mu (O,), t, params, P (O*A*O,), P0 (O*O,))``
once per step of the forward pass. A data game has no code of its own to compile, so its
kernel is this one interpreter and its ``params`` carry the program (``encode``): the constant
parts of P and P0, and each mu-dependent entry as postfix code. No text is compiled: the
program is numbers derived from the parsed trees, run by the same machine code for every game.
Each operation is the floating-point operation the numpy evaluation performs (``where``
computes both branches and selects), so the two agree to rounding of exp/log/pow at most.

Layout of ``params`` (float64):
    [n_P, n_P0, n_entries, n_code, max_stack] header
    P base (n_P), P0 base (n_P0)
    per entry: table (0 = P, 1 = P0), position, start, end   (code indices)
    code: opcodes, each CONST and MU followed by its argument
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from tmfcli.model.compiled import KERNEL_SIGNATURE
from tmfcli.model.games.base import Array

HEADER = 5
(CONST, MU, NEG, NOT, ADD, SUB, MUL, DIV, POW, LT, LE, GT, GE, EQ, NE, AND, OR, EXP, LOG, SQRT,
 ABS, MIN, MAX, CLIP, WHERE) = range(25)


@nb.njit(KERNEL_SIGNATURE, cache=True, error_model="numpy")
def fill(mu: Array, t: int, params: Array, P: Array,
         P0: Array) -> None:  # pragma: no cover - compiled
    """Write P and P0 at mu: the constant bases, then every entry's program."""
    n_P, n_P0, n_entries = int(params[0]), int(params[1]), int(params[2])
    depth = int(params[4])  # params[3]: the length of the code (for readers)
    base = HEADER
    P[:] = params[base:base + n_P]
    P0[:] = params[base + n_P:base + n_P + n_P0]
    entries = base + n_P + n_P0
    code = entries + 4 * n_entries
    stack = np.empty(max(depth, 1))
    for e in range(n_entries):
        row = entries + 4 * e
        table, position = int(params[row]), int(params[row + 1])
        pc, end = code + int(params[row + 2]), code + int(params[row + 3])
        top = 0
        while pc < end:
            op = int(params[pc])
            pc += 1
            if op == CONST:
                stack[top] = params[pc]
                pc += 1
                top += 1
            elif op == MU:
                stack[top] = mu[int(params[pc])]
                pc += 1
                top += 1
            elif op == NEG:
                stack[top - 1] = -stack[top - 1]
            elif op == NOT:
                stack[top - 1] = 1.0 if stack[top - 1] == 0.0 else 0.0
            elif op >= EXP and op <= ABS:
                x = stack[top - 1]
                if op == EXP:
                    stack[top - 1] = math.exp(x)
                elif op == LOG:
                    stack[top - 1] = math.log(x) if x > 0.0 else (-math.inf if x == 0.0
                                                                  else math.nan)
                elif op == SQRT:
                    stack[top - 1] = math.sqrt(x) if x >= 0.0 else math.nan
                else:
                    stack[top - 1] = abs(x)
            elif op == CLIP or op == WHERE:
                a, b, c = stack[top - 3], stack[top - 2], stack[top - 1]
                top -= 2
                if op == CLIP:  # min(max(a, b), c) as np.minimum(np.maximum(...)): NaN wins
                    m = a if a >= b or a != a else b
                    stack[top - 1] = m if m <= c or m != m else c
                else:
                    stack[top - 1] = b if a != 0.0 else c
            else:
                x, y = stack[top - 2], stack[top - 1]
                top -= 1
                if op == ADD:
                    v = x + y
                elif op == SUB:
                    v = x - y
                elif op == MUL:
                    v = x * y
                elif op == DIV:
                    v = x / y
                elif op == POW:
                    v = x ** y
                elif op == LT:
                    v = 1.0 if x < y else 0.0
                elif op == LE:
                    v = 1.0 if x <= y else 0.0
                elif op == GT:
                    v = 1.0 if x > y else 0.0
                elif op == GE:
                    v = 1.0 if x >= y else 0.0
                elif op == EQ:
                    v = 1.0 if x == y else 0.0
                elif op == NE:
                    v = 1.0 if x != y else 0.0
                elif op == AND:
                    v = 1.0 if (x != 0.0 and y != 0.0) else 0.0
                elif op == OR:
                    v = 1.0 if (x != 0.0 or y != 0.0) else 0.0
                elif op == MIN:  # as np.minimum / np.maximum: NaN wins
                    v = x if x <= y or x != x else y
                else:
                    v = x if x >= y or x != x else y
                stack[top - 1] = v
        if table == 0:
            P[position] = stack[0]
        else:
            P0[position] = stack[0]
