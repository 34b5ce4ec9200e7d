"""The read model: per-title windows, last seen and recent sequence, against a direct computation —
including answers memoised at one time and asked again later, and impressions added in between."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.impressions import UNSEEN, HistoryReader, NoHistory, ProfileImpressions, Shown, TitleHistory
from marrow.impressions.events import DAY_MS
from marrow.impressions.query import WINDOW_MS
from marrow.impressions.testing import T0

NOW = int(T0 * 1000)


def expected(shown: list[Shown], title: int, now: int, recent: int = 5) -> TitleHistory:
    """What the history of ``title`` is at ``now``, computed the slow, obvious way."""
    stamps = sorted(ts for ts, t in shown if t == title and ts >= now - WINDOW_MS)
    if not stamps:
        return UNSEEN
    return TitleHistory(
        count_1d=sum(ts >= now - DAY_MS for ts in stamps),
        count_7d=sum(ts >= now - 7 * DAY_MS for ts in stamps),
        count_30d=len(stamps),
        last_seen=stamps[-1],
        recent=tuple(reversed(stamps[-recent:])) if recent else (),
    )


def test_counts_windows_last_seen_and_recent() -> None:
    shown = [
        Shown(NOW - 40 * DAY_MS, 1),  # outside every window
        Shown(NOW - 20 * DAY_MS, 1),
        Shown(NOW - 3 * DAY_MS, 1),
        Shown(NOW - DAY_MS, 1),  # a window includes its start
        Shown(NOW - 5, 1),
        Shown(NOW - 10, 2),
    ]
    entry = ProfileImpressions(7, NOW - 41 * DAY_MS, shown, loaded=T0, recent=2)
    got = entry.histories([1, 2, 3], NOW)
    assert got[1] == TitleHistory(2, 3, 4, NOW - 5, (NOW - 5, NOW - DAY_MS))
    assert got[2] == TitleHistory(1, 1, 1, NOW - 10, (NOW - 10,))
    assert got[3] is UNSEEN


def test_a_memoised_answer_follows_time_and_additions() -> None:
    entry = ProfileImpressions(7, NOW - WINDOW_MS, [Shown(NOW - 1000, 1)], loaded=T0)
    assert entry.histories([1], NOW)[1].count_1d == 1
    assert entry.histories([1], NOW + DAY_MS)[1].count_1d == 0  # it left the 1-day window
    assert entry.histories([1], NOW + DAY_MS)[1].count_7d == 1
    entry.add([Shown(NOW + DAY_MS, 1), Shown(NOW + DAY_MS, 2)])
    assert entry.histories([1, 2], NOW + DAY_MS) == {
        1: TitleHistory(1, 2, 2, NOW + DAY_MS, (NOW + DAY_MS, NOW - 1000)),
        2: TitleHistory(1, 1, 1, NOW + DAY_MS, (NOW + DAY_MS,)),
    }


def test_the_sequence_is_the_latest_impressions_newest_first() -> None:
    shown = [Shown(NOW - 40 * DAY_MS, 9), Shown(NOW - 3, 1), Shown(NOW - 2, 2), Shown(NOW - 1, 1)]
    entry = ProfileImpressions(7, NOW - 41 * DAY_MS, shown, loaded=T0)
    assert entry.sequence(NOW, 2) == [Shown(NOW - 1, 1), Shown(NOW - 2, 2)]
    assert entry.sequence(NOW, 10) == [Shown(NOW - 1, 1), Shown(NOW - 2, 2), Shown(NOW - 3, 1)]


def test_no_history_is_a_reader_that_has_seen_nothing() -> None:
    reader: HistoryReader = NoHistory()
    assert isinstance(reader, HistoryReader)
    assert reader.histories(1, [5, 6]) == {5: UNSEEN, 6: UNSEEN}


times = st.integers(-35 * DAY_MS, DAY_MS // 2)
impressions = st.lists(st.builds(Shown, times.map(lambda d: NOW + d), st.integers(1, 5)), max_size=40)


@settings(max_examples=300)
@given(
    impressions,
    impressions,
    st.lists(st.integers(0, 40 * DAY_MS), min_size=1, max_size=4),
    st.integers(0, 6),
)
def test_answers_equal_a_direct_computation_at_any_later_time(
    first: list[Shown], later: list[Shown], steps: list[int], recent: int
) -> None:
    since = NOW - WINDOW_MS
    entry = ProfileImpressions(7, since, first, loaded=T0, recent=recent)
    held = [s for s in first if s.timestamp >= since]
    now = NOW
    for i, step in enumerate(sorted(steps)):
        now = NOW + step
        if i == 1:  # impressions arrive between two reads
            entry.add(later)
            held += [s for s in later if s.timestamp >= since]
        got = entry.histories([1, 2, 3, 4, 5, 6], now)
        assert got == {t: expected(held, t, now, recent) for t in range(1, 7)}
    want = sorted((s for s in held if s.timestamp >= now - WINDOW_MS), reverse=True)[:10]
    assert entry.sequence(now, 10) == want
    assert entry.shown() == sorted(held)
