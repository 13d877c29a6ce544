"""Executors: a Dask cluster gives the bytes of a local run; an unreachable scheduler or a
missing Dask fail at once; an interrupted sweep (real process, real signal) keeps its finished
cells, leaves nothing that looks finished but is not, stops its workers, and resumes."""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tmfcli.io import runs

from .test_sweep import BASE, invoke, write


def tables(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.suffix in (".csv", ".png") and p.name != "sweep.csv"}


@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
def test_dask_cluster_gives_the_bytes_of_a_local_run(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    sweep = {"seed": [0, 1], "population.batch": [1, 100]}
    local = tmp_path / "local"
    result = invoke("simulate", str(write(tmp_path, sweep=sweep)), "--policy", "uniform",
                    "--out", str(local), "--jobs", "1")
    assert result.exit_code == 0, result.output
    bc = write(tmp_path, "bc.yaml", horizon={"steps": 3},
               bound_check={"agents": [20, 40], "batch": [1, "all"], "replicas": 3})
    grid = invoke("bound-check", str(bc), "--policy", "uniform", "--out",
                  str(tmp_path / "grid"), "--workers", "1")
    assert grid.exit_code in (0, 3), grid.output
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = tmp_path / "remote"
        spec = write(tmp_path, "dask.yaml", sweep=sweep,
                     executor={"scheduler": cluster.scheduler_address})
        result = invoke("simulate", str(spec), "--policy", "uniform", "--out", str(remote))
        assert result.exit_code == 0, result.output
        # one bound-check: it runs here, its N x B cells on the cluster
        shared = invoke("bound-check", str(bc), "--policy", "uniform", "--out",
                        str(tmp_path / "shared"), "--scheduler", cluster.scheduler_address)
        assert shared.exit_code == grid.exit_code, shared.output
        assert yaml.safe_load((tmp_path / "shared" / "manifest.yaml").read_text())[
            "scheduler"] == cluster.scheduler_address
        top = yaml.safe_load((remote / "manifest.yaml").read_text())  # the sweep's own
        assert top["executor"] == f"Dask scheduler {cluster.scheduler_address}"
        assert top["command_line"] == runs.this_command_line()
    for name in ("replicas.csv", "cells.csv", "fits.csv"):
        assert (tmp_path / "grid" / name).read_bytes() == (tmp_path / "shared" / name
                                                           ).read_bytes()
    ours, theirs = tables(local), tables(remote)
    assert len(ours) == 4 * 4 + 4 and ours == theirs  # 4 cells x 4 tables, 4 stacked
    a, b = (pd.read_csv(d / "sweep.csv") for d in (local, remote))
    pd.testing.assert_frame_equal(a.drop(columns="elapsed_s"), b.drop(columns="elapsed_s"))
    manifests = [yaml.safe_load((remote / d / "manifest.yaml").read_text())
                 for d in b.directory]
    assert {m["host"] for m in manifests} == {socket.gethostname()}  # workers on this machine
    # the command line is the one that asked, not the worker's
    assert {m["command_line"] for m in manifests} == {runs.this_command_line()}


def test_unreachable_scheduler_fails_fast_naming_it(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    spec = write(tmp_path, sweep={"seed": [0, 1]})
    result = invoke("solve", str(spec), "--scheduler", "tcp://127.0.0.1:9", "--out",
                    str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach the Dask scheduler at "
                                    "tcp://127.0.0.1:9 ")
    assert not (tmp_path / "out").exists()


def test_without_dask_the_flag_says_how_to_install_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    result = invoke("solve", str(write(tmp_path)), "--scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 1
    assert result.stderr == ("Error: --scheduler needs Dask distributed, which is not "
                             "installed — install it with: pip install 'tmf[dask]'\n")


def _alive_with(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (our command and its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
def test_sigterm_keeps_finished_cells_stops_workers_and_rerun_resumes(tmp_path: Path) -> None:
    spec = write(tmp_path, solver={**BASE["solver"], "iterations": 300, "tolerance": 0.0},
                 sweep={"seed": list(range(8))})
    out = tmp_path / "out"
    marker = f"TMF_TEST_{uuid.uuid4().hex}"
    env = {**os.environ, marker: "1", "TMF_LOG_EVERY": "0"}
    tmf = [sys.executable, "-m", "tmfcli", "solve", str(spec), "--out", str(out), "--jobs", "2"]
    process = subprocess.Popen(tmf, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        sweep = out / "sweep.csv"
        if sweep.is_file() and "done" in set(pd.read_csv(sweep)["status"]):
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the sweep ended before it could be interrupted: " \
        f"{process.communicate()[1]}"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM, stderr  # 143: 128 + the signal
    assert stderr.strip().splitlines()[-1].startswith("Error: interrupted:")
    assert "interrupted:" in stderr and "rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    gone = time.monotonic() + 10  # terminated workers may take a moment on a loaded machine
    while _alive_with(marker) and time.monotonic() < gone:
        time.sleep(0.1)
    assert _alive_with(marker) == []  # no worker outlives the command
    table = pd.read_csv(out / "sweep.csv")
    done = table[table.status == "done"]
    assert 1 <= len(done) < 8, stderr
    for row in table.itertuples():
        manifest = out / str(row.directory) / "manifest.yaml"
        if row.status == "done":
            assert yaml.safe_load(manifest.read_text())["status"] == "complete"
            assert all((out / str(row.directory) / n).is_file()
                       for n in ("iterations.csv", "policy.csv", "flow.csv"))
        else:  # a cell may finish between the signal and its record: then it is whole
            assert row.status == "pending"
            assert not manifest.exists() or \
                yaml.safe_load(manifest.read_text())["status"] == "complete"
    finished = {d for d in table.directory if (out / d / "manifest.yaml").exists()}
    # the sweep is not complete, and its top is known as tmf's for the rerun
    assert yaml.safe_load((out / "manifest.yaml").read_text())["status"] == "interrupted"
    before = {d: (out / d / "policy.csv").read_bytes() for d in done.directory}

    again = subprocess.run(tmf, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 4, again.stderr  # tolerance 0: every cell stops at its maximum
    table = pd.read_csv(out / "sweep.csv")
    assert sorted(table.status) == sorted(["reused"] * len(finished) +
                                         ["done"] * (8 - len(finished)))
    assert set(table[table.status == "reused"].directory) == finished
    assert all((out / d / "policy.csv").read_bytes() == b for d, b in before.items())
    assert yaml.safe_load((out / "manifest.yaml").read_text())["status"] == "complete"


def _slurm_recipe() -> str:
    """The README's SLURM script (the python block that starts ``# slurm_sweep.py``)."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("# slurm_sweep.py")
    return text[start:text.index("```", start)]


def _slurm_arguments() -> dict[str, Any]:
    """The keyword arguments the README's script gives ``SLURMCluster``."""
    call = next(node for node in ast.walk(ast.parse(_slurm_recipe()))
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "SLURMCluster")
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}


@pytest.mark.slow  # a local cluster and a tmf process: 10-30 s on two shared cores
def test_the_readme_slurm_recipe_runs_a_sweep_on_its_cluster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's SLURM script, run as written with a local Dask cluster standing in for
    dask-jobqueue's (two single-threaded workers per job, as cores=2, processes=2 ask): the
    sweep it starts runs its cells on that cluster, and the results are written here."""
    distributed = pytest.importorskip("distributed")
    made: list[dict[str, Any]] = []

    local: Any = distributed.LocalCluster

    class SLURMCluster(local):
        def __init__(self, cores: int, processes: int, memory: str, walltime: str,
                     **site: Any) -> None:
            made.append({"cores": cores, "processes": processes, "memory": memory,
                         "walltime": walltime, **site})
            super().__init__(n_workers=processes, threads_per_worker=cores // processes,
                             processes=True, host="127.0.0.1", dashboard_address=None)

        def scale(self, n: int | None = None, jobs: int = 0, **_: Any) -> None:
            if n is None:  # SLURM would start jobs x processes workers; here: one job's
                made.append({"jobs": jobs})
                n = made[0]["processes"] if jobs else 0
            super().scale(n)

    stand_in = types.ModuleType("dask_jobqueue")
    stand_in.SLURMCluster = SLURMCluster  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dask_jobqueue", stand_in)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    write(tmp_path)
    exec(compile(_slurm_recipe(), "README.md", "exec"), {})
    assert made[0]["scheduler_options"] == {"dashboard_address": "localhost:8787"}
    assert made[1] == {"jobs": 8}
    top = yaml.safe_load((tmp_path / "results" / "slurm" / "manifest.yaml").read_text())
    assert top["status"] == "complete" and top["done"] == 4
    assert top["executor"].startswith("Dask scheduler tcp://127.0.0.1:")
    cells = pd.read_csv(tmp_path / "results" / "slurm" / "sweep.csv")
    assert list(cells.seed) == [0, 1, 2, 3] and set(cells.status) == {"done"}


def test_the_readme_slurm_job_script_starts_the_workers_it_documents() -> None:
    """dask-jobqueue's job script for the README's arguments (no SLURM needed to write it):
    one job asks for 2 cores and 2 hours and starts 2 single-threaded workers with the
    interpreter that made the cluster - the path the README says every node must have."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    arguments = _slurm_arguments()
    assert arguments["cores"] == 2 and arguments["processes"] == 2
    arguments["scheduler_options"] = {"dashboard_address": None, "host": "127.0.0.1"}
    with jobqueue.SLURMCluster(**arguments) as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
    assert "#SBATCH --cpus-per-task=2" in script and "#SBATCH -t 02:00:00" in script
    command = next(line for line in script.splitlines() if "dask_worker" in line).split()
    assert command[:4] == [sys.executable, "-m", "distributed.cli.dask_worker", address]
    for flag, value in (("--nthreads", "1"), ("--nworkers", "2")):
        assert command[command.index(flag) + 1] == value
