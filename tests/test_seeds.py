"""The random streams of tmf (``tmfcli.seeds``): named once, distinct within a run, the same
from any root, the keys every output has always used, and derived nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tmfcli import seeds
from tmfcli.seeds import STREAMS, Stream

ROOT = Path(__file__).resolve().parents[1]
SS = np.random.SeedSequence

# the indices one small run draws (restarts, iterations I = 6, cells, replicas and blocks)
I = 6
SAMPLE: dict[Stream, list[tuple[int, ...]]] = {
    seeds.SOLVE_RESTART: [(i,) for i in range(5)],
    seeds.TRAIN_ROLLOUTS: [(i,) for i in range(I)],
    seeds.TRAIN_EVALUATION: [(I,)],
    seeds.BOUND_CELL: [(k, n) for k in range(3) for n in (1, 10, 100, 1000)],
    seeds.SIMULATOR_UNIT: [(k,) for k in range(40)],
    seeds.EPSILON_REPLICA: [(r,) for r in range(40)],
    seeds.EPSILON_OTHERS: [(b,) for b in range(3)],
    seeds.EPSILON_TAGGED: [(b,) for b in range(3)],
}
COMMANDS = ("solve", "validate", "simulate", "train", "bound-check")


def draws(command: str, seed: int) -> tuple[list[np.random.SeedSequence], set[str]]:
    """Every SeedSequence a run of ``command`` draws numbers from, with the streams reached:
    the run's streams, and below each root handed on (simulator, epsilon, fluctuations, the
    cells' own integer seeds) the streams of that root."""
    out: list[np.random.SeedSequence] = []
    reached: set[str] = set()

    def expand(root: seeds.Seed, below: str) -> None:
        for stream in STREAMS:
            if stream.below != below or (below == seeds.RUN and command not in stream.commands):
                continue
            reached.add(stream.name)
            for index in SAMPLE.get(stream, [()]):
                if stream.hands_to == seeds.CELL:
                    expand(seeds.integer(root, stream, *index), seeds.CELL)
                elif stream.hands_to is not None:
                    expand(seeds.sequence(root, stream, *index), stream.hands_to)
                else:
                    out.append(seeds.sequence(root, stream, *index))

    expand(seed, seeds.RUN)
    return out, reached


def test_every_stream_is_named_once_and_in_the_table() -> None:
    declared = {name: value for name, value in vars(seeds).items() if isinstance(value, Stream)}
    assert set(declared.values()) == set(STREAMS) and len(STREAMS) == len(declared)
    assert len({s.name for s in STREAMS}) == len(STREAMS)
    table = seeds.__doc__ or ""
    for constant in declared:
        assert re.search(rf"^{constant}\s", table, re.MULTILINE), f"{constant} not in the table"
    for stream in STREAMS:
        assert stream.below in (seeds.RUN, seeds.CELL, seeds.SIMULATOR, seeds.EPSILON,
                                seeds.FLUCTUATIONS, seeds.FIXED)
        assert (stream.below == seeds.RUN) == bool(stream.commands), stream.name


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_no_two_draws_of_one_run_share_a_stream(command: str, seed: int) -> None:
    used, _ = draws(command, seed)
    assert len(used) >= 2
    keys = [(s.entropy, s.spawn_key) for s in used]
    assert len(set(keys)) == len(keys)
    # distinct keys could still coincide once numpy packs them into 32-bit words: the states
    states = {tuple(s.generate_state(4)) for s in used}
    assert len(states) == len(used)


def test_every_stream_is_reached_by_some_command() -> None:
    reached = set().union(*(draws(c, 0)[1] for c in COMMANDS))
    fixed = {s.name for s in STREAMS if s.below == seeds.FIXED}
    assert reached | fixed == {s.name for s in STREAMS}


def test_streams_of_different_commands_may_share_a_key() -> None:
    # distinct within a run, not across commands: tmf solve's probe and tmf validate's checks
    # are both key (0,) of the seed (they feed different runs, never one output)
    assert seeds.SOLVE_PROBE.key() == seeds.VALIDATE_CHECKS.key() == (0,)
    assert seeds.EPS_N.commands == ("simulate", "train")


@pytest.mark.parametrize(("stream", "index"), [
    (seeds.SOLVE_RESTART, (2,)), (seeds.TRAIN_ROLLOUTS, (3,)), (seeds.EPS_N, ()),
    (seeds.CELL_BOOTSTRAP, ()), (seeds.SIMULATOR_UNIT, (4,)), (seeds.EPSILON_TAGGED, (1,)),
    (seeds.BOUND_CELL, (1, 50)),
])
def test_a_stream_from_a_root_that_already_spawned_equals_one_from_a_fresh_root(
        stream: Stream, index: tuple[int, ...]) -> None:
    fresh = seeds.generator(11, stream, *index).random(5)
    used = SS(11)
    used.spawn(7)
    assert np.array_equal(seeds.generator(used, stream, *index).random(5), fresh)
    # the same below a child root (a stream handed on), fresh or after spawning
    child = SS(11).spawn(4)[3]
    child.spawn(2)
    again = seeds.generator(SS(11, spawn_key=(3,)), stream, *index).random(5)
    assert np.array_equal(seeds.generator(child, stream, *index).random(5), again)
    # where ``.spawn`` on the used root would have given something else
    assert not np.array_equal(np.random.default_rng(used.spawn(1)[0]).random(5),
                              np.random.default_rng(SS(11).spawn(1)[0]).random(5))


