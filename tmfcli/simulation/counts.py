"""The N-agent system with B_t of N agents acting per step, simulated exactly on counts.

Agents are exchangeable, so the count vector n_t (n_t(o) agents at o) is a Markov chain
(MODEL.md section 4). One step, for R replicas at once, with mu_hat_t = n_t / N:

1. active counts  m ~ MultivariateHypergeometric(n_t, B_t)        (activation "subset")
                  m(o) ~ Bin(n_t(o), alpha_t)                        (activation "bernoulli")
2. action counts  c(o, .) ~ Multinomial(m(o), pi(. | o, mu_hat_t))
3. next counts    n_{t+1} = sum_{o,a} Multinomial(c(o,a), P(. | o, a, mu_hat_t))
                          + sum_o Multinomial(n_t(o) - m(o), P0(. | o, mu_hat_t))

This is the law of the agent-by-agent system, not an approximation: given the counts, which
agents at o are active is irrelevant (exchangeability), the number of active agents at o under a
uniform B-subset is hypergeometric, and independent categorical draws of agents that share a
distribution add up to a multinomial. Every sampler used (hypergeometric, binomial,
multinomial) is O(1) per draw in the counts, so a step costs O(R |O|^2 |A|), whatever N is.

Shapes: counts n, m (R, O); c (R, O, A); mu_hat (R, T+1, O) in the output; returns (R,).

Seeding (``tmfcli.seeds``, stream ``SIMULATOR_UNIT`` below the seed given): replica r's
randomness never depends on how many replicas are asked for.

* General path: replicas are simulated in blocks of ``BLOCK``; block b draws from unit b of
  the seed and is always simulated at full size, then truncated, so the first R replicas are
  the same for any larger R.
* Sequential path (all B_t = 1, subset activation; idle agents stay, or the game's kernels
  compile): replica r draws from its own unit r; it pre-draws its uniform streams in chunks of
  ``CHUNK`` steps (then, when idle agents move, their multinomials in the compiled loop).
  Compiled (``chain.sequential``) for tables and population-aware softmax policies.

Units have explicit spawn keys, so a ``SeedSequence`` that has already spawned children gives
the same result as a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tmfcli import seeds
from tmfcli.errors import NumericalError, SpecError
from tmfcli.model.flow import rewards_at
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, PopulationPolicy, TabularPolicy, check_shape
from tmfcli.model.setting import Setting
from tmfcli.simulation import chain

__all__ = ["BLOCK", "CHUNK", "Rollouts", "gaps", "initial_counts", "path_of", "rounded_counts",
           "simulate", "simulate_agents"]

BLOCK = 25          # replicas per generator in the general path (part of the seeding contract)
CHUNK = 1024        # steps of uniforms pre-drawn per replica in the sequential path
MAX_AGENTS = 10**9  # numpy's hypergeometric needs fewer than 10^9 items of each kind

Seed = seeds.Seed
OnStep = Callable[[int, int], None]


@dataclass(frozen=True)
class Rollouts:
    """R replicas of the N-agent system.

    mu_hat  (R, T+1, O)  empirical distributions n_t / N
    returns (R,)         population-average discounted return: sum_t gamma^t (total reward at
                         step t) / N, with setting.gamma per step
    """

    mu_hat: Array
    returns: Array


def gaps(rollouts: Rollouts, mu_bar: Array) -> tuple[Array, Array]:
    """Per replica, max_t and mean_t over t = 0..T of ||mu_hat_t - mu_bar_t||_1; each (R,)."""
    l1 = np.abs(rollouts.mu_hat - mu_bar[None]).sum(axis=-1)
    return l1.max(axis=1), l1.mean(axis=1)


# --- seeding and checks ----------------------------------------------------------------------
def _child(root: np.random.SeedSequence, index: int) -> np.random.Generator:
    """The generator of unit ``index`` (a replica, or a block of replicas) below root."""
    return seeds.generator(root, seeds.SIMULATOR_UNIT, index)


def check_inputs(setting: Setting, policy: Policy, replicas: int, activation: str,
           init: str) -> tuple[int, np.ndarray]:
    if setting.agents is None or setting.batches is None:
        raise SpecError("population.agents", "missing (simulation needs a finite population)",
                        "add population.agents and population.batch")
    N, batches = int(setting.agents), np.asarray(setting.batches, dtype=np.int64)
    if N < 1 or N >= MAX_AGENTS:
        raise SpecError("population.agents", f"{N} agents is outside what the exact sampler "
                        "handles", f"use between 1 and {MAX_AGENTS - 1} agents")
    # B_t = 0 (nobody decides) is a time step of a timed game (MODEL.md section 9)
    if batches.min() < 0 or batches.max() > N or batches.max() < 1:
        raise SpecError("population.batch", f"batch {int(batches.max())} is not between 1 and "
                        f"agents ({N})", f"use a batch between 1 and {N}")
    if activation not in ("subset", "bernoulli"):
        raise SpecError("population.activation", f"unknown value {activation!r}",
                        "use one of: subset, bernoulli")
    if init not in ("iid", "rounded"):
        raise SpecError("population.init", f"unknown value {init!r}", "use one of: iid, rounded")
    if replicas < 1:
        raise SpecError("simulate.replicas", f"{replicas} is too small", "use an integer >= 1")
    check_shape(policy, setting)
    return N, batches


def rounded_counts(mu0: Array, N: int) -> np.ndarray:
    """Deterministic rounding of N mu0: floors, then one more agent to each of the largest
    remainders (ties to the lower observation) until the counts sum to N."""
    exact = N * np.asarray(mu0, dtype=float)
    counts = np.floor(exact).astype(np.int64)
    short = N - int(counts.sum())
    if short > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    elif short < 0:  # only through rounding of mu0 entries that sum to 1 + tiny
        order = np.argsort(exact - counts, kind="stable")
        counts[order[:-short]] -= 1
    return counts


def initial_counts(rng: np.random.Generator, mu0: Array, N: int, size: int,
                   init: str) -> np.ndarray:
    """Counts (size, O) of N agents at t = 0: iid draws from mu0, or the rounding of N mu0."""
    if init == "rounded":
        return np.tile(rounded_counts(mu0, N), (size, 1))
    return rng.multinomial(N, stochastic(np.asarray(mu0, dtype=float)), size=size)


stochastic = chain.stochastic


def _cumulative(p: Array) -> Array:
    """Cumulative sums with the last entry exactly 1, so a uniform in [0, 1) always lands."""
    cum = np.cumsum(p, axis=-1)
    cum[..., -1] = 1.0
    return cum


# --- the count-based simulator ---------------------------------------------------------------
def simulate(setting: Setting, policy: Policy, replicas: int, seed: Seed,
             activation: str = "subset", init: str = "iid", on_step: OnStep | None = None,
             method: str = "auto") -> Rollouts:
    """R replicas of the N-agent system, exactly, by simulating counts (module docstring).

    ``method``: "auto" uses the sequential path when every B_t = 1 with subset activation
    (``path_of``), compiled (``chain.sequential``) when the policy is a table or the
    population-aware softmax and the game's kernels compile; "numpy" takes the numpy loop of
    the same path when idle agents stay (the reference: the same draws); "general" forces the
    block path (also taken when neither applies). ``on_step``
    receives (steps done, steps in total) now and then.
    """
    N, batches = check_inputs(setting, policy, replicas, activation, init)
    sequential = path_of(setting, activation) == "sequential"
    if method not in ("auto", "general", "numpy"):
        raise ValueError(f"unknown method {method!r}")
    root = seeds.root(seed)
    stays = setting.game.idle_stays
    if sequential and method == "auto":
        if chain.can_compile(setting.game) and isinstance(policy, (TabularPolicy,
                                                                    PopulationPolicy)):
            return _sequential_compiled(setting, policy, replicas, root, init, N, on_step)
        if stays:
            return _sequential(setting, policy, replicas, root, init, N, on_step)
    if sequential and method == "numpy" and stays:
        return _sequential(setting, policy, replicas, root, init, N, on_step)
    n_blocks = -(-replicas // BLOCK)
    T = setting.T
    parts = []
    for b in range(n_blocks):
        parts.append(_block(setting, policy, _child(root, b), N, batches, activation, init,
                            _offset(on_step, b * T, n_blocks * T)))
    mu_hat = np.concatenate([p.mu_hat for p in parts])[:replicas]
    returns = np.concatenate([p.returns for p in parts])[:replicas]
    return Rollouts(mu_hat=mu_hat, returns=returns)


def _offset(on_step: OnStep | None, done: int, total: int) -> Callable[[int], None] | None:
    """A block's tick(t) reported as on_step(done + t, total)."""
    if on_step is None:
        return None
    return lambda t: on_step(done + t, total)


