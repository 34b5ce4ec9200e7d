"""The sample content: deterministic, at the seed's scale, skewed, clustered by region, and every
reference inside it resolvable."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from marrow.cms import KINDS, references
from marrow.cms import sample as cms_sample
from marrow.cms.countries import COUNTRIES, REGIONS, region_of
from marrow.cms.settings import CMSSettings, load_settings
from marrow.errors import ConfigError


@pytest.fixture(scope="module")
def small() -> cms_sample.Sample:
    return cms_sample.generate(titles=2_000, stories=400, people=3_000)


def test_190_real_countries_in_regions() -> None:
    assert len(COUNTRIES) == len(set(COUNTRIES)) == 190
    assert all(len(c) == 2 and c.isupper() for c in COUNTRIES)
    assert {"US", "BR", "IN", "JP", "NG", "DE"} <= set(COUNTRIES) and "CN" not in COUNTRIES
    assert region_of("KE") == "sub_saharan_africa" and sum(len(r) for r in REGIONS.values()) == 190


def test_the_same_seed_gives_the_same_content() -> None:
    a = cms_sample.generate(titles=200, stories=50, people=300, seed=3)
    b = cms_sample.generate(titles=200, stories=50, people=300, seed=3)
    c = cms_sample.generate(titles=200, stories=50, people=300, seed=4)
    enc = msgspec.json.encode
    assert enc(list(a.documents())) == enc(list(b.documents())) != enc(list(c.documents()))


def test_every_reference_resolves_and_slugs_are_unique(small: cms_sample.Sample) -> None:
    ids = {kind: set() for kind in KINDS}  # type: ignore[var-annotated]
    slugs: Counter[tuple[str, str]] = Counter()
    for kind, id, doc in small.documents():
        ids[kind].add(id)
        if getattr(doc, "slug", None):
            slugs[kind, doc.slug] += 1  # type: ignore[union-attr]
    for kind, id, doc in small.documents():
        for ref_kind, ref_id, path in references(doc):
            assert ref_id in ids[ref_kind], f"{kind} {id} {path} → {ref_kind} {ref_id}"
    assert max(slugs.values()) == 1
    assert all(cms_sample.slugify(s) == s for _, s in slugs)


def test_popularity_and_features_are_skewed(small: cms_sample.Sample) -> None:
    pop = sorted((t.popularity for t in small.titles.values()), reverse=True)
    assert pop[0] > 50 * pop[len(pop) // 2]  # Zipf-like: the head dwarfs the median
    featured = Counter(
        t for s in small.stories.values() for b in s.blocks if (t := getattr(b, "title", None))
    )
    top = max(small.titles, key=lambda t: small.titles[t].popularity)
    assert featured[top] >= 5 * (sum(featured.values()) / len(small.titles))


def test_availability_clusters_by_region(small: cms_sample.Sample) -> None:
    everywhere = [t for t in small.titles.values() if any(len(w.countries) == 190 for w in t.availability)]
    assert 0.15 < len(everywhere) / len(small.titles) < 0.35  # originals
    for t in small.titles.values():
        for w in t.availability:
            if len(w.countries) < 190:
                assert len({region_of(c) for c in w.countries}) == 1  # a licence covers one region


def test_stories_span_three_years(small: cms_sample.Sample) -> None:
    times = sorted(small.published.values())
    assert cms_sample.NOW - times[0] > 2.5 * cms_sample.YEAR and times[-1] <= cms_sample.NOW
    recent = sum(t > cms_sample.NOW - cms_sample.YEAR for t in times)
    assert recent > len(times) / 3  # publishing picked up


def test_the_default_scale() -> None:
    full = cms_sample.generate()
    assert (len(full.titles), len(full.stories), len(full.layouts)) == (18_000, 5_000, 12)
    assert len(full) > 60_000


def test_settings_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "marrow.toml"
    path.write_text('[cms]\ndatabase = "postgresql://db/cms"\nrelay_interval = 2\n')
    s = load_settings(CMSSettings, "cms", path, environ={"MARROW_CMS_EVENTS": "nats"})
    assert (s.database, s.events, s.relay_interval) == ("postgresql://db/cms", "nats", 2.0)
    assert load_settings(CMSSettings, "cms", environ={}) == CMSSettings()
    with pytest.raises(
        ConfigError, match=r"cms\.events \(from MARROW_CMS_EVENTS\): Invalid enum value 'kafka'"
    ):
        load_settings(CMSSettings, "cms", environ={"MARROW_CMS_EVENTS": "kafka"})
    with pytest.raises(ConfigError, match="relay_interval"):
        load_settings(CMSSettings, "cms", environ={"MARROW_CMS_RELAY_INTERVAL": "-1"})
    with pytest.raises(ConfigError, match="MARROW_CMS_COLOUR names no cms setting"):
        load_settings(CMSSettings, "cms", environ={"MARROW_CMS_COLOUR": "red"})
    path.write_text("[cms\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(CMSSettings, "cms", path)
    assert os.environ.get("MARROW_CMS_EVENTS") is None
