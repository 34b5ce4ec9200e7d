"""The store tour: build a sample catalogue, write it, load it, query it, change it, print figures.

`marrow tour` runs it: the engine on its own, without the platform around it.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from marrow import sample, store


def run(directory: Path, titles: int = 100_000, console: Console | None = None) -> dict[str, float]:
    """Run the demo, writing blobs under ``directory``; returns the figures it printed."""
    out = console or Console()
    directory.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}

    with out.status(f"generating a sample catalogue of {titles:,} titles"):
        cat = sample.catalogue(titles)
    out.print(f"[bold]1. Sample catalogue[/]: {len(cat.titles):,} titles, {len(cat.people):,} people")

    schema = store.Schema.from_classes(sample.Title)
    out.print("[bold]2. Schema[/] (fingerprint " + schema.fingerprint + ")")
    out.print(schema.text.rstrip(), style="dim", highlight=False)

    ws = store.WriteState(schema)
    t = time.perf_counter()
    with out.status("writing version 1"):
        for title in cat.titles:
            ws.add(title)
        v1 = ws.commit(version=1)
        snapshot = v1.snapshot()
    snap_path = directory / "snapshot-1.blob"
    snap_path.write_bytes(snapshot)
    figures["produce_s"] = time.perf_counter() - t
    out.print(
        f"[bold]3. Produced[/] version 1 in {figures['produce_s']:.2f} s → {snap_path} "
        f"({len(snapshot) / 1e6:.1f} MB)"
    )

    t = time.perf_counter()
    state = store.ReadState.from_snapshot(snap_path.read_bytes())
    figures["load_ms"] = (time.perf_counter() - t) * 1e3
    table = Table("type", "records", "data bytes", "bytes / record")
    for name, m in state.memory().items():
        table.add_row(
            name, f"{m['records']:,}", f"{m['data_bytes']:,}", f"{m['data_bytes'] / max(1, m['records']):.1f}"
        )
    out.print(f"[bold]4. Loaded[/] the snapshot in {figures['load_ms']:.0f} ms")
    out.print(table)

    titles_ = state["Title"]
    rng = random.Random(1)
    key = rng.choice(cat.titles).id
    t = time.perf_counter()
    record = titles_.get(key)
    assert record is not None
    reads = [rng.choice(cat.titles).id for _ in range(50_000)]
    t = time.perf_counter()
    for k in reads:
        v = titles_.get(k)
        _ = (v.title, v.year)  # type: ignore[union-attr]
    figures["point_read_ns"] = (time.perf_counter() - t) / len(reads) * 1e9
    out.print(
        f"[bold]5. Queries[/]\n   get({key}) → {record.title!r} ({record.year}), cast: "
        + ", ".join(p.name for p in record.cast[:3])
        + " …"
    )
    out.print(f"   point read (get + 2 fields): {figures['point_read_ns']:.0f} ns")
    person = record.cast[0]
    starring = titles_.find("cast", person)
    out.print(
        f"   hash index: {len(starring)} titles with {person.name}, e.g. "
        + ", ".join(repr(s.title) for s in starring[:3])
    )
    prefix = record.title.split()[0][:3]
    done = titles_.complete("title", prefix, limit=5)
    out.print(f"   prefix index: {prefix!r} → " + ", ".join(repr(d.title) for d in done))
    batch = titles_.get_many([rng.choice(cat.titles).id for _ in range(3000)])
    t = time.perf_counter()
    titles_.read(batch, ["title", "synopsis", "year", "runtime"])
    figures["bulk_read_3000_ms"] = (time.perf_counter() - t) * 1e3
    out.print(f"   bulk read of 3,000 records × 4 fields: {figures['bulk_read_3000_ms']:.1f} ms")

    ws.keep_previous()
    changed = sample.revised(cat.titles, 0.01, rng, " (Director's Cut)")
    edit = store.Incremental(ws)
    for c in changed:
        edit.add_or_modify(c)
    v2 = ws.commit(version=2)
    delta, back = v2.delta(), v2.reverse_delta()
    assert delta is not None and back is not None
    (directory / "delta-1-2.blob").write_bytes(delta)
    (directory / "reverse-2-1.blob").write_bytes(back)
    t = time.perf_counter()
    state2 = state.apply_delta(delta)
    figures["delta_apply_ms"] = (time.perf_counter() - t) * 1e3
    after = state2["Title"].get(changed[0].id)
    assert after is not None
    out.print(
        f"[bold]6. Delta[/] changing {len(changed):,} titles: {len(delta) / 1e3:.0f} kB, applied in "
        f"{figures['delta_apply_ms']:.0f} ms → {after.title!r}"
    )
    restored = state2.apply_delta(back)
    out.print(
        f"   reverse delta restores version 1: checksum equal = {restored.checksum() == state.checksum()}"
    )
    out.print(f"\nBlobs are in [bold]{directory}[/]; inspect one with [bold]marrow inspect {snap_path}[/]")
    return figures
