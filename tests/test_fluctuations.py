"""The linear-noise approximation (tmfcli.analysis.fluctuations, MODEL.md section 10).

Closed forms and independent computations: the one-step noise against the empirical covariance
of the exact sampler; the covariance recursion against the exact covariance of the count chain,
enumerated state by state, for a game whose kernels do not depend on mu; the Jacobian and
Hessian against directional differences of Phi_t computed by the flow's own step, and against
the hand-derived derivatives of the SIS map.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tmfcli.analysis import fluctuations as F
from tmfcli.io import resolve
from tmfcli.io import spec as specs
from tmfcli.model.flow import step
from tmfcli.model.games import GAMES, make_game
from tmfcli.model.games.base import Array, Game, internal, static
from tmfcli.model.policy import PopulationPolicy, TabularPolicy
from tmfcli.model.setting import Setting
from tmfcli.simulation.counts import simulate


def one_step(game: Game, N: int, B: int) -> Setting:
    return Setting(game=game, alpha=np.array([B / N]), gamma=1.0, agents=N,
                   batches=np.array([B]))


# --------------------------------------------------------------------------------------------
# S_t against one step of the exact sampler
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["subset", "bernoulli"])
def test_noise_is_the_covariance_of_one_step_of_the_sampler(activation: str) -> None:
    # queueing: service depends on mu, idle agents move too (P0 is not the identity)
    N, B, R = 40, 20, 40_000
    game = make_game("queueing_per_step").with_mu0(np.array([0.4, 0.3, 0.2, 0.1]))  # N mu0
    rng = np.random.default_rng(11)
    pi = rng.dirichlet(np.ones(game.n_act), size=(1, game.n_obs))
    s = one_step(game, N, B)
    rollouts = simulate(s, TabularPolicy(pi), R, seed=5, activation=activation, init="rounded")
    x = rollouts.mu_hat[:, 1]
    empirical = N * np.cov(x.T)
    A, I = F.kernel_parts(s, TabularPolicy(pi), game.mu0[None, None], np.array([0]))
    S = F.noise(game.mu0, A[0, 0], I[0, 0], np.array(B / N), activation, N)
    other = F.noise(game.mu0, A[0, 0], I[0, 0], np.array(B / N),
                    "bernoulli" if activation == "subset" else "subset", N)
    # standard error of a sample covariance of (near-)Gaussian coordinates:
    # sqrt((S_ii S_jj + S_ij^2) / R); 4.5 of them over 16 entries is a false alarm below 1e-4
    d = np.sqrt(np.clip(np.diag(S), 0, None))
    se = np.sqrt((np.outer(d, d) ** 2 + S ** 2) / R) + 1e-12
    assert (np.abs(empirical - S) <= 4.5 * se).all()
    # the test has power: the other rule's formula is rejected on some entry
    assert (np.abs(empirical - other) > 6 * se).any()
    # and the mean is Phi(mu), exactly in expectation
    mean = x.mean(axis=0)
    phi = step(game.mu0, pi[0], game.transition(game.mu0, 0),
               game.idle_transition(game.mu0, 0), B / N)
    assert (np.abs(mean - phi) <= 4.5 * d / math.sqrt(N * R) + 1e-12).all()


def test_noise_at_alpha_zero_and_one_is_the_same_for_both_rules() -> None:
    game = make_game("queueing_per_step")
    mu = np.array([0.4, 0.3, 0.2, 0.1])
    A = np.random.default_rng(0).dirichlet(np.ones(4), size=4)
    I = game.idle_transition(mu, 0)
    for alpha in (0.0, 1.0):
        sub = F.noise(mu, A, I, np.array(alpha), "subset", 50)
        ber = F.noise(mu, A, I, np.array(alpha), "bernoulli", 50)
        np.testing.assert_allclose(sub, ber, atol=1e-15)
    # alpha = 0: nobody acts, every agent moves by P0 (a timed game's time step)
    K = I
    expected = sum(mu[o] * (np.diag(K[o]) - np.outer(K[o], K[o])) for o in range(4))
    np.testing.assert_allclose(F.noise(mu, A, I, np.array(0.0), "subset", 50), expected,
                               atol=1e-15)


# --------------------------------------------------------------------------------------------
# C_t against the exact covariance of the count chain (mu-independent kernels)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Linear(Game):
    """Static random kernels, idle agents move by a random P0: Phi_t is linear in mu."""

    name = "linear_test"
    static_dynamics = True
    idle_stays = False
    time_homogeneous = True

    _P: Array = internal()
    _P0: Array = internal()

    def build(self) -> None:
        rng = np.random.default_rng(5)
        self._set(n_obs=3, n_act=2, mu0=np.array([0.5, 0.3, 0.2]),
                  _P=rng.dirichlet(np.ones(3), size=(3, 2)), _P0=rng.dirichlet(np.ones(3), size=3))

    def transition(self, mu: Array, t: int) -> Array:
        return static(self._P, mu)

    def idle_transition(self, mu: Array, t: int) -> Array:
        return static(self._P0, mu)

    def reward(self, mu: Array, t: int) -> Array:
        return np.zeros((*mu.shape[:-1], 3, 2))


def compositions(N: int, O: int) -> list[tuple[int, ...]]:
    return [c for c in itertools.product(range(N + 1), repeat=O) if sum(c) == N]


def exact_chain(game: Game, pi: Array, N: int, batches: list[int],
                activation: str) -> list[dict[tuple[int, ...], float]]:
    """The law of the counts n_t, state by state: iid start, then per step the active counts
    (multivariate hypergeometric or binomial pmf), then every agent's move one at a time."""
    O = game.n_obs
    P, P0 = game.transition(game.mu0, 0), game.idle_transition(game.mu0, 0)
    laws = [{n: math.factorial(N) / math.prod(math.factorial(k) for k in n)
             * math.prod(p ** k for p, k in zip(game.mu0, n, strict=True))
             for n in compositions(N, O)}]
    for t, B in enumerate(batches):
        A = np.einsum("oa,oaq->oq", pi[t], P)
        nxt: dict[tuple[int, ...], float] = {}
        for n, pn in laws[-1].items():
            for m in itertools.product(*(range(k + 1) for k in n)):
                if activation == "subset":
                    if sum(m) != B:
                        continue
                    pm = math.prod(math.comb(k, j) for k, j in zip(n, m, strict=True)) \
                        / math.comb(N, B)
                else:
                    a = B / N
                    pm = math.prod(math.comb(k, j) * a ** j * (1 - a) ** (k - j)
                                   for k, j in zip(n, m, strict=True))
                if pm == 0:
                    continue
                movers = [A[o] for o in range(O) for _ in range(m[o])] + \
                    [P0[o] for o in range(O) for _ in range(n[o] - m[o])]
                dist = {tuple([0] * O): 1.0}
                for row in movers:
                    new: dict[tuple[int, ...], float] = {}
                    for c, pc in dist.items():
                        for q in range(O):
                            key = tuple(c[i] + (i == q) for i in range(O))
                            new[key] = new.get(key, 0.0) + pc * row[q]
                    dist = new
                for c, pc in dist.items():
                    nxt[c] = nxt.get(c, 0.0) + pn * pm * pc
        laws.append(nxt)
    return laws


