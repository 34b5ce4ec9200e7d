"""``marrow bench ...``: each sub-command runs a script of ``benchmarks/`` (from a source checkout)
with its options, and the script prints its figures (one JSON object with ``--json``)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import typer

from marrow.cli._console import error

__all__ = ["bench_app"]

bench_app = typer.Typer(help="Benchmarks, side by side with their peers (from a source checkout).")

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
_JSON = typer.Option(False, "--json", help="Print one JSON object.")


@bench_app.command("raw")
def bench_raw(
    writes: int = typer.Option(5000, min=100, help="Writes per throughput run."),
    concurrency: int = typer.Option(32, min=1, help="Writer threads."),
    as_json: bool = _JSON,
) -> None:
    """Durable writes/s, acknowledgement and propagation latency, strong reads (issue 4)."""
    _run_benchmark("raw", ["--writes", str(writes), "--concurrency", str(concurrency)], as_json)


@bench_app.command("store")
def bench_store(
    records: int = typer.Option(1_000_000, min=1000, help="Records in the benchmark catalogue."),
    as_json: bool = _JSON,
) -> None:
    """Memory and read speed of the store vs dataclasses, Parquet and sqlite."""
    _run_benchmark("store", ["--records", str(records)], as_json)


@bench_app.command("lifecycle")
def bench_lifecycle(
    titles: int = typer.Option(1_000_000, min=1000, help="Titles in the state readers read during deltas."),
    cycles: int = typer.Option(200, min=2, help="Cycles whose propagation is timed."),
    as_json: bool = _JSON,
) -> None:
    """Propagation to another process, reader stalls while versions change, memory of shared workers."""
    _run_benchmark("lifecycle", ["--titles", str(titles), "--cycles", str(cycles)], as_json)


@bench_app.command("ingest")
def bench_ingest(
    titles: int = typer.Option(18_000, min=10, help="Titles in the sample content."),
    stories: int = typer.Option(5_000, min=1, help="Stories in the sample content."),
    edits: int = typer.Option(200, min=1, help="Saves of one story, each ingested at once."),
    postgres: bool = typer.Option(False, help="Also import the sample into the local PostgreSQL."),
    as_json: bool = _JSON,
) -> None:
    """The sample through the CMS and the ingestion pipeline: bulk vs one write per title (issue 5)."""
    argv = ["--titles", str(titles), "--stories", str(stories), "--edits", str(edits)]
    _run_benchmark("ingest", argv + (["--postgres"] if postgres else []), as_json)


@bench_app.command("preview")
def bench_preview(
    titles: int = typer.Option(18_000, min=10, help="Titles in the sample content."),
    stories: int = typer.Option(5_000, min=3, help="Stories in the sample content."),
    edits: int = typer.Option(200, min=1, help="Edits saved through the editor."),
    as_json: bool = _JSON,
) -> None:
    """An edit saved through the editor → visible in the preview, strong and eventual (issue 5)."""
    argv = ["--titles", str(titles), "--stories", str(stories), "--edits", str(edits)]
    _run_benchmark("preview", argv, as_json)


@bench_app.command("pages")
def bench_pages(
    titles: int = typer.Option(18_000, min=100, help="Titles in the sample content."),
    stories: int = typer.Option(5_000, min=10, help="Stories in the sample content."),
    builds: int = typer.Option(300, min=10, help="Home pages built per side."),
    seconds: int = typer.Option(10, min=1, help="Seconds of HTTP load."),
    as_json: bool = _JSON,
) -> None:
    """A personalised home page built in process, served over HTTP, and within its deadline (issue 6)."""
    argv = [
        "--titles",
        str(titles),
        "--stories",
        str(stories),
        "--builds",
        str(builds),
        "--seconds",
        str(seconds),
    ]
    _run_benchmark("pages", argv, as_json)


@bench_app.command("impressions")
def bench_impressions(
    events: int = typer.Option(100_000, min=1000, help="Events the ingest figure submits."),
    profiles: int = typer.Option(10_000, min=100, help="Members browsing."),
    queries: int = typer.Option(100_000, min=1000, help="History queries the read figure makes."),
    cache_entries: int = typer.Option(10_000, min=0, help="Profiles the node cache holds."),
    as_json: bool = _JSON,
) -> None:
    """Impression history: ingest, cached reads vs the store and Redis, freshness (issue 7)."""
    argv = ["--events", str(events), "--profiles", str(profiles), "--queries", str(queries)]
    argv += ["--cache-entries", str(cache_entries)]
    _run_benchmark("impressions", argv, as_json)


@bench_app.command("headline")
def bench_headline(
    titles: int = typer.Option(18_000, min=10, help="Titles in the sample content."),
    stories: int = typer.Option(5_000, min=20, help="Stories in the sample content."),
    ttl: float = typer.Option(30.0, min=0.1, help="The legacy near-cache's refresh period, seconds."),
    plots: Path | None = typer.Option(None, help="Where the PNGs go (default: benchmarks/plots)."),
    quick: bool = typer.Option(False, "--quick", help="A small run: 600 titles, a 2 s ttl, fewer pages."),
    as_json: bool = _JSON,
) -> None:
    """The legacy read path vs Marrow on the same data: pages, preview, memory (issue 8; NATS, PostgreSQL)."""
    argv = ["--titles", str(titles), "--stories", str(stories), "--ttl", str(ttl)]
    argv += (["--plots", str(plots)] if plots else []) + (["--quick"] if quick else [])
    _run_benchmark("headline", argv, as_json)


def _run_benchmark(name: str, argv: list[str], as_json: bool) -> None:
    """Run ``benchmarks/{name}.py`` with ``argv`` (and ``--json``) in this process."""
    script = BENCHMARKS / f"{name}.py"
    if not script.exists():
        error(f"benchmark {name} not found at {script}; benchmarks ship with the source checkout")
        raise typer.Exit(2)
    old = sys.argv
    sys.argv = [str(script), *argv, *(["--json"] if as_json else [])]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = old
