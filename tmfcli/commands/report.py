"""What ``tmf report`` runs: read result directories, build tables and figures, write REPORT.md
(and the tables as CSV or JSON on request)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tmfcli.analysis import plots
from tmfcli.analysis.report import Report, build, markdown
from tmfcli.analysis.report_claims import paper_claims
from tmfcli.errors import ResultsError
from tmfcli.io.report_inputs import read_runs
from tmfcli.io.results import (
    MANIFEST,
    NOT_OURS,
    atomic,
    foreign,
    is_tmf_manifest,
    read_manifest,
    versions,
    write_csv,
    write_error,
    write_yaml,
)
from tmfcli.io.runs import command_line, provenance

REPORT = "REPORT.md"
TABLE_FORMATS = ("md", "csv", "json")


def run_report(paths: Sequence[Path], out: Path, table_format: str = "md",
               figure_formats: Sequence[str] = ("png",), claims: bool = False,
               title: str = "tmf report", caption: bool = True) -> Report:
    """Report on ``paths`` into ``out``: REPORT.md and figures always; with ``table_format``
    "csv" every table also as ``<id>.csv`` (numeric, intervals as columns), with "json" all of
    them in ``report.json``."""
    claim_report(out)
    runs, notes = read_runs(paths)
    formats = ["png", *(f for f in figure_formats if f != "png")]
    with plots.captions(caption):
        report = build(runs, out, formats, notes=notes)
        if claims:
            report.claims = paper_claims(report)
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
    write_yaml({"status": "complete", "kind": "report", "command": "report",
                "command_line": command_line(), "inputs": [str(p) for p in paths],
                "versions": versions(), **provenance()}, out / MANIFEST)
    return report


def claim_report(out: Path) -> None:
    """Refuse ``out`` unless it is missing, empty or an earlier report (its manifest says
    ``kind: report``): a report writes its files into ``out`` and never into a folder of the
    user's or another run's result."""
    try:
        if out.is_symlink():
            raise ResultsError(f"{out}: is a symbolic link",
                               "give the directory it points to with --out")
        if out.exists() and not out.is_dir():
            raise ResultsError(f"{out}: is a file, not a directory", "give a directory path")
    except OSError as error:
        raise write_error(error, out, "use") from None
    if not out.exists():
        return
    if not (out / MANIFEST).exists() and _only_results(out):
        return  # a folder of tmf results (make paper reports beside its runs)
    why = foreign(out)
    if why is not None:
        raise ResultsError(f"{out}: {why}", NOT_OURS)
    data = read_manifest(out)
    if data is not None and data.get("kind") != "report":
        raise ResultsError(f"{out}: holds a result of 'tmf {data.get('command')}', not a report",
                           "choose another --out for the report")


def _only_results(folder: Path) -> bool:
    """True when every entry of ``folder`` is a directory holding a tmf manifest (a run or a
    sweep) or a hidden stage of tmf's: a report written there overwrites nothing of the
    user's."""
    try:
        for entry in folder.iterdir():
            if entry.name.startswith(".") and ".tmf-" in entry.name:
                continue
            if entry.is_symlink() or not entry.is_dir() or \
                    not is_tmf_manifest(read_manifest(entry)):
                return False
    except (OSError, ResultsError):
        return False
    return True
