"""The story form of the editor: an HTML form's fields ↔ a :class:`~marrow.cms.Story`.

Blocks are numbered fieldsets: ``block-3-kind`` (text, image, title, video), ``block-3-text``,
``block-3-title``, ``block-3-asset``, ``block-3-caption``, and ``block-3-remove`` to drop it. A number
the editor typed that is not a number is a field error here, before anything is saved; everything
else about a story's content is for ingestion to judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marrow.cms.model import Block, ImageBlock, Story, TextBlock, TitleCard, VideoEmbed

__all__ = ["BLOCK_KINDS", "StoryForm", "blank_block", "form_of", "parse_form"]

BLOCK_KINDS = ("text", "title", "image", "video")
_MAX_BLOCKS = 200


@dataclass
class StoryForm:
    """What the form shows: the fields as text (so a bad value is shown back as typed) and errors by
    field path (``headline``, ``blocks[2].title``)."""

    headline: str = ""
    slug: str = ""
    template: str = "article"
    summary: str = ""
    hero: str = ""
    genres: str = ""
    blocks: list[dict[str, str]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "slug": self.slug,
            "template": self.template,
            "summary": self.summary,
            "hero": self.hero,
            "genres": self.genres,
            "blocks": self.blocks,
            "errors": self.errors,
        }


def blank_block(kind: str) -> dict[str, str]:
    return {"kind": kind, "text": "", "title": "", "asset": "", "caption": ""}


def form_of(story: Story) -> StoryForm:
    """The form showing ``story``."""
    blocks = []
    for b in story.blocks:
        row = blank_block("text")
        if isinstance(b, TextBlock):
            row["text"] = b.text
        elif isinstance(b, TitleCard):
            row.update(kind="title", title="" if b.title is None else str(b.title))
        else:
            row.update(
                kind="image" if isinstance(b, ImageBlock) else "video",
                asset="" if b.asset is None else str(b.asset),
                caption=b.caption,
            )
        blocks.append(row)
    return StoryForm(
        headline=story.headline,
        slug=story.slug,
        template=story.template,
        summary=story.summary,
        hero="" if story.hero is None else str(story.hero),
        genres=", ".join(story.genres),
        blocks=blocks,
    )


def _id(form: StoryForm, path: str, text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        form.error(path, f"an id is a whole number, not {text!r}")
        return None
    return int(text)


def parse_form(data: Mapping[str, str]) -> tuple[StoryForm, Story | None]:
    """The form as submitted, and the story it describes (None when a field could not be read)."""
    form = StoryForm(
        headline=data.get("headline", "").strip(),
        slug=data.get("slug", "").strip(),
        template=data.get("template", "article").strip(),
        summary=data.get("summary", "").strip(),
        hero=data.get("hero", "").strip(),
        genres=data.get("genres", ""),
    )
    numbers = sorted(
        {int(k.split("-")[1]) for k in data if k.startswith("block-") and k.split("-")[1].isdigit()}
    )
    blocks: list[Block] = []
    for n in numbers[:_MAX_BLOCKS]:
        if data.get(f"block-{n}-remove"):
            continue
        row = {k: data.get(f"block-{n}-{k}", "") for k in ("kind", "text", "title", "asset", "caption")}
        if row["kind"] not in BLOCK_KINDS:
            form.error(f"blocks[{len(blocks)}]", f"unknown block kind {row['kind']!r}")
            continue
        path = f"blocks[{len(form.blocks)}]"
        form.blocks.append(row)
        if row["kind"] == "text":
            blocks.append(TextBlock(text=row["text"].replace("\r\n", "\n")))
        elif row["kind"] == "title":
            blocks.append(TitleCard(title=_id(form, f"{path}.title", row["title"])))
        elif row["kind"] == "image":
            blocks.append(
                ImageBlock(asset=_id(form, f"{path}.asset", row["asset"]), caption=row["caption"].strip())
            )
        else:
            blocks.append(
                VideoEmbed(asset=_id(form, f"{path}.asset", row["asset"]), caption=row["caption"].strip())
            )
    hero = _id(form, "hero", form.hero)
    if form.errors:
        return form, None
    genres = [g.strip() for g in form.genres.split(",") if g.strip()]
    story = Story(
        headline=form.headline,
        slug=form.slug,
        template=form.template,
        summary=form.summary,
        hero=hero,
        genres=genres,
        blocks=blocks,
    )
    return form, story
