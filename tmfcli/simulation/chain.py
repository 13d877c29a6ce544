"""One step of the exact count chain (MODEL.md section 4), shared by ``simulate``, the N-agent
epsilon and the training rollouts.

For R replicas at once, with counts n (R, O) summing to N and mu_hat = n / N, one step with
B_t agents acting (0 <= B_t <= N) draws

1. active counts  m ~ MultivariateHypergeometric(n, B_t)        (activation ``subset``)
                  m(o) ~ Bin(n(o), B_t / N)                        (activation ``bernoulli``)
2. action counts  c(o, .) ~ Multinomial(m(o), pi(. | o, mu_hat))
3. transitions    X(o, a, .) ~ Multinomial(c(o, a), P(. | o, a, mu_hat)),
                  Y(o, .) ~ Multinomial(n(o) - m(o), P0(. | o, mu_hat)),
                  n' = sum_{o,a} X(o, a, .) + sum_o Y(o, .).

B_t = 0 is a step in which nobody decides (a time step of a timed game, MODEL.md section 9):
m = c = X = 0 and every agent moves by P0.

Two implementations of the same law:

* ``step`` (numpy, any B_t): one call per step, vectorised over replicas; numpy's samplers
  (O(1) per draw whatever the counts), so a step costs O(R |O|^2 |A|) whatever N is. It is the
  reference, and the path for B_t > 1, where the per-step overhead is shared by B_t decisions.
* ``sequential`` (compiled, every B_t in {0, 1}, subset activation): the whole time loop in one
  compiled call. The one active agent is at o with probability n(o) / N, then a ~ pi(.|o, mu_hat)
  and o' ~ P(.|o, a, mu_hat), three categorical draws by inverse CDF from uniforms drawn up front
  by the caller; idle agents that do not stay draw their multinomials from the caller's
  ``numpy.random.Generator`` *inside* the compiled loop (numba's Generator.binomial is numpy's
  algorithm, and the multinomial is numpy's sequence of binomials), so the compiled path
  consumes exactly the stream the numpy loop it replaces consumed: the same draws (tested).

The policy is given as data, not as a callable: a table pi (T, O, A) (``TABLE``), the
population-aware softmax theta[k(t), o, a] + sum_j W[o, a, j] mu_hat(j) (``SOFTMAX``), or
the same softmax of the previous step's mean action a_bar (A + 1 entries, idle agents as the
no-op A) in place of mu_hat (``MEAN_ACTION``, mf-q's Boltzmann policy with its scale and
temperature folded into theta and W). The
kernels are the game's static P and P0 or its compiled kernel (``tmfcli.model.compiled``).
Rewards are not drawn: the callers evaluate them afterwards on the recorded counts, in one
batched call per block of steps (the chain's law does not depend on them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
from numba import types

from tmfcli import seeds
from tmfcli.errors import NumericalError
from tmfcli.model.compiled import KERNEL, no_kernel
from tmfcli.model.games.base import Array, Game
from tmfcli.model.games.checks import TOLERANCE, check_table, show_mu

__all__ = ["SOFTMAX", "TABLE", "ChainPolicy", "Step", "can_compile", "check_rewards",
           "policy_on_flow", "raise_bad_kernel", "rows_ok", "sequential", "step", "stochastic",
           "tagged"]

TABLE, SOFTMAX, MEAN_ACTION = 0, 1, 2  # policy modes of the compiled chain


def stochastic(p: Array) -> Array:
    """Clip round-off negatives and renormalise, as numpy's multinomial checks sum(p) <= 1."""
    p = np.clip(p, 0.0, None)
    return p / p.sum(axis=-1, keepdims=True)


def kernel_at(game: Game, table: str, mu: Array, t: int) -> Array:
    """P (R, O, A, O) (``table`` "P") or P0 (R, O, O) at the replicas' mu_hat (R, O), step t:
    checked where the chain meets it (``checks.check_table``: finite, rows of non-negative
    entries summing to 1; the entry, the step and the distribution named), then cleaned of
    round-off (``stochastic``). A defect the probes of ``tmf validate`` missed stops the run
    instead of being renormalised away."""
    O, A = game.n_obs, game.n_act
    values = np.asarray(game.transition(mu, t) if table == "P" else
                        game.idle_transition(mu, t), dtype=float)
    check_table(game, table, values, (O, A, O) if table == "P" else (O, O), mu, True,
                np.full(mu.shape[0], t))
    return stochastic(values)


