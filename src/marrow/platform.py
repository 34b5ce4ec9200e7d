"""The whole content platform in one process, on the embedded default (no servers).

    platform = Platform.open(PlatformSettings(root="var/demo"))
    platform.seed(titles=18_000, stories=5_000)   # the sample content, once, into an empty CMS
    platform.start()                               # events → ingestion, folding, the simulator
    apps = platform.apps()                         # {"site": ..., "editor": ..., ...}: ASGI apps
    platform.close()

What it wires together (DESIGN.md §2), all under ``root``:

* the CMS (``cms.db``, SQLite) with its outbox, relay and an in-process event bus;
* two read-after-write namespaces (``live/`` and ``preview/``): each a durable write log, a writer
  that folds the log into store versions every ``fold_interval`` seconds, and a local client;
* ingestion, writing each channel's render-ready records through the namespace's writer;
* page construction over the live client's views, ranked by impression history (``impressions.db``)
  and engagement (``engagement.db``);
* the apps: the visitor site (with a stand-in CDN for the sample's images), the editor (whose preview
  is the same site over the preview namespace, read at the save's offset), the store explorer and
  the impression history API;
* an impression simulator: sample visitors browse the home page, and what they are shown and play
  feeds impression history — titles shown often and never played sink.

Invariants: one process holds each namespace's writer lease (a second platform on the same root
waits for it); :meth:`close` stops everything it started, in reverse order.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

from marrow import impressions, records, store
from marrow.cms import CMS, InProcessBus, Relay
from marrow.cms import sample as cms_sample
from marrow.ingest import Cdn, Ingestion, NamespaceWriter, Worker
from marrow.pages import GENERATORS, Engagement, Layouts, PageBuilder, SqliteEngagement, Visitor
from marrow.pages.views import ClientViews
from marrow.raw import LocalClient, Writer
from marrow.raw.namespace import Namespace
from marrow.web.site import Profile, SiteSettings

log = logging.getLogger("marrow.platform")

__all__ = ["DEMO_PROFILES", "Platform", "PlatformSettings"]

#: Sample profiles the site offers (id → who); each has tastes the simulator plays from.
DEMO_PROFILES = {
    1: Profile("Ana (DE, 16+)", "DE", 16),
    2: Profile("Ben (US, 18+)", "US", 18),
    3: Profile("Chloé (FR, 13+)", "FR", 13),
    4: Profile("Kid (GB, 7+)", "GB", 7),
}


class PlatformSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The embedded platform (section ``[platform]``, environment ``MARROW_PLATFORM_*``)."""

    root: str = "var/demo"  #: where everything is kept
    host: str = "127.0.0.1"
    #: site, editor, explorer, impressions API: four ports from here (0: any free ports)
    port: Annotated[int, msgspec.Meta(ge=0, le=65532)] = 8700
    fold_interval: Annotated[float, msgspec.Meta(gt=0)] = 5.0  #: seconds between folds of the log
    simulate_every: Annotated[float, msgspec.Meta(ge=0)] = 0.5  #: seconds between visits (0: none)
    editor: str = "editor"  #: the demo editor's user name
    password: str = "marrow-demo"  #: …and password (a demo: printed at start)
    token: str = "demo-token"  #: the impression API's bearer token


@dataclass
class _Channel:
    """One read-after-write namespace: its writer (and folder) and a local client."""

    namespace: Namespace
    writer: Writer
    client: LocalClient

    @classmethod
    def open(cls, directory: Path, schema: store.Schema, fold_interval: float) -> _Channel:
        ns = Namespace(directory, schema)
        writer = ns.writer(fold_interval=fold_interval, keep_snapshots=3)
        return cls(ns, writer, ns.client())

    def close(self) -> None:
        self.client.close()
        self.writer.close()


