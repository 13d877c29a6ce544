"""The N-agent epsilon: what one agent gains by deviating while N - 1 agents play pi.

MODEL.md section 8. N - 1 agents play the policy pi; one *tagged* agent plays a deviation sigma.
With G^sigma the tagged agent's discounted return (setting.gamma per step) the deviation gain is

    gain_N(sigma; pi) = E[G^sigma] - E[G^pi],     eps_N(pi) = sup_sigma gain_N(sigma; pi).

The default deviation is the mean-field best response to mu^pi (time-indexed, one backward pass
on the flow of ``policy.on_flow``), so gain_N is a lower bound on eps_N(pi); at a mean-field
equilibrium the theory predicts eps_N = O(1/sqrt N) whatever B. The tagged agent is followed
individually inside the exact count chain (``tmfcli.simulation.counts``); the other N - 1 agents
stay counts, which leaves the law unchanged because they are exchangeable. State: the others'
counts n_t (O,), summing to N - 1, and the tagged observation x_t; mu_hat_t = (n_t + e_{x_t}) / N.

One step (shapes per replica):

1. activation. ``subset``: the tagged agent is active with probability B_t / N; given that, the
   others hold a uniform (B_t - 1)-subset, given not a B_t-subset of the N - 1 (together: a
   uniform B_t-subset of all N), so m ~ MultivariateHypergeometric(n_t, B_t - active).
   ``bernoulli``: the tagged agent and each other agent independently with alpha_t = B_t / N.
2. the others: c ~ Multinomial(m(o), pi(.|o, mu_hat_t)), next counts as in counts.py, idle
   agents under P0(.|o, mu_hat_t).
3. the tagged agent: active, a ~ sigma(.|x_t, mu_hat_t), reward r(x_t, a, mu_hat_t),
   x_{t+1} ~ P(.|x_t, a, mu_hat_t); idle, reward r0(x_t, mu_hat_t), x_{t+1} ~ P0(.|x_t, mu_hat_t).

Initial state: ``iid``: x_0 ~ mu0 and n_0 ~ Multinomial(N - 1, mu0); ``rounded``: the N agents
hold the rounding of N mu0 and the tagged one is uniform among them.

**Paired replicas (common random numbers).** The run under pi and the run under sigma use the
same seeds, and the tagged agent draws everything (activation, action, next observation) by
inverse CDF from its own stream of uniforms, so both runs consume identical randomness. While
the tagged agent's path is the same in both runs, so is everything else; when the others' laws do
not depend on mu_hat (tabular pi, static dynamics), the others' counts are the same in both runs
whatever the tagged agent does. So sigma = pi gives a gain of exactly 0 in every replica, and the
paired differences G^sigma - G^pi carry far less variance than two independent means. The 95%
interval is the normal one of the R paired differences.

**Paths and seeding** (streams of ``tmfcli.seeds`` below the seed given, as in counts.py;
replica r's draws never depend on R):

* general: blocks of ``BLOCK`` = 100 replicas (more than the simulator's 25: a step's cost is
  mostly per call, and 100 is simulate's default number of replicas; 2.6 times faster than 25
  at R = 100 on queueing, B = 1); block b draws the others from ``EPSILON_OTHERS`` (numpy's
  samplers) and the tagged agent from ``EPSILON_TAGGED`` (uniforms, 3 per step);
* sequential (all B_t = 1, subset activation, idle agents stay): replica r uses its stream
  ``EPSILON_REPLICA`` r and pre-draws CHUNK steps of uniforms: who acts (an integer in [0, N);
  N - 1 is the tagged agent), the action and the next observation. Both runs are stacked as
  2R rows over the same uniforms.
* compiled (every B_t in {0, 1}, subset activation, tables or population-aware policies,
  kernels that compile; ``_compiled``): the tagged chain of ``chain.tagged``, replica by
  replica, on the sequential path's stream (plus, when idle agents move, a fourth uniform per
  step for the tagged agent's idle move and the idle others' multinomials); the same bytes as
  the sequential path when idle agents stay.

Cost: O(R |O|^2 |A|) per step, nothing grows with N; loop over t only, vectorised over replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tmfcli import seeds
from tmfcli.analysis.fit import normal_interval
from tmfcli.model.flow import mean_field_flow, rewards_at
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, PopulationPolicy, TabularPolicy
from tmfcli.model.setting import Setting
from tmfcli.model.values import backward
from tmfcli.simulation import chain
from tmfcli.simulation.counts import (
    CHUNK,
    OnStep,
    Seed,
    _check_finite,
    _cumulative,
    _offset,
    check_inputs,
    path_of,
    rounded_counts,
    stochastic,
)

__all__ = ["BLOCK", "EpsilonEstimate", "TaggedReturns", "best_response", "epsilon_n",
           "tagged_returns"]

BLOCK = 100  # replicas per generator in the general path (part of the seeding contract)


@dataclass(frozen=True)
class EpsilonEstimate:
    """The deviation gain E[G^sigma] - E[G^pi] of the tagged agent, with its 95% interval.

    ``return_policy`` and ``return_deviation`` are the mean tagged returns under pi and sigma
    over the same ``replicas`` paired replicas (``mean`` is their difference).
    """

    mean: float
    ci_low: float
    ci_high: float
    replicas: int
    return_policy: float
    return_deviation: float


@dataclass(frozen=True)
class TaggedReturns:
    """Paired tagged returns (R,) under the policy and under the deviation (same seeds)."""

    policy: Array
    deviation: Array

    @property
    def gains(self) -> Array:
        """Per-replica deviation gains G^sigma - G^pi (R,)."""
        return self.deviation - self.policy


def best_response(setting: Setting, policy: Policy) -> TabularPolicy:
    """The (unregularised, greedy) mean-field best response to mu^pi, a table (T, O, A)."""
    flow = mean_field_flow(setting, chain.policy_on_flow(setting, policy))
    return TabularPolicy(backward(flow, setting.gamma, None).policy)


def epsilon_n(setting: Setting, policy: Policy, replicas: int, seed: Seed,
              deviation: Policy | None = None, activation: str = "subset",
              init: str = "iid", on_step: OnStep | None = None) -> EpsilonEstimate:
    """Monte Carlo estimate of the deviation gain of ``deviation`` (default: the mean-field best
    response to mu^pi, a lower bound on eps_N(pi)) with a 95% normal interval over paired
    replicas. The policies are those of the N-agent system (``setting.agents``, batches).
    ``on_step`` receives (steps done, steps in total) now and then."""
    runs = tagged_returns(setting, policy, replicas, seed, deviation, activation, init, on_step)
    mean, low, high = normal_interval(runs.gains)
    return EpsilonEstimate(mean=mean, ci_low=low, ci_high=high, replicas=replicas,
                           return_policy=float(runs.policy.mean()),
                           return_deviation=float(runs.deviation.mean()))


def tagged_returns(setting: Setting, policy: Policy, replicas: int, seed: Seed,
                   deviation: Policy | None = None, activation: str = "subset",
                   init: str = "iid", on_step: OnStep | None = None) -> TaggedReturns:
    """The tagged agent's returns under ``policy`` and under ``deviation``, paired replicas."""
    N, batches = check_inputs(setting, policy, replicas, activation, init)
    sigma = best_response(setting, policy) if deviation is None else deviation
    check_inputs(setting, sigma, replicas, activation, init)
    root = seeds.root(seed)
    if compiled_path(setting, policy, sigma, activation):
        return _compiled(setting, policy, sigma, replicas, root, init, N, on_step)
    if path_of(setting, activation) == "sequential" and setting.game.idle_stays:
        return _sequential(setting, policy, sigma, replicas, root, init, N, on_step)
    n_blocks = -(-replicas // BLOCK)
    T = setting.T
    # when the others' law ignores mu_hat they evolve the same way in both runs (same draws):
    # then one pass follows both tagged agents over one set of others, with identical numbers
    shared = isinstance(policy, TabularPolicy) and setting.game.static_dynamics
    runs = [(policy, sigma)] if shared else [(policy,), (sigma,)]
    parts = []
    for b in range(n_blocks):
        done = b * len(runs)
        parts.append(np.concatenate([
            _block(setting, policy, tagged, root, b, N, batches, activation, init,
                   _offset(on_step, (done + i) * T, n_blocks * len(runs) * T))
            for i, tagged in enumerate(runs)]))                               # (2, BLOCK)
    both = np.concatenate(parts, axis=1)[:, :replicas]
    return TaggedReturns(policy=both[0], deviation=both[1])


def compiled_path(setting: Setting, policy: Policy, sigma: Policy, activation: str) -> bool:
    """Whether the tagged chain runs compiled (``chain.tagged``): every B_t in {0, 1}, subset
    activation, both policies tables or population-aware softmaxes, kernels that compile."""
    known = (TabularPolicy, PopulationPolicy)
    batches = np.asarray(setting.batches)
    return (activation == "subset" and bool(np.all(batches <= 1))
            and isinstance(policy, known) and isinstance(sigma, known)
            and chain.can_compile(setting.game))


def _compiled(setting: Setting, policy: Policy, sigma: Policy, replicas: int,
              root: np.random.SeedSequence, init: str, N: int,
              on_step: OnStep | None) -> TaggedReturns:
    """The tagged chain compiled, replica by replica, one pass per tagged policy.

    Replica r draws from its stream ``EPSILON_REPLICA`` r, as the numpy sequential path: its
    start, then per chunk of ``CHUNK`` steps the acting agent who (an integer in [0, N); N - 1
    is the tagged agent), the uniforms of the action and of the next observation and, when idle
    agents move, of the tagged agent's idle move, then (inside the compiled loop) the idle
    others' multinomials. Both passes replay the same stream, so while the tagged agent's path
    is the same in both, so is everything else. When idle agents stay this is the numpy
    sequential path's stream, and the returns are the same bytes (tested).
    """
    game, T = setting.game, setting.T
    O = game.n_obs
    batches = np.ascontiguousarray(setting.batches, dtype=np.int64)
    kernel, params, dynamic, P, P0 = chain.kernels_of(game)
    discount = setting.gamma ** np.arange(T)
    others = chain.ChainPolicy.of(policy, T)
    totals = np.zeros((2, replicas))
    every = max(1, replicas // 20)
    bad = np.full(2, -1, dtype=np.int64)  # (t, j) of a defective kernel (chain.rows_ok)
    for r in range(replicas):
        for i, tagged_policy in enumerate((policy, sigma)):
            g = seeds.generator(root, seeds.EPSILON_REPLICA, r)
            n0, x0 = _start(g, game.mu0, N, 1, init)
            n, x = n0[0].copy(), x0.copy()
            me = chain.ChainPolicy.of(tagged_policy, T)
            total = 0.0
            for start in range(0, T, CHUNK):
                L = min(CHUNK, T - start)
                who = g.integers(0, N, CHUNK)
                u_act, u_next = g.random(CHUNK), g.random(CHUNK)
                u_idle = u_next if game.idle_stays else g.random(CHUNK)
                mu = np.empty((L, O))
                where = np.empty(L, dtype=np.int64)
                action = np.empty(L, dtype=np.int64)
                chain.tagged(g, batches, who[:L], u_act[:L], u_next[:L], u_idle[:L], N, start,
                             others.mode, others.table, others.theta, others.W, others.index,
                             me.mode, me.table, me.theta, me.W, me.index, kernel, params,
                             dynamic, game.idle_stays, P, P0, n, x, mu, where, action, bad)
                chain.raise_bad_kernel(game, bad, mu[bad[1]], kernel, params,
                                       not game.idle_stays)
                reward = _tagged_rewards(setting, mu, where, action, start)
                total = float(np.cumsum(np.concatenate(
                    [[total], discount[start:start + L] * reward]))[-1])
            totals[i, r] = total
        if on_step is not None and ((r + 1) % every == 0 or r + 1 == replicas):
            on_step((r + 1) * T, replicas * T)
    _check_finite(totals)
    return TaggedReturns(policy=totals[0], deviation=totals[1])


def _tagged_rewards(setting: Setting, mu: Array, where: np.ndarray, action: np.ndarray,
                    start: int) -> Array:
    """The tagged agent's reward at each step (L,): r(x, a, mu_hat) when it acted, else
    r0(x, mu_hat)."""
    game = setting.game
    L = mu.shape[0]
    steps = np.arange(L)
    r, r0 = rewards_at(game, mu, start + steps)
    chain.check_rewards(game, r, r0, mu, start + steps)
    idle = r0[steps, where]
    acted = action >= 0
    if not acted.any():
        return idle
    return np.where(acted, r[steps, where, np.maximum(action, 0)], idle)


def _start(rng: np.random.Generator, mu0: Array, N: int, size: int,
           init: str) -> tuple[np.ndarray, np.ndarray]:
    """Initial others' counts (size, O) and tagged observations (size,) (module docstring)."""
    mu0 = stochastic(np.asarray(mu0, dtype=float))
    if init == "rounded":
        everyone = rounded_counts(mu0, N)
        x = _inverse(np.broadcast_to(_cumulative(everyone / N), (size, len(mu0))),
                     rng.random(size))
        n = np.tile(everyone, (size, 1))
        n[np.arange(size), x] -= 1
        return n, x
    x = _inverse(np.broadcast_to(_cumulative(mu0), (size, len(mu0))), rng.random(size))
    return rng.multinomial(N - 1, mu0, size=size), x


def _inverse(cum: Array, u: Array) -> np.ndarray:
    """Inverse CDF: per row of cum (k, n), the first index whose cumulative exceeds u (k,)."""
    return (cum <= u[:, None]).sum(axis=1)


def _block(setting: Setting, policy: Policy, tagged_policies: tuple[Policy, ...],
           root: np.random.SeedSequence, b: int, N: int, batches: np.ndarray, activation: str,
           init: str, tick: Callable[[int], None] | None) -> Array:
    """Tagged returns (k, BLOCK) of block b, the others playing ``policy``, the tagged agent
    each of the k ``tagged_policies`` over the same uniforms. With k > 1 the others' law must
    not depend on mu_hat (they are simulated once, with the first tagged agent in mu_hat)."""
    game, T = setting.game, setting.T
    O, k = game.n_obs, len(tagged_policies)
    others = seeds.generator(root, seeds.EPSILON_OTHERS, b)
    tagged = seeds.generator(root, seeds.EPSILON_TAGGED, b)
    rows = np.arange(BLOCK)
    n, x0 = _start(tagged, game.mu0, N, BLOCK, init)
    x = np.tile(x0, (k, 1))                                                   # (k, R)
    onehot = np.eye(O, dtype=np.int64)
    total = np.zeros((k, BLOCK))
    discount = setting.gamma ** np.arange(T)
    if game.static_dynamics:
        P_static = stochastic(game.transition(game.mu0, 0))
        P0_static = stochastic(game.idle_transition(game.mu0, 0))
    every = max(1, T // 200)
    for t in range(T):
        mu_k = (n + onehot[x]) / N                                            # (k, R, O)
        mu = mu_k[0]
        B = int(batches[t])
        u = tagged.random((3, BLOCK))
        if B == N:
            active = np.ones(BLOCK, dtype=bool)
            m = n
        else:
            active = u[0] < B / N
            m = chain.active_counts(others, n, B - active, N, activation) \
                if activation == "subset" else chain.active_counts(others, n, B, N, activation)
        P = np.broadcast_to(P_static, (BLOCK, *P_static.shape)) if game.static_dynamics \
            else chain.kernel_at(game, "P", mu, t)
        P0 = None
        if not game.idle_stays:
            P0 = np.broadcast_to(P0_static, (BLOCK, O, O)) if game.static_dynamics \
                else chain.kernel_at(game, "P0", mu, t)
        nxt = chain.step(others, n, m, stochastic(policy.probs(mu, t)), P, P0).next
        # the tagged agents: the same uniforms, each its own policy and mu_hat
        for i, sigma in enumerate(tagged_policies):
            xi, mui = x[i], mu_k[i]
            a = _inverse(_cumulative(sigma.probs(mui, t)[rows, xi]), u[1])
            reward = np.where(active, game.reward(mui, t)[rows, xi, a],
                              game.idle_reward(mui, t)[rows, xi])
            moved = _inverse(_cumulative(P[rows, xi, a]), u[2])
            stayed = xi if P0 is None else _inverse(_cumulative(P0[rows, xi]), u[2])
            total[i] += discount[t] * reward
            x[i] = np.where(active, moved, stayed)
        n = nxt
        if tick is not None and ((t + 1) % every == 0 or t + 1 == T):
            tick(t + 1)
    _check_finite(total)
    return total


def _sequential(setting: Setting, policy: Policy, sigma: Policy, replicas: int,
                root: np.random.SeedSequence, init: str, N: int,
                on_step: OnStep | None) -> TaggedReturns:
    """All B_t = 1, subset activation, idle agents stay: one agent acts per step.

    Rows 0..R-1 run the tagged agent under policy, rows R..2R-1 under sigma, over the same
    uniforms: the acting agent is u_who in [0, N), the tagged agent when u_who = N - 1 (chance
    1/N), else the other located by u_who in the cumulative counts n_t (which sum to N - 1).
    """
    game, T = setting.game, setting.T
    O, R = game.n_obs, replicas
    gens = [seeds.generator(root, seeds.EPSILON_REPLICA, r) for r in range(R)]
    starts = [_start(g, game.mu0, N, 1, init) for g in gens]
    n = np.tile(np.stack([s[0][0] for s in starts]), (2, 1))                # (2R, O)
    x = np.tile(np.array([s[1][0] for s in starts]), 2)                      # (2R,)
    rows = np.arange(2 * R)
    second = rows >= R                                 # rows of the run under sigma
    onehot = np.eye(O, dtype=np.int64)
    total = np.zeros(2 * R)
    discount = setting.gamma ** np.arange(T)
    P_cum = _cumulative(stochastic(game.transition(game.mu0, 0))) if game.static_dynamics \
        else None
    tables = (_cumulative(policy.pi), _cumulative(sigma.pi)) \
        if isinstance(policy, TabularPolicy) and isinstance(sigma, TabularPolicy) else None
    every = max(1, T // 200)
    for start in range(0, T, CHUNK):
        who = np.tile(np.stack([g.integers(0, N, CHUNK) for g in gens], axis=1), 2)
        u_act = np.tile(np.stack([g.random(CHUNK) for g in gens], axis=1), 2)
        u_next = np.tile(np.stack([g.random(CHUNK) for g in gens], axis=1), 2)
        for j in range(min(CHUNK, T - start)):
            t = start + j
            mu = (n + onehot[x]) / N
            me = who[j] == N - 1                                             # (2R,)
            o = np.where(me, x, (np.cumsum(n, axis=1) <= who[j, :, None]).sum(axis=1))
            tagged = bool(me.any())       # rare (chance 2R/N): skip what only it needs
            if tables is not None:
                cum_a = tables[0][t, o]
                if tagged:
                    cum_a = np.where((me & second)[:, None], tables[1][t, o], cum_a)
            else:
                probs = policy.probs(mu, t)[rows, o]
                if tagged:
                    probs = np.where((me & second)[:, None], sigma.probs(mu, t)[rows, o], probs)
                cum_a = _cumulative(probs)
            a = _inverse(cum_a, u_act[j])
            cum_o = P_cum[o, a] if P_cum is not None else \
                _cumulative(stochastic(game.transition(mu, t))[rows, o, a])
            o2 = _inverse(cum_o, u_next[j])
            reward = game.idle_reward(mu, t)[rows, x]
            if tagged:
                reward = np.where(me, game.reward(mu, t)[rows, x, a], reward)
            total += discount[t] * reward
            moves = 1 - me                                 # an other agent moves from o to o2
            n[rows, o] -= moves
            n[rows, o2] += moves
            x = np.where(me, o2, x)
            if on_step is not None and ((t + 1) % every == 0 or t + 1 == T):
                on_step(t + 1, T)
    _check_finite(total)
    return TaggedReturns(policy=total[:R], deviation=total[R:])