def check_rewards(game: Game, r: Array, r0: Array, mu: Array, steps: np.ndarray) -> None:
    """Rewards r (..., L, O, A) and r0 (..., L, O) evaluated at the distributions mu
    (..., L, O) of steps ``steps`` (L,) along sampled paths: when one is not finite, the error
    of ``checks.check_table`` (the entry, the step and the distribution). One ``isfinite``
    pass over arrays the caller already holds."""
    if np.isfinite(r).all() and np.isfinite(r0).all():
        return
    O, A = game.n_obs, game.n_act
    at = np.broadcast_to(np.asarray(steps), mu.shape[:-1]).reshape(-1)
    flat = mu.reshape(-1, O)
    check_table(game, "r", r.reshape(-1, O, A), (O, A), flat, False, at)
    check_table(game, "r0", r0.reshape(-1, O), (O,), flat, False, at)


# --- the numpy step (reference; any B_t) -------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One step for R replicas: m (R, O), c (R, O, A), X (R, O, A, O), Y (R, O, O) or None
    (nobody idle, or idle agents stay: then Y = diag(n - m)), and the next counts (R, O)."""

    m: np.ndarray
    c: np.ndarray
    X: np.ndarray
    Y: np.ndarray | None
    next: np.ndarray


def active_counts(rng: np.random.Generator, n: np.ndarray, B: int | np.ndarray, N: int,
                  activation: str) -> np.ndarray:
    """The active agents per observation, m (R, O), of counts n (R, O) when B of N act:
    nobody at B = 0, everyone at B = N, exactly B drawn without replacement (``subset``; B may
    be one number per replica) or each agent with probability B / N (``bernoulli``)."""
    if np.ndim(B) == 0:
        if B == N:
            return n
        if B == 0:
            return np.zeros_like(n)
    if activation == "subset":
        return mvhg(rng, n, B)
    return rng.binomial(n, np.asarray(B) / N)


def mvhg(rng: np.random.Generator, n: np.ndarray, B: int | np.ndarray) -> np.ndarray:
    """m ~ MultivariateHypergeometric(n, B) per row of n (R, O), by the conditional form
    m(o) ~ Hypergeometric(good = n(o), bad = sum_{o' > o} n(o'), draws = B - sum_{o' < o} m(o'))."""
    R, O = n.shape
    m = np.empty_like(n)
    left = np.broadcast_to(np.asarray(B, dtype=np.int64), (R,)).copy()
    rest = n.sum(axis=1)
    for o in range(O - 1):
        rest = rest - n[:, o]
        m[:, o] = rng.hypergeometric(n[:, o], rest, left)  # accepts draws = 0
        left = left - m[:, o]
    m[:, O - 1] = left
    return m


def step(rng: np.random.Generator, n: np.ndarray, m: np.ndarray, pi: Array, P: Array,
         P0: Array | None) -> Step:
    """Steps 2 and 3 of the chain (module docstring) given the active counts m (R, O).

    pi (R, O, A), P (R, O, A, O) and P0 (R, O, O) are conditionals (cleaned by ``stochastic``
    by the caller); ``P0`` None means idle agents stay. The draws, in this order: the action
    counts, the moves of the active agents, then (only when somebody is idle and P0 is given)
    the moves of the idle agents."""
    c = rng.multinomial(m, pi)                                          # (R, O, A)
    X = rng.multinomial(c, P)                                           # (R, O, A, O)
    nxt = X.sum(axis=(1, 2))
    idle = n - m
    Y = None
    if idle.any():
        if P0 is None:
            nxt = nxt + idle
        else:
            Y = rng.multinomial(idle, P0)
            nxt = nxt + Y.sum(axis=1)
    return Step(m=m, c=c, X=X, Y=Y, next=nxt)


# --- the compiled sequential chain (every B_t in {0, 1}) ---------------------------------------
@dataclass(frozen=True)
class ChainPolicy:
    """A policy as the compiled chain reads it: mode ``TABLE`` with ``table`` (T, O, A), or
    ``SOFTMAX`` with theta (K, O, A), W (O, A, O) and the time index (T,)."""

    mode: int
    table: Array
    theta: Array
    W: Array
    index: np.ndarray

    @classmethod
    def of(cls, policy: Any, T: int) -> ChainPolicy:
        """A ``TabularPolicy`` or ``PopulationPolicy`` (tmfcli.model.policy) as data."""
        from tmfcli.model.policy import PopulationPolicy, TabularPolicy

        if isinstance(policy, TabularPolicy):
            return cls.of_table(np.asarray(policy.pi, dtype=float))
        assert isinstance(policy, PopulationPolicy)
        return cls.of_softmax(policy.theta, policy.W, policy.rows(T))

    @classmethod
    def of_table(cls, pi: Array) -> ChainPolicy:
        return cls(TABLE, _writeable(pi), np.zeros((1, 1, 1)), np.zeros((1, 1, 1)),
                   np.zeros(1, dtype=np.int64))

    @classmethod
    def of_softmax(cls, theta: Array, W: Array, index: np.ndarray) -> ChainPolicy:
        return cls(SOFTMAX, np.zeros((1, 1, 1)), _writeable(theta), _writeable(W),
                   np.ascontiguousarray(index, dtype=np.int64))


def _writeable(a: Array) -> Array:
    out = np.ascontiguousarray(a, dtype=np.float64)
    return out if out.flags.writeable else out.copy()


def can_compile(game: Game) -> bool:
    """Whether the compiled chain can step ``game``: static dynamics or a compiled kernel."""
    return game.static_dynamics or game.compiled_dynamics() is not None


_RNG = nb.typeof(seeds.fixed(seeds.PLACEHOLDER))
_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_f4 = types.float64[:, :, :, ::1]
_i1 = types.int64[::1]
_i2 = types.int64[:, ::1]
_i3 = types.int64[:, :, ::1]
_i4 = types.int64[:, :, :, ::1]
_i5 = types.int64[:, :, :, :, ::1]


@nb.njit(types.void(_f3, _f2, _f1, _i1, types.int64, types.int64, _f1, _f1), cache=True)
def policy_row(theta: Array, W: Array, mu: Array, index: Any, t: int, o: int,
               z: Array, out: Array) -> None:  # pragma: no cover - compiled
    """softmax_a(theta[k(t), o, a] + sum_j W[o*A + a, j] mu(j)) into out (A,); W as (O*A, O)."""
    A = out.shape[0]
    O = mu.shape[0]
    k = index[t]
    top = -np.inf
    for a in range(A):
        s = theta[k, o, a]
        row = o * A + a
        for j in range(O):
            s += W[row, j] * mu[j]
        z[a] = s
        if s > top:
            top = s
    total = 0.0
    for a in range(A):
        e = np.exp(z[a] - top)
        out[a] = e
        total += e
    for a in range(A):
        out[a] = out[a] / total


@nb.njit(types.int64(_f1, types.int64, types.int64, types.float64), cache=True)
def _inverse_in(p: Array, start: int, K: int, u: float) -> int:  # pragma: no cover
    """``_inverse`` on the K entries p[start:start + K]."""
    s = 0.0
    k = 0
    for j in range(K - 1):
        s += p[start + j]
        if s <= u:
            k += 1
        else:
            break
    return k


@nb.njit(types.int64(_f1, types.int64, types.float64), cache=True)
def _inverse(p: Array, start: int, u: float) -> int:  # pragma: no cover - compiled
    """#{j < K - 1: p[start] + ... + p[start + j] <= u}: the category of u, K = len(p) - start
    entries from start (the last category takes whatever the cumulative sum leaves)."""
    return _inverse_in(p, start, p.shape[0] - start, u)


@nb.njit(types.void(_RNG, types.int64, _f1, types.int64, _i1), cache=True)
def multinomial(rng: Any, n: int, p: Array, start: int,
                out: Any) -> None:  # pragma: no cover - compiled
    """out (K,) ~ Multinomial(n, p[start:start + K]) by numpy's sequence of binomials (the
    same draws as ``Generator.multinomial``): x_j ~ Bin(n - x_0 - ... - x_{j-1},
    p_j / (1 - p_0 - ... - p_{j-1})), the last category takes the rest."""
    K = out.shape[0]
    for j in range(K):
        out[j] = 0
    left = n
    remaining = 1.0
    for j in range(K - 1):
        x = rng.binomial(left, p[start + j] / remaining)
        out[j] = x
        left -= x
        if left <= 0:
            break
        remaining -= p[start + j]
    if left > 0:
        out[K - 1] = left


@nb.njit(types.void(_f1, types.int64), cache=True)
def _clean_rows(P: Array, K: int) -> None:  # pragma: no cover - compiled
    """``stochastic`` on the rows of K entries of P (flat): clip negatives, divide by the
    row sum (summed as numpy's reduction does: the first entry plus the sum of the rest)."""
    for start in range(0, P.shape[0], K):
        for j in range(K):
            if P[start + j] < 0.0:
                P[start + j] = 0.0
        rest = 0.0
        for j in range(1, K):
            rest += P[start + j]
        total = P[start] + rest
        for j in range(K):
            P[start + j] = P[start + j] / total


@nb.njit(types.boolean(_f1, types.int64), cache=True)
def rows_ok(P: Array, K: int) -> bool:  # pragma: no cover - compiled
    """Whether every row of K entries of P (flat) is a distribution: entries finite and
    >= -TOLERANCE, sums within TOLERANCE of 1 (``checks.check_table``'s test, in the loop
    that has just written the kernel: O(|P|) against the O(|P|) of writing it)."""
    for start in range(0, P.shape[0], K):
        total = 0.0
        low = 0.0
        for j in range(K):
            x = P[start + j]
            total += x
            low = min(low, x)
        # a nan or an infinite entry makes the sum nan or infinite: the test below fails
        if not abs(total - 1.0) <= TOLERANCE or low < -TOLERANCE:
            return False
    return True


def raise_bad_kernel(game: Game, bad: np.ndarray, mu: Array, kernel: Any, params: Array,
                     idle_moves: bool) -> None:
    """Raise the error of the numpy path (``kernel_at``) for the kernel a compiled loop found
    defective: ``bad`` (2,) holds its step t (or -1: nothing found), ``mu`` (O,) the
    distribution it was written at. The kernel is written again at (mu, t) and checked by
    ``checks.check_table``, which names the game, the entry, the step and the distribution."""
    t = int(bad[0])
    if t < 0:
        return
    O, A = game.n_obs, game.n_act
    P, P0 = np.empty(O * A * O), np.empty(O * O)
    kernel(np.ascontiguousarray(mu, dtype=np.float64), t, params, P, P0)
    steps = np.array([t])
    check_table(game, "P", P.reshape(1, O, A, O), (O, A, O), mu[None], True, steps)
    if idle_moves:
        check_table(game, "P0", P0.reshape(1, O, O), (O, O), mu[None], True, steps)
    raise NumericalError(f"the compiled kernel of game {game.name} is not stochastic at step "
                         f"{t}, {show_mu(game, mu)}", "check the game's kernels (tmf validate)")


@nb.njit(types.void(_RNG, _i1, _i2, _f2, _f2, types.int64, types.int64, _f3, _f3, _f3, _i1,
                    KERNEL, _f1, types.boolean, types.boolean, _f1, _f1, types.int64,
                    types.boolean, _i3, _i3, _i4, _i5, _i4, _f4, _i3, _i1), cache=True)
def sequential(rng: Any, batches: Any, who: Any, u_act: Array, u_next: Array, N: int,
               mode: int, table: Array, theta: Array, W3: Array, index: Any, kernel: Any,
               kparams: Array, dynamic: bool, idle_stays: bool, P_static: Array,
               P0_static: Array, start: int, record: bool, n: Any, m: Any, c: Any, X: Any,
               Y: Any, pi_out: Array, actor: Any,
               bad: Any) -> None:  # pragma: no cover - compiled
    """Steps start .. start + L - 1 of R replicas of the chain with every B_t in {0, 1}
    (subset activation), L = who.shape[0]: who (L, R) in [0, N), u_act and u_next (L, R) in
    [0, 1) are the pre-drawn streams of the active agent; rng draws the idle agents' moves
    when they do not stay (in the order t, replica, o).

    n (R, T+1, O) holds n[:, start] on entry and is filled up to start + L; batches (T,) and
    a policy table (T, O, A) are indexed by the step t = start + j too, the outputs below by
    j. With ``record``, m (R, L, O), c (R, L, O, A), X (R, L, O, A, O) (zero on entry) get
    the step's counts and pi_out (R, L, O, A) the softmax row of the active agent's
    observation (mode SOFTMAX); without, pass (1, ...) arrays. Y (R, L, O, O) is written when
    idle agents move (pass a (1, 1, 1, 1) array otherwise). actor (R, L, 3) receives
    (o, a, o'), or (-1, -1, -1) at a step with B_t = 0.
    The kernels are P_static (O*A*O,) and P0_static (O*O,) (cleaned), or, when ``dynamic``,
    written by ``kernel`` at mu_hat and checked (``rows_ok``; P0 when idle agents move, then
    cleaned like ``stochastic``): at the first defective one the loop stops with
    bad (2,) = (t, r), else bad = (-1, -1) (``raise_bad_kernel`` reports it).
    """
    L, R = who.shape
    O = n.shape[2]
    A = table.shape[2] if mode == 0 else theta.shape[2]
    W = W3.reshape(W3.shape[0] * W3.shape[1], W3.shape[2]) if mode != 0 \
        else np.zeros((1, 1))
    mu = np.empty(O)
    a_bar = np.zeros((R, A + 1))  # MEAN_ACTION: the previous step's mean action per replica
    a_bar[:, A] = 1.0  # before the first step: everybody idle (callers start at step 0)
    z = np.empty(A)
    probs = np.empty(A)
    P = P_static.copy()
    P0 = P0_static.copy()
    moved = np.empty(O, dtype=np.int64)
    bad[0] = -1
    bad[1] = -1
    for j in range(L):
        t = start + j
        for r in range(R):
            for o in range(O):
                mu[o] = n[r, t, o] / N
            if dynamic:
                kernel(mu, t, kparams, P, P0)
                if not rows_ok(P, O) or (not idle_stays and not rows_ok(P0, O)):
                    bad[0] = t
                    bad[1] = r
                    return
                if not idle_stays:
                    _clean_rows(P0, O)
            for o in range(O):
                n[r, t + 1, o] = n[r, t, o]
            o = -1
            a = -1
            o2 = -1
            if batches[t] == 1:
                # the active agent: the first o whose cumulative count exceeds who
                k = who[j, r]
                s = 0
                o = O - 1
                for i in range(O):
                    s += n[r, t, i]
                    if s > k:
                        o = i
                        break
                if mode == 0:
                    for b in range(A):
                        probs[b] = table[t, o, b]
                else:
                    policy_row(theta, W, mu if mode == 1 else a_bar[r], index, t, o, z, probs)
                    if record:
                        for b in range(A):
                            pi_out[r, j, o, b] = probs[b]
                a = _inverse(probs, 0, u_act[j, r])
                o2 = _inverse_in(P, (o * A + a) * O, O, u_next[j, r])
                if record:
                    m[r, j, o] = 1
                    c[r, j, o, a] = 1
                    X[r, j, o, a, o2] = 1
                n[r, t + 1, o] -= 1
            if not idle_stays:
                for i in range(O):
                    idle = n[r, t, i] - (1 if i == o else 0)
                    multinomial(rng, idle, P0, i * O, moved)
                    for q in range(O):
                        Y[r, j, i, q] = moved[q]
                for i in range(O):
                    n[r, t + 1, i] = 0
                for i in range(O):
                    for q in range(O):
                        n[r, t + 1, q] += Y[r, j, i, q]
            if o2 >= 0:
                n[r, t + 1, o2] += 1
            actor[r, j, 0] = o
            actor[r, j, 1] = a
            actor[r, j, 2] = o2
            if mode == 2:
                for b in range(A + 1):
                    a_bar[r, b] = 0.0
                if a >= 0:
                    a_bar[r, a] = 1.0 / N
                a_bar[r, A] = (N - batches[t]) / N


def kernels_of(game: Game, clean: bool = True) -> tuple[Any, Array, bool, Array, Array]:
    """(kernel, params, dynamic, P (O*A*O,), P0 (O*O,)) for ``sequential``: the static kernels
    (P cleaned by ``stochastic`` when ``clean``, P0 always), or the game's compiled kernel with
    scratch arrays."""
    O, A = game.n_obs, game.n_act
    if game.static_dynamics:
        P = np.asarray(game.transition(game.mu0, 0), dtype=float)
        P = (stochastic(P) if clean else P).ravel()
        P0 = stochastic(np.asarray(game.idle_transition(game.mu0, 0), dtype=float)).ravel()
        return no_kernel, np.zeros(0), False, _writeable(P), _writeable(P0)
    compiled = game.compiled_dynamics()
    assert compiled is not None
    kernel, params = compiled
    return kernel, _writeable(params), True, np.zeros(O * A * O), np.zeros(O * O)


# --- the compiled tagged chain (the N-agent epsilon at every B_t in {0, 1}) ---------------------
@nb.njit(types.void(_RNG, _i1, _i1, _f1, _f1, _f1, types.int64, types.int64,
                    types.int64, _f3, _f3, _f3, _i1, types.int64, _f3, _f3, _f3, _i1,
                    KERNEL, _f1, types.boolean, types.boolean, _f1, _f1, _i1, _i1,
                    _f2, _i1, _i1, _i1), cache=True)
def tagged(rng: Any, batches: Any, who: Any, u_act: Array, u_next: Array, u_idle: Array,
           N: int, start: int, mode: int, table: Array, theta: Array, W3: Array, index: Any,
           mode_x: int, table_x: Array, theta_x: Array, W3_x: Array, index_x: Any,
           kernel: Any, kparams: Array, dynamic: bool, idle_stays: bool, P_static: Array,
           P0_static: Array, n: Any, x: Any, mu_out: Array, where: Any,
           action: Any, bad: Any) -> None:  # pragma: no cover - compiled
    """Steps start .. start + L - 1 of one replica of the chain with a tagged agent, every B_t
    in {0, 1} (subset activation), L = who.shape[0] (``tmfcli.simulation.epsilon``).

    State: the others' counts n (O,) (summing to N - 1) and the tagged observation x (1,);
    mu_hat = (n + e_x) / N. At a step with B_t = 1 the acting agent is who[j] in [0, N): the
    tagged agent when who[j] = N - 1, else the other located by who[j] in the cumulative
    counts; it draws a from its policy (the others': mode/table/theta/W/index; the tagged
    agent: the same with ``_x``) by inverse CDF of u_act[j] and o' ~ P(.|o, a) of u_next[j].
    When idle agents move, the idle others draw their multinomials from ``rng`` (order: o),
    and the tagged agent, when idle, moves by P0(.|x) with u_idle[j]. P (cleaned by
    ``stochastic``) and P0 are static or written at mu_hat by ``kernel``.

    Recorded per step j: mu_out[j] = mu_hat, where[j] = x, action[j] = the tagged agent's
    action or -1 when it is idle (the caller evaluates the rewards). A kernel written by
    ``kernel`` is checked before it is cleaned (``rows_ok``, as ``sequential``): at the first
    defective one the loop stops with bad (2,) = (t, j), else bad = (-1, -1).
    """
    L = who.shape[0]
    O = n.shape[0]
    A = table.shape[2] if mode == 0 else theta.shape[2]
    W = W3.reshape(W3.shape[0] * W3.shape[1], W3.shape[2]) if mode == 1 else np.zeros((1, 1))
    Wx = W3_x.reshape(W3_x.shape[0] * W3_x.shape[1], W3_x.shape[2]) if mode_x == 1 \
        else np.zeros((1, 1))
    mu = np.empty(O)
    z = np.empty(A)
    probs = np.empty(A)
    P = P_static.copy()
    P0 = P0_static.copy()
    moved = np.empty(O, dtype=np.int64)
    nxt = np.empty(O, dtype=np.int64)
    bad[0] = -1
    bad[1] = -1
    for j in range(L):
        t = start + j
        xt = x[0]
        for o in range(O):
            mu[o] = (n[o] + (1 if o == xt else 0)) / N
            mu_out[j, o] = mu[o]
        where[j] = xt
        action[j] = -1
        if dynamic:
            kernel(mu, t, kparams, P, P0)
            if not rows_ok(P, O) or (not idle_stays and not rows_ok(P0, O)):
                bad[0] = t
                bad[1] = j
                return
            _clean_rows(P, O)
            if not idle_stays:
                _clean_rows(P0, O)
        me = False
        o = -1
        o2 = -1
        if batches[t] == 1:
            k = who[j]
            me = k == N - 1
            if me:
                o = xt
            else:
                s = 0
                o = O - 1
                for i in range(O):
                    s += n[i]
                    if s > k:
                        o = i
                        break
            if me:
                if mode_x == 0:
                    for b in range(A):
                        probs[b] = table_x[t, o, b]
                else:
                    policy_row(theta_x, Wx, mu, index_x, t, o, z, probs)
            elif mode == 0:
                for b in range(A):
                    probs[b] = table[t, o, b]
            else:
                policy_row(theta, W, mu, index, t, o, z, probs)
            a = _inverse(probs, 0, u_act[j])
            o2 = _inverse_in(P, (o * A + a) * O, O, u_next[j])
            if me:
                action[j] = a
            else:
                n[o] -= 1
        if not idle_stays:
            for i in range(O):
                nxt[i] = 0
            for i in range(O):
                multinomial(rng, n[i], P0, i * O, moved)
                for q in range(O):
                    nxt[q] += moved[q]
            for i in range(O):
                n[i] = nxt[i]
            if not me:
                x[0] = _inverse_in(P0, xt * O, O, u_idle[j])
        if o2 >= 0:
            if me:
                x[0] = o2
            else:
                n[o2] += 1


@nb.njit(types.void(_f1, _f2, types.float64, _f1, _f1, _f1), cache=True)
def flow_step(mu: Array, pi_t: Array, a_t: float, P: Array, P0: Array,
              nxt: Array) -> None:  # pragma: no cover - compiled
    """One step of the mean-field flow (MODEL.md section 2) into ``nxt``: mu_{t+1}(q) =
    sum_o mu(o) [alpha_t sum_a pi_t(a | o) P(o, a, q) + (1 - alpha_t) P0(o, q)], with P
    (O*A*O,) and P0 (O*O,) flattened; the compiled on-flow loops of every policy share it."""
    O, A = pi_t.shape
    nxt[:] = 0.0
    for o in range(O):
        w = mu[o]
        if w == 0.0:
            continue
        for b in range(A):
            p = a_t * w * pi_t[o, b]
            base = (o * A + b) * O
            for q in range(O):
                nxt[q] += p * P[base + q]
        if a_t != 1.0:
            w0 = (1.0 - a_t) * w
            for q in range(O):
                nxt[q] += w0 * P0[o * O + q]


@nb.njit(types.void(_f3, _f3, _i1, _f1, _f1, KERNEL, _f1, types.boolean, _f1, _f1, _f3),
         cache=True)
def population_on_flow(theta: Array, W3: Array, index: Any, alpha: Array, mu0: Array,
                       kernel: Any, kparams: Array, dynamic: bool, P_static: Array,
                       P0_static: Array, out: Array) -> None:  # pragma: no cover - compiled
    """A population-aware policy along its own mean-field flow (``policy.on_flow``): out
    (T, O, A) with pi_t = softmax(theta[k(t)] + W mu_t) and mu_{t+1} = Phi_t(mu_t) (MODEL.md
    section 2) from mu_0 = mu0. The kernels: P (O*A*O,) and P0 (O*O,) static, or written at
    mu_t by ``kernel`` when ``dynamic``.
    """
    T, O, A = out.shape
    W = W3.reshape(O * A, O)
    P = P_static.copy()
    P0 = P0_static.copy()
    mu = mu0.copy()
    nxt = np.empty(O)
    z = np.empty(A)
    row = np.empty(A)
    for t in range(T):
        if dynamic:
            kernel(mu, t, kparams, P, P0)
        for o in range(O):
            policy_row(theta, W, mu, index, t, o, z, row)
            for b in range(A):
                out[t, o, b] = row[b]
        flow_step(mu, out[t], alpha[t], P, P0, nxt)
        mu[:] = nxt


def policy_on_flow(setting: Any, policy: Any) -> Array:
    """``tmfcli.model.policy.on_flow`` (pi_t = policy(. | ., mu_bar_t) along its own flow,
    (T, O, A)) with the time loop compiled for a population-aware policy on a game whose
    kernels compile; the numpy reference otherwise (and to raise its errors)."""
    from tmfcli.model.policy import PopulationPolicy, check_shape, on_flow

    game, T = setting.game, setting.T
    if not (isinstance(policy, PopulationPolicy) and can_compile(game)):
        return on_flow(setting, policy)
    check_shape(policy, setting)
    kernel, kparams, dynamic, P, P0 = kernels_of(game, clean=False)
    pi = np.empty((T, game.n_obs, game.n_act))
    population_on_flow(_writeable(policy.theta), _writeable(policy.W), policy.rows(T),
                       _writeable(setting.alpha), _writeable(game.mu0), kernel, kparams,
                       dynamic, P, P0, pi)
    if not np.all(np.isfinite(pi)):
        return on_flow(setting, policy)
    return pi
