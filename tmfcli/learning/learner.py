"""What a learner of ``tmf train`` supplies, and the run settings they share.

A learner is an initial state and one outer iteration (as a solver is an initial state and one
step); the shared loop (``learning.train.train``) owns the iterations, the seeding, the
exact evaluation of every iterate, the history (``iterations.csv``) and the final evaluation
rollouts. Per iteration i the loop

1. asks the learner for the time-indexed policy it plays on its own mean-field flow,
   pi_bar (T, O, A) (``on_flow``), and evaluates it exactly (``Evaluation``: flow, J,
   exploitability);
2. hands the learner that evaluation and ``draw``: R rollouts of the N-agent system from
   iteration i's random stream under a ``Behaviour`` the learner names (counted as samples);
3. records the learner's ``Iteration`` (the return it saw, the norm of its first gradient and
   its own columns, if any).

The learners are registered by name in ``learning.registry`` (``LEARNERS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: this module is read by the CLI's help (start-up)
    from tmfcli.learning.rollouts import Batch, Decide
    from tmfcli.model.exploitability import Evaluation
    from tmfcli.model.games.base import Array
    from tmfcli.model.policy import Policy
    from tmfcli.model.setting import Setting

__all__ = ["Behaviour", "Draw", "Iteration", "Learner", "TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one run (``TrainSpec`` resolved; the time index is step/round/none).

    Each learner reads those it needs (temperature: mf-q; entropy_bonus: the gradients)."""

    algorithm: str = "tmf-pg"
    iterations: int = 200
    inner_steps: int = 10
    rollouts: int = 8
    lr: float = 0.1
    lr_decay: float = 0.0
    optimizer: str = "sgd"
    entropy_bonus: float = 0.0
    time_index: str = "step"
    temperature: float = 0.1
    seed: int = 0
    activation: str = "subset"
    init: str = "iid"


@dataclass(frozen=True)
class Behaviour:
    """The policy the N agents play in rollouts: a policy (``PopulationPolicy``,
    ``TabularPolicy``) or a ``Decide`` callable, which receives the previous mean action
    (A + 1,) when ``mean_action`` is true (``rollouts.sample``)."""

    policy: Policy | Decide
    mean_action: bool = False


Draw = Callable[[Behaviour], "Batch"]  # R rollouts of one iteration's stream, counted


@dataclass(frozen=True)
class Iteration:
    """What one outer iteration reports: the mean population-average return it saw (of its
    rollouts, or J for a learner that reads the model), the norm of its first gradient (nan if
    none) and the values of the learner's own columns (``Learner.columns``), in order."""

    ret: float
    grad_norm: float
    extra: tuple[float, ...] = ()


@runtime_checkable
class Learner(Protocol):
    """A learner of ``tmf train``; its name and summary are its ``registry.LEARNERS`` entry.

    ``columns`` names the learner's own columns of ``iterations.csv`` (after the shared ones;
    most learners have none). The state is the learner's own (parameters, optimiser moments);
    ``step`` may update it in place and returns it.
    """

    columns: tuple[str, ...]

    def start(self, setting: Setting, config: TrainConfig) -> Any:
        """The initial state (for the policy classes: theta = 0 and W = 0, uniform)."""
        ...

    def on_flow(self, state: Any) -> Array:
        """pi_bar (T, O, A): the state's policy evaluated along its own mean-field flow."""
        ...

    def behaviour(self, state: Any) -> Behaviour:
        """The policy the agents play in the rollouts (also the final evaluation's)."""
        ...

    def step(self, state: Any, i: int, ev: Evaluation, draw: Draw) -> tuple[Any, Iteration]:
        """Outer iteration i: ``ev`` is the exact evaluation of ``on_flow(state)`` (use it, do
        not evaluate again); ``draw`` gives this iteration's rollouts (call it at most once
        per behaviour: each call counts its decisions as samples)."""
        ...

    def policy(self, state: Any) -> Policy:
        """The policy written as the result (``io.policy_files.write_policy``)."""
        ...
