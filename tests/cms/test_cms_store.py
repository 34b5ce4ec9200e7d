"""The CMS store over SQLite and PostgreSQL: drafts, revisions, optimistic concurrency, publish and
unpublish, the audit, bulk import and reads, and the outbox event of every change."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cms_backends import Clock
from marrow.cms import CMS, Collection, Story, TextBlock, Title, TitleCard
from marrow.errors import ContentError, NotFoundError, RevisionConflictError


def story(headline: str = "Hello", slug: str = "hello", **kw: object) -> Story:
    return Story(headline=headline, slug=slug, **kw)  # type: ignore[arg-type]


def test_a_new_document_is_a_draft_at_revision_one(cms_store: CMS) -> None:
    saved = cms_store.save("story", None, story(), base=None, editor="ana")
    assert (saved.item.id, saved.item.revision, saved.item.status) == (1, 1, "draft")
    item = cms_store.get("story", 1)
    assert item.doc == story() and item.updated_by == "ana" and item.published_revision is None


def test_each_save_is_a_new_revision_and_old_ones_are_kept(cms_store: CMS) -> None:
    cms_store.save("story", None, story("One"), base=None, editor="ana")
    cms_store.save("story", 1, story("Two"), base=1, editor="bob")
    cms_store.save("story", 1, story("Three"), base=2, editor="ana")
    assert [r.revision for r in cms_store.revisions("story", 1)] == [3, 2, 1]
    assert [r.author for r in cms_store.revisions("story", 1)] == ["ana", "bob", "ana"]
    assert cms_store.revision("story", 1, 2).headline == "Two"  # type: ignore[union-attr]
    assert cms_store.get("story", 1).doc.headline == "Three"  # type: ignore[union-attr]


def test_a_save_based_on_a_stale_revision_is_refused_naming_both(cms_store: CMS) -> None:
    cms_store.save("story", None, story("One"), base=None, editor="ana")
    cms_store.save("story", 1, story("Two"), base=1, editor="bob")
    with pytest.raises(RevisionConflictError, match=r"revision 2 now.*based on revision 1") as e:
        cms_store.save("story", 1, story("Mine"), base=1, editor="ana")
    assert (e.value.base, e.value.current) == (1, 2)
    assert cms_store.get("story", 1).doc.headline == "Two"  # type: ignore[union-attr]
    assert len(cms_store.revisions("story", 1)) == 2  # nothing half-written


def test_creating_a_document_that_exists_is_a_conflict(cms_store: CMS) -> None:
    cms_store.save("story", 5, story(), base=None, editor="ana")
    with pytest.raises(RevisionConflictError, match="exists already") as e:
        cms_store.save("story", 5, story("Other", "other"), base=None, editor="bob")
    assert (e.value.base, e.value.current) == (None, 1)


def test_concurrent_saves_of_one_revision_let_exactly_one_through(cms_store: CMS) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def edit(n: int) -> None:
        barrier.wait()
        try:
            cms_store.save("story", 1, story(f"Edit {n}"), base=1, editor=f"e{n}")
            outcomes.append("saved")
        except RevisionConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["saved"]
    assert cms_store.get("story", 1).revision == 2


def test_a_slug_is_unique_per_kind(cms_store: CMS) -> None:
    cms_store.save("story", None, story(slug="same"), base=None, editor="ana")
    with pytest.raises(ContentError, match="slug 'same' is taken by story 1"):
        cms_store.save("story", None, story("Other", slug="same"), base=None, editor="ana")
    cms_store.save("collection", None, Collection(name="Same", slug="same"), base=None, editor="ana")
    cms_store.save("story", 1, story("Renamed", slug="same"), base=1, editor="ana")  # its own slug


def test_a_malformed_document_is_refused_with_where_it_is_wrong(cms_store: CMS) -> None:
    bad = {"headline": "Hi", "slug": "hi", "blocks": [{"kind": "title", "title": "not a number"}]}
    with pytest.raises(ContentError, match=r"\$\.blocks\[0\]\.title"):
        cms_store.save("story", None, bad, base=None, editor="ana")
    with pytest.raises(ContentError, match="unknown content kind 'page'"):
        cms_store.save("page", None, bad, base=None, editor="ana")
    with pytest.raises(ContentError, match="Object contains unknown field `colour`"):
        cms_store.save("story", None, {"headline": "Hi", "slug": "hi", "colour": 1}, base=None, editor="a")
    assert cms_store.search("story") == ([], 0)


def test_a_document_given_as_a_mapping_is_decoded(cms_store: CMS) -> None:
    doc = {
        "headline": "Hi",
        "slug": "hi",
        "blocks": [{"kind": "text", "text": "x"}, {"kind": "title", "title": 3}],
    }
    cms_store.save("story", None, doc, base=None, editor="ana")
    assert cms_store.get("story", 1).doc == story(
        "Hi", "hi", blocks=[TextBlock(text="x"), TitleCard(title=3)]
    )


def test_publish_and_unpublish(cms_store: CMS, clock: Clock) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    assert cms_store.documents("story", published=True) == {}
    clock.now += 10
    published = cms_store.publish("story", 1, editor="bob", revision=1)
    assert published.item.status == "published"
    cms_store.save("story", 1, story("Draft"), base=1, editor="ana")
    item = cms_store.get("story", 1)
    assert (item.status, item.published_revision, item.revision) == ("changed", 1, 2)
    version = cms_store.documents("story", published=True)[1]
    assert (version.revision, version.doc.headline, version.published_at) == (1, "Hello", clock.now - 0)  # type: ignore[union-attr]
    assert cms_store.documents("story")[1].doc.headline == "Draft"  # type: ignore[union-attr]
    cms_store.unpublish("story", 1, editor="bob")
    assert cms_store.get("story", 1).status == "draft"
    assert cms_store.documents("story", published=True) == {}
    with pytest.raises(ContentError, match="not published"):
        cms_store.unpublish("story", 1, editor="bob")


def test_publishing_a_revision_the_editor_did_not_see_is_a_conflict(cms_store: CMS) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    cms_store.save("story", 1, story("Newer"), base=1, editor="bob")
    with pytest.raises(RevisionConflictError, match="revision 2, not 1") as e:
        cms_store.publish("story", 1, editor="ana", revision=1)
    assert (e.value.base, e.value.current) == (1, 2)
    assert cms_store.get("story", 1).published_revision is None


def test_the_first_publication_date_survives_unpublishing(cms_store: CMS, clock: Clock) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    cms_store.publish("story", 1, editor="ana")
    first = clock.now
    clock.now += 100
    cms_store.unpublish("story", 1, editor="ana")
    cms_store.publish("story", 1, editor="ana")
    assert cms_store.documents("story", published=True)[1].published_at == first


def test_the_audit_says_who_changed_what(cms_store: CMS) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    cms_store.save("story", 1, story("Changed", summary="New"), base=1, editor="bob")
    cms_store.publish("story", 1, editor="cy")
    entries = cms_store.audit("story", 1)
    assert [(e.editor, e.action, e.revision) for e in entries] == [
        ("cy", "published", 2),
        ("bob", "saved", 2),
        ("ana", "saved", 1),
    ]
    assert entries[1].detail == {"fields": ["headline", "summary"]}


def test_every_change_emits_its_event_in_order(cms_store: CMS) -> None:
    a = cms_store.save("story", None, story(), base=None, editor="ana").event
    b = cms_store.publish("story", 1, editor="ana").event
    c = cms_store.unpublish("story", 1, editor="bob").event
    assert [(e.action, e.revision, e.editor) for e in (a, b, c)] == [
        ("saved", 1, "ana"),
        ("published", 1, "ana"),
        ("unpublished", 1, "bob"),
    ]
    assert a.seq < b.seq < c.seq
    assert cms_store.outbox.pending() == [a, b, c]


def test_a_refused_save_emits_nothing(cms_store: CMS) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    with pytest.raises(RevisionConflictError):
        cms_store.save("story", 1, story("x"), base=7, editor="ana")
    assert len(cms_store.outbox.pending()) == 1


def test_list_searches_labels_and_slugs_newest_first(cms_store: CMS, clock: Clock) -> None:
    for i, headline in enumerate(["Dark returns", "The crown", "Dark matter", "100% real_ly"]):
        clock.now += 1
        cms_store.save("story", None, story(headline, f"s{i}"), base=None, editor="ana")
    found, total = cms_store.search("story", "dark")
    assert [i.label for i in found] == ["Dark matter", "Dark returns"] and total == 2
    assert cms_store.search("story", "%")[1] == 1  # LIKE wildcards are matched literally
    assert cms_store.search("story", "_")[1] == 1
    page, total = cms_store.search("story", limit=2, offset=2)
    assert [i.label for i in page] == ["The crown", "Dark returns"] and total == 4
    cms_store.publish("story", 1, editor="ana")
    assert [i.id for i in cms_store.search("story", status="published")[0]] == [1]
    assert len(cms_store.search("story", status="draft")[0]) == 3
    with pytest.raises(ContentError, match="unknown status"):
        cms_store.search("story", status="live")


def test_missing_documents_are_not_found(cms_store: CMS) -> None:
    with pytest.raises(NotFoundError, match="there is no story 9"):
        cms_store.get("story", 9)
    with pytest.raises(NotFoundError):
        cms_store.publish("story", 9, editor="ana")
    with pytest.raises(NotFoundError):
        cms_store.revisions("story", 9)


def test_import_is_one_transaction_with_one_event_per_document(cms_store: CMS) -> None:
    docs = [("title", 100 + i, Title(name=f"T{i}", slug=f"t{i}")) for i in range(1200)]
    assert cms_store.import_documents(docs, editor="import") == 1200
    titles = cms_store.documents("title", published=True)
    assert len(titles) == 1200 and titles[100].doc.name == "T0"  # type: ignore[union-attr]
    assert len(cms_store.documents("title", [100, 1299, 5000, 100])) == 2  # absent ids left out
    assert len(cms_store.outbox.pending(5000)) == 1200
    with pytest.raises(ContentError, match="nothing was imported"):
        cms_store.import_documents([("title", 5000, Title(name="x", slug="x")), *docs[:1]], editor="i")
    assert 5000 not in cms_store.documents("title")


@settings(max_examples=15)
@given(edits=st.lists(st.tuples(st.integers(0, 3), st.text(min_size=1, max_size=20)), max_size=12))
def test_revisions_round_trip(tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, str]]) -> None:
    """Whatever sequence of saves (some based on stale revisions), every accepted save is a revision
    that reads back as saved, and the refused ones left no trace."""
    from marrow.cms import SQLiteDatabase

    store = CMS(SQLiteDatabase(tmp_path_factory.mktemp("rt") / "cms.db"))
    accepted = [story("start", "start")]
    store.save("story", 1, accepted[0], base=None, editor="ana")
    for lag, text in edits:
        base = max(1, len(accepted) - lag)
        stale = base != len(accepted)
        doc = story(text, "start", blocks=[TextBlock(text=text)])
        try:
            store.save("story", 1, doc, base=base, editor="ana")
            assert not stale
            accepted.append(doc)
        except RevisionConflictError as e:
            assert stale and (e.base, e.current) == (base, len(accepted))
    assert [store.revision("story", 1, r + 1) for r in range(len(accepted))] == accepted
    store.close()
