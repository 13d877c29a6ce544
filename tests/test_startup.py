"""Start-up: ``tmf --help`` and ``tmf games`` load no numerics libraries beyond numpy, and
Ctrl-C while a command's modules load ends with one line and exit code 130."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "scipy", "pandas", "matplotlib", "dask", "llvmlite")


def loaded_after(argv: list[str]) -> set[str]:
    """The top-level modules loaded by running ``tmf *argv`` in a fresh interpreter."""
    code = ("import sys\n"
            f"sys.argv = ['tmf', *{argv!r}]\n"
            "from tmfcli.__main__ import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    return set(done.stderr.split()[-1000:])


@pytest.mark.parametrize("argv", [["--help"], ["games"], ["solve", "--help"], ["train", "--help"]])
def test_help_and_games_load_no_heavy_module(argv: list[str]) -> None:
    loaded = loaded_after(argv)
    assert "typer" in loaded  # the probe itself works
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


INTERRUPT_DURING_IMPORT = """
import os, signal, sys
class Stop:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Stop())
sys.argv = ["tmf", "solve", "experiments/resource-demo.yaml", "--out", {out!r}, "--quiet"]
from tmfcli.__main__ import main
main()
"""


@pytest.mark.parametrize(("module", "message"), [
    # Ctrl-C while the command line itself loads, before any command
    ("typer", "Error: interrupted before the command started — nothing was run; rerun the "
              "same command"),
    # Ctrl-C while the command loads its numerics (numba, pulled by the spec)
    ("numba", "Error: interrupted — rerun the same command to start again (bound-check "
              "resumes from its finished cells)"),
])
def test_ctrl_c_while_modules_load_is_one_line_and_130(tmp_path: Path, module: str,
                                                       message: str) -> None:
    code = INTERRUPT_DURING_IMPORT.format(module=module, out=str(tmp_path / "run"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == [message]
    assert not (tmp_path / "run").exists()


def test_shell_completion_completes_commands() -> None:
    # what bash runs on `tmf so<TAB>` once `tmf --install-completion` has set it up
    code = ("import sys; sys.argv = ['tmf']\n"
            "from tmfcli.__main__ import main\nmain()\n")
    env = {**os.environ, "_TMF_COMPLETE": "complete_bash",
           "COMP_WORDS": "tmf s", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["simulate", "solve", "spec"]


INTERRUPT_IN_FINALIZER = """
import os, signal, sys, time
class Dying:
    def __del__(self):  # the signal arrives while a finalizer runs (as llvmlite's, in numba)
        os.kill(os.getpid(), signal.SIGINT)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
class Stop:
    def find_spec(self, name, path=None, target=None):
        if name == "numba":
            Dying()
        return None
sys.meta_path.insert(0, Stop())
sys.argv = ["tmf", "solve", "experiments/resource-demo.yaml", "--out", {out!r}, "--quiet"]
from tmfcli.__main__ import main
main()
"""


def test_ctrl_c_inside_a_finalizer_is_not_lost(tmp_path: Path) -> None:
    """Python prints an exception raised in a ``__del__`` ('Exception ignored in ...', with a
    traceback) and drops it: a Ctrl-C arriving there is sent again once the finalizer has
    returned, and the command ends as for any Ctrl-C, instead of running on to exit 0."""
    code = INTERRUPT_IN_FINALIZER.format(out=str(tmp_path / "run"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == ["Error: interrupted — rerun the same command to start "
                                        "again (bound-check resumes from its finished cells)"]
    assert not (tmp_path / "run").exists()


INTERRUPT_AFTER_THE_COMMAND = """
import os, signal, sys, time
sys.argv = ["tmf", "games"]
from tmfcli.__main__ import main
try:
    main()
finally:  # the command has finished and printed; the process is on its way out
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.3)
"""


def test_ctrl_c_after_the_command_finished_changes_nothing() -> None:
    """Between a finished command and the process's exit a Ctrl-C has nothing left to stop:
    the exit code is the command's, with no line claiming that nothing ran."""
    done = subprocess.run([sys.executable, "-c", INTERRUPT_AFTER_THE_COMMAND],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "left_right" in done.stdout
