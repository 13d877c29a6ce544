"""What ``tmf report`` runs: read result directories, build tables and figures, write REPORT.md
(and the tables as CSV or JSON on request)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tmfcli.analysis import plots
from tmfcli.analysis.report import Report, build, markdown
from tmfcli.io.report_inputs import read_runs
from tmfcli.io.results import atomic, write_csv

REPORT = "REPORT.md"
TABLE_FORMATS = ("md", "csv", "json")


def run_report(paths: Sequence[Path], out: Path, table_format: str = "md",
               figure_formats: Sequence[str] = ("png",), claims: bool = False,
               title: str = "tmf report", caption: bool = True) -> Report:
    """Report on ``paths`` into ``out``: REPORT.md and figures always; with ``table_format``
    "csv" every table also as ``<id>.csv`` (numeric, intervals as columns), with "json" all of
    them in ``report.json``."""
    runs, notes = read_runs(paths)
    formats = ["png", *(f for f in figure_formats if f != "png")]
    with plots.captions(caption):
        report = build(runs, out, formats, claims=claims, notes=notes)
    with atomic(out / REPORT) as handle:
        handle.write(markdown(report, title))
    if table_format == "csv":
        for table in report.tables:
            write_csv(table.frame, out / f"{table.id}.csv")
    elif table_format == "json":
        data = {
            "runs": [{"path": str(r.path), "kind": r.kind, "label": r.label}
                     for r in report.runs],
            "tables": {t.id: json.loads(t.frame.to_json(orient="records")) for t in
                       report.tables},
            "claims": [{"number": c.number, "title": c.title, "verdict": c.verdict,
                        "why": c.why} for c in report.claims],
            "figures": [f.file for f in report.figures],
            "notes": report.notes,
        }
        with atomic(out / "report.json") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
    return report