@pytest.mark.parametrize("activation", ["subset", "bernoulli"])
@pytest.mark.parametrize("N", [1, 2, 3, 5])
def test_covariance_is_exact_for_mu_independent_kernels(activation: str, N: int) -> None:
    game = Linear()
    pattern = [N, 0, max(1, N // 2), 0, 1]          # B_t = 0: time steps of a timed game
    batches = [min(b, N) for b in pattern]
    T = len(batches)
    pi = np.random.default_rng(3).dirichlet(np.ones(2), size=(T, 3))
    s = Setting(game=game, alpha=np.array(batches) / N, gamma=1.0, agents=N,
                batches=np.array(batches))
    fl = F.fluctuations(s, TabularPolicy(pi), activation=activation)
    assert fl.method == "exact"
    for t, law in enumerate(exact_chain(game, pi, N, batches, activation)):
        states = np.array(list(law), dtype=float) / N
        p = np.array(list(law.values()))
        assert abs(p.sum() - 1) < 1e-12
        mean = p @ states
        cov = (states - mean).T @ ((states - mean) * p[:, None])
        np.testing.assert_allclose(mean, fl.mu_bar[t], atol=1e-12)
        np.testing.assert_allclose(N * cov, fl.C[t], atol=1e-12)
        np.testing.assert_allclose(fl.b[t], 0.0, atol=1e-12)  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# Jacobian and Hessian
# --------------------------------------------------------------------------------------------
def phi(game: Game, policy: TabularPolicy | PopulationPolicy, mu: Array, alpha: float,
        t: int = 0) -> Array:
    """Phi_t(mu) by the flow's own step (a different code path from the module's kernels);
    the policy is read at its row 0, the kernels at step t (a timed game's stage)."""
    return step(mu, policy.probs(mu, 0), game.transition(mu, t), game.idle_transition(mu, t),
                alpha)


def directional(game: Game, policy: TabularPolicy | PopulationPolicy, mu: Array, v: Array,
                alpha: float, t: int = 0) -> tuple[Array, Array]:
    """J v and v^T H v by Richardson-extrapolated central differences of Phi_t along v."""
    def first(h: float) -> Array:
        plus = phi(game, policy, mu + h * v, alpha, t)
        minus = phi(game, policy, mu - h * v, alpha, t)
        return (plus - minus) / (2 * h)

    def second(h: float) -> Array:
        return (phi(game, policy, mu + h * v, alpha, t) - 2 * phi(game, policy, mu, alpha, t)
                + phi(game, policy, mu - h * v, alpha, t)) / h ** 2

    h = 1e-3
    return (4 * first(h / 2) - first(h)) / 3, (4 * second(h / 2) - second(h)) / 3


DATA_GAMES = sorted((Path(__file__).resolve().parent.parent / "experiments" / "games").glob(
    "*.yaml"))


def shipped_game(name: str) -> Game:
    """A registered game by name, or a data game shipped in experiments/games/ by file name."""
    if name in GAMES:
        return make_game(name)
    path = next(p for p in DATA_GAMES if p.name == name)
    return specs.from_dict({"name": "g", "game": {"file": str(path)}}).build_game()


@pytest.mark.parametrize("name", sorted(GAMES) + [p.name for p in DATA_GAMES])
@pytest.mark.parametrize("kind", ["tabular", "population"])
def test_derivatives_against_directional_differences(name: str, kind: str) -> None:
    game = shipped_game(name)
    O, A = game.n_obs, game.n_act
    rng = np.random.default_rng(7)
    T = 3
    mu = rng.dirichlet(np.ones(O), size=T + 1)      # interior points stand in for a flow
    alpha = 0.6
    if kind == "tabular":
        policy: TabularPolicy | PopulationPolicy = TabularPolicy(
            rng.dirichlet(np.ones(A), size=(T, O)))
    else:
        policy = PopulationPolicy(theta=rng.normal(size=(T, O, A)),
                                  W=rng.normal(size=(O, A, O)))
    s = Setting(game=game, alpha=np.full(T, alpha), gamma=1.0)
    der = F.derivatives(s, policy, mu)
    assert der.H is not None
    expect = "exact" if game.static_dynamics and kind == "tabular" else "finite differences"
    assert der.method == expect
    for t in range(T):
        at = TabularPolicy(policy.pi[t:t + 1]) if isinstance(policy, TabularPolicy) else \
            PopulationPolicy(theta=policy.theta[t:t + 1], W=policy.W)
        for _ in range(3):
            v = rng.normal(size=O)
            v -= v.mean()                            # a tangent direction of the simplex
            Jv, vHv = directional(game, at, mu[t], v, alpha, t)
            scale = 1.0 + np.abs(Jv).max()
            np.testing.assert_allclose(der.J[t] @ v, Jv, atol=1e-7 * scale)
            np.testing.assert_allclose(np.einsum("ijk,j,k->i", der.H[t], v, v), vHv,
                                       atol=2e-5 * (1.0 + np.abs(vHv).max()))


def test_finite_differences_recover_the_exact_linear_derivatives() -> None:
    # a population-aware policy with W = 0 is the tabular policy, but takes the finite-difference
    # path: on static dynamics Phi_t is linear, J_t = K_t^T and H_t = 0
    game = make_game("beach_bar")
    rng = np.random.default_rng(2)
    T, O, A = 2, game.n_obs, game.n_act
    theta = rng.normal(size=(T, O, A))
    pi = np.exp(theta) / np.exp(theta).sum(axis=-1, keepdims=True)
    mu = rng.dirichlet(np.ones(O), size=T + 1)
    s = Setting(game=game, alpha=np.full(T, 0.3), gamma=1.0)
    exact = F.derivatives(s, TabularPolicy(pi), mu)
    fd = F.derivatives(s, PopulationPolicy(theta=theta, W=np.zeros((O, A, O))), mu)
    assert exact.method == "exact" and fd.method == "finite differences"
    np.testing.assert_allclose(fd.J, exact.J, atol=1e-9)
    np.testing.assert_allclose(fd.H, 0.0, atol=1e-6)  # type: ignore[arg-type]


def test_sis_derivatives_match_the_hand_derived_ones() -> None:
    # Phi_I(mu) = c mu_S mu_I + (1 - r alpha) mu_I, c = 0.81 alpha pi(out|S); Phi_S = 1 - Phi_I
    # on the simplex, and off it Phi_S = mu_S - c mu_S mu_I + r alpha mu_I (mass conserved)
    game = make_game("sis")
    alpha, r = 0.7, 0.3
    pi = np.array([[[0.6, 0.4], [0.2, 0.8]]])
    mu = np.array([[0.35, 0.65], [0.3, 0.7]])
    s = Setting(game=game, alpha=np.array([alpha]), gamma=1.0)
    der = F.derivatives(s, PopulationPolicy(theta=np.log(pi), W=np.zeros((2, 2, 2))), mu)
    c = 0.81 * alpha * 0.6
    mS, mI = mu[0]
    J_I = np.array([c * mI, c * mS + 1 - r * alpha])
    J = np.array([[1 - c * mI, -c * mS + r * alpha], J_I])
    H_I = np.array([[0.0, c], [c, 0.0]])
    np.testing.assert_allclose(der.J[0], J, atol=1e-9)
    np.testing.assert_allclose(der.H[0, 1], H_I, atol=1e-6)    # type: ignore[index]
    np.testing.assert_allclose(der.H[0, 0], -H_I, atol=1e-6)   # type: ignore[index]


# --------------------------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------------------------
def test_c_mean_is_the_mean_of_expected_norms_and_c_max_agrees_with_paths() -> None:
    rng = np.random.default_rng(0)
    T, O = 6, 3
    J = np.eye(O) + 0.1 * rng.normal(size=(T, O, O))
    S = np.stack([np.cov(rng.normal(size=(O, 10))) for _ in range(T)])
    C = F.covariance(J, S, np.zeros((O, O)))
    # plain Monte Carlo of the recursion, written independently
    M = 100_000
    Z = np.zeros((M, O))
    norms = [np.abs(Z).sum(axis=1)]
    for t in range(T):
        Z = Z @ J[t].T + rng.multivariate_normal(np.zeros(O), S[t], size=M)
        norms.append(np.abs(Z).sum(axis=1))
    paths = np.stack(norms, axis=1)
    # E||Z_t||_1 closed form against 100k paths: 5 standard errors
    se_mean = paths.mean(axis=1).std() / math.sqrt(M)
    assert abs(paths.mean() - F.mean_constant(C)) < 5 * se_mean
    c_max, se = F.max_constant(J, C, np.random.default_rng(1), samples=4000)
    se_paths = paths.max(axis=1).std() / math.sqrt(M)
    assert abs(c_max - paths.max(axis=1).mean()) < 5 * math.hypot(se, se_paths)
    # the control variate helps: its error is below the plain error of 4000 paths
    assert se < paths.max(axis=1).std() / math.sqrt(4000)


def test_target_agents() -> None:
    assert F.target_agents(2.0, 0.01) == 40_000
    assert F.target_agents(0.0, 0.01) == 1
    with pytest.raises(ValueError):
        F.target_agents(1.0, -0.1)


# --------------------------------------------------------------------------------------------
# growing N: the constant (Monte Carlo with the exact sampler) and the bias (exact law)
# --------------------------------------------------------------------------------------------
def per_round_setting(game: Game, N: int, B: int, rounds: int,
                      pi_round: Array) -> tuple[Setting, TabularPolicy]:
    """H rounds = ceil(H N / B) steps; step t uses round floor(t B / N)'s policy."""
    T = math.ceil(rounds * N / B)
    s = Setting(game=game, alpha=np.full(T, B / N), gamma=1.0, agents=N,
                batches=np.full(T, B))
    return s, TabularPolicy(pi_round[np.minimum(np.arange(T) * B // N, rounds - 1)])


def measured_ratio(game: Game, N: int, B: int, rounds: int, pi_round: Array,
                   R: int) -> tuple[float, float, Array]:
    """sqrt(N) e_N / c_max with its sd (both Monte Carlo errors), and the mean-field flow."""
    s, pol = per_round_setting(game, N, B, rounds, pi_round)
    pred = F.predict(s, pol, seed=N, refined=False)
    e_max = np.abs(simulate(s, pol, R, seed=N).mu_hat - pred.fluct.mu_bar).sum(
        axis=-1).max(axis=1)
    ratio = math.sqrt(N) * e_max.mean() / pred.c_max
    sd = ratio * math.hypot(e_max.std(ddof=1) / math.sqrt(R) / e_max.mean(),
                            pred.c_max_se / pred.c_max)
    return ratio, sd, pred.fluct.mu_bar


@pytest.mark.parametrize("batch", ["sqrt", "all"])
def test_queueing_gap_constant_is_predicted_at_growing_n(batch: str) -> None:
    # sqrt(N) e_N / c_max -> 1 (resource selection, B = 1, sqrt N, N: tests/test_bound_check
    # checks the same on its sweep). 200 replicas give e_N to about +-1.5% (1 sd); c_max has
    # its own Monte Carlo error (<1%). At the largest N the ratio must be within 3 combined sd
    # of 1 (a 99.7% interval); the prediction's own O(N^-1/2) error is about 1% there.
    game = make_game("queueing_per_step")
    pi_round = np.random.default_rng(4).dirichlet(np.ones(game.n_act), size=(2, game.n_obs))
    results = []
    for N in (100, 400, 1600, 6400):
        B = round(math.sqrt(N)) if batch == "sqrt" else N
        results.append(measured_ratio(game, N, B, 2, pi_round, 200)[:2])
    ratio, sd = results[-1]
    assert abs(ratio - 1) <= 3 * sd, results


def test_timed_queueing_gap_constant_is_predicted_at_b_equal_one() -> None:
    # The timed queueing game (MODEL.md section 9) serves agents per round, not per step, so
    # at B = 1 the queues hold O(N) agents and the linear-noise regime holds, unlike the
    # per-step game below: sqrt(N) e_N / c_max within 3 combined sd of 1 at the largest N.
    from tmfcli.model.policy import time_rows

    pi_round = np.random.default_rng(4).dirichlet(np.ones(4), size=(1, 4))
    results = []
    for N in (100, 400, 1600):
        s = resolve.setting(specs.from_dict({
            "name": "t", "game": {"name": "queueing", "mu0": [0.4, 0.3, 0.2, 0.1]},
            "horizon": {"rounds": 1}, "population": {"agents": N, "batch": 1}}))
        pol = TabularPolicy(pi_round[time_rows("round", s.alpha)])
        pred = F.predict(s, pol, seed=N, refined=False)
        R = 100
        e_max = np.abs(simulate(s, pol, R, seed=N).mu_hat - pred.fluct.mu_bar).sum(
            axis=-1).max(axis=1)
        ratio = math.sqrt(N) * e_max.mean() / pred.c_max
        sd = ratio * math.hypot(e_max.std(ddof=1) / math.sqrt(R) / e_max.mean(),
                                pred.c_max_se / pred.c_max)
        results.append((ratio, sd))
    ratio, sd = results[-1]
    assert abs(ratio - 1) <= 3 * sd, results


def test_queueing_at_b_equal_one_is_outside_the_linear_noise_regime() -> None:
    # With B = 1 a round has N steps and every queued agent (active or idle) is served at every
    # step (P0 runs per step, MODEL.md section 9), so the queues hold O(1) agents whatever N
    # is: N mu_bar_t(queues) stays below 1, the counts there are Poisson-like, not Gaussian,
    # and the central limit behind c_max does not apply. The measured ratio then drifts away
    # from 1 as N grows (by far more than its Monte Carlo error): docs/fluctuations.md says so.
    game = make_game("queueing_per_step")
    pi_round = np.random.default_rng(4).dirichlet(np.ones(game.n_act), size=(1, game.n_obs))
    results = []
    for N in (100, 400, 1600):
        ratio, sd, mu_bar = measured_ratio(game, N, 1, 1, pi_round, 100)
        assert (N * mu_bar[1:, 1:].sum(axis=1)).max() < 1.0
        results.append((ratio, sd))
    (first, sd0), (last, sd1) = results[0], results[-1]
    assert first - last > 5 * math.hypot(sd0, sd1), results
    assert 1 - last > 5 * sd1, results


def queue_law(N: int, B: int, pi_join: Array, s: float) -> Array:
    """E mu_hat_t(queue) (T+1,) exactly (``queue_laws``)."""
    return np.array([float(np.arange(N + 1) @ law) / N
                     for law in queue_laws(N, B, pi_join, s)])


def queue_laws(N: int, B: int, pi_join: Array, s: float) -> list[Array]:
    """The law of the number queued, (N + 1,) per t = 0..T, exactly, for one queue (O = {out,
    queue}), mu0 all out, B of N active (subset). Given n queued: the active agents out are
    hypergeometric, each joins with pi_join[t]; every queued agent (active or idle) is served
    with s / (s + n / N)."""
    from scipy.stats import binom, hypergeom

    law = np.zeros(N + 1)
    law[0] = 1.0
    laws = [law]
    for t in range(len(pi_join)):
        nxt = np.zeros(N + 1)
        for n in np.flatnonzero(law > 1e-18):
            out = int(N - n)
            m = np.arange(min(B, out) + 1)
            active = hypergeom.pmf(m, N, out, B) if B < N else (m == out).astype(float)
            joins = np.zeros(out + 1)
            for k, w in zip(m, active, strict=True):
                if w > 0:
                    joins[:k + 1] += w * binom.pmf(np.arange(k + 1), k, pi_join[t])
            p = s / (s + n / N)
            stay = binom.pmf(np.arange(n + 1), n, 1 - p)
            nxt[:N + 1] += law[n] * np.convolve(joins, stay)[:N + 1]
        law = nxt
        laws.append(law)
    return laws


@pytest.mark.parametrize("fraction", [1.0, 0.25])
def test_refined_flow_error_falls_like_one_over_n_squared(fraction: float) -> None:
    # E mu_hat_t computed exactly (the law of the count chain, state by state): no Monte Carlo,
    # so the slopes are exact numbers. The plain mean field is off by b_t / N (slope -1), the
    # refined flow mu_bar + b_t / N by O(N^-2) (slope -2); 0.15 allows the next orders.
    game = make_game("queueing_per_step", {"K": 1, "s": (0.3,)})
    T = 4
    pi_join = np.array([0.7, 0.5, 0.6, 0.4])
    pi = np.zeros((T, 2, 2))
    pi[:, 0, 1], pi[:, 0, 0] = pi_join, 1 - pi_join
    pi[:, 1, 0] = 1.0
    sizes = np.array([50, 100, 200, 400])
    plain, refined, ret_plain, ret_refined = [], [], [], []
    for N in sizes:
        B = max(1, round(fraction * N))
        s = Setting(game=game, alpha=np.full(T, B / N), gamma=0.9, agents=int(N),
                    batches=np.full(T, B))
        fl = F.fluctuations(s, TabularPolicy(pi))
        laws = queue_laws(int(N), B, pi_join, 0.3)
        exact = np.array([float(np.arange(N + 1) @ law) / N for law in laws])
        plain.append(np.abs(exact - fl.mu_bar[:, 1]).max())
        refined.append(np.abs(exact - fl.refined(int(N))[:, 1]).max())
        # the return: E G = sum_t gamma^t E R_t(mu_hat_t), R_t the expected per-capita reward
        # given the counts (E m(o) = alpha n(o)), summed over the exact law of the counts
        q = np.arange(N + 1) / N
        mus = np.column_stack([1 - q, q])
        a = B / N

        def R(mu: Array, t: int, a: float = a) -> Array:
            per = a * np.einsum("...oa,oa->...o", game.reward(mu, t), pi[t]) + \
                (1 - a) * game.idle_reward(mu, t)
            return np.asarray((mu * per).sum(axis=-1))

        EG = sum(0.9 ** t * float(laws[t] @ R(mus, t)) for t in range(T))
        J = sum(0.9 ** t * float(R(fl.mu_bar[t], t)) for t in range(T))
        ret_plain.append(abs(EG - J))
        ret_refined.append(abs(EG - J - F.return_correction(s, TabularPolicy(pi), fl) / N))
    for errors, target in ((plain, -1), (refined, -2), (ret_plain, -1), (ret_refined, -2)):
        slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
        assert abs(slope - target) < 0.15, (errors, slope, target)


@pytest.mark.parametrize("name", ["queueing_per_step", "sis"])
def test_curvature_drift_is_half_the_hessian_contracted_with_c(name: str) -> None:
    game = make_game(name)
    O, A, T = game.n_obs, game.n_act, 3
    rng = np.random.default_rng(9)
    mu = rng.dirichlet(np.ones(O), size=T + 1)
    policy = PopulationPolicy(theta=rng.normal(size=(T, O, A)), W=rng.normal(size=(O, A, O)))
    s = Setting(game=game, alpha=np.full(T, 0.5), gamma=1.0)
    C = np.stack([np.diag(m) - np.outer(m, m) for m in mu])
    H = F.derivatives(s, policy, mu).H
    assert H is not None
    drift: np.ndarray = F.curvature_drift(s, policy, mu, C)
    np.testing.assert_allclose(drift, 0.5 * np.einsum("tkij,tij->tk", H, C[:-1]), atol=2e-6)


@dataclass(frozen=True)
class Rooted(Game):
    """Kernels with sqrt(mu): not defined just outside the simplex (a boundary kink)."""

    name = "rooted_test"
    time_homogeneous = True

    def build(self) -> None:
        self._set(n_obs=2, n_act=1, mu0=np.array([1.0, 0.0]))

    def transition(self, mu: Array, t: int) -> Array:
        p = 0.5 * np.sqrt(mu[..., 1])
        P = np.zeros((*mu.shape[:-1], 2, 1, 2))
        P[..., 0, 0, 0], P[..., 0, 0, 1] = 1 - p, p
        P[..., 1, 0, 1] = 1.0
        return P

    def reward(self, mu: Array, t: int) -> Array:
        return np.zeros((*mu.shape[:-1], 2, 1))


def test_the_commands_get_no_prediction_rather_than_an_error() -> None:
    # too large: T O^2 above MAX_FLOATS
    game = make_game("beach_bar", {"n": 400})
    T = F.MAX_FLOATS // 400 ** 2 + 1
    s = Setting(game=game, alpha=np.ones(T), gamma=1.0, agents=1000, batches=np.full(T, 1000))
    pred, why = F.try_predict(s, TabularPolicy(np.full((T, 400, 3), 1 / 3)), 0)
    assert pred is None and why.startswith("T O^2 = ")
    # kernels not finite near the flow (sqrt of a negative entry): no traceback, a reason
    s = Setting(game=Rooted(), alpha=np.ones(2), gamma=1.0, agents=10, batches=np.full(2, 10))
    with np.errstate(invalid="ignore"):
        pred, why = F.try_predict(s, TabularPolicy(np.ones((2, 2, 1))), 0)
    assert pred is None and "not finite near the mean-field flow" in why


def test_simulate_tables_carry_the_prediction_beside_the_replicas() -> None:
    from tmfcli.commands.simulate import compare, tables

    game = make_game("sis")
    T, N, B, R = 12, 500, 100, 400
    s = Setting(game=game, alpha=np.full(T, B / N), gamma=0.95, agents=N,
                batches=np.full(T, B))
    pi = np.random.default_rng(1).dirichlet(np.ones(2), size=(T, 2))
    cmp = compare(s, TabularPolicy(pi), R, seed=3, epsilon=False)
    frames = tables(cmp, seed=3)
    bands = frames["bands.csv"]
    assert list(bands.columns) == ["t", "obs", "obs_label", "mu_bar", "mu_refined", "mean_hat",
                                   "sd_pred", "sd_hat", "pred_q05", "pred_q95", "q05", "q95",
                                   "pred_q025", "pred_q975", "q025", "q975", "seed"]
    fl = cmp.prediction.fluct  # type: ignore[union-attr]
    np.testing.assert_allclose(bands["mu_refined"], (fl.mu_bar + fl.b / N).ravel())  # type: ignore[operator]
    np.testing.assert_allclose(bands["pred_q975"] - bands["mu_refined"],
                               1.959964 * bands["sd_pred"], rtol=1e-6)
    # the replicas' sd against the predicted one, t >= 1 (t = 0 is the multinomial start):
    # with R = 400 a sample sd has a relative error of 1/sqrt(2R) = 3.5%; the median ratio over
    # the 24 (t, o) is within 7% (2 of those errors), the worst within 15%
    later = bands[bands["t"] >= 1]
    ratio = later["sd_hat"] / later["sd_pred"]
    assert abs(ratio.median() - 1) < 0.07 and (abs(ratio - 1) < 0.15).all()
    summary = frames["summary.csv"].set_index("metric")
    c = summary.loc["gap_max_predicted"]
    assert c["ci_low"] < c["mean"] < c["ci_high"]
    assert summary.loc["gap_mean_predicted", "mean"] == pytest.approx(fl.c_mean / math.sqrt(N))
    measured = summary.loc["gap_max"]
    half = (measured["ci_high"] - measured["ci_low"]) / 2 + (c["ci_high"] - c["ci_low"]) / 2
    assert abs(measured["mean"] - c["mean"]) < 1.6 * half  # ~3 combined sd
    again = tables(compare(s, TabularPolicy(pi), R, seed=3, epsilon=False), seed=3)
    for name, frame in frames.items():
        assert frame.to_csv(index=False) == again[name].to_csv(index=False), name
