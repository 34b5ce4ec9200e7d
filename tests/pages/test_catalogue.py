"""A catalogue's orderings cut to an audience: the same titles as the mask says, kept when long."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from pages_dataset import state

from marrow.pages.catalogue import catalogue

catalogue_module = importlib.import_module("marrow.pages.catalogue")  # (the package exports the function)


@pytest.mark.parametrize("keep_from", [1, 10_000])  # kept, and cut on every call
def test_eligible_is_the_ordering_cut_by_the_audience_mask(
    monkeypatch: pytest.MonkeyPatch, keep_from: int
) -> None:
    monkeypatch.setattr(catalogue_module, "KEEP_FROM", keep_from)
    cat = catalogue(state(n_titles=200))
    for country, maturity in [("FR", 13), ("US", 18), ("XX", 18), ("FR", 13)]:
        mask = cat.allowed(country, maturity)
        for ordering in (cat.by_popularity, cat.by_added, cat.genre("Drama")):
            cut = cat.eligible(ordering, country, maturity)
            assert cut.tolist() == [o for o in ordering.tolist() if mask[o]]
    if keep_from == 1:
        again = cat.eligible(cat.by_popularity, "FR", 13)
        assert again is cat.eligible(cat.by_popularity, "FR", 13)  # kept, not recomputed
        assert not again.flags.writeable  # shared by every page of the audience: nobody may change it
        assert cat.eligible(np.array(cat.by_popularity), "FR", 13) is not again  # another array: its own