@dataclass
class Platform:
    settings: PlatformSettings
    cms: CMS
    live: _Channel
    preview: _Channel
    ingestion: Ingestion
    history: impressions.ImpressionHistory
    engagement: SqliteEngagement
    builder: PageBuilder
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: PlatformSettings) -> Platform:
        """Open (or create) everything under ``settings.root``; nothing runs until :meth:`start`."""
        root = Path(settings.root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        schema = store.Schema.from_classes(*records.TYPES)
        cms = CMS.open(f"sqlite:///{root / 'cms.db'}")
        opened: list[Any] = [cms]
        try:
            live = _Channel.open(root / "live", schema, settings.fold_interval)
            opened.append(live)
            preview = _Channel.open(root / "preview", schema, settings.fold_interval)
            opened.append(preview)
            cdn = Cdn(base=f"http://{settings.host}:{settings.port}/cdn" if settings.port else "/cdn")
            channels = {"live": NamespaceWriter(live.writer), "preview": NamespaceWriter(preview.writer)}
            ingestion = Ingestion(cms, channels, cdn=cdn)
            history = impressions.ImpressionHistory.open(
                impressions.ImpressionSettings(
                    store=f"sqlite:{root / 'impressions.db'}", tokens=(settings.token,)
                )
            )
            opened.append(history)
        except BaseException:
            for thing in reversed(opened):
                thing.close()
            raise
        engagement = SqliteEngagement(root / "engagement.db")
        builder = PageBuilder(
            Layouts.load(generators=GENERATORS), history=history, engagement=engagement, editorial=True
        )
        return cls(settings, cms, live, preview, ingestion, history, engagement, builder)

    # --- content --------------------------------------------------------------------------------

    def seed(self, titles: int = 18_000, stories: int = 5_000) -> int:
        """Generate the sample content into an empty CMS, published, and the demo editor; then ingest
        whatever the CMS holds that the namespaces do not. Returns the documents imported (0 when the
        CMS had content already)."""
        imported = 0
        if self.cms.search("title", limit=1)[1] == 0:  # an empty CMS: the sample, once
            content = cms_sample.generate(titles=titles, stories=stories)
            dates = {("story", i): float(when) for i, when in content.published.items()}
            imported = self.cms.import_documents(content.documents(), editor="sample", published_at=dates)
        if self.cms.editors.get(self.settings.editor) is None:
            self.cms.editors.add(self.settings.editor, self.settings.password, "Demo Editor")
        report = self.ingestion.ingest_pending(10**7)
        if report.errors:
            log.warning("sample ingestion: %d error(s), first: %s", len(report.errors), report.errors[0])
        for channel in (self.live, self.preview):  # the first version, so pages have a base to read
            if channel.writer.folder is not None and channel.client.view().base is None:
                done = channel.writer.folder.fold()
                if done is not None:
                    channel.client.consumer.wait_for(done.version, timeout=60)
        return imported

    # --- running --------------------------------------------------------------------------------

    def start(self) -> None:
        """Events from the CMS to ingestion, and the impression simulator, in background threads."""
        bus = InProcessBus()
        relay, worker = Relay(self.cms.outbox, bus), Worker(bus, self.ingestion)
        relay.start()
        worker.start()
        self._stops += [relay.close, worker.close]
        if self.settings.simulate_every:
            simulation = Simulation(self, self.settings.simulate_every)
            simulation.start()
            self._stops.append(simulation.close)

    def apps(self) -> dict[str, Any]:
        """The platform's ASGI apps by name: site, editor, explorer, impressions."""
        from starlette.applications import Starlette
        from starlette.routing import Mount

        from marrow.web.cdn import cdn_app
        from marrow.web.editor import EditorSettings, editor_app
        from marrow.web.explorer import explorer_app
        from marrow.web.impressions import impressions_app
        from marrow.web.site import site_app

        site = site_app(ClientViews(self.live.client), self.builder, SiteSettings(profiles=DEMO_PROFILES))
        preview_site = site_app(
            ClientViews(self.preview.client),
            PageBuilder(self.builder.layouts, editorial=True),  # previews stay out of visitors' impressions
            SiteSettings(profiles=DEMO_PROFILES, public_max_age=0),
        )
        return {
            "site": Starlette(routes=[Mount("/cdn", cdn_app()), Mount("/", site)]),
            "editor": editor_app(
                self.cms, self.ingestion.ingest, preview_site, EditorSettings(secure_cookies=False)
            ),
            "explorer": explorer_app(self.live.client.consumer),
            "impressions": impressions_app(self.history, [self.settings.token]),
        }

    def close(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()
        self.builder.close()
        self.history.close()
        self.preview.close()
        self.live.close()
        self.cms.close()


class Simulation:
    """Sample visitors browse the live home page; their impressions and plays feed personalisation.

    Each profile likes a few genres and plays only titles of those (sometimes): a title the page keeps
    showing that is not to the profile's taste gathers impressions without plays, and sinks.
    """

    def __init__(self, platform: Platform, every: float, seed: int = 7):
        self.platform = platform
        self.every = every
        self.rng = random.Random(seed)
        self.simulator = impressions.Simulator(self._browse, seed=seed)
        self._tastes: dict[int, set[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="marrow-simulation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _taste(self, profile: int, view: Any) -> set[str]:
        if profile not in self._tastes:
            genres = sorted({g for t in itertools.islice(view["Title"], 500) for g in t.genres})
            self._tastes[profile] = set(random.Random(profile).sample(genres, min(3, len(genres))))
        return self._tastes[profile]

    def _browse(self, visitor: impressions.Visitor) -> impressions.Screen:
        view = self.platform.live.client.view()
        who = DEMO_PROFILES[visitor.profile]
        page = self.platform.builder.build(
            view, "home", Visitor(who.country, visitor.device, who.maturity, visitor.profile)
        )
        sections = [impressions.Section(s.key, [c.id for c in s.items]) for s in page.sections]
        taste = self._taste(visitor.profile, view)
        shown = [i for s in sections for i in s.titles]
        liked = [t.id for t in view["Title"].lookup(shown) if t is not None and taste & set(t.genres)]
        plays = liked[:2] if self.rng.random() < 0.5 else []
        return impressions.Screen("home", sections, plays)

    def visit(self) -> Any:
        profile = self.rng.choice(list(DEMO_PROFILES))
        device = self.rng.choice(list(records.DEVICES))
        visit = self.simulator.visit(profile, device, int(time.time() * 1000))
        if visit.events:
            self.platform.history.submit(visit.events, wait=True)
        if visit.played is not None:
            progress = round(self.rng.uniform(0.1, 1.0), 2)
            self.platform.engagement.record(Engagement(profile, visit.played, "play", progress))
        return visit

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.visit()
            except Exception as e:  # the simulation must not stop the platform; say why it skipped
                log.warning("simulated visit failed: %s", e)
