"""The learners of ``tmf train`` by name: ``LEARNERS`` is what ``train.algorithm`` (and
``tmf train --algorithm``) accepts, what ``tmf train --help`` lists and what the training loop
runs. Adding a learner: its module with a ``Learner`` (``learning.learner``), and one entry
here (CONTRIBUTING.md).

An entry names its learner as ``"module:attribute"`` so that reading the registry (the CLI's
help, the spec's validation) loads no numerics; ``load`` imports the learner when it runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from tmfcli.learning.learner import Learner

__all__ = ["LEARNERS", "Entry", "listing", "load"]


@dataclass(frozen=True)
class Entry:
    """A registered learner: its one-line ``summary`` (``tmf train --help``, docs), where it
    lives (``"module:attribute"``) and the learner run beside it as its exact yardstick when
    ``train.yardstick`` is true (None: none)."""

    summary: str
    target: str
    yardstick: str | None = None


LEARNERS: dict[str, Entry] = {
    "tmf-pg": Entry("sampled TMF-PG in the population-aware class, count critic",
                    "tmfcli.learning.tmf_pg:SAMPLED", yardstick="tmf-pg-exact"),
    "tmf-pg-exact": Entry("exact TMF-PG on the frozen mean-field flow (the yardstick)",
                          "tmfcli.learning.tmf_pg:EXACT"),
    "mf-q": Entry("mean-field Q-learning with the mean action, idle agents as a no-op",
                  "tmfcli.learning.mf_q:LEARNER"),
    "independent-pg": Entry("sampled TMF-PG with W fixed at 0: no mu_hat input",
                            "tmfcli.learning.tmf_pg:INDEPENDENT"),
}


def load(name: str) -> Learner:
    """The learner registered as ``name`` (``KeyError`` if there is none)."""
    module, attribute = LEARNERS[name].target.split(":")
    learner: Learner = getattr(importlib.import_module(module), attribute)
    return learner


def listing() -> list[tuple[str, str]]:
    """(name, summary) of every registered learner, in registry order."""
    return [(name, entry.summary) for name, entry in LEARNERS.items()]
