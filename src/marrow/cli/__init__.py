"""``marrow ...``: a thin shell over the library. The ``bench`` sub-commands are in ``_bench``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from marrow.cli._bench import bench_app
from marrow.cli._console import console
from marrow.cli._console import error as _error
from marrow.errors import MarrowError
from marrow.store.producer import CycleReport

if TYPE_CHECKING:
    from marrow.cms import CMS

app = typer.Typer(help="Marrow: an in-memory object store and content platform.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
cms_app = typer.Typer(help="The CMS: sample content and editors.", no_args_is_help=True)
app.add_typer(cms_app, name="cms")


impressions_app = typer.Typer(help="The impression history service.", no_args_is_help=True)
app.add_typer(impressions_app, name="impressions")


@app.command()
def demo(
    root: Path | None = typer.Option(None, help="Where the platform keeps its data [default: var/demo]."),
    port: int | None = typer.Option(
        None, min=0, max=65532, help="The site's port; editor, explorer, API: the next three [default: 8700]."
    ),
    config: Path | None = typer.Option(
        None, "--config", exists=True, dir_okay=False, help="A TOML file with a [platform] table."
    ),
    titles: int = typer.Option(18_000, min=10, help="Titles in the sample content (first run only)."),
    stories: int = typer.Option(5_000, min=0, help="Stories in the sample content (first run only)."),
    check: bool = typer.Option(False, "--check", help="Run the end-to-end scenario headless and exit."),
) -> None:
    """The whole platform on the embedded default with sample content: site, editor, explorer, impressions.

    Settings come from --config's [platform] table, then MARROW_PLATFORM_* variables, then these options.
    With --check: sign in, edit a story, see it in the preview, publish, see it on the site, generate
    impressions and see the ranking change — on a fresh directory and free ports; exits 1 on a failure.
    """
    from marrow import demo as demo_module
    from marrow.platform import PlatformSettings
    from marrow.settings import load_settings

    try:
        given = {"root": str(root) if root else None, "port": port}
        settings = load_settings(PlatformSettings, "platform", config, given=given)
        if check:
            outcome = demo_module.check(console)
            if not outcome.ok:
                raise typer.Exit(1)
            console.print(f"[bold green]demo check passed[/] ({sum(t for _, t, _ in outcome.steps):.1f} s)")
            return
        demo_module.serve(settings, titles, stories, console)
    except (MarrowError, OSError) as e:
        _error(e)
        raise typer.Exit(1) from None


@app.command()
def tour(
    directory: Path = typer.Option(Path("var/tour"), help="Where the tour writes its blobs."),
    titles: int = typer.Option(100_000, min=10, help="Titles in the sample catalogue."),
) -> None:
    """The store on its own: build a sample catalogue, write it, load it, query it, change it."""
    from marrow import tour as tour_module

    tour_module.run(directory, titles, console)


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
        _error(f"{blob}: {e}")
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


@app.command("serve-writes")
def serve_writes(
    root: Path | None = typer.Argument(None, file_okay=False, help="The namespace's directory."),
    config: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="A TOML file with a [writes] table."
    ),
    schema: str | None = typer.Option(
        None, help="module:attribute naming the classes (marrow.records:TYPES)."
    ),
    host: str | None = typer.Option(None, help="Interface to listen on."),
    port: int | None = typer.Option(None, min=0, max=65535, help="Port to listen on."),
) -> None:
    """Serve a namespace's write API (bulk updates, reads, OpenAPI) as its one active writer.

    Settings come from --config's [writes] table, then MARROW_WRITES_* variables (MARROW_WRITES_TOKENS,
    comma-separated, for the bearer tokens), then these options."""
    import uvicorn

    from marrow.raw.namespace import Namespace
    from marrow.settings import load_settings
    from marrow.web.writes import WritesSettings, writes_app

    given = {"root": str(root) if root else None, "schema": schema, "host": host, "port": port}
    try:
        settings = load_settings(WritesSettings, "writes", config, given=given)
        ns = Namespace(settings.root, settings.classes())
    except MarrowError as e:  # a wrong setting, schema classes that cannot be loaded
        _error(e)
        raise typer.Exit(1) from None
    console.print(f"waiting for the writer lease of {ns.directory} …")
    writer = ns.writer(fold_interval=settings.fold_interval, fold_entries=settings.fold_entries)
    client = ns.client()
    try:
        console.print(f"Marrow write API on http://{settings.host}:{settings.port}/ (OpenAPI: /openapi.json)")
        app = writes_app(writer, client, tokens=settings.tokens)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        client.close()
        writer.close()


def _cms(database: str | None, config: Path | None) -> CMS:
    from marrow.cms import CMS, CMSSettings
    from marrow.cms.settings import load_settings

    settings = load_settings(CMSSettings, "cms", config)
    url = database or settings.database
    if url.startswith("sqlite://"):
        Path(url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)
    return CMS.open(url)


_DATABASE = typer.Option(None, help="CMS database URL (default: [cms] database, or var/cms/cms.db).")
_CONFIG = typer.Option(None, "--config", exists=True, dir_okay=False, help="A TOML settings file.")


@cms_app.command("seed")
def cms_seed(
    database: str | None = _DATABASE,
    config: Path | None = _CONFIG,
    titles: int = typer.Option(18_000, min=10, help="Titles in the sample content."),
    stories: int = typer.Option(5_000, min=0, help="Stories in the sample content."),
) -> None:
    """Generate the sample content and import it into the CMS, published."""
    import time

    from marrow.cms import sample as cms_sample

    cms = _cms(database, config)
    t = time.perf_counter()
    content = cms_sample.generate(titles=titles, stories=stories)
    generated = time.perf_counter() - t
    dates = {("story", i): float(when) for i, when in content.published.items()}
    n = cms.import_documents(content.documents(), editor="sample", published_at=dates)
    console.print(
        f"generated {len(content):,} documents in {generated:.1f} s and imported {n:,} in "
        f"{time.perf_counter() - t - generated:.1f} s"
    )


@cms_app.command("add-editor")
def cms_add_editor(
    username: str = typer.Argument(..., help="2-40 lower-case letters, digits, '.', '_' or '-'."),
    name: str = typer.Option("", help="The name the editor UI shows."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    database: str | None = _DATABASE,
    config: Path | None = _CONFIG,
) -> None:
    """Add an editor who may sign in to the editor UI."""
    cms = _cms(database, config)
    editor = cms.editors.add(username, password, name)
    console.print(f"added editor {editor.username} ({editor.name})")


@impressions_app.command("serve")
def impressions_serve(
    config: Path | None = typer.Option(
        None, "--config", exists=True, dir_okay=False, help="A TOML file with an [impressions] table."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8791, min=0, max=65535, help="Port to listen on."),
) -> None:
    """Serve the impression history API (settings from --config and MARROW_IMPRESSIONS_* variables)."""
    import uvicorn

    from marrow.impressions import ImpressionHistory, ImpressionSettings
    from marrow.settings import load_settings
    from marrow.web.impressions import impressions_app as api

    service = None
    try:
        settings = load_settings(ImpressionSettings, "impressions", config)
        service = ImpressionHistory.open(settings)
        served = api(service)  # refuses to start without a token
        console.print(
            f"Marrow impression history on http://{host}:{port}/ (store {settings.store}; Ctrl-C to stop)"
        )
        uvicorn.run(served, host=host, port=port, log_level="warning")
    except MarrowError as e:  # a wrong setting, a store that cannot be opened, no token
        _error(e)
        raise typer.Exit(1) from None
    finally:
        if service is not None:
            service.close()


def main() -> None:  # pragma: no cover - the console script
    try:
        app()
    except MarrowError as e:
        _error(e)
        sys.exit(1)


__all__ = ["app", "main"]
