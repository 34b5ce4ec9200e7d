"""Page layouts as configuration: which sections a page has, per page type and device.

The server dictates the layout; clients render what it says. A layout file (TOML) maps each page
type × device to a layout *kind* and an ordered list of section specs::

    [defaults]
    deadline_ms = 3000          # the hard page deadline
    budget_ms = 250             # a section's budget unless it names its own
    fragment_rows = 6           # rows in the first fragment; later fragments carry as many

    [devices.tv]
    row_length = 40             # titles per row on this device
    [devices.mobile]
    row_length = 20

    [[pages.home.web.sections]]
    generator = "trending"
    title = "Trending now"
    budget_ms = 100

    [pages.home.tv]
    kind = "lolomo"
    sections = [{ generator = "continue_watching" }, { generator = "genre", params = { genre = "Drama" } }]

Every value is checked when the file is loaded: unknown page types, devices, layout kinds,
generators or parameters are refused with an error naming the place (``pages.home.tv.sections[3]``)
and what is allowed there. A layout that loaded is therefore one page construction can build.

Editors lay pages out too: a CMS page layout is ingested as a :class:`marrow.records.Layout`, and a
:class:`~marrow.pages.PageBuilder` made with ``editorial=True`` builds a page with its sections
(:meth:`Layouts.editorial`: checked the same way) where the store has one for that page and device.
The configuration keeps the rest — the layout kind, row lengths, fragments, the deadline — and every
page an editor has not laid out.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marrow.errors import ConfigError
from marrow.records import DEVICES

PAGE_TYPES = ("home", "title", "story", "genre", "search")
KINDS = ("lolomo", "gallery", "feed")  # rows of titles; a grid; a vertical stream
DEFAULT_FILE = Path(__file__).with_name("layouts.toml")

log = logging.getLogger("marrow.pages")


@dataclass(frozen=True)
class SectionSpec:
    """One section of a layout: which generator fills it, with what, within what budget."""

    generator: str
    title: str | None = None  # shown above the row; None: the generator names it
    params: Mapping[str, Any] = field(default_factory=dict)
    budget_ms: float = 250.0
    length: int | None = None  # titles in the row; None: the device's row length

    @functools.cached_property
    def key(self) -> str:
        """Names the section within its page (stable across requests, for caches and cursors)."""
        args = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.generator}({args})" if args else self.generator


@dataclass(frozen=True)
class Layout:
    """The layout of one page type on one device."""

    page: str
    device: str
    kind: str
    sections: tuple[SectionSpec, ...]
    row_length: int
    fragment_rows: int
    deadline_ms: float


@dataclass(frozen=True)
class Layouts:
    """Every page type × device layout of a site."""

    layouts: Mapping[tuple[str, str], Layout]
    budget_ms: float = 250.0  # a section's budget where its spec gives none

    def get(self, page: str, device: str) -> Layout:
        try:
            return self.layouts[(page, device)]
        except KeyError:
            raise ConfigError(
                f"no layout for page {page!r} on device {device!r}; "
                f"configured: {sorted(f'{p}/{d}' for p, d in self.layouts)}"
            ) from None

    def editorial(self, record: Any, generators: Mapping[str, Any] | None = None) -> Layout:
        """The configured layout of ``record.page`` on ``record.device`` with the sections of an editor's
        layout (a :class:`marrow.records.Layout`, ingested from the CMS); its kind, row length, fragment
        size and deadline stay the configured ones. A :class:`ConfigError` names what is wrong."""
        base = self.get(record.page, record.device)
        checker = _Checker(f"the CMS layout {record.id} ({record.key})", generators)
        try:
            sections = json.loads(record.sections)
        except ValueError as e:
            raise checker.fail("sections", f"not JSON: {e}") from None
        if not isinstance(sections, list) or not sections:
            raise checker.fail("sections", "expected a non-empty list of sections")
        specs = tuple(checker.section(s, f"sections[{i}]", self.budget_ms) for i, s in enumerate(sections))
        return dataclasses.replace(base, sections=specs)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_FILE, generators: Mapping[str, Any] | None = None) -> Layouts:
        """Read and check a layout file. ``generators`` (name → generator) are the names allowed."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the layout file {path}: {e}") from None
        return cls.parse(text, generators, source=str(path))

    @classmethod
    def parse(
        cls, text: str, generators: Mapping[str, Any] | None = None, source: str = "<layouts>"
    ) -> Layouts:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{source}: not valid TOML: {e}") from None
        return _Checker(source, generators).layouts(doc)


