"""The yardstick of training at B = 1: one sampled agent decision of ``tmf train`` against a
minimal compiled count-chain step, side by side in one run; how the cost per round grows with
N (flat at fixed B / N, linear at B = 1); the up-front time estimate of train against the
measured time. CPU time of this process (the machine may be shared); nothing asserted.

The minimal step (``minimal_chain`` below, written for this comparison only) is what one
decision of the N-agent chain at B = 1 cannot avoid: find the acting agent's observation in
the counts, the softmax row pi(. | o, mu_hat) (O A multiply-adds), draw a and o' by inverse
CDF, update two counts; when idle agents move (queueing), the game's kernel at mu_hat and the
idle agents' multinomials. A training decision also pays its share of the critic, of the
``inner_steps`` gradient passes (each recomputes the softmax row and the importance ratio) and
of the exact evaluation of the iteration.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numba as nb
import numpy as np

from tmfcli.commands.train import config_of
from tmfcli.io import budget
from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.learning.critic import aggregate
from tmfcli.learning.policy_class import PolicyClass, on_flow_fast
from tmfcli.learning.rollouts import sample
from tmfcli.learning.tmf_pg import sampled_gradient
from tmfcli.learning.train import train
from tmfcli.model.exploitability import evaluate
from tmfcli.simulation.chain import kernels_of, multinomial, policy_row

SPECS = ("experiments/train-resource.yaml", "experiments/train-queue.yaml")
# the yardstick steps one agent per step: measured on the per-step forms of the paper games
# (a timed game adds a time stage, B = 0, after every decision)
PER_STEP = {SPECS[0]: "game.name=resource_selection_per_step",
            SPECS[1]: "game.name=queueing_per_step"}


@nb.njit(cache=True)
def minimal_chain(rng: Any, n: Any, T: int, N: int, theta: Any, W: Any, index: Any,
                  kernel: Any, kparams: Any, dynamic: bool, idle_moves: bool, P: Any,
                  P0: Any, who: Any, u: Any) -> int:  # pragma: no cover - compiled
    """T steps at B = 1 of one replica: the least a decision costs (module docstring); who (T,)
    and u (T, 2) are drawn up front (numpy, vectorised, as the training chain draws them)."""
    O = n.shape[0]
    A = theta.shape[2]
    mu = np.empty(O)
    z = np.empty(A)
    pi = np.empty(A)
    moved = np.zeros(O, dtype=np.int64)
    nxt = np.zeros(O, dtype=np.int64)
    check = 0
    for t in range(T):
        for o in range(O):
            mu[o] = n[o] / N
        if dynamic:
            kernel(mu, t, kparams, P, P0)
        k = who[t]
        s = 0
        o = O - 1
        for i in range(O):
            s += n[i]
            if s > k:
                o = i
                break
        policy_row(theta, W, mu, index, t, o, z, pi)
        a = 0
        c = pi[0]
        while a < A - 1 and c <= u[t, 0]:
            a += 1
            c += pi[a]
        base = (o * A + a) * O
        o2 = 0
        c = P[base]
        while o2 < O - 1 and c <= u[t, 1]:
            o2 += 1
            c += P[base + o2]
        n[o] -= 1
        if idle_moves:
            nxt[:] = 0
            for i in range(O):
                multinomial(rng, n[i], P0, i * O, moved)
                for q in range(O):
                    nxt[q] += moved[q]
            n[:] = nxt
        n[o2] += 1
        check += a
    return check


def yardstick_ns(path: str) -> float:
    """Nanoseconds per step of ``minimal_chain`` on the spec's game at B = 1 (median of 5)."""
    s = setting(specs.load(path, ["population.batch=1", PER_STEP[path]]))
    game, N = s.game, int(s.agents or 1)
    cls = PolicyClass.of(s, "round")
    zero = cls.zeros()
    kernel, kparams, dynamic, P, P0 = kernels_of(game)
    O, A = game.n_obs, game.n_act
    W = np.ascontiguousarray(zero.W.reshape(O * A, O))
    T = 200_000
    index = np.zeros(T, dtype=np.int64)
    times = []
    for _ in range(6):
        n = np.zeros(O, dtype=np.int64)
        n[0] = N
        rng = np.random.default_rng(0)
        start = time.process_time()
        who, u = rng.integers(0, N, T), rng.random((T, 2))
        minimal_chain(rng, n, T, N, zero.theta[:1].copy(), W, index, kernel, kparams, dynamic,
                      not game.idle_stays, P.copy(), P0.copy(), who, u)
        times.append(time.process_time() - start)
    return 1e9 * float(np.median(times[1:])) / T


