"""``tmf runs``: the runs below a directory, as a table for people or CSV/JSON for scripts."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tmfcli.cli.common import command, fmt, out


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@command
def runs(path: Annotated[Path, typer.Argument(help="directory to search [default: results]",
                                              metavar="PATH", show_default=False)
                         ] = Path("results"),
         format: Annotated[Format, typer.Option(
             "--format", help="table for people, csv or json for scripts")] = Format.table
         ) -> None:
    """List the runs below PATH: name, command, key settings, status, headline metric, when.

    A run is a directory with a manifest.yaml (complete), a failed.yaml (failed) or tables
    without a manifest (partial: interrupted, or running); the cells of a sweep are runs, its
    top directory and the folders of tmf report are not. Oldest first.

    Example:  tmf runs results/resource-demo --format csv > runs.csv
    """
    import pandas as pd

    from tmfcli.io.runs import COLUMNS, as_json, list_runs

    if not path.is_dir():
        from tmfcli.errors import ResultsError

        raise ResultsError(f"{path}: no such directory",
                           "give a directory of results, e.g. results (the default)")
    rows = list_runs(path)
    if format is Format.json:
        typer.echo(as_json(rows))
        return
    if format is Format.csv:
        frame = pd.DataFrame(rows, columns=COLUMNS)
        for column in ("agents", "seed"):  # whole numbers stay whole where one is missing
            frame[column] = frame[column].astype("Int64")
        typer.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
        return
    table = Table(title=f"tmf runs: {len(rows)} below {path}", title_justify="left")
    for column in ("run", "settings", "status", "headline", "when (UTC)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        settings = " ".join([str(row["game"]), *(f"{label}={row[k]}" for k, label in
                             (("agents", "N"), ("batch", "B"), ("seed", "seed"))
                             if row[k] is not None)])
        if row["horizon"] != "default":
            settings += f" {row['horizon']}"
        headline = f"{row['metric']} {fmt(row['value'])}" if row["metric"] else ""
        run = Path(str(row["directory"]))
        name = str(run.relative_to(path)) if run.is_relative_to(path) else str(run)
        what = " ".join(str(x) for x in (row["command"], row["algorithm"]) if x)
        table.add_row(f"{name} ({what})", settings, str(row["status"]), headline,
                      str(row["when"]).replace("T", " ").removesuffix("Z"))
    out.print(table)
