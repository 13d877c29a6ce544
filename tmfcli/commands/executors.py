"""Where the runs of a sweep execute: in this process, in a local process pool, or on a Dask
distributed cluster.

Every executor runs ``execute`` on tasks and hands each ``Outcome`` to ``on_done`` as soon as
it is ready, in the order they finish. A failing run is an outcome (its error recorded), never
an exception that stops the others. An interrupt (KeyboardInterrupt, or SIGTERM turned into
one by ``interruptible``) stops every worker promptly and propagates; outcomes already handed
over are kept.

Results do not depend on the executor: a run's tables are computed from its spec alone. Local
workers write into a stage beside the run's directory and swap it in whole
(``results.new_result``; same file system); a Dask worker, which may be on another machine,
runs into a private temporary directory and ships the files back, and ``store`` stages and
swaps them in here the same way: the bytes are those a local run writes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

from tmfcli.command_registry import COMMANDS, Options, Progress
from tmfcli.commands import jobs
from tmfcli.errors import Interrupted, TmfError
from tmfcli.io import addresses, results, runs
from tmfcli.io.spec_types import Spec

DASK_HINT = "install it with: pip install 'tmf[dask]'"


class ExecutorError(TmfError):
    """An executor cannot start: Dask missing, or its scheduler unreachable."""


@dataclass(frozen=True)
class Task:
    """One run: ``command`` (a key of ``command_registry.COMMANDS``) on ``spec`` into ``directory``;
    ``key`` is the run's identity (``jobs.key``)."""

    index: int
    command: str
    spec: Spec
    directory: Path
    options: Options
    key: str
    command_line: str = ""


@dataclass
class Outcome:
    """What became of a task. ``files`` (name -> bytes, manifest last) when shipped back."""

    index: int
    ok: bool
    elapsed_s: float
    error: str = ""
    trace: str = ""
    files: dict[str, bytes] | None = None


def execute(task: Task, on_progress: Progress | None = None, catch: bool = True) -> Outcome:
    """Run one task into its directory; with ``catch`` an error becomes a failed outcome."""
    runs.begin(task.command_line or None)
    start = time.perf_counter()
    command = COMMANDS[task.command]
    try:
        if command.stages:  # stages, locks and resumes its own result (bound-check)
            jobs.run(command, task.spec, task.directory, task.options, on_progress)
        else:  # written into a stage beside the directory and swapped in whole
            with results.new_result(task.directory, task.key,
                                    results.spec_hash(task.spec, task.key),
                                    task.options.force) as stage:
                jobs.run(command, task.spec, stage, task.options, on_progress)
    except Exception as error:
        if not catch:
            raise
        message = error.message() if isinstance(error, TmfError) else \
            f"{type(error).__name__}: {error}"
        return Outcome(task.index, False, time.perf_counter() - start, message,
                       traceback.format_exc())
    return Outcome(task.index, True, time.perf_counter() - start)


def execute_shipped(task: Task) -> Outcome:
    """Run one task in a private temporary directory and return its files (for remote
    workers, whose file system may not be ours)."""
    with tempfile.TemporaryDirectory(prefix="tmf-") as tmp:
        here = Path(tmp) / "run"
        outcome = execute(replace(task, directory=here))
        if outcome.ok:
            names = sorted(p.name for p in here.iterdir() if p.is_file())
            names.sort(key=lambda n: n == runs.MANIFEST)  # manifest last
            outcome.files = {n: (here / n).read_bytes() for n in names}
    return outcome


def store(files: dict[str, bytes], task: Task) -> None:
    """Write shipped files into a stage beside the task's directory, in order (manifest
    last), and swap it in whole (``results.new_result``)."""
    with results.new_result(task.directory, task.key, results.spec_hash(task.spec, task.key),
                            task.options.force) as stage:
        for name, data in files.items():
            try:
                (stage / name).write_bytes(data)
            except OSError as error:
                raise results.write_error(error, stage / name) from None


OnDone = Callable[[Outcome], None]


class Executor(Protocol):
    def run(self, tasks: list[Task], on_done: OnDone,
            on_progress: Progress | None = None) -> None: ...


# --------------------------------------------------------------------------------------------
# local
# --------------------------------------------------------------------------------------------
def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _worker_init() -> None:
    """In each worker: ignore SIGINT (the parent owns Ctrl-C and stops the workers itself),
    die at once on SIGTERM, and die with the parent even after SIGKILL (Linux parent-death
    signal)."""
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # a worker's numpy warnings would print before the parent's one-line error; a numerical
    # problem is raised as a NumericalError and reported by the parent
    warnings.simplefilter("ignore", RuntimeWarning)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


@dataclass(frozen=True)
class Local:
    """In this process for one task (with per-iteration progress), else a pool of ``jobs``
    worker processes (``pool_map``)."""

    jobs: int

    def run(self, tasks: list[Task], on_done: OnDone,
            on_progress: Progress | None = None) -> None:
        if self.jobs <= 1 or len(tasks) <= 1:
            for task in tasks:
                on_done(execute(task, on_progress if len(tasks) == 1 else None))
            return
        for i, outcome, error in pool_map(execute, tasks, self.jobs):
            if error is not None:  # the worker died (killed, out of memory)
                outcome = Outcome(tasks[i].index, False, 0.0, "worker process failed: "
                                  f"{type(error).__name__}: {error}")
            on_done(outcome)


T = TypeVar("T")
R = TypeVar("R")