def decision_ns(path: str, repeats: int = 5) -> dict[str, float]:
    """Nanoseconds per sampled decision of one tmf-pg iteration at B = 1, by part (medians)."""
    spec = specs.load(path, ["population.batch=1", PER_STEP[path]])
    s = setting(spec)
    config = config_of(spec)
    cls = PolicyClass.of(s, config.time_index)
    params = cls.zeros()
    parts: dict[str, list[float]] = {"rollouts": [], "critic": [], "gradients": [],
                                     "evaluation": []}
    decisions = 1
    for i in range(repeats + 1):
        t0 = time.process_time()
        batch = sample(s, cls.view(params), config.rollouts, np.random.default_rng(i))
        t1 = time.process_time()
        critic = aggregate(batch, cls.index)
        t2 = time.process_time()
        for _ in range(config.inner_steps):
            sampled_gradient(cls, params, batch, critic)
        t3 = time.process_time()
        evaluate(s, on_flow_fast(cls, params, s))
        t4 = time.process_time()
        decisions = batch.decisions
        if i:
            for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                value_ns = 1e9 * value / decisions
                parts[key].append(value_ns)
    out = {key: float(np.median(v)) for key, v in parts.items()}
    out["total"] = sum(out.values())
    return out


def train_seconds(path: str, overrides: list[str], **change: Any) -> tuple[float, int]:
    spec = specs.load(path, overrides)
    s = setting(spec)
    start = time.process_time()
    train(s, replace(config_of(spec), **change))
    return time.process_time() - start, s.T


def main() -> None:
    print("one sampled decision at B = 1 (tmf-pg, one iteration: 4 rollouts x 2000 steps, "
          "10 inner steps) against the minimal compiled step, ns per decision")
    print(f"  {'spec':<32} {'minimal':>8} {'rollout':>8} {'critic':>7} {'10 grads':>8} "
          f"{'eval':>6} {'total':>7} {'ratio':>6} {'rollout ratio':>13}")
    for path in SPECS:
        floor = yardstick_ns(path)
        parts = decision_ns(path)
        print(f"  {path:<32} {floor:>8.0f} {parts['rollouts']:>8.0f} {parts['critic']:>7.0f} "
              f"{parts['gradients']:>8.0f} {parts['evaluation']:>6.0f} {parts['total']:>7.0f} "
              f"{parts['total'] / floor:>6.1f} {parts['rollouts'] / floor:>13.1f}")
    print("cost per round of horizon (tmf-pg, 2 rounds, 5 iterations x 4 rollouts; CPU s per "
          "iteration and round)")
    print(f"  {'N':>9} {'B = N/10':>9} {'B = N':>8}")
    for N in (10**3, 10**5, 10**7):
        row = []
        for batch in ({"fraction": 0.1}, "all"):
            value = batch if isinstance(batch, str) else "{fraction: 0.1}"
            sec, _ = train_seconds(SPECS[0], [f"population.agents={N}",
                                              f"population.batch={value}"], iterations=5)
            row.append(sec / 5 / 2)
        print(f"  {N:>9} {row[0]:>9.4f} {row[1]:>8.4f}")
    print("at B = 1 (N decisions per round): CPU s per iteration and round, and per decision")
    print(f"  {'N':>9} {'s/round':>8} {'us/decision':>11}")
    for N in (100, 1000, 10_000):
        sec, T = train_seconds(SPECS[0], [f"population.agents={N}", "population.batch=1"],
                               iterations=3)
        print(f"  {N:>9} {sec / 3 / 2:>8.4f} {1e6 * sec / 3 / (4 * T):>11.2f}")
    print("up-front time estimate of tmf train (io/budget.py) against the measured CPU time "
          "(tmf-pg with its yardstick and eps_N)")
    print(f"  {'run':<48} {'estimate s':>10} {'measured s':>10} {'ratio':>6}")
    from tmfcli.commands.train import run

    for path, overrides in ((SPECS[0], ["population.batch=1"]),
                            (SPECS[1], ["population.batch=1"]),
                            (SPECS[1], ["population.batch=sqrt"]),
                            (SPECS[0], ["population.batch=all", "train.iterations=200"])):
        spec = specs.load(path, overrides)
        estimate = budget.check(spec, "train").seconds
        start = time.process_time()
        run(spec)
        measured = time.process_time() - start
        name = f"{path.split('/')[-1]} {' '.join(overrides)}"
        print(f"  {name:<48} {estimate:>10.2f} {measured:>10.2f} {estimate / measured:>6.2f}")


if __name__ == "__main__":
    main()
