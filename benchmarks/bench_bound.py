"""The default bound-check (experiments/resource-bound.yaml): total time and its split by regime.

Target: under 2 minutes on 2 cores. Runs the sweep from scratch with 2 workers, then with 1, in
temporary directories; the per-regime split is the time of the regime's cells (summed over
cells, each measured in the worker that ran it), so with 2 workers it adds up to about twice
the wall time spent in cells.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tmfcli.commands.bound_check import run_bound_check
from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting

SPEC = Path(__file__).resolve().parent.parent / "experiments" / "resource-bound.yaml"


def main() -> None:
    spec = specs.load(SPEC)
    bc = spec.bound_check
    steps = {b: sum(setting(spec, agents=n, batch=b).T for n in bc.agents) for b in bc.batch}
    print(f"{SPEC.name}: N = {list(bc.agents)}, {bc.replicas} replicas per cell, "
          f"horizon {spec.horizon.rounds} rounds")
    for workers in (2, 1):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            report = run_bound_check(spec, Path(tmp), workers=workers, force=True)
            wall = time.perf_counter() - start
        t = report.timings
        print(f"  workers={workers}: total {wall:6.1f} s (policy {t['policy_s']:.2f} s)")
        for b in bc.batch:
            label = str(b)
            print(f"    regime {label:>5}: cells {t.get(f'regime_{label}_s', 0.0):6.1f} s   "
                  f"({steps[b]} steps x {bc.replicas} replicas over the grid)")
    fits = report.fits[report.fits["metric"] == "e_max"]
    for row in fits.itertuples():
        print(f"  e_max slope, regime {row.regime!s:>5}: {row.slope:.3f} "
              f"[{row.ci_low:.3f}, {row.ci_high:.3f}]  worst e_max/bound {row.worst_ratio:.3g}"
              f"  {row.verdict}")


if __name__ == "__main__":
    main()
