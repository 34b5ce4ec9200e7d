"""``marrow ...``: a thin shell over the library."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from marrow.errors import MarrowError
from marrow.store.producer import CycleReport

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


@app.command()
def produce(
    store: Path = typer.Argument(..., file_okay=False, help="Directory of the filesystem blob store."),
    titles: int = typer.Option(100_000, min=10, help="Titles in the sample catalogue."),
    cycles: int = typer.Option(3, min=0, help="Edit cycles after the first version."),
    share: float = typer.Option(0.01, min=0.0, max=1.0, help="Share of titles each edit cycle changes."),
    interval: float = typer.Option(0.0, min=0.0, help="Seconds between cycles."),
) -> None:
    """Publish the sample catalogue to a filesystem blob store, then edit it for a few cycles."""
    import random
    import time

    from rich.progress import Progress

    from marrow import sample
    from marrow import store as store_module
    from marrow.store.filesystem import (
        FilesystemAnnouncementWatcher,
        FilesystemAnnouncer,
        FilesystemBlobStore,
    )

    blobs = FilesystemBlobStore(store)
    producer = store_module.Producer(
        store_module.Schema.from_classes(sample.Title), blobs, FilesystemAnnouncer(store)
    )
    watcher = FilesystemAnnouncementWatcher(store)
    latest = watcher.latest()
    watcher.close()
    if latest is not None:
        producer.restore(blobs, latest)
        console.print(f"resumed from announced version {latest}")
    with console.status(f"generating {titles:,} titles"):
        cat = sample.catalogue(titles)
    rng = random.Random(11)
    with Progress(console=console) as progress:
        task = progress.add_task("cycles", total=cycles + 1)
        report = producer.run_cycle(lambda w: w.add_all(cat.titles))
        progress.advance(task)
        _report(report)
        for i in range(cycles):
            time.sleep(interval)
            edits = sample.revised(cat.titles, share, rng, f" ({i + 2})")

            def change(inc: store_module.Incremental, edits: list[sample.Title] = edits) -> None:
                for t in edits:
                    inc.add_or_modify(t)

            _report(producer.run_incremental(change))
            progress.advance(task)
    console.print(
        f"blobs and announcements are in [bold]{store}[/]; browse with [bold]marrow explore {store}[/]"
    )


def _report(report: CycleReport | None) -> None:
    if report is None:
        console.print("no change: nothing published")
        return
    published = ", ".join(r.name for r in report.published)
    console.print(f"version {report.version}: {published} in {report.seconds:.2f} s")


@app.command()
def explore(
    store: Path = typer.Argument(..., file_okay=False, help="Directory of a filesystem blob store."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8790, min=0, max=65535, help="Port to listen on."),
) -> None:
    """Serve the store explorer over the versions announced in STORE, following new ones as they come."""
    import uvicorn

    from marrow.store.consumer import Consumer
    from marrow.store.filesystem import FilesystemAnnouncementWatcher, FilesystemBlobStore
    from marrow.store.history import History
    from marrow.web.explorer import explorer_app

    if not store.is_dir():
        console.print(f"[red]{store} is not a directory; give the directory a producer publishes to[/]")
        raise typer.Exit(1)
    watcher = FilesystemAnnouncementWatcher(store)
    history = History()
    consumer = Consumer(FilesystemBlobStore(store), watcher, listeners=[history])
    try:
        consumer.start()
        latest = watcher.latest()
        if latest is None:
            console.print(f"no version announced in {store} yet; the explorer shows the first one announced")
        else:
            consumer.wait_for(latest)  # serve a loaded version from the first request on
        console.print(f"Marrow explorer on http://{host}:{port}/ (Ctrl-C to stop)")
        uvicorn.run(explorer_app(consumer, history), host=host, port=port, log_level="warning")
    finally:
        consumer.close()
        watcher.close()


@bench_app.command("store")
def bench_store(
    records: int = typer.Option(1_000_000, min=1000, help="Records in the benchmark catalogue."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Memory and read speed of the store vs dataclasses, Parquet and sqlite."""
    _run_benchmark("store", ["--records", str(records)] + (["--json"] if as_json else []))


@bench_app.command("lifecycle")
def bench_lifecycle(
    titles: int = typer.Option(1_000_000, min=1000, help="Titles in the state readers read during deltas."),
    cycles: int = typer.Option(50, min=2, help="Cycles whose propagation is timed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Propagation to another process, reader stalls while versions change, memory of shared workers."""
    _run_benchmark(
        "lifecycle", ["--titles", str(titles), "--cycles", str(cycles)] + (["--json"] if as_json else [])
    )


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
