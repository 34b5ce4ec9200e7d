"""The producer: runs cycles that turn a dataset into published, announced versions.

Lifecycle of one cycle (:meth:`Producer.run_cycle` or :meth:`Producer.run_incremental`)::

    populate  →  prepare the next state  →  no change? stop, publish nothing
              →  integrity check: previous + delta == snapshot, snapshot + reverse delta == previous
              →  validators (record counts, user checks)
              →  clean up (room for the new snapshot: the newest keep_snapshots - 1 announced stay)
              →  publish snapshot, delta, reverse delta  →  announce  →  accept

An announcer that can carry a delta (:class:`~marrow.store.blobstore.DeltaCarrier`) is handed the
delta with the version, so that consumers one version behind need not fetch it.

With ``snapshot_every=N``, a snapshot is published every N-th version only (and for the first); the
versions between have a delta and a reverse delta, and a consumer that starts among them loads the
snapshot before and follows the deltas — so keep N within the consumers' ``max_delta_chain``. A
producer whose versions come many times a second spares itself, the blob store and every consumer
the bytes of a whole snapshot per version (Hollow's ``numStatesBetweenSnapshots``).

Any failure before the announcement rolls the cycle back: the producer stays on its last version,
nothing is announced, and :class:`~marrow.errors.CycleError` says why. Versions are minted
monotonically, one per attempt, so blobs of a failed attempt never collide with a later one.
A restarted producer calls :meth:`Producer.restore` to resume from the announced version, so its
next cycle is a delta that consumers can follow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from marrow.errors import CycleError, MarrowError
from marrow.store.blobstore import Announcer, BlobRef, BlobRetriever, DeltaCarrier, Publisher
from marrow.store.cycle import Cycle
from marrow.store.read import ReadState
from marrow.store.schema import Schema
from marrow.store.write import WriteState

log = logging.getLogger("marrow.store.producer")


class Validator(Protocol):
    def __call__(self, new: ReadState, previous: ReadState | None) -> None:
        """Raise :class:`~marrow.errors.CycleError` (or any MarrowError) to refuse ``new``."""


@dataclass(frozen=True)
class RecordCountChange:
    """Refuse a version whose record count of ``type`` moved by more than a share of the last one."""

    type: str
    max_increase: float = 1.0
    max_decrease: float = 0.2

    def __call__(self, new: ReadState, previous: ReadState | None) -> None:
        if previous is None or self.type not in previous or self.type not in new:
            return
        before, after = len(previous[self.type]), len(new[self.type])
        if before == 0:
            return
        change = (after - before) / before
        if change > self.max_increase or -change > self.max_decrease:
            raise CycleError(
                f"{self.type}: record count changes from {before:,} to {after:,} ({change:+.0%}); "
                f"allowed is +{self.max_increase:.0%} / -{self.max_decrease:.0%}"
            )


@dataclass(frozen=True)
class MinimumCount:
    """Refuse a version with fewer than ``minimum`` records of ``type``."""

    type: str
    minimum: int

    def __call__(self, new: ReadState, previous: ReadState | None) -> None:
        count = len(new[self.type]) if self.type in new else 0
        if count < self.minimum:
            raise CycleError(f"{self.type}: {count:,} records, fewer than the minimum {self.minimum:,}")


class Incremental:
    """The changes of an incremental cycle: records added or replaced by primary key, or deleted."""

    def __init__(self, write: WriteState):
        self._write = write

    def add_or_modify(self, record: Any, type: str | None = None) -> None:
        """Add ``record``, replacing the record that has its primary key, if any."""
        name = type or self._write.type_of(record)
        key = self._write.key_of(record, name)
        self._write.delete(name, key)
        self._write.add(record, name)

    def delete(self, type: str, key: Any) -> bool:
        """Remove the record of ``type`` with this primary key; False when there is none."""
        return self._write.delete(type, key)


@dataclass
class CycleReport:
    """What a successful cycle did."""

    version: int
    published: list[BlobRef]
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


class Producer:
    """Runs cycles for one dataset and publishes them; the single active writer of its blob store."""

    def __init__(
        self,
        schema: Schema,
        store: Publisher,
        announcer: Announcer,
        *,
        validators: Sequence[Validator] = (),
        keep_snapshots: int = 5,
        integrity_check: bool = True,
        snapshot_every: int = 1,
    ):
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every is a number of versions >= 1, not {snapshot_every!r}")
        self.schema = schema
        self.store = store
        self.announcer = announcer
        self.validators = list(validators)
        self.keep_snapshots = keep_snapshots
        self.integrity_check = integrity_check
        self.snapshot_every = snapshot_every
        self._since_snapshot = 0  # versions announced since the last one published with a snapshot
        self._write = WriteState(schema)
        self.state: ReadState | None = None  # the last announced version
        self._last_minted = 0

    # --- restoring ------------------------------------------------------------------------------

    def restore(self, retriever: BlobRetriever, version: int) -> ReadState:
        """Resume from an announced ``version`` (after a restart), so the next cycle is a delta.

        The next version minted is above every version the blob store holds, not only above the
        announced one: a producer killed in mid-publish leaves blobs of a version it never announced,
        and a blob, once published, never changes."""
        from marrow.store.consumer import load_version

        state = load_version(retriever, version)
        self._write = WriteState(self.schema, previous=state.types, tag=state.tag, version=state.version)
        self.state = state
        refs = self.store.refs() if hasattr(self.store, "refs") else []
        listed = [max(ref.version, ref.origin or 0) for ref in refs]
        self._last_minted = max(self._last_minted, version, *listed)
        # not knowing how far back the last snapshot is, the next cycle publishes one
        self._since_snapshot = 0 if BlobRef("snapshot", version) in refs else self.snapshot_every - 1
        return state

    # --- cycles ---------------------------------------------------------------------------------

    def run_cycle(
        self, populate: Callable[[WriteState], None], meta: dict[str, Any] | None = None
    ) -> CycleReport | None:
        """A full cycle: ``populate`` adds every record of the next version. Data from earlier
        cycles is not carried over. Returns None when nothing changed (nothing is published).
        ``meta`` is stored with the version (``ReadState.meta``)."""
        return self._cycle(populate, meta)

    def run_incremental(
        self, changes: Callable[[Incremental], None], meta: dict[str, Any] | None = None
    ) -> CycleReport | None:
        """An incremental cycle: the last version's records, changed by ``changes``."""

        def populate(write: WriteState) -> None:
            write.keep_previous()
            changes(Incremental(write))

        return self._cycle(populate, meta)

    def _cycle(
        self, populate: Callable[[WriteState], None], meta: dict[str, Any] | None = None
    ) -> CycleReport | None:
        started = time.perf_counter()
        version = self._mint()
        try:
            populate(self._write)
            cycle = self._write.prepare(version=version, meta=meta)
        except MarrowError:
            self._write.rollback()
            raise
        except Exception as e:
            self._write.rollback()
            raise CycleError(f"cycle {version}: populating failed: {e!r}") from e
        if not cycle.has_changes:
            self._write.rollback()
            log.info("cycle %s: no change, nothing published", version)
            return None
        try:
            new = ReadState(cycle.schema, cycle.state, cycle.destination, cycle.version, cycle.meta)
            blobs = self._blobs(cycle, version)
            if self.integrity_check:
                self._check_integrity(new, blobs)
            for validate in self.validators:
                validate(new, self.state)
            with_snapshot = blobs[0][0].kind == "snapshot"
            self._clean_up(making_room=with_snapshot)  # before publishing: not while consumers fetch
            published = []
            for ref, data in blobs:
                self.store.publish(ref, data)
                published.append(ref)
            delta = next(((ref, data) for ref, data in blobs if ref.kind == "delta"), None)
            if delta is not None and isinstance(self.announcer, DeltaCarrier):
                self.announcer.announce_delta(*delta)
            else:
                self.announcer.announce(version)
        except MarrowError as e:
            self._write.rollback()
            log.warning("cycle %s rolled back: %s", version, e)
            raise e if isinstance(e, CycleError) else CycleError(f"cycle {version} rolled back: {e}") from e
        except OSError as e:
            self._write.rollback()
            raise CycleError(f"cycle {version} rolled back: {e}") from e
        self._write.accept(cycle)
        self.state = new
        self._since_snapshot = 0 if with_snapshot else self._since_snapshot + 1
        counts = {name: len(new[name]) for name in new}
        return CycleReport(version, published, time.perf_counter() - started, counts)

    def _mint(self) -> int:
        """The next version: above every version announced or attempted, one per attempt."""
        self._last_minted += 1
        return self._last_minted

    def _blobs(self, cycle: Cycle, version: int) -> list[tuple[BlobRef, bytes]]:
        first = self.state is None or self.state.version is None
        out = []
        if first or self._since_snapshot + 1 >= self.snapshot_every:
            out.append((BlobRef("snapshot", version), cycle.snapshot()))
        if not first:
            assert self.state is not None and self.state.version is not None
            previous = self.state.version
            delta, back = cycle.delta(), cycle.reverse_delta()
            assert delta is not None and back is not None
            out.append((BlobRef("delta", version, previous), delta))
            out.append((BlobRef("reverse", previous, version), back))
        return out

    def _check_integrity(self, new: ReadState, blobs: list[tuple[BlobRef, bytes]]) -> None:
        """The snapshot (when one is published), and the previous state plus the delta, must hold
        the same state; the reverse delta must lead back to the previous state."""
        by_kind = {ref.kind: data for ref, data in blobs}
        expected = new.checksum()
        if "snapshot" in by_kind and ReadState.from_snapshot(by_kind["snapshot"]).checksum() != expected:
            raise CycleError("integrity check: the snapshot does not hold the new state")
        if self.state is not None:
            if self.state.apply_delta(by_kind["delta"]).checksum() != expected:
                raise CycleError("integrity check: previous state + delta differs from the snapshot")
            if new.apply_delta(by_kind["reverse"]).checksum() != self.state.checksum():
                raise CycleError("integrity check: the reverse delta does not lead back")

    def _clean_up(self, making_room: bool = True) -> None:
        """Make room for the snapshot this cycle publishes: keep the newest ``keep_snapshots`` - 1
        (at least the announced one; ``keep_snapshots`` when the cycle publishes no snapshot), and
        the deltas from the oldest of them on. Once the cycle has published, the store holds the
        newest ``keep_snapshots``, as it would after removing them later — but the store is not busy
        removing blobs (purging a snapshot's chunks on NATS: 10–20 ms) right after an announcement,
        while every consumer fetches the new delta."""
        store = self.store
        if not (hasattr(store, "refs") and hasattr(store, "remove")):  # a bare Publisher cannot clean up
            return
        announced = self.state.version if self.state is not None else None
        if announced is None:
            return
        try:
            refs = store.refs()
        except (MarrowError, OSError) as e:  # cleanup may fail; the cycle goes on, the next one tries again
            log.warning("could not list the blob store to clean up: %s", e)
            return
        # of the announced and older ones: blobs of versions never announced (a failed attempt) do not count
        snapshots = sorted(r.version for r in refs if r.kind == "snapshot" and r.version <= announced)
        keep = max(1, self.keep_snapshots - 1 if making_room else self.keep_snapshots)
        if len(snapshots) <= keep:
            return
        oldest_kept = snapshots[-keep]
        for ref in refs:
            low = ref.version if ref.kind == "snapshot" else min(ref.version, ref.origin or 0)
            if low < oldest_kept:
                try:
                    store.remove(ref)
                except (MarrowError, OSError) as e:  # cleanup may fail; the next cycle tries again
                    log.warning("could not remove %s: %s", ref.name, e)
