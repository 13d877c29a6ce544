"""Same bytes before and after a change: run every shipped experiment, hash what it writes.

    python benchmarks/same_bytes.py --save before.txt     # on the old code
    python benchmarks/same_bytes.py --check before.txt    # on the new code: lists every change

Each case runs one command on one spec from experiments/ (sizes cut where a full run takes
minutes; the cut is part of the command, so both sides run the same thing) into a fresh
directory, then hashes every file it wrote. Manifests are hashed without the fields that say
when, where and by which commit a run was made (started, finished, host, versions, timings,
command_line, elapsed_s), and CSV tables without their elapsed_s column; everything else,
the resolved spec included, must stay the same.
Not part of `make test` (about two minutes); a refactor's note reports its outcome.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TMF = str(Path(sys.executable).with_name("tmf"))
VOLATILE = ("started", "finished", "host", "versions", "timings", "command_line", "elapsed_s")
TRAIN_CUT = ["--set", "train.iterations=4"]

CASES: list[tuple[str, list[str]]] = [
    ("solve resource-demo", ["solve", "experiments/resource-demo.yaml"]),
    ("simulate resource-demo", ["simulate", "experiments/resource-demo.yaml"]),
    ("solve hybrid-work", ["solve", "experiments/hybrid-work.yaml"]),
    ("simulate hybrid-work", ["simulate", "experiments/hybrid-work.yaml"]),
    ("simulate queue-simulate", ["simulate", "experiments/queue-simulate.yaml"]),
    ("solve queue-rounds (2 rounds)",
     ["solve", "experiments/queue-rounds.yaml", "--set", "horizon.rounds=2"]),
    ("bound-check resource-bound (N <= 1000)",
     ["bound-check", "experiments/resource-bound.yaml",
      "--set", "bound_check.agents=[100,300,1000]", "--set", "bound_check.replicas=50"]),
    ("bound-check gap-steps-resource (N <= 300)",
     ["bound-check", "experiments/paper/gap-steps-resource.yaml",
      "--set", "bound_check.agents=[100,300]", "--set", "bound_check.replicas=50"]),
    ("simulate bands-queueing", ["simulate", "experiments/paper/bands-queueing.yaml"]),
    ("solve unique-queueing (alpha sweep)",
     ["solve", "experiments/paper/unique-queueing.yaml", "--sweep", "population.alpha=1,0.1",
      "--set", "solver.restarts=1"]),
    *[(f"train train-{g} {a} B={b}",
       ["train", f"experiments/train-{g}.yaml", "--set", f"train.algorithm={a}",
        "--set", f"population.batch={b}", *TRAIN_CUT])
      for g in ("resource", "queue")
      for a in ("tmf-pg", "tmf-pg-exact", "mf-q", "independent-pg")
      for b in ("1", "all")],
    ("train sweep train-resource (seeds, train.seed)",
     ["train", "experiments/train-resource.yaml", "--sweep", "seed=0,1",
      "--set", "train.seed=5", *TRAIN_CUT]),
]


def _digest(path: Path) -> str:
    if path.name.startswith("manifest") and path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict):
            for key in VOLATILE:
                data.pop(key, None)
        return hashlib.sha256(yaml.safe_dump(data, sort_keys=True).encode()).hexdigest()
    if path.suffix == ".csv":
        rows = [line.split(",") for line in path.read_text().splitlines()]
        if rows and "elapsed_s" in rows[0]:
            k = rows[0].index("elapsed_s")
            text = "\n".join(",".join(r[:k] + r[k + 1:]) for r in rows)
            return hashlib.sha256(text.encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_case(args: list[str], out: Path) -> dict[str, str]:
    """Run one command into `out`; map each file written (relative path) to its digest."""
    done = subprocess.run([TMF, *args, "--out", str(out), "--quiet"], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode not in (0, 3, 4):
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return {str(p.relative_to(out)): _digest(p) for p in sorted(out.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def digests() -> dict[str, str]:
    table: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, args) in enumerate(CASES):
            print(f"  {name}", file=sys.stderr, flush=True)
            for rel, digest in run_case(args, Path(tmp) / f"case{k}").items():
                table[f"{name} :: {rel}"] = digest
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the digests to this file")
    group.add_argument("--check", type=Path, help="compare with digests saved before")
    options = parser.parse_args()
    if options.check:  # read before two minutes of runs: a wrong file fails now
        try:
            before = dict(reversed(line.rstrip("\n").split("  ", 1))
                          for line in options.check.read_text().splitlines())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise SystemExit(f"{options.check}: not digests written by --save "
                             f"({type(error).__name__})") from None
    table = digests()
    if options.save:
        options.save.write_text("".join(f"{d}  {k}\n" for k, d in table.items()))
        print(f"{len(table)} files from {len(CASES)} cases saved to {options.save}")
        return
    changed = sorted(k for k in before.keys() & table.keys() if before[k] != table[k])
    gone, new = sorted(before.keys() - table.keys()), sorted(table.keys() - before.keys())
    for label, keys in (("changed", changed), ("missing now", gone), ("new", new)):
        for key in keys:
            print(f"{label}: {key}")
    same = len(before.keys() & table.keys()) - len(changed)
    print(f"{same} of {len(before)} files the same bytes; {len(changed)} changed, "
          f"{len(gone)} missing, {len(new)} new")
    sys.exit(1 if changed or gone or new else 0)


if __name__ == "__main__":
    main()
