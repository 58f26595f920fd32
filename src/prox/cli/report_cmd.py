"""`prox report OUTDIR`: self-contained HTML report + dataset card (README.md) for a refine output."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prox.cli import app


@app.command("report")
def report(
    outdir: Path = typer.Argument(..., help="a `prox refine` output folder (kept/, dropped/, failed/, stats.json)"),
    html_path: Optional[Path] = typer.Option(None, "--html", help="where to write the report (default OUTDIR/report.html)"),
    samples: int = typer.Option(200, help="documents in the browsable before/after sample"),
    card: bool = typer.Option(True, "--card/--no-card", help="also write the dataset card OUTDIR/README.md"),
    pretty_name: Optional[str] = typer.Option(None, help="dataset name for the card"),
    license: str = typer.Option("other", help="licence id for the card's front matter"),
) -> None:
    """Write OUTDIR/report.html (offline: inline CSS/JS/SVG) and OUTDIR/README.md."""
    from prox.report import write_dataset_card, write_report

    try:
        path = write_report(outdir, html_path, sample_size=samples)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"report: {path}")
    if card:
        typer.echo(f"dataset card: {write_dataset_card(outdir, pretty_name=pretty_name, license=license)}")
