"""Page construction benchmark (issue 6): a personalised home page in process, served over HTTP, and
within its deadline while a generator is slow.

Data: the platform as ``make demo`` runs it (:mod:`marrow.platform`) with the seed's sample content
(18,000 titles, 5,000 stories), read through the live namespace's local client; the profile has a
few plays and a month of impressions, so ranking has history to work with.

* ``home_build_p50_ms`` / ``home_build_p99_ms`` — a personalised home page of 40 rows × 75 titles
  (one fragment), built by :class:`~marrow.pages.PageBuilder` in this process, one thread, ``--builds``
  times; its impression history is read from the impression history service (its node cache warm,
  as it is when a member browses). Peer in the same run: the same page for a signed-out visitor
  (``home_build_anonymous_p50_ms``: no history, no engagement).
* ``http_home_rps`` / ``http_home_p99_ms`` — the site's JSON home page (the default layout: the
  first fragment) for a profile, served by uvicorn (one process) under ``wrk`` (16 connections,
  ``--seconds``), or under a Python load generator where wrk is not installed (the ``load_generator``
  field says which).
* ``fallback_deadline_ok`` — the share of pages served within their deadline while
  ``because_you_watched`` is made slower (1 s) than its budget and the page deadline (250 ms);
  ``fallback_build_p99_ms`` says how long those pages took.

Prints one JSON object. Run: ``marrow bench pages --json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any

from marrow.cms._words import GENRES
from marrow.impressions.testing import impression
from marrow.pages import GENERATORS, Engagement, Faults, Layouts, PageBuilder, Visitor
from marrow.pages.views import ClientViews
from marrow.platform import DEMO_PROFILES, Platform, PlatformSettings

PROFILE = 2  # Ben (US, 18+)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _home_layout(rows: int, length: int, collections: list[str]) -> str:
    """A home page of ``rows`` rows × ``length`` titles in one fragment: the personal rows, then a row
    per genre, then editorial collections until there are enough."""
    sections = [
        '{ generator = "continue_watching" }',
        '{ generator = "top10" }',
        '{ generator = "trending" }',
        '{ generator = "because_you_watched" }',
        '{ generator = "new_releases" }',
        '{ generator = "my_list" }',
    ]
    sections += [f'{{ generator = "genre", params = {{ genre = "{g}" }} }}' for g in GENRES]
    sections += [f'{{ generator = "collection", params = {{ slug = "{c}" }} }}' for c in collections]
    return (
        f"[defaults]\nrow_length = {length}\nfragment_rows = {len(sections)}\n[pages.home.all]\n"
        f"sections = [{', '.join(sections)}]\n"
    )


def _first_rows(home: str, keys: list[str], rows: int) -> str:
    """``home`` cut to the sections of its first ``rows`` non-empty rows (``keys``, in page order)."""
    layout = Layouts.parse(home, GENERATORS).get("home", "tv")
    keep = [s for s in layout.sections if s.key in set(keys[:rows])]
    lines = []
    for spec in keep:
        pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in spec.params.items())
        params = f", params = {{ {pairs} }}" if pairs else ""
        lines.append(f"{{ generator = {json.dumps(spec.generator)}{params} }}")
    head = home.split("[pages.home.all]")[0].replace(
        f"fragment_rows = {len(layout.sections)}", f"fragment_rows = {len(keep)}"
    )
    return f"{head}[pages.home.all]\nsections = [{', '.join(lines)}]\n"


def _seed_plays(platform: Platform, titles: list[int]) -> None:
    """A few plays, half finished, for the benchmark's profile."""
    for i, t in enumerate(titles[:6]):
        platform.engagement.record(Engagement(PROFILE, t, "play", 0.4 if i % 2 else 1.0))


def _seed_history(platform: Platform, titles: list[int]) -> None:
    """A month of impressions for the benchmark's profile."""
    now = int(time.time() * 1000)
    events = [
        impression(profile=PROFILE, title=t, timestamp=now - (i % 30) * 86_400_000 - i * 60_000, device="tv")
        for i, t in enumerate(titles * 3)
    ]
    for i in range(0, len(events), 1000):  # a batch holds at most batch_max events
        platform.history.submit(events[i : i + 1000], wait=True)


def _builds(builder: PageBuilder, views: ClientViews, visitor: Visitor, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        builder.build(views.current(), "home", visitor)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", ws="none", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def _wrk(url: str, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", url], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99_ms": float(p99[1]) * scale, "errors": int(errors[1]) if errors else 0}


