"""Step 1, pull: the documents a batch of events names, at the revisions they name, and everything
those documents refer to, as the channel sees it.

A channel's *view* of a referenced document is its latest revision for ``preview`` (an editor
previews a story with the title they are drafting beside it) and its published revision for
``live`` (visitors never see a draft through a reference). References are followed two levels
deep — a story's title card needs the title, and the title's cast and artwork — in a few bulk
queries, never one per document.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from marrow.cms.events import ContentEvent
from marrow.cms.items import Version
from marrow.cms.model import Document, references
from marrow.cms.store import CMS

__all__ = ["Pulled", "pull"]

#: channel → does it see the latest revisions (True) or the published ones (False)?
LATEST = {"preview": True, "live": False}


@dataclass
class Pulled:
    """What one channel's batch needs: the events' documents and the documents they refer to."""

    channel: str
    #: (kind, id) → the document at the revision its event names (absent: the revision is gone)
    docs: dict[tuple[str, int], Version] = field(default_factory=dict)
    #: kind → id → referenced document, as the channel sees it (absent: missing or not visible)
    refs: dict[str, dict[int, Document]] = field(default_factory=lambda: defaultdict(dict))

    def ref(self, kind: str, id: int) -> Document | None:
        return self.refs[kind].get(id)


def pull(cms: CMS, channel: str, events: Sequence[ContentEvent]) -> Pulled:
    """Pull the documents of ``events`` (one per document: the caller keeps the latest event) and,
    in bulk, what they refer to."""
    out = Pulled(channel)
    by_kind: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for e in events:
        if e.action != "unpublished":  # taking a document down needs nothing but its id
            by_kind[e.kind].append((e.id, e.revision))
    for kind, pairs in by_kind.items():
        for id, version in cms.at_revisions(kind, pairs).items():
            out.docs[kind, id] = version
    latest = LATEST.get(channel, True)
    wanted = _references(v.doc for v in out.docs.values())
    for _ in range(2):  # story → title → person / asset
        fetched: list[Document] = []
        for kind, ids in wanted.items():
            missing = [i for i in ids if i not in out.refs[kind]]
            if missing:
                found = cms.documents(kind, missing, published=not latest)
                out.refs[kind].update((i, v.doc) for i, v in found.items())
                fetched += [v.doc for v in found.values()]
        wanted = _references(fetched)
    return out


def _references(docs: Iterable[Document]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for doc in docs:
        for kind, id, _ in references(doc):
            out[kind].add(id)
    return out