def test_streams_are_the_children_the_outputs_have_always_used() -> None:
    """Each output keeps its numbers: the stream equals the child it was drawn from before the
    streams were named (the ``spawn`` calls and explicit keys written out here)."""
    def same(a: np.random.SeedSequence, b: np.random.SeedSequence) -> bool:
        return bool(np.array_equal(a.generate_state(8), b.generate_state(8)))

    s, c = 5, 123456789
    assert same(seeds.sequence(s, seeds.SOLVE_PROBE), SS(s).spawn(4)[0])
    assert same(seeds.sequence(s, seeds.SOLVE_RESTART, 2), SS(s).spawn(4)[3])
    for i, stream in enumerate((seeds.VALIDATE_CHECKS, seeds.VALIDATE_PROBE,
                                seeds.VALIDATE_LIPSCHITZ)):
        assert same(seeds.sequence(s, stream), SS(s).spawn(3)[i])
    assert same(seeds.sequence(s, seeds.SIMULATE_REPLICAS), SS(s))
    assert same(seeds.sequence(s, seeds.EPS_N), SS(s, spawn_key=(2**30,)))
    assert same(seeds.sequence(s, seeds.PREDICTION), SS(s, spawn_key=(2**29,)))
    assert same(seeds.sequence(s, seeds.TRAIN_ROLLOUTS, 3), SS(s).spawn(4)[3])
    assert same(seeds.sequence(s, seeds.TRAIN_EVALUATION, 40), SS(s, spawn_key=(40,)))
    assert same(seeds.sequence(s, seeds.BOUND_CONSTANTS), SS(s, spawn_key=(2**20,)))
    word = SS(s, spawn_key=(1, 200)).generate_state(1, dtype=np.uint64)[0]
    assert seeds.integer(s, seeds.BOUND_CELL, 1, 200) == int(word) // 2
    for i, stream in enumerate((seeds.CELL_SIMULATE, seeds.CELL_BOOTSTRAP, seeds.CELL_EPS_N,
                                seeds.CELL_PREDICTION)):
        assert same(seeds.sequence(c, stream), SS(c).spawn(4)[i])
    eps = SS(s).spawn(3)[2]
    assert same(seeds.sequence(eps, seeds.EPSILON_REPLICA, 7), eps.spawn(8)[7])
    others, tagged = SS(s).spawn(3)[2].spawn(2)[1].spawn(2)  # block 1: its two children
    assert same(seeds.sequence(eps, seeds.EPSILON_OTHERS, 1), others)
    assert same(seeds.sequence(eps, seeds.EPSILON_TAGGED, 1), tagged)
    assert same(seeds.sequence(eps, seeds.FLUCTUATION_PATHS), eps)
    for stream in (seeds.GAME_QUICK_CHECK, seeds.AUTO_PROBE, seeds.PLACEHOLDER):
        assert np.array_equal(seeds.fixed(stream).random(4), np.random.default_rng(0).random(4))


def test_a_stream_takes_exactly_its_indices() -> None:
    assert seeds.SOLVE_RESTART.key(0) == (1,)
    assert seeds.EPSILON_OTHERS.key(4) == (4, 0)
    with pytest.raises(ValueError, match="takes 1 indices"):
        seeds.TRAIN_ROLLOUTS.key()
    with pytest.raises(ValueError, match="takes 0 indices"):
        seeds.EPS_N.key(1)
    with pytest.raises(ValueError, match=">= 0"):
        seeds.SIMULATOR_UNIT.key(-1)
    with pytest.raises(ValueError, match="not a fixed seed"):
        seeds.fixed(seeds.EPS_N)


def test_an_integer_seed_fits_a_signed_csv_column() -> None:
    values = [seeds.integer(s, seeds.BOUND_CELL, k, n)
              for s in (0, 1, 2**62) for k in range(3) for n in (1, 10**6)]
    assert all(0 <= v < 2**63 for v in values)
    assert len(set(values)) == len(values)


# what makes a generator or a seed sequence; only tmfcli/seeds.py may write these
FORBIDDEN = re.compile(r"SeedSequence\(|\.spawn\(|default_rng\(|RandomState\(|random\.seed\(|"
                       r"PCG64\(|random\.Generator\(")


def test_only_the_seeds_module_derives_streams() -> None:
    package = ROOT / "tmfcli"
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for path in sorted(package.rglob("*.py")) if path != package / "seeds.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if FORBIDDEN.search(line)]
    assert offenders == []
    # the pattern does catch what it is meant to
    assert FORBIDDEN.search("rng = np.random.default_rng(np.random.SeedSequence(s).spawn(2)[1])")
