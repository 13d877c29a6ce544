"""``tmf report``: tables and figures of result directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tmfcli.cli.common import command, out


@command
def report(
    paths: Annotated[list[Path], typer.Argument(
        help="result directories (of solve, simulate, bound-check, train), sweep "
        "directories, or command directories such as results/<name>/train (their latest run)",
        metavar="PATH", show_default=False)],
    given_out: Annotated[Path, typer.Option(
        "--out", help="where REPORT.md and the figures go", metavar="DIR")] = Path(
            "results/report"),
    table_format: Annotated[str, typer.Option(
        "--format", help="tables written beside REPORT.md: md (only REPORT.md), csv (one "
        "<table>.csv each) or json (report.json)", metavar="md|csv|json")] = "md",
    figure_format: Annotated[list[str] | None, typer.Option(
        "--figure-format", help="also write the figures as svg or pdf (png always; "
        "repeatable)", metavar="svg|pdf", show_default=False)] = None,
    claims: Annotated[bool, typer.Option(
        "--claims", help="add the paper's three claims with verdicts (docs/report.md)")] = False,
    title: Annotated[str, typer.Option(help="title of REPORT.md")] = "tmf report",
    caption: Annotated[bool, typer.Option(
        "--caption/--no-caption", help="burn the spec's caption line into each figure "
        "(REPORT.md gives it under the figure either way)")] = True,
) -> None:
    """Tables and figures of result directories: terminal tables, REPORT.md and PNG figures.

    Recognises each directory from its manifest; several directories of one kind make one
    comparison table. Everything comes from the directories' files (nothing recomputed).

    Example:  tmf report results/resource-demo/solve results/resource-demo/simulate --out report
    """
    from tmfcli.commands.report import REPORT, TABLE_FORMATS, run_report

    if table_format not in TABLE_FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(TABLE_FORMATS)}",
                                 param_hint="--format")
    extra = figure_format or []
    if any(f not in ("png", "svg", "pdf") for f in extra):
        raise typer.BadParameter("use svg or pdf", param_hint="--figure-format")
    result = run_report(paths, given_out, table_format, extra, claims=claims, title=title,
                        caption=caption)
    for claim in result.claims:
        out.print(f"claim {claim.number} ({claim.title}): {claim.verdict} — {claim.why}",
                  markup=False)
    for table in result.tables:
        shown = table.terminal()
        rich = Table(title=table.title, title_justify="left")
        for column in shown.columns:
            rich.add_column(str(column), overflow="fold")
        for row in shown.itertuples(index=False):
            rich.add_row(*(Text(str(v)) for v in row))
        out.print(rich)
    for note in result.notes + [n for s in result.sections for n in s.notes]:
        out.print(f"note: {note}", markup=False)
    out.print(f"report: {given_out / REPORT} (all columns; {len(result.figures)} figures)")