class _Checker:
    """Turns a parsed layout document into :class:`Layouts`, naming the place of any mistake."""

    def __init__(self, source: str, generators: Mapping[str, Any] | None):
        self.source = source
        self.generators = generators

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {what}")

    def table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table, got {type(value).__name__}")
        return value

    def known(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")

    def number(self, value: Any, where: str, minimum: float = 0, integer: bool = False) -> Any:
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value <= minimum:
            kind = "an integer" if integer else "a number"
            raise self.fail(where, f"expected {kind} above {minimum}, got {value!r}")
        return value

    def layouts(self, doc: dict[str, Any]) -> Layouts:
        self.known(doc, {"defaults", "devices", "pages"}, "top level")
        defaults = self.table(doc.get("defaults", {}), "defaults")
        self.known(defaults, {"deadline_ms", "budget_ms", "fragment_rows", "row_length"}, "defaults")
        deadline = self.number(defaults.get("deadline_ms", 3000), "defaults.deadline_ms")
        budget = self.number(defaults.get("budget_ms", 250), "defaults.budget_ms")
        rows = self.number(defaults.get("fragment_rows", 6), "defaults.fragment_rows", integer=True)
        length = self.number(defaults.get("row_length", 40), "defaults.row_length", integer=True)
        devices = self.table(doc.get("devices", {}), "devices")
        row_lengths = {}
        for device in DEVICES:
            d = self.table(devices.get(device, {}), f"devices.{device}")
            self.known(d, {"row_length", "fragment_rows"}, f"devices.{device}")
            row_lengths[device] = (
                self.number(d.get("row_length", length), f"devices.{device}.row_length", integer=True),
                self.number(d.get("fragment_rows", rows), f"devices.{device}.fragment_rows", integer=True),
            )
        self.known(devices, set(DEVICES), "devices")
        pages = self.table(doc.get("pages", {}), "pages")
        self.known(pages, set(PAGE_TYPES), "pages")
        out: dict[tuple[str, str], Layout] = {}
        for page, per_device in pages.items():
            per_device = self.table(per_device, f"pages.{page}")
            self.known(per_device, set(DEVICES) | {"all"}, f"pages.{page}")
            for device in DEVICES:
                spec = per_device.get(device, per_device.get("all"))
                if spec is None:
                    continue
                where = f"pages.{page}.{device}" if device in per_device else f"pages.{page}.all"
                length, frows = row_lengths[device]
                out[(page, device)] = self.layout(spec, page, device, where, budget, deadline, length, frows)
        if not out:
            raise self.fail("pages", "no page layouts are configured")
        return Layouts(out, budget)

    def layout(
        self,
        spec: Any,
        page: str,
        device: str,
        where: str,
        budget: float,
        deadline: float,
        length: int,
        rows: int,
    ) -> Layout:
        t = self.table(spec, where)
        self.known(t, {"kind", "sections", "deadline_ms", "fragment_rows"}, where)
        kind = t.get("kind", "lolomo")
        if kind not in KINDS:
            raise self.fail(f"{where}.kind", f"{kind!r} is not a layout kind; allowed: {list(KINDS)}")
        sections = t.get("sections")
        if not isinstance(sections, list) or not sections:
            raise self.fail(f"{where}.sections", "expected a non-empty list of sections")
        specs = tuple(self.section(s, f"{where}.sections[{i}]", budget) for i, s in enumerate(sections))
        return Layout(
            page,
            device,
            kind,
            specs,
            length,
            self.number(t.get("fragment_rows", rows), f"{where}.fragment_rows", integer=True),
            self.number(t.get("deadline_ms", deadline), f"{where}.deadline_ms"),
        )

    def section(self, spec: Any, where: str, budget: float) -> SectionSpec:
        t = self.table(spec, where)
        self.known(t, {"generator", "title", "params", "budget_ms", "length"}, where)
        name = t.get("generator")
        if not isinstance(name, str):
            raise self.fail(f"{where}.generator", "every section names its generator")
        params = self.table(t.get("params", {}), f"{where}.params")
        if self.generators is not None:
            generator = self.generators.get(name)
            if generator is None:
                raise self.fail(
                    f"{where}.generator", f"unknown generator {name!r}; known: {sorted(self.generators)}"
                )
            try:
                generator.check(params)
            except (ValueError, TypeError) as e:
                raise self.fail(f"{where}.params", str(e)) from None
        title = t.get("title")
        if title is not None and not isinstance(title, str):
            raise self.fail(f"{where}.title", f"expected a string, got {title!r}")
        length = t.get("length")
        return SectionSpec(
            name,
            title,
            params,
            self.number(t.get("budget_ms", budget), f"{where}.budget_ms"),
            None if length is None else self.number(length, f"{where}.length", integer=True),
        )


class EditorsLayouts:
    """Layouts an editor set in the CMS, read from the store view a page is built from, over the
    configured :class:`Layouts`. Each is checked once per revision; one that fails its check is logged
    and the configured layout served instead."""

    KEPT = 1024  # checked layouts kept (by layout id and revision)

    def __init__(self, layouts: Layouts, generators: Mapping[str, Any] | None = None):
        self.layouts = layouts
        self.generators = generators
        self._checked: dict[tuple[int, int], Layout] = {}

    def get(self, view: Any, page: str, device: str) -> Layout:
        configured = self.layouts.get(page, device)
        if "Layout" not in view:
            return configured
        found = view["Layout"].find("key", f"{page}/{device}")
        if not found:
            return configured
        record = max(found, key=lambda r: r.id)  # two layouts of one page: the newest document's
        layout = self._checked.get((record.id, record.revision))
        if layout is None:
            try:
                layout = self.layouts.editorial(record, self.generators)
            except ConfigError as e:
                log.warning("%s; the configured layout is served", e)
                layout = configured
            if len(self._checked) >= self.KEPT:
                self._checked.clear()
            self._checked[(record.id, record.revision)] = layout
        return layout
