"""Step 4, resolve placeholders: title ids → names, synopses and cast; asset ids → CDN URLs in the
sizes each device needs; rich text → HTML.

A reference the channel cannot see — a title that does not exist, or (on ``live``) is not published,
an image where a video belongs — is a :class:`~marrow.ingest.report.FieldError` on the field that
holds it. Resolution reads only what :func:`~marrow.ingest.pull.pull` fetched: no queries here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marrow.cms.model import (
    PLACEHOLDER,
    Asset,
    Collection,
    Document,
    ImageBlock,
    Person,
    Story,
    TextBlock,
    Title,
    TitleCard,
    VideoEmbed,
)
from marrow.ingest.pull import Pulled
from marrow.ingest.report import FieldError
from marrow.records import DEVICES

__all__ = ["IMAGE_SIZES", "Cdn", "Resolved", "Resolver", "rich_text"]

#: image role → device → (width, height) the CDN cuts for it
IMAGE_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "artwork": {"tv": (1280, 720), "web": (665, 374), "mobile": (342, 192)},
    "hero": {"tv": (1920, 1080), "web": (1600, 900), "mobile": (750, 422)},
    "inline": {"tv": (1280, 720), "web": (1200, 675), "mobile": (640, 360)},
}
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"\*(.+?)\*")


@dataclass(frozen=True)
class Cdn:
    """Builds CDN URLs: ``{base}/{path}?w=…&h=…&fit=crop`` for images, ``{base}/{path}`` for videos."""

    base: str = "https://cdn.marrow.test"
    sizes: Mapping[str, Mapping[str, tuple[int, int]]] = field(default_factory=lambda: IMAGE_SIZES)

    def image(self, asset: Asset, role: str) -> dict[str, str]:
        """device → URL of ``asset`` cut to the size ``role`` has on that device."""
        base = f"{self.base.rstrip('/')}/{asset.path}"
        return {device: f"{base}?w={w}&h={h}&fit=crop" for device, (w, h) in self.sizes[role].items()}

    def video(self, asset: Asset) -> str:
        return f"{self.base.rstrip('/')}/{asset.path}"


def rich_text(text: str, placeholder: Any) -> tuple[str, list[str]]:
    """``text`` (see :class:`~marrow.cms.model.TextBlock`) as HTML, and what was wrong in it.

    Everything the editor typed is escaped first; ``placeholder(match)`` returns the HTML of a
    ``{{kind:id}}`` placeholder (or raises LookupError with the reason it cannot be resolved).
    """
    problems: list[str] = []

    def link(m: re.Match[str]) -> str:
        url = html.unescape(m[2])
        if not (
            url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//"))
        ):
            problems.append(f"link {url!r}: use an http(s) URL or a path on the site")
            return m[1]
        return f'<a href="{html.escape(url)}">{m[1]}</a>'

    def resolve(m: re.Match[str]) -> str:
        try:
            return str(placeholder(m))
        except LookupError as e:
            problems.append(str(e.args[0]))
            return ""

    paragraphs = []
    for para in re.split(r"\n\s*\n", html.escape(text.strip(), quote=True)):
        para = _LINK.sub(link, para)
        para = _EM.sub(r"<em>\1</em>", _STRONG.sub(r"<strong>\1</strong>", para))
        para = PLACEHOLDER.sub(resolve, para).replace("\n", "<br>")
        paragraphs.append(f"<p>{para}</p>")
    return "".join(paragraphs), problems


@dataclass
class Resolved:
    """A document's references turned into production values (the render step's input)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)


