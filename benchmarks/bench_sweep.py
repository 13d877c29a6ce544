"""Sweeps: 64 small cells with 2 local processes against 1 (side by side, one run), and the
per-cell overhead of each executor measured on tiny cells.

* ratio: wall time of the 64-cell sweep in this process (--jobs 1) over the same sweep in a
  pool of two (--jobs 2); close to 2 on two idle cores. On a shared machine the wall ratio
  says how much CPU the others left; so the CPU time of each sweep (this process and its
  finished workers) is printed too: "cores used" = CPU / wall, and the CPU ratio
  (--jobs 2 / --jobs 1) is the pool's overhead in work.
* overhead per cell: for cells that compute almost nothing, (wall time through the executor
  - wall time in this process) / cells. For the pool it includes starting the workers; for Dask
  it excludes starting the cluster (printed apart), as a cluster is started once for many
  sweeps. Every cell writes its tables and manifest either way, so that cost is not overhead.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from tmfcli.command_registry import Options
from tmfcli.commands import sweep
from tmfcli.commands.executors import DaskCluster, Executor, Local
from tmfcli.io import spec as specs

CELLS = 64


def cells(solver_iterations: int, replicas: int, command: str) -> list[sweep.Cell]:
    data: dict[str, Any] = {
        "name": "bench", "game": {"name": "left_right"},
        "population": {"agents": 100, "batch": 10},
        "solver": {"algorithm": "tmf-pg", "iterations": solver_iterations, "tolerance": 0.0,
                   "restarts": 0, "params": {"natural": True}},
        "simulate": {"replicas": replicas}, "sweep": {"seed": list(range(CELLS))}}
    return sweep.expand(specs.from_dict(data))


def cpu() -> float:
    """CPU seconds of this process and of its finished (waited-for) children."""
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                     resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(command: str, grid: list[sweep.Cell], executor: Executor,
          options: Options) -> tuple[float, float]:
    """Wall and CPU seconds of one sweep into a fresh directory."""
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu0 = time.perf_counter(), cpu()
        report = sweep.run(command, grid, options, executor, out=Path(tmp) / "sweep")
        elapsed, used = time.perf_counter() - start, cpu() - cpu0
    assert report.count("done") == CELLS, [r.error for r in report.failed][:1]
    return elapsed, used


def wall(command: str, grid: list[sweep.Cell], executor: Executor, options: Options) -> float:
    return timed(command, grid, executor, options)[0]


def main() -> None:
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    small = cells(solver_iterations=400, replicas=1, command="solve")
    one, cpu_one = timed("solve", small, Local(1), Options())
    two, cpu_two = timed("solve", small, Local(2), Options())
    print(f"{CELLS} solve cells (left_right, 400 tmf-pg iterations each, "
          f"{one / CELLS * 1e3:.0f} ms per cell in one process)")
    print(f"  --jobs 1: {one:6.2f} s wall, {cpu_one:6.2f} s CPU "
          f"({cpu_one / one:.2f} cores used)")
    print(f"  --jobs 2: {two:6.2f} s wall, {cpu_two:6.2f} s CPU "
          f"({cpu_two / two:.2f} cores used)")
    print(f"  wall ratio --jobs 1 / --jobs 2: {one / two:.2f}; CPU ratio --jobs 2 / --jobs 1: "
          f"{cpu_two / cpu_one:.2f}")

    tiny = cells(solver_iterations=1, replicas=1, command="simulate")
    uniform = Options(policy="uniform")
    base = wall("simulate", tiny, Local(1), uniform)
    pool = wall("simulate", tiny, Local(2), uniform)
    print(f"{CELLS} tiny simulate cells (1 replica, uniform policy): in this process "
          f"{base / CELLS * 1e3:.1f} ms per cell")
    print(f"  local pool (2 processes): {pool:6.2f} s, overhead per cell "
          f"{(pool - base) / CELLS * 1e3:+.1f} ms (worker start-up included)")
    try:
        from distributed import LocalCluster
    except ImportError:
        print("  Dask: not installed (pip install 'tmf[dask]')")
        return
    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        up = time.perf_counter() - start
        dask = wall("simulate", tiny, DaskCluster(cluster.scheduler_address), uniform)
    print(f"  Dask (2 local worker processes): {dask:6.2f} s, overhead per cell "
          f"{(dask - base) / CELLS * 1e3:+.1f} ms (cluster start-up {up:.1f} s, not included)")


if __name__ == "__main__":
    main()