def _python_load(url: str, seconds: int, connections: int = 16) -> dict[str, Any]:
    import asyncio

    import httpx

    latencies: list[float] = []
    errors = 0

    async def worker(client: httpx.AsyncClient, until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            started = time.perf_counter()
            response = await client.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code != 200

    async def main() -> float:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections)) as client:
            started = time.perf_counter()
            await asyncio.gather(*(worker(client, started + seconds) for _ in range(connections)))
            return time.perf_counter() - started

    elapsed = asyncio.run(main())
    return {"rps": len(latencies) / elapsed, "p99_ms": _percentile(latencies, 0.99), "errors": errors}


def run(titles: int, stories: int, builds: int, seconds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"titles": titles, "stories": stories, "builds": builds}
    with tempfile.TemporaryDirectory(prefix="marrow-bench-pages-") as root:
        platform = Platform.open(PlatformSettings(root=root, port=0, simulate_every=0))
        try:
            platform.seed(titles, stories)
            views = ClientViews(platform.live.client)
            who = DEMO_PROFILES[PROFILE]
            visitor = Visitor(who.country, "tv", who.maturity, PROFILE)
            collections = sorted(c.slug for c in views.current()["Collection"])
            _seed_plays(
                platform,
                [
                    t.id
                    for t in views.current()["Title"].lookup(list(range(80000100, 80000160)))
                    if t is not None
                ],
            )
            everything = _home_layout(40, 75, collections)
            builder = PageBuilder(Layouts.parse(everything, GENERATORS), engagement=platform.engagement)
            first = builder.build(views.current(), "home", visitor)
            builder.close()
            home = _first_rows(everything, [s.key for s in first.sections], 40)  # 40 rows that fill
            builder = PageBuilder(
                Layouts.parse(home, GENERATORS), history=platform.history, engagement=platform.engagement
            )
            _seed_history(platform, [c.id for s in first.sections for c in s.items][:600])
            page = builder.build(views.current(), "home", visitor)
            out["home_rows"] = len(page.sections)
            out["home_titles"] = sum(len(s.items) for s in page.sections)
            _builds(builder, views, visitor, 20)  # warm: history cached, catalogue arrays built
            personal = _builds(builder, views, visitor, builds)
            anonymous = _builds(builder, views, Visitor(who.country, "tv", who.maturity), builds)
            out.update(
                home_build_p50_ms=round(statistics.median(personal), 2),
                home_build_p99_ms=round(_percentile(personal, 0.99), 2),
                home_build_anonymous_p50_ms=round(statistics.median(anonymous), 2),
                home_build_anonymous_p99_ms=round(_percentile(anonymous, 0.99), 2),
                target_home_build_p99_ms=25,
            )

            slow = PageBuilder(
                Layouts.parse(home.replace("[defaults]", "[defaults]\ndeadline_ms = 250"), GENERATORS),
                history=platform.history,
                engagement=platform.engagement,
                faults=Faults.parse({"because_you_watched": {"delay_ms": 1000}}),
                workers=64,
            )
            fallback = []
            within = 0
            for _ in range(max(20, builds // 4)):
                built = slow.build(views.current(), "home", visitor)
                fallback.append(built.build_ms)
                within += built.build_ms <= built.deadline_ms and any(
                    f.section == "because_you_watched" for f in built.fallbacks
                )
            out.update(
                fallback_deadline_ok=round(within / len(fallback), 3),
                fallback_build_p99_ms=round(_percentile(fallback, 0.99), 2),
            )
            slow.close()
            builder.close()

            url, server, thread = _serve(platform.apps()["site"])
            try:
                target = f"{url}/index.json?profile={PROFILE}&device=web"
                load = _wrk(target, seconds) if shutil.which("wrk") else _python_load(target, seconds)
                out.update(
                    load_generator="wrk -t1 -c16" if shutil.which("wrk") else "python httpx, 16 connections",
                    http_home_rps=round(load["rps"], 1),
                    http_home_p99_ms=round(load["p99_ms"], 2),
                    http_errors=load["errors"],
                )
            finally:
                server.should_exit = True
                thread.join(timeout=10)
        finally:
            platform.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--titles", type=int, default=18_000)
    parser.add_argument("--stories", type=int, default=5_000)
    parser.add_argument("--builds", type=int, default=300, help="home pages built per side")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of HTTP load")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    figures = run(args.titles, args.stories, args.builds, args.seconds)
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
