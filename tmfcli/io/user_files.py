"""Reading the files a user names (specs, game files, policy and result tables) strictly.

Every problem is one error naming the file: not found, a directory, a special file (a FIFO,
a device, a socket: refused from its ``stat``, never opened, so nothing blocks), unreadable
(permissions), too large, or not UTF-8 text. ``read_csv`` reads a table through pandas and turns
every pandas or decoding error into such a line.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

Fail = Callable[[str, str], Exception]  # (problem, fix) -> the error to raise

SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
           (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_regular(path: Path, fail: Fail, what: str) -> int:
    """The size of ``path`` when it is a regular file (links followed), else ``fail`` saying
    what it is."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise fail(f"{what} not found", "check the path") from None
    except OSError as error:
        raise fail(f"cannot be read ({error.strerror or error})",
                   "check the path and its permissions") from None
    if stat.S_ISDIR(info.st_mode):
        raise fail("is a directory, not a file", "check the path")
    for test, name in SPECIAL:
        if test(info.st_mode):
            raise fail(f"is {name}, not a regular file", f"give the path of a {what} on disk")
    if not stat.S_ISREG(info.st_mode):
        raise fail("is not a regular file", f"give the path of a {what} on disk")
    return info.st_size


def read_bytes(path: Path, fail: Fail, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    size = check_regular(path, fail, what)
    if size > limit:
        shown = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
        raise fail(f"is larger than {shown}, too large for a {what}", "check the path")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the stat, open does not wait
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise fail(f"cannot be read ({error.strerror or error})",
                   "check the path and its permissions") from None


def decode(raw: bytes, fail: Fail, what: str) -> str:
    """UTF-8 text (a byte-order mark allowed) without NUL bytes."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail("is UTF-16 text", "save the file as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise fail(f"is not UTF-8 text (byte {error.start})",
                   "save the file as UTF-8 text") from None
    if "\x00" in text:
        raise fail("holds binary data (NUL bytes)", f"give a {what} as text")
    return text


MAX_TABLE_BYTES = 1 << 31  # 2 GiB: far above any table tmf writes


def read_csv(path: Path, fail: Fail, what: str = "CSV table", **options: Any) -> pd.DataFrame:
    """A CSV table read strictly: a regular UTF-8 file that pandas parses whole, with at least
    a header. Empty, binary, Latin-1, an open quote, ragged rows: ``fail`` naming the problem.
    ``options`` go to ``pandas.read_csv``."""
    return parse_csv(decode(read_bytes(path, fail, what, MAX_TABLE_BYTES), fail, what), fail,
                     what, **options)


def parse_csv(text: str, fail: Fail, what: str = "CSV table", **options: Any) -> pd.DataFrame:
    """The table of ``text`` (``read_csv`` after the file is read and decoded)."""
    if not text.strip():
        raise fail("is empty", f"give a {what} with a header row")
    try:
        frame = pd.read_csv(io.StringIO(text), **options)
        if not isinstance(frame.index, pd.RangeIndex):
            # pandas reads rows with more fields than the header as index + columns: the
            # values would land under the wrong names
            raise fail("has rows with more fields than its header",
                       f"give a {what} as written by tmf (one field per column)")
        return frame
    except pd.errors.EmptyDataError:
        raise fail("is empty", f"give a {what} with a header row") from None
    except (pd.errors.ParserError, ValueError, TypeError, UnicodeError, OverflowError,
            csv_error()) as error:
        reason = " ".join(str(error).split())
        reason = reason if len(reason) <= 120 else reason[:117] + "..."
        raise fail(f"is not a readable CSV table ({reason or type(error).__name__})",
                   f"give a {what} as written by tmf (comma-separated, quotes closed)") \
            from None


def csv_error() -> type[Exception]:
    import csv

    return csv.Error


def result_table(path: Path, fix: str, what: str = "CSV table", **options: Any) -> pd.DataFrame:
    """``read_csv`` with every problem a ``ResultsError`` naming ``path`` (policy files,
    result tables read by ``tmf report``, resumed and reused results)."""
    from tmfcli.errors import ResultsError

    def fail(problem: str, default_fix: str) -> ResultsError:
        return ResultsError(f"{path} {problem}", fix or default_fix)

    return read_csv(path, fail, what, **options)


def result_text(path: Path, fix: str, what: str = "CSV table") -> str:
    """The text of a result table that ``result_table`` would read (the same checks, the
    same one-line errors), for callers that copy its lines as they are (``sweep.stack``)."""
    from tmfcli.errors import ResultsError

    def fail(problem: str, default_fix: str) -> ResultsError:
        return ResultsError(f"{path} {problem}", fix or default_fix)

    text = decode(read_bytes(path, fail, what, MAX_TABLE_BYTES), fail, what)
    parse_csv(text, fail, what)
    return text
