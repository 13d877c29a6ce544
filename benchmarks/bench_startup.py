"""Start-up: wall time of ``tmf --help``, ``tmf games`` and ``tmf solve --help`` in a fresh
process (median of several runs), beside the same process with the whole core imported
first, as every command did before the CLI deferred its heavy imports (numba, scipy,
pandas, matplotlib) to the commands that use them.

* tmf ...: the console script's code path (``tmfcli.__main__.main``), what a user waits for.
* eager core: ``tmf --help`` after importing the spec reader, the sweep machinery and the
  run store first: what ``tmf --help`` cost when ``tmfcli.cli`` imported them.
* python: an interpreter that imports nothing, the floor.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7

CASES = {
    "python (floor)": "pass",
    "tmf --help": "import sys; sys.argv = ['tmf', '--help']; "
                  "from tmfcli.__main__ import main; main()",
    "tmf games": "import sys; sys.argv = ['tmf', 'games']; "
                 "from tmfcli.__main__ import main; main()",
    "tmf solve --help": "import sys; sys.argv = ['tmf', 'solve', '--help']; "
                        "from tmfcli.__main__ import main; main()",
    "tmf --help, eager core": "import tmfcli.io.spec, tmfcli.commands.sweep, "
                              "tmfcli.io.results, tmfcli.io.budget; "
                              "import sys; sys.argv = ['tmf', '--help']; "
                              "from tmfcli.__main__ import main; main()",
}


def wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    wall(CASES["tmf --help, eager core"])  # warm the file cache and numba's cache once
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(RUNS):  # interleaved, so that load on the machine hits every case alike
        for name, code in CASES.items():
            times[name].append(wall(code))
    print(f"{'case':<26} {'median s':>9} {'min s':>7} {'max s':>7}   ({RUNS} runs each)")
    for name, values in times.items():
        print(f"{name:<26} {statistics.median(values):9.3f} {min(values):7.3f} "
              f"{max(values):7.3f}")
    lazy = statistics.median(times["tmf --help"])
    eager = statistics.median(times["tmf --help, eager core"])
    print(f"tmf --help: {eager / lazy:.1f}x faster than with the core imported eagerly")


if __name__ == "__main__":
    main()
