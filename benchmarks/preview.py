"""Preview benchmark (issue 5): an edit saved through the editor → its change in the preview.

The platform as ``make demo`` runs it (:mod:`marrow.platform`: the CMS on SQLite, the live and
preview read-after-write namespaces with their durable write logs, ingestion, the editor whose preview
is the visitor site over the preview namespace), driven over HTTP (in process, through Starlette's
test client, so no socket noise). One editor signs in and edits one story ``--edits`` times:

* ``preview_p50_ms`` / ``preview_p99_ms`` — from the save's POST (the CMS writes the revision,
  ingestion resolves it and appends one bulk update to the preview log, fsynced, which returns the
  offset) to the preview page's JSON twin, read *strongly* at that offset, showing the new headline;
* peers in the same run: ``save_p50_ms`` (the POST alone), and ``eventual_p50_ms`` /
  ``eventual_p99_ms`` — the same edits read back *eventually* (no offset: polled until the new
  headline shows), which is what a reader without the token sees.

Prints one JSON object. Run: ``marrow bench preview --json``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
import warnings
from typing import Any

from marrow.platform import Platform, PlatformSettings

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _client(app: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette asks for httpx2; httpx works the same
        from starlette.testclient import TestClient
    return TestClient(app, follow_redirects=False)


def _sign_in(client: Any, settings: PlatformSettings) -> None:
    client.get("/sign-in")
    token = client.cookies.get("marrow_signin")
    data = {
        "username": settings.editor,
        "password": settings.password,
        "login_token": token,
        "next": "/stories",
    }
    answer = client.post("/sign-in", data=data)
    assert answer.status_code == 303, answer.text


def _form(client: Any, story: int) -> dict[str, str]:
    page = client.get(f"/stories/{story}.json").json()
    form = page["form"]
    fields = {k: form[k] for k in ("headline", "slug", "template", "summary", "hero", "genres")}
    fields.update(revision=str(page["revision"]), csrf=CSRF.search(client.get(f"/stories/{story}").text)[1])
    for i, block in enumerate(form["blocks"]):
        fields.update({f"block-{i}-{k}": v for k, v in block.items() if k != "errors"})
    return fields


def run(titles: int, stories: int, edits: int) -> dict[str, Any]:
    out: dict[str, Any] = {"titles": titles, "stories": stories, "edits": edits}
    with tempfile.TemporaryDirectory(prefix="marrow-bench-preview-") as root:
        settings = PlatformSettings(root=root, port=0, simulate_every=0)
        platform = Platform.open(settings)
        try:
            started = time.perf_counter()
            platform.seed(titles, stories)
            out["seed_s"] = round(time.perf_counter() - started, 1)
            client = _client(platform.apps()["editor"])
            _sign_in(client, settings)
            story = client.get("/stories.json").json()["stories"][0]["id"]
            fields = _form(client, story)
            slug = fields["slug"]
            strong, saves, eventual = [], [], []
            for i in range(edits):
                headline = f"Edit {i} of the preview benchmark"
                fields["headline"] = headline
                t0 = time.perf_counter()
                saved = client.post(f"/stories/{story}", data=fields)
                t1 = time.perf_counter()
                assert saved.status_code == 303, saved.text[:300]
                offset = saved.headers["location"].rsplit("offset=", 1)[1]
                if i % 2:  # strong: read at the save's offset
                    shown = client.get(f"/preview/stories/{slug}.json", params={"offset": offset}).json()
                    assert shown["story"]["headline"] == headline, shown
                    strong.append((time.perf_counter() - t0) * 1000)
                else:  # eventual: poll without the token until it shows
                    while client.get(f"/preview/stories/{slug}.json").json()["story"]["headline"] != headline:
                        pass
                    eventual.append((time.perf_counter() - t0) * 1000)
                saves.append((t1 - t0) * 1000)
                fields["revision"] = str(int(fields["revision"]) + 1)
        finally:
            platform.close()
    out.update(
        preview_p50_ms=round(statistics.median(strong), 2),
        preview_p99_ms=round(_percentile(strong, 0.99), 2),
        preview_max_ms=round(max(strong), 2),
        save_p50_ms=round(statistics.median(saves), 2),
        save_p99_ms=round(_percentile(saves, 0.99), 2),
        eventual_p50_ms=round(statistics.median(eventual), 2),
        eventual_p99_ms=round(_percentile(eventual, 0.99), 2),
        target_preview_p99_ms=250,
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--titles", type=int, default=18_000)
    parser.add_argument("--stories", type=int, default=5_000)
    parser.add_argument("--edits", type=int, default=200, help="edits, half read strongly, half eventually")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    figures = run(args.titles, args.stories, args.edits * 2)
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
