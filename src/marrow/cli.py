"""``marrow ...``: a thin shell over the library."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from marrow.errors import MarrowError

app = typer.Typer(help="Marrow: an in-memory object store and content platform.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks, side by side with their peers (from a source checkout).")
app.add_typer(bench_app, name="bench")
console = Console()

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@app.command()
def demo(
    directory: Path = typer.Option(Path("var/demo"), help="Where the demo writes its blobs."),
    titles: int = typer.Option(100_000, min=10, help="Titles in the sample catalogue."),
) -> None:
    """Build a sample catalogue, write it, load it, query it and change it, printing figures."""
    from marrow import demo as demo_module

    demo_module.run(directory, titles, console)


@app.command()
def inspect(
    blob: Path = typer.Argument(..., exists=True, dir_okay=False, help="A snapshot or delta blob."),
) -> None:
    """Show what a blob holds: kind, version, state tags, schema and per-type figures."""
    from marrow.store import read_header

    data = blob.read_bytes()
    try:
        kind, header = read_header(data)
    except MarrowError as e:
        console.print(f"[red]{blob}: {e}[/]")
        raise typer.Exit(1) from None
    console.print(f"[bold]{blob}[/]: {kind}, {len(data):,} bytes, version {header['version']}")
    console.print(
        f"state {header['origin'] or '(none)'} → {header['destination']}, schema {header['fingerprint']}"
    )
    table = Table("type", "capacity", "records" if kind == "snapshot" else "removed / added", "fields")
    for name, t in header["types"].items():
        if kind == "snapshot":
            counted = f"{t['count']:,}"
        else:
            sections = header["sections"]
            counted = f"{sections[t['removed']][1] // 8:,} / {sections[t['added']][1] // 8:,}"
        table.add_row(name, f"{t['capacity']:,}", counted, ", ".join(t["columns"]))
    console.print(table)
    if header["removed_types"]:
        console.print(f"removes types: {', '.join(header['removed_types'])}")


@bench_app.command("store")
def bench_store(
    records: int = typer.Option(1_000_000, min=1000, help="Records in the benchmark catalogue."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Memory and read speed of the store vs dataclasses, Parquet and sqlite."""
    _run_benchmark("store", ["--records", str(records)] + (["--json"] if as_json else []))


def _run_benchmark(name: str, argv: list[str]) -> None:
    script = BENCHMARKS / f"{name}.py"
    if not script.exists():
        console.print(
            f"[red]benchmark {name} not found at {script}; benchmarks ship with the source checkout[/]"
        )
        raise typer.Exit(2)
    old = sys.argv
    sys.argv = [str(script), *argv]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = old


def main() -> None:  # pragma: no cover - the console script
    try:
        app()
    except MarrowError as e:
        console.print(f"[red]{e}[/]")
        sys.exit(1)


__all__ = ["app", "main"]