def pool_map(fn: Callable[[T], R], items: list[T],
             jobs: int) -> Generator[tuple[int, Any, BaseException | None], None, None]:
    """``fn`` over ``items`` in ``jobs`` worker processes: yields (index, result, error) as
    each finishes (error set and result None when ``fn`` raised or its worker died).

    Workers ignore SIGINT: on an interrupt here, or when the consumer stops early, the pool
    drops queued items and terminates its workers at once.
    """
    pool = ProcessPoolExecutor(max_workers=max(1, min(jobs, len(items))), mp_context=_context(),
                               initializer=_worker_init)
    try:
        pending: dict[Future[R], int] = {pool.submit(fn, x): i for i, x in enumerate(items)}
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                i = pending.pop(future)
                error = future.exception()
                yield i, None if error is not None else future.result(), error
    except BaseException:  # KeyboardInterrupt, or GeneratorExit when the consumer stops
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _context() -> multiprocessing.context.BaseContext:
    """Fork (cheapest) when this process runs no other thread; else a fork server that has
    imported tmf once, since forking a process with threads (a progress bar's refresh, a Dask
    client) can copy a held lock into the child."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tmfcli.commands.executors"])
    return context


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: drop queued tasks and terminate the running workers."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
    # let the pool's manager thread see its dead workers and close its wake-up pipe now: left
    # running, it races the interpreter's exit (concurrent.futures' _python_exit writes to that
    # pipe while the thread closes it), which printed an OSError traceback after Ctrl-C
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None and manager.is_alive():
        manager.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------------
class DaskCluster:
    """The workers of an existing Dask distributed scheduler at ``address``.

    Connects at once and fails fast (``ExecutorError`` naming the address) when nothing answers
    within ``timeout_s`` seconds. tmf must be installed on every worker.
    """

    def __init__(self, address: str, timeout_s: float = 3.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError("--scheduler needs Dask distributed, which is not installed",
                                DASK_HINT) from None
        try:
            parsed = addresses.parse(address)
        except addresses.AddressError as error:
            raise ExecutorError(f"the scheduler address {address[:80]!r} {error}",
                                f"write protocol://host:port, e.g. {addresses.EXAMPLE}") from None
        self.address = address
        fix = "start it with 'dask scheduler' and workers with 'dask worker " \
            f"{address}', or check the address (README: Dask)"
        # a plain socket first: it fails within timeout_s (Dask's own connect retries for
        # twice as long and raises its own errors)
        why = None if parsed.protocol == "ucx" else addresses.probe(parsed, timeout_s)
        if why is None:
            why = _handshake(address, timeout_s)
        if why is not None:
            raise ExecutorError(f"cannot reach the Dask scheduler at {address} ({why})", fix)
        try:
            self.client: Any = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except Exception as error:  # Dask raises OSError, TimeoutError, ValueError, its own
            raise ExecutorError(f"cannot reach the Dask scheduler at {address} "
                                f"({type(error).__name__})", fix) from None

    def map(self, fn: Callable[[T], R],
            items: list[T]) -> Generator[tuple[int, Any, BaseException | None], None, None]:
        """``fn`` over ``items`` on the cluster, as ``pool_map`` does locally; the client is
        closed at the end, and the cluster's pending work cancelled if the consumer stops."""
        from distributed import as_completed

        tag = uuid.uuid4().hex[:8]
        futures = [self.client.submit(fn, x, pure=False, key=f"tmf-{i}-{tag}")
                   for i, x in enumerate(items)]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future in as_completed(futures, loop=self.client.loop):
                try:
                    result, error = future.result(), None
                except Exception as failure:  # fn raised, a worker was lost, or lacks tmf
                    result, error = None, failure
                yield index[future.key], result, error
        except BaseException:  # KeyboardInterrupt, or GeneratorExit when the consumer stops
            self.client.cancel(futures, force=True)
            raise
        finally:
            self.client.close()

    def run(self, tasks: list[Task], on_done: OnDone,
            on_progress: Progress | None = None) -> None:
        with closing(self.map(execute_shipped, tasks)) as outcomes:
            for i, outcome, error in outcomes:
                if error is not None:
                    outcome = Outcome(tasks[i].index, False, 0.0,
                                      f"Dask worker failed: {type(error).__name__}: {error}")
                on_done(outcome)


def _handshake(address: str, timeout_s: float) -> str | None:
    """None when a Dask scheduler answers Dask's handshake at ``address`` within
    ``timeout_s``, else why not. Done before ``Client``, whose failure leaves a client that
    blocks for seconds and prints a traceback when it is collected."""
    import asyncio

    from distributed.comm import connect

    async def shake() -> None:
        comm = await connect(address, timeout=timeout_s)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(shake(), timeout_s + 1))
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as error:  # anything but a handshake: not a scheduler
        return f"no Dask scheduler answers there: {type(error).__name__}"
    return None


def grid_map(fn: Callable[[T], R], items: list[T], workers: int, scheduler: str | None = None
             ) -> Generator[tuple[int, Any, BaseException | None], None, None]:
    """``fn`` over the cells of one run's own grid (bound-check's N x B): on the Dask cluster
    at ``scheduler``, in a pool of ``workers`` processes, or here (errors then propagate)."""
    if scheduler:
        yield from DaskCluster(scheduler).map(fn, items)
    elif workers > 1 and len(items) > 1:
        yield from pool_map(fn, items, workers)
    else:
        for i, x in enumerate(items):
            yield i, fn(x), None


def executor(jobs: int | None, scheduler: str | None) -> Executor:
    """``--scheduler`` (Dask) when given, else the local executor with ``jobs`` processes."""
    if scheduler:
        return DaskCluster(scheduler)
    return Local(jobs if jobs is not None else default_jobs())


# --------------------------------------------------------------------------------------------
# interrupts
# --------------------------------------------------------------------------------------------
@contextmanager
def interruptible() -> Iterator[None]:
    """Inside, SIGTERM raises ``Interrupted`` (a KeyboardInterrupt carrying the signal) like
    Ctrl-C does, so that clean-up runs (main thread only)."""

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