def active_counts(rng: np.random.Generator, n: np.ndarray, B: int, N: int,
                  activation: str) -> np.ndarray:
    """The active counts of one step (``chain.active_counts``)."""
    return chain.active_counts(rng, n, B, N, activation)


_mvhg = chain.mvhg


def _block(setting: Setting, policy: Policy, rng: np.random.Generator, N: int,
           batches: np.ndarray, activation: str, init: str,
           tick: Callable[[int], None] | None) -> Rollouts:
    """BLOCK replicas from one generator, vectorised over replicas; loop over t only."""
    game, T = setting.game, setting.T
    O = game.n_obs
    n = initial_counts(rng, game.mu0, N, BLOCK, init)
    mu_hat = np.empty((BLOCK, T + 1, O))
    mu_hat[:, 0] = n / N
    total = np.zeros(BLOCK)
    discount = setting.gamma ** np.arange(T)
    if game.static_dynamics:  # evaluate (and clean) the kernels once
        P_static = stochastic(game.transition(game.mu0, 0))
        P0_static = stochastic(game.idle_transition(game.mu0, 0))
    every = max(1, T // 200)
    for t in range(T):
        mu = mu_hat[:, t]
        B = int(batches[t])
        m = active_counts(rng, n, B, N, activation)
        pi = policy.probs(mu, t)
        P = np.broadcast_to(P_static, (BLOCK, *P_static.shape)) if game.static_dynamics \
            else chain.kernel_at(game, "P", mu, t)
        idle = n - m
        P0 = None
        if idle.any() and not game.idle_stays:  # with everybody active, P0 is never used
            P0 = np.broadcast_to(P0_static, (BLOCK, O, O)) if game.static_dynamics \
                else chain.kernel_at(game, "P0", mu, t)
        out = chain.step(rng, n, m, stochastic(pi), P, P0)
        reward = (out.c * game.reward(mu, t)).sum(axis=(1, 2))
        if idle.any():
            reward = reward + (idle * game.idle_reward(mu, t)).sum(axis=1)
        total += discount[t] * reward
        n = out.next
        mu_hat[:, t + 1] = n / N
        if tick is not None and ((t + 1) % every == 0 or t + 1 == T):
            tick(t + 1)
    _check_finite(total)
    return Rollouts(mu_hat=mu_hat, returns=total / N)


def _check_finite(total: Array) -> None:
    if not np.all(np.isfinite(total)):
        raise NumericalError("the simulated returns are not finite",
                             "check the game's rewards on empirical distributions (e.g. log 0)")


def _sequential(setting: Setting, policy: Policy, replicas: int, root: np.random.SeedSequence,
                init: str, N: int, on_step: OnStep | None) -> Rollouts:
    """B_t = 1 and idle agents stay: per step and replica, three categorical draws.

    The active agent is uniform among N, so its observation has law n_t / N (drawn as an
    integer k in [0, N) located in the cumulative counts); then a ~ pi(.|o, mu_hat_t) and
    o' ~ P(.|o, a, mu_hat_t) by inverse CDF of pre-drawn uniforms. Only n(o) and n(o') change.
    """
    game, T = setting.game, setting.T
    O, R = game.n_obs, replicas
    gens = [_child(root, r) for r in range(R)]
    n = np.stack([initial_counts(g, game.mu0, N, 1, init)[0] for g in gens])   # (R, O)
    rows = np.arange(R)
    mu_hat = np.empty((R, T + 1, O))
    mu_hat[:, 0] = n / N
    total = np.zeros(R)
    discount = setting.gamma ** np.arange(T)
    tabular = isinstance(policy, TabularPolicy)
    pi_cum = _cumulative(policy.pi) if isinstance(policy, TabularPolicy) else None
    P_cum = _cumulative(game.transition(game.mu0, 0)) if game.static_dynamics else None
    every = max(1, T // 200)
    for start in range(0, T, CHUNK):
        # each replica draws whole chunks from its own generator, whatever T and R are
        who = np.stack([g.integers(0, N, CHUNK) for g in gens], axis=1)     # (CHUNK, R)
        u_act = np.stack([g.random(CHUNK) for g in gens], axis=1)
        u_next = np.stack([g.random(CHUNK) for g in gens], axis=1)
        for j in range(min(CHUNK, T - start)):
            t = start + j
            mu = mu_hat[:, t]
            o = (np.cumsum(n, axis=1) <= who[j, :, None]).sum(axis=1)      # (R,)
            if tabular:
                cum_a = pi_cum[t, o]                                        # type: ignore[index]
            else:
                cum_a = _cumulative(policy.probs(mu, t)[rows, o])
            a = (cum_a <= u_act[j, :, None]).sum(axis=1)
            cum_o = P_cum[o, a] if P_cum is not None else \
                _cumulative(game.transition(mu, t)[rows, o, a])
            o2 = (cum_o <= u_next[j, :, None]).sum(axis=1)
            r0 = game.idle_reward(mu, t)                                    # (R, O)
            step_reward = game.reward(mu, t)[rows, o, a] + (n * r0).sum(axis=1) - r0[rows, o]
            total += discount[t] * step_reward
            n[rows, o] -= 1
            n[rows, o2] += 1
            mu_hat[:, t + 1] = n / N
            if on_step is not None and ((t + 1) % every == 0 or t + 1 == T):
                on_step(t + 1, T)
    _check_finite(total)
    return Rollouts(mu_hat=mu_hat, returns=total / N)


def _sequential_compiled(setting: Setting, policy: Policy, replicas: int,
                         root: np.random.SeedSequence, init: str, N: int,
                         on_step: OnStep | None) -> Rollouts:
    """The sequential path with the time loop compiled (``chain.sequential``), chunk by chunk.

    Replica r draws from unit r: its start, then per chunk the acting agent, the uniforms of
    its action and of its next observation (as ``_sequential``), then, when idle agents move,
    their multinomials inside the compiled loop. When idle agents stay the draws are those of
    ``_sequential`` (one pass over all replicas) and so are the bytes; the returns are summed
    in the same order."""
    game, T = setting.game, setting.T
    O, R = game.n_obs, replicas
    stays = game.idle_stays
    gens = [_child(root, r) for r in range(R)]
    n = np.zeros((R, T + 1, O), dtype=np.int64)
    n[:, 0] = np.stack([initial_counts(g, game.mu0, N, 1, init)[0] for g in gens])
    total = np.zeros(R)
    discount = setting.gamma ** np.arange(T)
    cp = chain.ChainPolicy.of(policy, T)
    kernel, params, dynamic, P, P0 = chain.kernels_of(game, clean=False)
    ones = np.asarray(setting.batches, dtype=np.int64)  # 1, or 0 on a timed game's time stages
    unused = seeds.fixed(seeds.PLACEHOLDER)  # idle agents stay: the chain draws nothing
    rows = np.arange(R)[:, None]
    one = np.zeros((1, 1, 1), dtype=np.int64)
    dummy = np.zeros((1, 1, 1, 1))
    bad = np.full(2, -1, dtype=np.int64)  # (t, replica) of a defective kernel (chain.rows_ok)
    for start in range(0, T, CHUNK):
        L = min(CHUNK, T - start)
        actor = np.empty((R, L, 3), dtype=np.int64)
        if stays:  # all replicas in one call, as _sequential draws them
            who = np.stack([g.integers(0, N, CHUNK) for g in gens], axis=1)  # (CHUNK, R)
            u_act = np.stack([g.random(CHUNK) for g in gens], axis=1)
            u_next = np.stack([g.random(CHUNK) for g in gens], axis=1)
            chain.sequential(unused, ones, np.ascontiguousarray(who[:L]),
                             np.ascontiguousarray(u_act[:L]), np.ascontiguousarray(u_next[:L]),
                             N, cp.mode, cp.table, cp.theta, cp.W, cp.index, kernel, params,
                             dynamic, True, P, P0, start, False, n, one, one[..., None],
                             one[..., None, None], one[..., None], dummy, actor, bad)
            chain.raise_bad_kernel(game, bad, n[bad[1], bad[0]] / N, kernel, params, False)
        else:  # idle agents move: replica r's multinomials come from its own generator
            Y = np.zeros((1, L, O, O), dtype=np.int64)
            for r, g in enumerate(gens):
                who1 = g.integers(0, N, CHUNK)[:L, None]
                u_act1, u_next1 = g.random(CHUNK)[:L, None], g.random(CHUNK)[:L, None]
                state = n[r:r + 1]
                chain.sequential(g, ones, np.ascontiguousarray(who1),
                                 np.ascontiguousarray(u_act1), np.ascontiguousarray(u_next1),
                                 N, cp.mode, cp.table, cp.theta, cp.W, cp.index, kernel,
                                 params, dynamic, False, P, P0, start, False, state, one,
                                 one[..., None], one[..., None, None], Y, dummy,
                                 actor[r:r + 1], bad)
                chain.raise_bad_kernel(game, bad, n[r, bad[0]] / N, kernel, params, True)
        steps = np.arange(start, start + L)
        mu = n[:, steps] / N                                               # (R, L, O)
        o, a = actor[..., 0], actor[..., 1]  # -1 where nobody acted (B_t = 0)
        r_, r0 = rewards_at(game, mu, steps)
        chain.check_rewards(game, r_, r0, mu, steps)
        cols = np.arange(L)[None, :]
        acted = o >= 0
        step_reward = np.where(acted, r_[rows, cols, o, a], 0.0) \
            + (n[:, steps] * r0).sum(axis=-1) - np.where(acted, r0[rows, cols, o], 0.0)
        for j in range(L):
            total += discount[start + j] * step_reward[:, j]
        if on_step is not None:
            on_step(start + L, T)
    _check_finite(total)
    return Rollouts(mu_hat=n / N, returns=total / N)


# --- the agent-by-agent reference ------------------------------------------------------------
def simulate_agents(setting: Setting, policy: Policy, replicas: int, seed: Seed,
                    activation: str = "subset", init: str = "iid",
                    on_step: OnStep | None = None) -> Rollouts:
    """The same law, agent by agent (arrays of N observations): the reference for tests and
    benchmarks. Replica r uses unit r of the seed. Cost O(N) per step and replica."""
    N, batches = check_inputs(setting, policy, replicas, activation, init)
    game, T = setting.game, setting.T
    O = game.n_obs
    root = seeds.root(seed)
    mu_hat = np.empty((replicas, T + 1, O))
    returns = np.zeros(replicas)
    discount = setting.gamma ** np.arange(T)
    for r in range(replicas):
        rng = _child(root, r)
        if init == "rounded":
            obs = np.repeat(np.arange(O), rounded_counts(game.mu0, N))
        else:
            obs = rng.choice(O, size=N, p=stochastic(np.asarray(game.mu0, dtype=float)))
        for t in range(T):
            mu = np.bincount(obs, minlength=O) / N
            mu_hat[r, t] = mu
            B = int(batches[t])
            if activation == "subset":
                active = np.zeros(N, dtype=bool)
                active[rng.choice(N, size=B, replace=False)] = True
            else:
                active = rng.random(N) < B / N
            who = np.flatnonzero(active)
            o = obs[who]
            a = _categorical(rng, policy.probs(mu, t)[o])
            reward = game.reward(mu, t)[o, a].sum()
            new = obs.copy()
            new[who] = _categorical(rng, game.transition(mu, t)[o, a])
            idle = np.flatnonzero(~active)
            if idle.size:
                if not game.idle_stays:
                    new[idle] = _categorical(rng, game.idle_transition(mu, t)[obs[idle]])
                reward += game.idle_reward(mu, t)[obs[idle]].sum()
            returns[r] += discount[t] * reward
            obs = new
            if on_step is not None:
                on_step(r * T + t + 1, replicas * T)
        mu_hat[r, T] = np.bincount(obs, minlength=O) / N
    return Rollouts(mu_hat=mu_hat, returns=returns / N)


def _categorical(rng: np.random.Generator, p: Array) -> np.ndarray:
    """One draw per row of p (k, n) by inverse CDF."""
    u = rng.random((p.shape[0],))
    return (_cumulative(p) <= u[:, None]).sum(axis=1)


def path_of(setting: Setting, activation: str) -> str:
    """Which path ``simulate`` takes: "sequential" or "general" (see the module docstring)."""
    batches = setting.batches
    # B_t = 1, or 0 on the time stages of a timed game (MODEL.md section 9)
    one = batches is not None and bool(np.all(np.isin(np.asarray(batches), (0, 1))))
    game = setting.game
    return "sequential" if one and activation == "subset" and (
        game.idle_stays or chain.can_compile(game)) else "general"