class Resolver:
    """Resolves the documents of one pulled batch."""

    def __init__(self, pulled: Pulled, cdn: Cdn):
        self.pulled, self.cdn = pulled, cdn
        self.unseen = "does not exist" if pulled.channel != "live" else "does not exist or is not published"

    def resolve(self, kind: str, id: int, doc: Document) -> Resolved:
        out = Resolved()
        if isinstance(doc, Title):
            self._title(kind, id, doc, out)
        elif isinstance(doc, Story):
            self._story(kind, id, doc, out)
        elif isinstance(doc, Collection):
            for i, t in enumerate(doc.titles):
                self._ref(out, kind, id, f"titles[{i}]", "title", t)
        return out

    def _ref(self, out: Resolved, kind: str, id: int, path: str, ref_kind: str, ref_id: int) -> Any:
        doc = self.pulled.ref(ref_kind, ref_id)
        if doc is None:
            out.errors.append(FieldError(kind, id, path, f"{ref_kind} {ref_id} {self.unseen}"))
        return doc

    def _image(
        self, out: Resolved, kind: str, id: int, path: str, asset_id: int, role: str
    ) -> dict[str, str]:
        asset = self._ref(out, kind, id, path, "asset", asset_id)
        if asset is None:
            return {}
        if asset.kind != "image":
            out.errors.append(FieldError(kind, id, path, f"asset {asset_id} is a {asset.kind}, not an image"))
            return {}
        return self.cdn.image(asset, role)

    def _title(self, kind: str, id: int, doc: Title, out: Resolved) -> None:
        cast = []
        for i, p in enumerate(doc.cast):
            person = self._ref(out, kind, id, f"cast[{i}]", "person", p)
            if isinstance(person, Person):
                cast.append(person.name)
        out.values["cast"] = cast
        if doc.artwork is not None:
            out.values["artwork"] = self._image(out, kind, id, "artwork", doc.artwork, "artwork")

    def title_card(self, title_id: int, title: Title) -> dict[str, Any]:
        """What a title card shows, resolved (its cast's names, its artwork's URLs)."""
        people = self.pulled.refs["person"]
        artwork = self.pulled.ref("asset", title.artwork) if title.artwork is not None else None
        return {
            "kind": "title",
            "id": title_id,
            "name": title.name,
            "slug": title.slug,
            "synopsis": title.synopsis,
            "year": title.year,
            "maturity": title.maturity,
            "cast": [p.name for c in title.cast[:5] if isinstance(p := people.get(c), Person)],
            "artwork": self.cdn.image(artwork, "artwork") if isinstance(artwork, Asset) else {},
        }

    def _story(self, kind: str, id: int, doc: Story, out: Resolved) -> None:
        if doc.hero is not None:
            out.values["hero"] = self._image(out, kind, id, "hero", doc.hero, "hero")
        blocks: list[dict[str, Any]] = []
        for i, b in enumerate(doc.blocks):
            path = f"blocks[{i}]"
            if isinstance(b, TextBlock):
                markup, problems = rich_text(b.text, self._placeholder)
                out.errors += [FieldError(kind, id, f"{path}.text", p) for p in problems]
                blocks.append({"kind": "text", "html": markup})
            elif isinstance(b, TitleCard) and b.title is not None:
                title = self._ref(out, kind, id, f"{path}.title", "title", b.title)
                if isinstance(title, Title):
                    blocks.append(self.title_card(b.title, title))
            elif isinstance(b, ImageBlock) and b.asset is not None:
                images = self._image(out, kind, id, f"{path}.asset", b.asset, "inline")
                alt = getattr(self.pulled.ref("asset", b.asset), "alt", "")
                blocks.append({"kind": "image", "images": images, "alt": alt, "caption": b.caption})
            elif isinstance(b, VideoEmbed) and b.asset is not None:
                blocks.append(self._video(out, kind, id, f"{path}.asset", b))
        out.values["blocks"] = blocks

    def _video(self, out: Resolved, kind: str, id: int, path: str, b: VideoEmbed) -> dict[str, Any]:
        assert b.asset is not None
        video = self._ref(out, kind, id, path, "asset", b.asset)
        block: dict[str, Any] = {
            "kind": "video",
            "src": "",
            "poster": {},
            "duration": None,
            "caption": b.caption,
        }
        if video is None:
            return block
        if video.kind != "video":
            out.errors.append(FieldError(kind, id, path, f"asset {b.asset} is an image, not a video"))
            return block
        block.update(src=self.cdn.video(video), duration=video.duration)
        poster = self.pulled.ref("asset", video.poster) if video.poster is not None else None
        if isinstance(poster, Asset):
            block["poster"] = self.cdn.image(poster, "inline")
        return block

    def _placeholder(self, m: re.Match[str]) -> str:
        ref_kind, ref_id = m["kind"], int(m["id"])
        doc = self.pulled.ref(ref_kind, ref_id)
        if doc is None:
            raise LookupError(f"placeholder {m[0]}: {ref_kind} {ref_id} {self.unseen}")
        if isinstance(doc, Title):
            name = html.escape(doc.name)
            return f'<a class="title" href="/titles/{doc.slug}" data-title="{ref_id}">{name}</a>'
        assert isinstance(doc, Asset)
        url = self.cdn.image(doc, "inline")["web"] if doc.kind == "image" else self.cdn.video(doc)
        return f'<a class="asset" href="{html.escape(url)}">{html.escape(doc.alt or doc.path)}</a>'


assert set(IMAGE_SIZES["hero"]) == set(DEVICES), "every device has its image sizes"
