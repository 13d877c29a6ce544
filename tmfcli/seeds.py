"""Every random stream of tmf, named, and the one function that derives them.

A run has one seed s: the spec's ``seed`` (``train.seed`` for ``tmf train`` when it is given).
Every number tmf draws comes from the generator of a named *stream*: a ``SeedSequence`` with
the entropy of its root and an explicit spawn key below the root's key,

    sequence(root, stream, *index) = SeedSequence(root.entropy,
                                                  spawn_key=(*root.spawn_key, *key)),

``key = stream.key(*index)``. For a root ``SeedSequence(s)`` and key (k,) this is
``SeedSequence(s).spawn(k + 1)[k]``; because the key is explicit, a stream depends only on its
root and its name and indices, not on how many children the root already spawned nor on the
order in which other streams were drawn (``SeedSequence.spawn`` on a shared object would).
``sequence`` is the only place in tmf that makes a ``SeedSequence`` (a test greps for it).

Streams nest: the N-agent simulator (``tmfcli.simulation.counts``), the epsilon estimator
(``tmfcli.simulation.epsilon``) and the linear-noise Monte Carlo
(``tmfcli.analysis.fluctuations``) receive a root and derive their own streams below it, and
each bound-check cell has an integer seed of its own (a column of its tables), derived from s.

======================  ===============  ==========  ==============================================
stream                  below            key         feeds
======================  ===============  ==========  ==============================================
SOLVE_PROBE             run (solve)      (0,)        the Lasry-Lions probe: manifest
                                                     ``monotonicity_*`` (uniqueness evidence)
SOLVE_RESTART           run (solve)      (1 + i,)    the random start of restart i: restarts,
                                                     ``flow_spread``, ``policy_spread``
VALIDATE_CHECKS         run (validate)   (0,)        the probes of the game's full check
VALIDATE_PROBE          run (validate)   (1,)        the monotonicity probe of ``tmf validate``
VALIDATE_LIPSCHITZ      run (validate)   (2,)        sampled Lipschitz constants of ``tmf validate``
SIMULATE_REPLICAS       run (simulate)   ()          -> simulator: trajectory.csv, replicas.csv,
                                                     summary gaps and returns
PREDICTION              run (simulate)   (2^29,)     -> fluctuations: predicted c_max, c_max_se
EPS_N                   run (simulate,   (2^30,)     -> epsilon: the eps_n rows (paired replicas)
                        train)
TRAIN_ROLLOUTS          run (train)      (i,)        the N-agent rollouts of outer iteration i
TRAIN_EVALUATION        run (train)      (I,)        the final evaluation rollouts, I =
                                                     ``train.iterations``: row I, ``return_avg``
BOUND_CONSTANTS         run              (2^20,)     sampled Lipschitz constants of the game and
                        (bound-check)                policy: the reference bound
BOUND_CELL              run              (k, N)      -> cell: the 63-bit seed of regime k at N
                        (bound-check)                (the seed column of its rows)
CELL_SIMULATE           cell             (0,)        -> simulator: e_max, e_mean, return_gap
CELL_BOOTSTRAP          cell             (1,)        bootstrap intervals of cells.csv, and the
                                                     slope intervals of fits.csv
CELL_EPS_N              cell             (2,)        -> epsilon: eps_n
CELL_PREDICTION         cell             (3,)        -> fluctuations: predicted, predicted_se
SIMULATOR_UNIT          simulator        (k,)        replica k (sequential and agent-by-agent
                                                     paths) or block k of ``counts.BLOCK``
                                                     replicas (general path)
EPSILON_REPLICA         epsilon          (r,)        replica r (sequential and compiled paths)
EPSILON_OTHERS          epsilon          (b, 0)      block b, general path: the N - 1 others
EPSILON_TAGGED          epsilon          (b, 1)      block b, general path: the tagged agent
FLUCTUATION_PATHS       fluctuations     ()          the Gaussian paths of the c_max Monte Carlo
GAME_QUICK_CHECK        fixed seed 0     ()          the probes of the check every spec load runs
AUTO_PROBE              fixed seed 0     ()          the probe behind ``solver.algorithm: auto``
PLACEHOLDER             fixed seed 0     ()          a generator the compiled chain is typed
                                                     with, and is handed where it draws nothing
======================  ===============  ==========  ==============================================

Within one run no two draws share a key (``tests/test_seeds.py`` walks the tree), as long as
the indices (iterations, replicas, blocks) stay below 2^29, far beyond any budget. The fixed
streams are not part of any run: they make checks that must not depend on the seed
repeatable. Adding a stream: a ``Stream`` here, a row of the table, an entry in ``STREAMS``,
its indices in the test's sample run (CONTRIBUTING.md, "Random streams").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STREAMS", "Seed", "Stream", "fixed", "generator", "integer", "root", "sequence"]

Seed = int | np.random.SeedSequence

# the roots a stream can hang below
RUN = "run"                    # the run's seed
CELL = "cell"                  # a bound-check cell's seed (``BOUND_CELL``)
SIMULATOR = "simulator"        # the root given to ``counts.simulate`` / ``simulate_agents``
EPSILON = "epsilon"            # the root given to ``epsilon.tagged_returns`` / ``epsilon_n``
FLUCTUATIONS = "fluctuations"  # the root given to ``fluctuations.predict``
FIXED = "fixed"                # the fixed seed ``FIXED_SEED``, whatever the run's seed

FIXED_SEED = 0


@dataclass(frozen=True)
class Stream:
    """A named stream: its key below its root is ``(*prefix, *(offset + i for i in index),
    *suffix)`` with one integer per name in ``index``.

    ``commands``: for a stream below ``RUN``, the commands whose runs draw it. ``hands_to``:
    the root this stream becomes for a component that derives its own streams below it.
    """

    name: str
    below: str
    feeds: str
    prefix: tuple[int, ...] = ()
    index: tuple[str, ...] = ()
    offset: int = 0
    suffix: tuple[int, ...] = ()
    commands: tuple[str, ...] = ()
    hands_to: str | None = None

    def key(self, *index: int) -> tuple[int, ...]:
        """The spawn key below the root, e.g. ``SOLVE_RESTART.key(2) == (3,)``."""
        if len(index) != len(self.index):
            raise ValueError(f"stream {self.name} takes {len(self.index)} indices "
                             f"({', '.join(self.index) or 'none'}), not {len(index)}")
        if any(int(i) < 0 for i in index):
            raise ValueError(f"stream {self.name}: indices are >= 0, got {index}")
        return (*self.prefix, *(self.offset + int(i) for i in index), *self.suffix)


SOLVE_PROBE = Stream("solve.probe", RUN, "the Lasry-Lions monotonicity probe of tmf solve",
                     prefix=(0,), commands=("solve",))
SOLVE_RESTART = Stream("solve.restart", RUN, "the random start policy of restart i",
                       index=("i",), offset=1, commands=("solve",))
VALIDATE_CHECKS = Stream("validate.checks", RUN, "the probes of the game's full check",
                         prefix=(0,), commands=("validate",))
VALIDATE_PROBE = Stream("validate.probe", RUN, "the monotonicity probe of tmf validate",
                        prefix=(1,), commands=("validate",))
VALIDATE_LIPSCHITZ = Stream("validate.lipschitz", RUN, "sampled Lipschitz constants",
                            prefix=(2,), commands=("validate",))
SIMULATE_REPLICAS = Stream("simulate.replicas", RUN, "the simulated replicas of tmf simulate",
                           commands=("simulate",), hands_to=SIMULATOR)
PREDICTION = Stream("simulate.prediction", RUN, "the Monte Carlo of the predicted c_max",
                    prefix=(1 << 29,), commands=("simulate",), hands_to=FLUCTUATIONS)
EPS_N = Stream("eps_n", RUN, "the paired replicas of the N-agent epsilon",
               prefix=(1 << 30,), commands=("simulate", "train"), hands_to=EPSILON)
TRAIN_ROLLOUTS = Stream("train.rollouts", RUN, "the N-agent rollouts of outer iteration i",
                        index=("i",), commands=("train",))
TRAIN_EVALUATION = Stream("train.evaluation", RUN, "the final evaluation rollouts (index I = "
                          "train.iterations, one past the last iteration)",
                          index=("I",), commands=("train",))
BOUND_CONSTANTS = Stream("bound-check.constants", RUN, "sampled Lipschitz constants of the "
                         "game and the policy (reference bound)", prefix=(1 << 20,),
                         commands=("bound-check",))
BOUND_CELL = Stream("bound-check.cell", RUN, "the 63-bit seed of the cell of regime k at N",
                    index=("k", "N"), commands=("bound-check",), hands_to=CELL)
CELL_SIMULATE = Stream("cell.simulate", CELL, "the simulated replicas of a cell",
                       prefix=(0,), hands_to=SIMULATOR)
CELL_BOOTSTRAP = Stream("cell.bootstrap", CELL, "the bootstrap resamples of a cell",
                        prefix=(1,))
CELL_EPS_N = Stream("cell.eps_n", CELL, "the paired replicas of a cell's epsilon",
                    prefix=(2,), hands_to=EPSILON)
CELL_PREDICTION = Stream("cell.prediction", CELL, "the Monte Carlo of a cell's predicted c_max",
                         prefix=(3,), hands_to=FLUCTUATIONS)
SIMULATOR_UNIT = Stream("simulator.unit", SIMULATOR, "replica k (sequential and agent-by-agent "
                        "paths) or block k of BLOCK replicas (general path)", index=("k",))
EPSILON_REPLICA = Stream("epsilon.replica", EPSILON, "replica r (sequential, compiled paths)",
                         index=("r",))
EPSILON_OTHERS = Stream("epsilon.others", EPSILON, "block b, general path: the N - 1 others",
                        index=("b",), suffix=(0,))
EPSILON_TAGGED = Stream("epsilon.tagged", EPSILON, "block b, general path: the tagged agent",
                        index=("b",), suffix=(1,))
FLUCTUATION_PATHS = Stream("fluctuations.paths", FLUCTUATIONS, "the Gaussian paths of the "
                           "c_max Monte Carlo")
GAME_QUICK_CHECK = Stream("game.quick-check", FIXED, "the probes of the check every spec load "
                          "runs")
AUTO_PROBE = Stream("auto.probe", FIXED, "the monotonicity probe behind solver.algorithm auto")
PLACEHOLDER = Stream("placeholder", FIXED, "the generator the compiled chain is typed with, "
                     "handed where it draws nothing (idle agents stay)")

STREAMS: tuple[Stream, ...] = (
    SOLVE_PROBE, SOLVE_RESTART, VALIDATE_CHECKS, VALIDATE_PROBE, VALIDATE_LIPSCHITZ,
    SIMULATE_REPLICAS, PREDICTION, EPS_N, TRAIN_ROLLOUTS, TRAIN_EVALUATION, BOUND_CONSTANTS,
    BOUND_CELL, CELL_SIMULATE, CELL_BOOTSTRAP, CELL_EPS_N, CELL_PREDICTION, SIMULATOR_UNIT,
    EPSILON_REPLICA, EPSILON_OTHERS, EPSILON_TAGGED, FLUCTUATION_PATHS, GAME_QUICK_CHECK,
    AUTO_PROBE, PLACEHOLDER)


def root(seed: Seed) -> np.random.SeedSequence:
    """The ``SeedSequence`` of a seed: ``SeedSequence(seed)`` for an integer, else itself."""
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


def sequence(seed: Seed, stream: Stream, *index: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of ``stream`` (with its indices) below ``seed``: the root's entropy
    and pool size, spawn key ``(*root.spawn_key, *stream.key(*index))`` (module docstring)."""
    base = root(seed)
    return np.random.SeedSequence(base.entropy, spawn_key=(*base.spawn_key, *stream.key(*index)),
                                  pool_size=base.pool_size)


def generator(seed: Seed, stream: Stream, *index: int) -> np.random.Generator:
    """The generator (PCG64, numpy's default) of ``sequence(seed, stream, *index)``."""
    return np.random.default_rng(sequence(seed, stream, *index))


def integer(seed: Seed, stream: Stream, *index: int) -> int:
    """A 63-bit integer seed from ``sequence(seed, stream, *index)`` (it fits a signed CSV
    integer column): the first 64-bit word of its state, shifted right by one."""
    state = sequence(seed, stream, *index).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def fixed(stream: Stream) -> np.random.Generator:
    """The generator of a stream below ``FIXED``: the same numbers whatever the run's seed."""
    if stream.below != FIXED:
        raise ValueError(f"stream {stream.name} hangs below {stream.below}, not a fixed seed")
    return generator(FIXED_SEED, stream)
