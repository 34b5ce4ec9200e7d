"""``make demo``: the whole platform on the embedded default, with sample content — and ``--check``.

:func:`serve` opens the platform (:mod:`marrow.platform`) under a directory, seeds it on the first
run, and serves its four apps on consecutive ports until Ctrl-C::

    site          http://127.0.0.1:8700/     the visitor site (profiles, devices, search)
    editor        http://127.0.0.1:8701/     sign in, edit a story, see it in the preview at once
    explorer      http://127.0.0.1:8702/     the live namespace's store versions
    impressions   http://127.0.0.1:8703/     the impression history API (bearer token)

:func:`check` runs an end-to-end scenario headless, on a fresh directory and free ports, and says
which step failed: sign in, edit a story, see it in the preview, publish, see it on the site,
generate impressions, see the ranking change.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console

from marrow.platform import DEMO_PROFILES, Platform, PlatformSettings

APPS = ("site", "editor", "explorer", "impressions")


@contextlib.contextmanager
def _serving(apps: dict[str, Any], sockets: dict[str, socket.socket]) -> Iterator[dict[str, str]]:
    """Serve each app on its socket from a thread of its own; yields their base URLs."""
    servers, threads = [], []
    for name in APPS:
        server = uvicorn.Server(uvicorn.Config(apps[name], log_level="warning", ws="none", lifespan="off"))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sockets[name]]}, name=f"marrow-{name}", daemon=True
        )
        thread.start()
        servers.append(server)
        threads.append(thread)
    deadline = time.monotonic() + 30
    while not all(s.started for s in servers):
        if time.monotonic() > deadline or not all(t.is_alive() for t in threads):
            raise RuntimeError("the demo's web servers did not start")
        time.sleep(0.02)
    try:
        yield {name: "http://{}:{}".format(*sockets[name].getsockname()[:2]) for name in APPS}
    finally:
        for s in servers:
            s.should_exit = True
        for t in threads:
            t.join(timeout=10)


def _sockets(host: str, port: int) -> dict[str, socket.socket]:
    """Listening sockets for the four apps: ``port`` and the three after it (0: any free ports)."""
    out = {}
    try:
        for i, name in enumerate(APPS):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port + i if port else 0))
            out[name] = sock
    except OSError as e:
        for sock in out.values():
            sock.close()
        raise OSError(f"cannot listen on {host}:{port}–{port + 3} ({e}); choose another --port") from None
    return out


def _open(settings: PlatformSettings, titles: int, stories: int, console: Console) -> Platform:
    with console.status(f"opening the platform in {settings.root}"):
        platform = Platform.open(settings)
    try:
        with console.status(
            f"seeding sample content ({titles:,} titles, {stories:,} stories) and ingesting it"
        ):
            started = time.perf_counter()
            imported = platform.seed(titles, stories)
        if imported:
            console.print(f"seeded {imported:,} documents in {time.perf_counter() - started:.1f} s")
        platform.start()
    except BaseException:
        platform.close()
        raise
    return platform


def serve(settings: PlatformSettings, titles: int, stories: int, console: Console) -> None:
    """Run the platform until interrupted, printing where to look."""
    sockets = _sockets(settings.host, settings.port)
    platform = _open(settings, titles, stories, console)
    try:
        with _serving(platform.apps(), sockets) as urls:
            console.print("\n[bold]Marrow is running[/] (Ctrl-C to stop)\n")
            profiles = ", ".join(p.name for p in DEMO_PROFILES.values())
            console.print(f"  visitor site   {urls['site']}/   (profiles: {profiles})")
            who = f"[bold]{settings.editor}[/] / [bold]{settings.password}[/]"
            console.print(f"  editor         {urls['editor']}/   sign in as {who}")
            console.print(f"  explorer       {urls['explorer']}/")
            console.print(
                f"  impressions    {urls['impressions']}/   (Authorization: Bearer {settings.token})"
            )
            console.print(
                f"\n  data in {Path(settings.root).resolve()}; the simulator browses as the sample profiles\n"
            )
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)
    finally:
        console.print("stopping…")
        platform.close()


# --- the end-to-end check -------------------------------------------------------------------------------


@dataclass
class Check:
    """The outcome of :func:`check`: each step, how long it took, and what went wrong."""

    steps: list[tuple[str, float, str | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(error is None for _, _, error in self.steps)


class _Failed(Exception):
    pass


def check(console: Console, titles: int = 1_500, stories: int = 200, root: Path | None = None) -> Check:
    """Run the scenario on a fresh platform; every step is timed and a failure stops the run."""
    import httpx

    result = Check()
    with contextlib.ExitStack() as stack:
        directory = root or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="marrow-check-")))
        sockets = _sockets("127.0.0.1", 0)
        site_port = sockets["site"].getsockname()[1]
        settings = PlatformSettings(root=str(directory), port=site_port, simulate_every=0, fold_interval=2.0)
        platform = _open(settings, titles, stories, console)
        stack.callback(platform.close)
        urls = stack.enter_context(_serving(platform.apps(), sockets))
        editor = stack.enter_context(httpx.Client(base_url=urls["editor"], timeout=30))
        site = stack.enter_context(httpx.Client(base_url=urls["site"], timeout=30))
        scenario = _Scenario(platform, editor, site, urls)
        for name, step in scenario.steps():
            started = time.perf_counter()
            try:
                detail = step()
            except (_Failed, httpx.HTTPError, KeyError, ValueError) as e:
                result.steps.append((name, time.perf_counter() - started, f"{type(e).__name__}: {e}"))
                console.print(f"[red]✗ {name}[/]: {e}")
                break
            took = time.perf_counter() - started
            result.steps.append((name, took, None))
            console.print(
                f"[green]✓[/] {name} [dim]({took * 1000:.0f} ms{'; ' + detail if detail else ''})[/]"
            )
    return result


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise _Failed(message)


class _Scenario:
    """The steps of :func:`check`, in order, sharing what earlier steps learnt."""

    def __init__(self, platform: Platform, editor: Any, site: Any, urls: dict[str, str]):
        self.platform, self.editor, self.site, self.urls = platform, editor, site, urls
        self.story: dict[str, Any] = {}
        self.headline = f"Checked at {time.strftime('%H:%M:%S')}"

    def steps(self) -> list[tuple[str, Callable[[], str | None]]]:
        return [
            ("sign in to the editor", self.sign_in),
            ("edit a story and save it", self.save),
            ("see the change in the preview at once", self.preview),
            ("publish it", self.publish),
            ("see it on the visitor site", self.on_site),
            ("generate impressions", self.impressions),
            ("see the ranking change", self.ranking),
        ]

    def sign_in(self) -> str:
        form = self.editor.get("/sign-in")
        token = self.editor.cookies.get("marrow_signin")
        _expect(form.status_code == 200 and bool(token), f"the sign-in form answered {form.status_code}")
        s = self.platform.settings
        answer = self.editor.post(
            "/sign-in",
            data={"username": s.editor, "password": s.password, "login_token": token, "next": "/stories"},
        )
        _expect(answer.status_code == 303, f"sign-in answered {answer.status_code}: {answer.text[:200]}")
        listed = self.editor.get("/stories.json")
        _expect(listed.status_code == 200 and listed.json()["total"] > 0, "no stories listed after sign-in")
        self.story = listed.json()["stories"][0]
        return f"{listed.json()['total']} stories"

    def save(self) -> str:
        page = self.editor.get(f"/stories/{self.story['id']}.json").json()
        form = page["form"]
        fields = {k: form[k] for k in ("headline", "slug", "template", "summary", "hero", "genres")}
        fields.update(revision=str(page["revision"]), csrf=self._csrf(), headline=self.headline)
        for i, block in enumerate(form["blocks"]):
            fields.update({f"block-{i}-{k}": v for k, v in block.items() if k != "errors"})
        answer = self.editor.post(f"/stories/{self.story['id']}", data=fields)
        _expect(answer.status_code == 303, f"the save answered {answer.status_code}: {answer.text[:300]}")
        self.story.update(slug=form["slug"], location=answer.headers["location"])
        return f"revision {page['revision'] + 1}"

    def _csrf(self) -> str:
        html = self.editor.get(f"/stories/{self.story['id']}").text
        marker = 'name="csrf" value="'
        _expect(marker in html, "the story form has no CSRF token")
        return html.split(marker, 1)[1].split('"', 1)[0]

    def preview(self) -> str:
        offset = self.story["location"].rsplit("offset=", 1)[1]
        shown = self.editor.get(f"/preview/stories/{self.story['slug']}.json", params={"offset": offset})
        _expect(shown.status_code == 200, f"the preview answered {shown.status_code}: {shown.text[:200]}")
        headline = shown.json()["story"]["headline"]
        _expect(headline == self.headline, f"the preview shows {headline!r}, not the saved {self.headline!r}")
        return f"read at offset {offset}"

    def publish(self) -> None:
        page = self.editor.get(f"/stories/{self.story['id']}.json").json()
        answer = self.editor.post(
            f"/stories/{self.story['id']}/publish",
            data={"csrf": self._csrf(), "revision": str(page["revision"])},
        )
        _expect(answer.status_code == 303, f"publishing answered {answer.status_code}: {answer.text[:200]}")

    def on_site(self) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            shown = self.site.get(f"/stories/{self.story['slug']}.json")
            if shown.status_code == 200 and shown.json()["story"]["headline"] == self.headline:
                return "visible to visitors"
            time.sleep(0.05)
        raise _Failed(
            f"the published headline did not reach the site within 10 s (it shows {shown.text[:200]})"
        )

    def _trending(self, profile: int) -> list[int]:
        page = self.site.get("/index.json", params={"profile": profile, "device": "tv"}).json()["page"]
        rows = [s for s in page["sections"] if s["key"] == "trending"]
        _expect(bool(rows), "the home page has no trending row")
        return [c["id"] for c in rows[0]["items"]]

    def impressions(self) -> str:
        self.profile = next(iter(DEMO_PROFILES))
        self.before = self._trending(self.profile)
        self.shown = self.before[0]
        now = int(time.time() * 1000)
        seen = {"page": "home", "section": "trending", "position": 0, "device": "tv"}
        events = [
            {"profile": self.profile, "title": self.shown, **seen, "timestamp": now - i * 3_600_000,
             "visible_share": 1.0, "visible_ms": 2500}
            for i in range(1, 16)
        ]  # fmt: skip
        answer = httpx_post(
            self.urls["impressions"], "/events", {"events": events}, self.platform.settings.token
        )
        _expect(
            answer.status_code == 200,
            f"the impression API answered {answer.status_code}: {answer.text[:200]}",
        )
        return f"title {self.shown} shown 15 times without a play"

    def ranking(self) -> str:
        after = self._trending(self.profile)
        _expect(after[0] != self.shown, f"title {self.shown} is still first in trending")
        where = after.index(self.shown) + 1 if self.shown in after else None
        return f"title {self.shown} moved from 1st to {where or 'out of the row'}"


def httpx_post(base: str, path: str, body: Any, token: str) -> Any:
    import httpx

    return httpx.post(base + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
