"""Games from the mean-field literature, defined as in MODEL.md section 7 (for cross-checks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tmfcli.model.games.base import (
    Array,
    Game,
    Lipschitz,
    ParamError,
    Potential,
    internal,
    one_hot,
    param,
    static,
)


def _move_to(n_obs: int, n_act: int, offset: int) -> Array:
    """Kernel (O, A, O) in which action a moves to observation offset + a from anywhere."""
    P = np.zeros((n_obs, n_act, n_obs))
    P[:, np.arange(n_act), offset + np.arange(n_act)] = 1.0
    return P


@dataclass(frozen=True)
class LeftRight(Game):
    """Start at 0, go left (1) or right (2); crowds cost 1 per unit on the left, 2 on the right."""

    name = "left_right"
    summary = "one-shot congestion: 'always left' exploitability 1, equilibrium 2/3 left"
    static_dynamics = True
    time_homogeneous = True
    default_horizon = 2

    _P: Array = internal()

    def build(self) -> None:
        self._set(n_obs=3, n_act=2, mu0=one_hot(0, 3), obs_labels=("start", "left", "right"),
                  act_labels=("left", "right"), _P=_move_to(3, 2, 1))

    def transition(self, mu: Array, t: int) -> Array:
        return static(self._P, mu)

    def reward(self, mu: Array, t: int) -> Array:
        cost = np.stack([np.zeros(mu.shape[:-1]), -mu[..., 1], -2.0 * mu[..., 2]], axis=-1)
        return np.repeat(cost[..., None], 2, axis=-1)

    def potential(self) -> Potential:
        """f(o, mu) = -mu(left) at left, -2 mu(right) at right: curvatures 0, -1, -2; idle
        agents earn 0."""
        slope = np.array([0.0, -1.0, -2.0])
        return Potential(curvature=lambda mu: static(slope, mu),
                         idle_curvature=lambda mu: np.zeros(mu.shape))

    def lipschitz(self) -> Lipschitz:
        return Lipschitz(L_P=0.0, L_0=0.0)


@dataclass(frozen=True)
class RockPaperScissors(Game):
    """Shapley-type rock-paper-scissors: start at 0, choose a hand; payoffs against the crowd."""

    name = "rock_paper_scissors"
    summary = "cyclic payoffs (fictitious play cycles); equilibrium mixes the three hands"
    static_dynamics = True
    time_homogeneous = True
    default_horizon = 2

    _P: Array = internal()

    def build(self) -> None:
        self._set(n_obs=4, n_act=3, mu0=one_hot(0, 4),
                  obs_labels=("start", "rock", "paper", "scissors"),
                  act_labels=("rock", "paper", "scissors"), _P=_move_to(4, 3, 1))

    def transition(self, mu: Array, t: int) -> Array:
        return static(self._P, mu)

    def reward(self, mu: Array, t: int) -> Array:
        rock, paper, scissors = mu[..., 1], mu[..., 2], mu[..., 3]
        per_obs = np.stack([np.zeros(mu.shape[:-1]), 2.0 * scissors - paper,
                            4.0 * rock - 2.0 * scissors, 6.0 * paper - 3.0 * rock], axis=-1)
        return np.repeat(per_obs[..., None], 3, axis=-1)

    def lipschitz(self) -> Lipschitz:
        return Lipschitz(L_P=0.0, L_0=0.0)


@dataclass(frozen=True)
class BeachBar(Game):
    """Positions 0..n-1 on a line, a bar at b; walk towards it but avoid crowds (log mu)."""

    name = "beach_bar"
    summary = "move left/stay/right with noise; -distance to bar - move cost - log crowd"
    static_dynamics = True
    time_homogeneous = True

    n: int = param(10, "number of positions", low=2)
    bar: int = param(2, "position of the bar (0-based)", low=0)
    p: float = param(0.5, "probability that the noise leaves the move unchanged", low=0, high=1)
    eps: float = param(1e-20, "floor inside log(mu + eps)", low=0, low_open=True)

    _P: Array = internal()
    _base: Array = internal()

    def build(self) -> None:
        if self.bar >= self.n:
            raise ParamError("bar", f"{self.bar} is not a position of 0..{self.n - 1}",
                             f"use a bar between 0 and {self.n - 1}")
        n = self.n
        P = np.zeros((n, 3, n))
        noise = ((1 - self.p) / 2, self.p, (1 - self.p) / 2)
        for o in range(n):
            for a in range(3):
                for shift, prob in zip((-1, 0, 1), noise, strict=True):
                    P[o, a, min(max(o + a - 1 + shift, 0), n - 1)] += prob
        gap = np.abs(np.arange(n) - self.bar)
        distance = np.minimum(gap, n - gap).astype(float)  # on the ring of n positions
        base = -distance[:, None] - np.abs(np.arange(3) - 1)[None, :] / n
        self._set(n_obs=n, n_act=3, mu0=np.full(n, 1.0 / n),
                  obs_labels=tuple(str(i) for i in range(n)),
                  act_labels=("left", "stay", "right"), _P=P, _base=base)

    def transition(self, mu: Array, t: int) -> Array:
        return static(self._P, mu)

    def reward(self, mu: Array, t: int) -> Array:
        return self._base - np.log(mu + self.eps)[..., None]

    def potential(self) -> Potential:
        """f(o, mu) = -log(mu(o) + eps), curvature -1 / (mu(o) + eps); idle agents earn 0."""
        return Potential(curvature=lambda mu: -1.0 / (mu + self.eps),
                         idle_curvature=lambda mu: np.zeros(mu.shape))

    def lipschitz(self) -> Lipschitz:
        return Lipschitz(L_P=0.0, L_0=0.0)


@dataclass(frozen=True)
class SIS(Game):
    """Susceptible-infected-susceptible epidemic: go out or keep distance."""

    name = "sis"
    summary = "epidemic: infection 0.81*mu(infected) when going out, recovery 0.3"
    default_horizon = 50
    time_homogeneous = True

    infection: float = param(0.81, "infection probability per unit of infected mass",
                             low=0, high=1)
    recovery: float = param(0.3, "recovery probability of an infected agent", low=0, high=1)
    cost_distance: float = param(0.5, "cost of distancing when susceptible", low=0)
    cost_infected: float = param(1.0, "cost per step of being infected", low=0)
    cost_infected_distance: float = param(0.5, "extra cost of distancing when infected", low=0)

    def build(self) -> None:
        self._set(n_obs=2, n_act=2, mu0=np.array([0.4, 0.6]),
                  obs_labels=("susceptible", "infected"), act_labels=("go_out", "distance"))

    def transition(self, mu: Array, t: int) -> Array:
        infected = self.infection * mu[..., 1]
        P = np.zeros((*mu.shape[:-1], 2, 2, 2))
        P[..., 0, 0, 0] = 1.0 - infected
        P[..., 0, 0, 1] = infected
        P[..., 0, 1, 0] = 1.0
        P[..., 1, :, 0] = self.recovery
        P[..., 1, :, 1] = 1.0 - self.recovery
        return P

    def compiled_dynamics(self) -> tuple[Any, Array]:
        from tmfcli.model.games.kernels import sis

        return sis, np.array([self.infection, self.recovery])

    def reward(self, mu: Array, t: int) -> Array:
        r = np.array([[0.0, -self.cost_distance],
                      [-self.cost_infected, -self.cost_infected - self.cost_infected_distance]])
        return static(r, mu)

    def lipschitz(self) -> Lipschitz:
        # |mu(I) - nu(I)| <= ||mu - nu||_1 / 2 and the susceptible row moves 2*infection*|dmu(I)|
        return Lipschitz(L_P=self.infection, L_0=0.0)
