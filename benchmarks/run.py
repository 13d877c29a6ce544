"""`make bench`: run every benchmark module's main() in turn and print its tables.

Each module measures side by side in one run (fast path vs reference, tmf vs the naive
approach) and how cost grows with the sizes that matter; nothing here asserts a time.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODULES = ["bench_startup", "bench_solve", "bench_simulate", "bench_bound", "bench_games",
           "bench_sweep", "bench_train", "bench_chain", "bench_timed", "bench_fluctuations"]


def main() -> None:
    only = sys.argv[1:]
    for name in MODULES:
        if only and name not in only:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        module.main()
        print(f"({name}: {time.perf_counter() - start:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
