"""Plain-loop reference implementations of the engine (no vectorisation), for tests only."""

from __future__ import annotations

import numpy as np

from tmfcli.model.setting import Setting


def flow_loop(setting: Setting, pi: np.ndarray) -> np.ndarray:
    """mu (T+1, O) by explicit loops over t, o, a, o' (MODEL.md section 2)."""
    game, T = setting.game, setting.T
    O, A = game.n_obs, game.n_act
    mu = np.zeros((T + 1, O))
    mu[0] = game.mu0
    for t in range(T):
        P = game.transition(mu[t], t)
        P0 = game.idle_transition(mu[t], t)
        a_t = setting.alpha[t]
        for o in range(O):
            for o2 in range(O):
                moved = sum(pi[t, o, a] * P[o, a, o2] for a in range(A))
                mu[t + 1, o2] += mu[t, o] * (a_t * moved + (1 - a_t) * P0[o, o2])
    return mu


def values_loop(setting: Setting, mu: np.ndarray, pi: np.ndarray | None) -> np.ndarray:
    """V (T+1, O) of pi (or of the best response when None) on the frozen flow mu."""
    game, T = setting.game, setting.T
    O, A = game.n_obs, game.n_act
    V = np.zeros((T + 1, O))
    g = setting.gamma
    for t in reversed(range(T)):
        P, P0 = game.transition(mu[t], t), game.idle_transition(mu[t], t)
        r, r0 = game.reward(mu[t], t), game.idle_reward(mu[t], t)
        for o in range(O):
            q = [r[o, a] + g * sum(P[o, a, o2] * V[t + 1, o2] for o2 in range(O))
                 for a in range(A)]
            w = r0[o] + g * sum(P0[o, o2] * V[t + 1, o2] for o2 in range(O))
            cont = max(q) if pi is None else sum(pi[t, o, a] * q[a] for a in range(A))
            V[t, o] = setting.alpha[t] * cont + (1 - setting.alpha[t]) * w
    return V
