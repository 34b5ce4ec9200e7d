"""Events: decoding a batch event by event, a reason for each one refused, settings-dependent checks."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.impressions import Impression, ImpressionSettings
from marrow.impressions.events import DAY_MS, check, decode_batch, filtered, to_impression
from marrow.impressions.testing import T0, impression

NOW = int(T0 * 1000)
DEFAULTS = ImpressionSettings(store="memory")


def body(*events: object) -> bytes:
    return msgspec.json.encode({"events": list(events)})


def good(**fields: object) -> dict[str, object]:
    return msgspec.to_builtins(impression(**fields))  # type: ignore[no-any-return]


def test_a_good_event_decodes_to_an_impression() -> None:
    (event,) = decode_batch(body(good(title=7, scroll="down", cached_page=True)))
    assert event == impression(title=7, scroll="down", cached_page=True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"profile": "7"}, "profile: Expected `int`, got `str`"),
        ({"profile": -1}, "profile: Expected `int` >= 0"),
        ({"visible_share": 1.5}, "visible_share: Expected `float` <= 1.0"),
        ({"visible_ms": -3}, "visible_ms: Expected `int` >= 0"),
        ({"scroll": "sideways"}, "scroll: Invalid enum value 'sideways'"),
        ({"page": ""}, "page: Expected `str` of length >= 1"),
        ({"colour": "red"}, "Object contains unknown field `colour`"),
    ],
)
def test_a_bad_event_is_refused_with_its_reason_and_the_others_go_on(
    change: dict[str, object], reason: str
) -> None:
    decoded = decode_batch(body(good(title=1), {**good(title=2), **change}, good(title=3)))
    assert [e.title for e in decoded if isinstance(e, Impression)] == [1, 3]
    assert isinstance(decoded[1], str) and decoded[1].startswith(reason), decoded[1]


def test_a_missing_field_is_named() -> None:
    event = good()
    del event["device"]
    (reason,) = decode_batch(body(event))
    assert reason == "Object missing required field `device`"


def test_an_event_that_is_not_an_object_is_refused() -> None:
    assert decode_batch(body(good(), 42)) == [impression(), "Expected `object`, got `int`"]


@pytest.mark.parametrize("text", [b"", b"[1, 2]", b'{"events": 3}', b'{"events": [], "more": 1}', b"{"])
def test_a_body_that_is_not_a_batch_raises(text: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_batch(text)


def test_the_python_api_validates_as_strictly_as_json() -> None:
    # a Struct's constructor does not check constraints: to_impression does
    assert to_impression(impression(visible_share=2.0)) == "visible_share: Expected `float` <= 1.0"
    assert to_impression(good(title=9)) == impression(title=9)
    assert to_impression([1, 2]) == "an event is an Impression or a mapping of its fields, not list"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"device": "fridge"}, "device 'fridge' is not one of tv, web, mobile"),
        ({"timestamp": NOW + 3_600_000}, "is 3600 s ahead of the service's clock"),
        ({"timestamp": NOW - 31 * DAY_MS}, "is older than the retention of 30 days"),
    ],
)
def test_check_refuses_what_the_settings_do_not_allow(fields: dict[str, object], reason: str) -> None:
    found = check(impression(**fields), DEFAULTS, NOW)
    assert found is not None and reason in found


def test_check_allows_a_little_clock_skew_and_the_whole_retention() -> None:
    assert check(impression(timestamp=NOW + 299_000), DEFAULTS, NOW) is None
    assert check(impression(timestamp=NOW - 30 * DAY_MS), DEFAULTS, NOW) is None


def test_filters_say_why_an_event_is_not_kept() -> None:
    assert filtered(impression(visible_share=0.5, visible_ms=1000), DEFAULTS) is None
    assert "under min_visible_share 0.5" in (filtered(impression(visible_share=0.49), DEFAULTS) or "")
    assert "under min_visible_ms 1000" in (filtered(impression(visible_ms=999), DEFAULTS) or "")
    lenient = ImpressionSettings(store="memory", min_visible_share=0.0, min_visible_ms=0)
    assert filtered(impression(visible_share=0.0, visible_ms=0), lenient) is None


events = st.builds(
    Impression,
    profile=st.integers(0, 2**63 - 1),
    title=st.integers(0, 2**63 - 1),
    page=st.text(min_size=1, max_size=64),
    section=st.text(min_size=1, max_size=64),
    position=st.integers(0, 10_000),
    device=st.text(min_size=1, max_size=64),
    timestamp=st.integers(0, 2**53),
    visible_share=st.floats(0.0, 1.0),
    visible_ms=st.integers(0, DAY_MS),
    scroll=st.sampled_from(["none", "down", "up", "left", "right"]),
    cached_page=st.booleans(),
)


@settings(max_examples=200)
@given(st.lists(events, max_size=5))
def test_any_valid_batch_round_trips_through_json(batch: list[Impression]) -> None:
    assert decode_batch(msgspec.json.encode({"events": batch})) == batch
