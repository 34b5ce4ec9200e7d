"""An editor's save → the change in the preview, on both sides of the headline benchmark."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import msgspec

from headline_world import World, percentile
from legacy import keys
from legacy.service import PageDataClient
from marrow import records
from marrow.cms import CMS
from marrow.pages import Visitor


def _edit(cms: CMS, story: int, headline: str) -> Any:
    item = cms.get("story", story)
    doc = msgspec.structs.replace(item.doc, headline=headline)  # type: ignore[arg-type]
    return lambda: cms.save("story", story, doc, base=item.revision, editor="bench")  # type: ignore[arg-type]


def preview_marrow(
    world: World, stories: list[int], edits: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Saves alternate between a strong read at the save's offset and polling an eventual read."""
    strong: list[float] = []
    eventual: list[float] = []
    visitor = Visitor("US", "web", 18)
    for i in range(edits):
        story, headline = stories[i % len(stories)], f"Marrow edit {i}"
        save = _edit(world.cms, story, headline)
        t = time.perf_counter()
        event = save().event
        offset = world.ingestion.ingest([event]).offsets["preview"]
        if i % 2 == 0:
            view = world.views.current(offset)
        else:
            view = world.client.view()
            while view["Story"].get(story).headline != headline:
                time.sleep(0.0002)
                view = world.client.view()
        record = view["Story"].get(story)
        world.builder.build(view, "story", visitor, subject=story)
        (strong if i % 2 == 0 else eventual).append(time.perf_counter() - t)
        assert record.headline == headline
    out = {
        "preview_marrow_p50_ms": round(statistics.median(strong) * 1000, 2),
        "preview_marrow_p99_ms": round(percentile(strong, 0.99) * 1000, 2),
        "preview_marrow_eventual_p50_ms": round(statistics.median(eventual) * 1000, 2),
        "preview_marrow_eventual_p99_ms": round(percentile(eventual, 0.99) * 1000, 2),
        "preview_marrow_edits": edits,
    }
    return out, {"preview_s_marrow_strong": strong, "preview_s_marrow_eventual": eventual}


def preview_legacy(
    world: World, stories: list[int], ttl: float, seed: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Each story's preview is open (its keys cached) when the run starts; each story is edited once,
    at a random moment within one ttl; every 20 ms the open previews are read again."""
    legacy = world.legacy
    poller = PageDataClient("127.0.0.1", legacy.port)  # the editors' browsers: a connection of their own
    decode = msgspec.json.Decoder(records.Story).decode
    visitor = Visitor("US", "web", 18)
    poller.get_many([keys.record_key("Story", s) for s in stories])
    rng = random.Random(seed)
    start = time.monotonic()
    schedule = sorted((start + rng.uniform(0, ttl), s) for s in stories)
    pending: dict[int, tuple[float, str, int]] = {}
    stored: dict[int, float] = {}
    visible: dict[int, float] = {}
    deadline = start + 2.2 * ttl + 60
    while (schedule or pending) and time.monotonic() < deadline:
        if schedule and time.monotonic() >= schedule[0][0]:
            story = schedule.pop(0)[1]
            headline = f"Legacy edit of {story}"
            save = _edit(world.cms, story, headline)
            t = time.monotonic()
            offset = world.legacy_ingestion.ingest([save().event]).offsets["legacy"]
            pending[story] = (t, headline, offset)
            continue
        if pending:
            applied = legacy.applied()
            shown = poller.get_many([keys.record_key("Story", s) for s in pending])
            now = time.monotonic()
            for story, (t, headline, offset) in list(pending.items()):
                if story not in stored and applied >= offset:
                    stored[story] = now - t
                body = shown[keys.record_key("Story", story)]
                if body is not None and decode(body).headline == headline:
                    visible[story] = now - t
                    del pending[story]
                    # the preview as the editor sees it: the record and the story page, both new
                    assert world.legacy_builder.record("Story", story).headline == headline
                    world.legacy_builder.build("story", visitor, subject=story)
        time.sleep(0.02)
    poller.close()
    waits = list(visible.values())
    out = {
        "preview_legacy_p50_s": round(statistics.median(waits), 2) if waits else None,
        "preview_legacy_p99_s": round(percentile(waits, 0.99), 2) if waits else None,
        "preview_legacy_min_s": round(min(waits), 2) if waits else None,
        "preview_legacy_max_s": round(max(waits), 2) if waits else None,
        "preview_legacy_edits": len(stories),
        "preview_legacy_not_visible": len(pending),
        "legacy_pipeline_p50_ms": round(statistics.median(stored.values()) * 1000, 1) if stored else None,
        "legacy_pipeline_p99_ms": round(percentile(list(stored.values()), 0.99) * 1000, 1)
        if stored
        else None,
    }
    return out, {"preview_s_legacy": waits}
