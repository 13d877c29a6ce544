"""What a game is: kernels and rewards as functions of a (batched) population distribution.

A game is a frozen dataclass whose fields are its parameters (each with a default and a
``doc`` in its metadata). ``build()`` is called once after validation and fills the arrays the
kernel and reward functions use. Every function accepts ``mu`` with leading batch axes:

    transition(mu (..., O), t)       -> P  (..., O, A, O)   conditional P(o'|o,a,mu)
    idle_transition(mu (..., O), t)  -> P0 (..., O, O)      conditional P0(o'|o,mu)
    reward(mu (..., O), t)           -> r  (..., O, A)
    idle_reward(mu (..., O), t)      -> r0 (..., O)

``static_dynamics`` declares that P and P0 do not depend on mu or t: the engine then evaluates
them once. ``idle_stays`` declares that P0 is the identity, which the simulator exploits.
``time_homogeneous`` declares that nothing depends on t: the engine then evaluates rewards along
a flow in one batched call (``period`` = k declares that the model depends on t only through
t mod k: one batched call per phase). ``compiled_dynamics`` (optional) gives a compiled kernel for
mu-dependent dynamics, which the accelerated evaluation needs (``tmfcli.model.compiled``);
without it such a game is evaluated by the pure-numpy reference loops. ``potential``
(optional) declares a separable concave potential, which the ``potential`` solver needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from tmfcli.model.params import ParamError, fields_of, param

Array = NDArray[np.float64]

__all__ = ["Array", "Game", "Lipschitz", "ParamError", "Potential", "internal", "one_hot", "param",
           "static"]


def internal() -> Any:
    """A derived array filled by ``build`` (not a parameter, not shown, not compared)."""
    return field(init=False, repr=False, compare=False, default=None)


@dataclass(frozen=True)
class Lipschitz:
    """L1-Lipschitz constants in mu: sup_o ||P(o,a,.;mu) - P(o,a,.;nu)||_1 <= L_P ||mu-nu||_1.

    ``L_P`` bounds the active kernel (sup over o and a), ``L_0`` the idle kernel.
    """

    L_P: float
    L_0: float


@dataclass(frozen=True)
class Potential:
    """A game whose crowd terms are the gradient of a separable concave potential.

    The game declares r(o,a,mu) = g(o,a) + f(o, mu(o)) and r0(o,mu) = g0(o) + f0(o, mu(o)):
    the dependence on mu is through the agent's own observation only, and f, f0 are
    non-increasing in mu(o). Then f = grad F and f0 = grad F0 with the concave potentials
    F(mu) = sum_o int_0^mu(o) f(o, m) dm (and F0 alike), and with mu-independent dynamics the
    equilibrium flows maximise a concave function of the occupation measure
    (``tmfcli.solvers.potential``). The two functions give the curvatures
    d f(o, mu(o)) / d mu(o) and d f0(o, mu(o)) / d mu(o) (<= 0), each (..., O) from mu (..., O).
    """

    curvature: Callable[[Array], Array]
    idle_curvature: Callable[[Array], Array]

    def along(self, mu: Array, steps: NDArray[np.int64]) -> tuple[Array, Array]:
        """The two curvatures (T, O) along a flow mu (T, O) at the steps ``steps`` (T,); a
        game whose model changes with t (a timed game's two stages) overrides this."""
        return self.curvature(mu), self.idle_curvature(mu)


@dataclass(frozen=True)
class Game:
    """Base class of all games; subclasses add parameter fields and implement ``build``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    static_dynamics: ClassVar[bool] = False
    idle_stays: ClassVar[bool] = True
    default_horizon: ClassVar[int | None] = None
    time_homogeneous: ClassVar[bool] = False
    period: ClassVar[int] = 0

    # filled by build(); not parameters
    n_obs: int = field(init=False, default=0)
    n_act: int = field(init=False, default=0)
    mu0: Array = internal()
    obs_labels: tuple[str, ...] = field(init=False, default=())
    act_labels: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self.build()

    @property
    def phases(self) -> int:
        """k when the model depends on t only through t mod k (1: time-homogeneous; a timed
        game's two stages: 2); 0 when it may depend on t in any way."""
        return 1 if self.time_homogeneous else self.period

    def _set(self, **values: Any) -> None:
        """Set derived attributes on the frozen instance (used by ``build`` only)."""
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- the model -------------------------------------------------------------------------
    def transition(self, mu: Array, t: int) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def reward(self, mu: Array, t: int) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def idle_transition(self, mu: Array, t: int) -> Array:
        """Default P0: idle agents stay where they are."""
        eye = np.eye(self.n_obs)
        return np.broadcast_to(eye, mu.shape[:-1] + eye.shape)

    def idle_reward(self, mu: Array, t: int) -> Array:
        """Default r0: idle agents earn nothing (project choice, MODEL.md section 1)."""
        return np.zeros(mu.shape)

    def compiled_dynamics(self) -> tuple[Any, Array] | None:
        """A numba kernel ``fill(mu (O,), t, params, P (O*A*O,), P0 (O*O,))`` that writes the
        dense P(.|.,.,mu) and P0(.|.,mu) at step t (C order), with its ``params`` (k,); None
        when the game has none (then the engine calls ``transition`` at every step). Needed
        only when the dynamics depend on mu; the signature is
        ``tmfcli.model.compiled.KERNEL_SIGNATURE``."""
        return None

    def potential(self) -> Potential | None:
        """The game's separable concave potential (``Potential``), or None when it declares
        none (then the ``potential`` solver refuses it)."""
        return None

    def lipschitz(self) -> Lipschitz | None:
        """Analytic Lipschitz constants in mu, or None when the game does not declare them."""
        return None

    def with_mu0(self, mu0: Array) -> Game:
        """The same game started from another initial distribution."""
        clone = dataclasses.replace(self)
        clone._set(mu0=np.asarray(mu0, dtype=float))
        return clone

    @classmethod
    def parameters(cls) -> list[dataclasses.Field[Any]]:
        """The user-settable parameter fields, in declaration order."""
        return fields_of(cls)


def static(array: Array, mu: Array) -> Array:
    """Broadcast a mu-independent array over the batch axes of ``mu`` (no copy)."""
    return np.broadcast_to(array, mu.shape[:-1] + array.shape)


def one_hot(index: int, size: int) -> Array:
    """The distribution that puts all its mass on ``index``."""
    out = np.zeros(size)
    out[index] = 1.0
    return out

