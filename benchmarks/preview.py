"""Preview benchmark (issue 5, partial): an edit saved through the editor → its change in the preview.

``preview_p50_ms`` / ``preview_p99_ms``: over ``--edits`` edits of one story, the time from the editor's
POST of the story form (sign-in, CSRF, form parsing, CMS save on SQLite, ingestion of the save's event,
the preview write) to the preview's JSON twin, read at the offset the save returned, showing the new
headline. The app runs in process (Starlette's test client: no sockets), over the sample catalogue at
the seed's scale. Peer in the same run: ``direct_p50_ms`` / ``p99`` — the same save, ingestion and read
through the library, without HTTP.

**Not the issue's figure yet**: the preview channel's writer is :class:`marrow.ingest.testing.StateWriter`
(an in-memory store state, in this process), because the read-after-write writer and its strong read
(issue 4) are not wired in. With them, each save also pays a durable log append and the preview a
strong read. Prints one JSON object. Run: ``marrow bench preview --json``.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import msgspec

from marrow.cms import CMS, SQLiteDatabase
from marrow.cms import sample as cms_sample
from marrow.ingest import Ingestion
from marrow.ingest.testing import StateWriter
from marrow.web.editor import EditorSettings, editor_app

PASSWORD = "benchmark password"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _client(app: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette asks for httpx2; httpx works the same
        from starlette.testclient import TestClient
    return TestClient(app, follow_redirects=False)


def run(titles: int, stories: int, edits: int) -> dict[str, Any]:
    out: dict[str, Any] = {"titles": titles, "stories": stories, "edits": edits}
    out["writer"] = "StateWriter (test helper; the read-after-write writer is not wired in)"
    sample = cms_sample.generate(titles=titles, stories=stories)
    with tempfile.TemporaryDirectory() as tmp:
        cms = CMS(SQLiteDatabase(Path(tmp) / "cms.db"))
        cms.import_documents(sample.documents(), editor="import")
        cms.editors.add("bench", PASSWORD)
        live, preview = StateWriter(), StateWriter()
        ingestion = Ingestion(cms, {"live": live, "preview": preview})
        ingestion.ingest_pending().raise_for_errors()
        app = editor_app(cms, ingestion.ingest, preview.read, EditorSettings(secure_cookies=False))
        with _client(app) as client:
            out.update(_through_http(client, edits))
        out.update(_direct(cms, ingestion, preview, edits))
        cms.close()
    return out


def _through_http(client: Any, edits: int) -> dict[str, Any]:
    token = re.search(r'name="login_token" value="([^"]+)"', client.get("/sign-in").text)[1]  # type: ignore[index]
    client.post("/sign-in", data={"username": "bench", "password": PASSWORD, "login_token": token})
    page = client.get("/stories/2")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    data = client.get("/stories/2.json").json()
    form = data["form"]
    fields = {
        "csrf": csrf,
        **{k: form[k] for k in ("headline", "slug", "template", "summary", "hero", "genres")},
    }
    for i, b in enumerate(form["blocks"]):
        fields.update({f"block-{i}-{k}": v for k, v in b.items()})
    revision = data["revision"]
    times = []
    for i in range(edits):
        headline = f"Edit {i}: {form['headline']}"
        t = time.perf_counter()
        saved = client.post("/stories/2", data={**fields, "headline": headline, "revision": str(revision)})
        location = saved.headers["location"]
        offset = location.rsplit("offset=", 1)[1]
        shown = client.get(f"/stories/2/preview.json?offset={offset}").json()
        times.append((time.perf_counter() - t) * 1000)
        assert shown["headline"] == headline, shown
        revision += 1
    return {
        "preview_p50_ms": round(statistics.median(times), 2),
        "preview_p99_ms": round(_percentile(times, 0.99), 2),
        "preview_max_ms": round(max(times), 2),
    }


def _direct(cms: CMS, ingestion: Ingestion, preview: StateWriter, edits: int) -> dict[str, Any]:
    item = cms.get("story", 3)
    doc, revision = item.doc, item.revision
    times = []
    for i in range(edits):
        doc = msgspec.structs.replace(doc, headline=f"Direct {i}")  # type: ignore[arg-type]
        t = time.perf_counter()
        saved = cms.save("story", 3, doc, base=revision, editor="bench")  # type: ignore[arg-type]
        offset = ingestion.ingest([saved.event]).offsets["preview"]
        shown = preview.read(offset)["Story"].get(3).headline
        times.append((time.perf_counter() - t) * 1000)
        assert shown == f"Direct {i}"
        revision = saved.item.revision
    return {
        "direct_p50_ms": round(statistics.median(times), 2),
        "direct_p99_ms": round(_percentile(times, 0.99), 2),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--titles", type=int, default=18_000)
    p.add_argument("--stories", type=int, default=5_000)
    p.add_argument("--edits", type=int, default=200)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a.titles, a.stories, a.edits)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
