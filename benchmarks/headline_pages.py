"""Home pages on both sides of the headline benchmark: built, compared, timed in alternating rounds."""

from __future__ import annotations

import random
import socket
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from headline_world import World, percentile
from legacy.pages import LegacyPageBuilder
from marrow import records
from marrow.pages import Fragment, Visitor

_MATURITY = ([18] * 6) + [16, 13, 13, 7]  # most profiles see everything


def visitors(count: int, countries: Sequence[str], seed: int) -> list[Visitor]:
    rng = random.Random(seed)
    return [
        Visitor(rng.choice(countries), rng.choice(records.DEVICES), rng.choice(_MATURITY))
        for _ in range(count)
    ]


def marrow_page(world: World, visitor: Visitor) -> tuple[float, float, list[Fragment]]:
    """(whole page ms, first fragment ms, fragments) — the fragments read the view the first one read."""
    t = time.perf_counter()
    view = world.views.current()
    fragments = [world.builder.build(view, "home", visitor)]
    first = time.perf_counter() - t
    while fragments[-1].cursor:
        fragments.append(world.builder.build(view, "home", visitor, cursor=fragments[-1].cursor))
    return (time.perf_counter() - t) * 1000, first * 1000, fragments


def legacy_page(builder: LegacyPageBuilder, visitor: Visitor) -> tuple[float, float, list[Fragment]]:
    t = time.perf_counter()
    fragments = [builder.build("home", visitor)]
    first = time.perf_counter() - t
    while fragments[-1].cursor:
        fragments.append(builder.build("home", visitor, cursor=fragments[-1].cursor))
    return (time.perf_counter() - t) * 1000, first * 1000, fragments


def shape(fragments: list[Fragment]) -> list[Any]:
    """What a visitor sees of a page: sections and their cards (not timings, cursors or versions)."""
    return [
        (s.key, s.title, s.kind, [(c.id, c.name, c.image, c.rank, c.summary) for c in s.items])
        for f in fragments
        for s in f.sections
    ]


@contextmanager
def socket_calls() -> Iterator[list[int]]:
    """Count connects, sends and receives on Python sockets made by this thread while inside (the
    page being built; not the background threads of the process, such as the near-cache's refresher,
    whose timers fire whenever they will)."""
    counter = [0]
    me = threading.get_ident()
    names = ("connect", "connect_ex", "send", "sendall", "sendto", "recv", "recv_into")
    originals = {n: getattr(socket.socket, n) for n in names}

    def counting(name: str) -> Any:
        original = originals[name]

        def call(self: socket.socket, *args: Any, **kw: Any) -> Any:
            if threading.get_ident() == me:
                counter[0] += 1
            return original(self, *args, **kw)

        return call

    for n in names:
        setattr(socket.socket, n, counting(n))
    try:
        yield counter
    finally:
        for n, f in originals.items():
            setattr(socket.socket, n, f)


def pages(
    world: World, count: int, rounds: int, per_round: int, seed: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    countries = sorted({c for t in world.client.view()["Title"] for c in t.countries})
    people = visitors(count, countries, seed)
    out: dict[str, Any] = {"visitors": count, "countries": len(countries)}
    mismatches = 0
    for v in people:  # warm both sides (catalogue masks, near-cache keys) and compare what they show
        _, _, ours = marrow_page(world, v)
        _, _, theirs = legacy_page(world.legacy_builder, v)
        _, _, per_section = legacy_page(world.legacy_per_section, v)
        mismatches += shape(ours) != shape(theirs) or shape(ours) != shape(per_section)
    out["pages_identical"] = mismatches == 0
    out["pages_differing"] = mismatches
    sides = {
        "marrow": lambda v: marrow_page(world, v),
        "legacy": lambda v: legacy_page(world.legacy_builder, v),
        "legacy_per_section": lambda v: legacy_page(world.legacy_per_section, v),
    }
    samples: dict[str, list[float]] = {f"page_ms_{s}": [] for s in sides} | {
        f"first_ms_{s}": [] for s in sides
    }
    calls = {s: 0 for s in sides} | {f"{s}_misses": 0 for s in sides} | {f"{s}_miss_calls": 0 for s in sides}
    keys_asked = {s: 0 for s in sides}
    sockets = {s: 0 for s in sides}
    ratios: list[float] = []
    rng = random.Random(seed + 1)
    client = world.legacy.client
    assert client is not None
    for r in range(rounds):
        chosen = [rng.choice(people) for _ in range(per_round)]
        medians = {}
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            before = (client.calls, client.misses, client.miss_calls, client.keys)
            page_ms = []
            with socket_calls() as counted:
                for v in chosen:
                    total, first, _ = sides[side](v)
                    page_ms.append(total)
                    samples[f"first_ms_{side}"].append(first)
            sockets[side] += counted[0]
            samples[f"page_ms_{side}"] += page_ms
            medians[side] = statistics.median(page_ms)
            calls[side] += client.calls - before[0]
            calls[f"{side}_misses"] += client.misses - before[1]
            calls[f"{side}_miss_calls"] += client.miss_calls - before[2]
            keys_asked[side] += client.keys - before[3]
        ratios.append(medians["legacy"] / medians["marrow"])
    n = rounds * per_round
    for side in sides:
        suffix = side.removeprefix("legacy").removeprefix("_") if side != "marrow" else "marrow"
        name = "legacy" if side == "legacy" else suffix if side == "marrow" else f"legacy_{suffix}"
        values, firsts = samples[f"page_ms_{side}"], samples[f"first_ms_{side}"]
        out[f"page_p50_ms_{name}"] = round(statistics.median(values), 3)
        out[f"page_p99_ms_{name}"] = round(percentile(values, 0.99), 3)
        out[f"first_fragment_p50_ms_{name}"] = round(statistics.median(firsts), 3)
        out[f"first_fragment_p99_ms_{name}"] = round(percentile(firsts, 0.99), 3)
        out[f"socket_calls_per_page_{name}"] = round(sockets[side] / n, 2)
        if side != "marrow":
            out[f"kv_calls_per_page_{name}"] = round(calls[side] / n, 2)
            out[f"keys_per_page_{name}"] = round(keys_asked[side] / n, 1)
            out[f"cache_misses_per_page_{name}"] = round(calls[f"{side}_misses"] / n, 3)
            out[f"network_calls_per_page_{name}"] = round((calls[side] + calls[f"{side}_miss_calls"]) / n, 2)
    out["network_calls_per_page_marrow"] = out["socket_calls_per_page_marrow"]
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        marrow = percentile(samples["page_ms_marrow"], q)
        out[f"page_speedup_{label}"] = round(percentile(samples["page_ms_legacy"], q) / marrow, 1)
        out[f"page_speedup_{label}_per_section"] = round(
            percentile(samples["page_ms_legacy_per_section"], q) / marrow, 1
        )
        first = percentile(samples["first_ms_marrow"], q)
        out[f"first_fragment_speedup_{label}"] = round(percentile(samples["first_ms_legacy"], q) / first, 1)
    out["page_speedup_by_round"] = [round(x, 1) for x in ratios]
    return out, samples
