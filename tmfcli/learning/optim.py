"""Gradient ascent on the policy parameters: plain SGD or Adam (Kingma & Ba 2015)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tmfcli.learning.policy_class import Params


@dataclass
class Ascent:
    """theta <- theta + lr_j * step(g): g itself (sgd) or Adam's m_hat / (sqrt(v_hat) + eps),
    with lr_j = lr / (1 + decay j) at outer iteration j (``outer``, set by the learner).

    ``frozen_W`` keeps W at its value (independent-pg: no population input).
    """

    kind: str
    lr: float
    frozen_W: bool = False
    decay: float = 0.0
    outer: int = 0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    count: int = 0
    m: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)

    def step(self, params: Params, grad: Params) -> Params:
        arrays = [grad.theta, np.zeros_like(grad.W) if self.frozen_W else grad.W]
        if self.kind == "sgd":
            moves = arrays
        else:
            if not self.m:
                self.m = [np.zeros_like(a) for a in arrays]
                self.v = [np.zeros_like(a) for a in arrays]
            self.count += 1
            moves = []
            for i, g in enumerate(arrays):
                self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
                self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
                m_hat = self.m[i] / (1 - self.beta1 ** self.count)
                v_hat = self.v[i] / (1 - self.beta2 ** self.count)
                moves.append(m_hat / (np.sqrt(v_hat) + self.eps))
        lr = self.lr / (1.0 + self.decay * self.outer)
        return Params(params.theta + lr * moves[0], params.W + lr * moves[1])


def ascend(opt: Ascent, params: Params, steps: int,
           gradient: Callable[[Params], Params]) -> tuple[Params, float]:
    """``steps`` optimiser steps params <- opt.step(params, gradient(params)); the final
    parameters and the norm of the first gradient (nan for no step)."""
    first = math.nan
    for j in range(steps):
        grad = gradient(params)
        if j == 0:
            first = grad.norm()
        params = opt.step(params, grad)
    return params, first
