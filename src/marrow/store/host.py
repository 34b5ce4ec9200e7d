"""Versions shared by the worker processes of one host: compute once, map everywhere.

Under CPython's GIL, a process that applies a delta stalls its own readers (benchmarks/RESULTS.md),
and N worker processes that each apply it hold N private copies of the result. So on one host:

* one process, the :class:`HostConsumer`, follows the real blob store and its announcements (NATS,
  S3, a shared filesystem…), applies the deltas — the only compute — and writes each version it
  reaches as a full snapshot, with its primary-key indexes (:meth:`ReadState.snapshot`), into a
  local directory, then announces it there (:class:`FilesystemBlobStore`, :class:`FilesystemAnnouncer`);
* every serving worker runs a :class:`SharedConsumer` on that directory: it only *maps* snapshots
  (never applies a delta), so moving to a new version costs a header parse, readers barely notice,
  and the N workers share one copy of each version's pages through the page cache.

Which process is the host consumer is decided by a lock on ``.host.lock`` in the directory
(``fcntl.flock``): each :class:`SharedConsumer` given a ``source`` competes for it; the winner starts
the host consumer as a child process that inherits the lock, and when that child dies — or the worker
that started it exits — the lock is free and another worker starts a new one.

Lifecycle of the directory: a version's snapshot is written (temp file, fsync, link) before it is
announced; before writing it, the snapshots beyond the newest ``keep`` - 1 are removed (the announced
one always stays), so the directory holds ``keep`` once the new one is written. A worker
still reading a removed snapshot keeps it: its mapping holds the file's pages until the version is
released (see :class:`SharedConsumer`). Put the directory on a local filesystem, ideally tmpfs
(``/dev/shm``, ``/run``): its files are then memory that all workers share, with no disk writes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import gc
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from marrow.errors import MarrowError
from marrow.store._turns import SWITCH_INTERVAL
from marrow.store.blobstore import AnnouncementWatcher, BlobRef, BlobRetriever
from marrow.store.consumer import Consumer, RefreshListener
from marrow.store.filesystem import (
    FilesystemAnnouncementWatcher,
    FilesystemAnnouncer,
    FilesystemBlobStore,
)
from marrow.store.read import ReadState

__all__ = ["LOCK", "HostConsumer", "SharedConsumer", "Source", "filesystem_source"]

log = logging.getLogger(__name__)

LOCK = ".host.lock"  #: the lock file in the shared directory; whoever holds it runs the host consumer
#: Opens the real blob store and its announcements, in the host consumer's process. Must be picklable
#: (a module-level function, or ``functools.partial`` of one): a worker hands it to the child it starts.
Source = Callable[[], tuple[BlobRetriever, AnnouncementWatcher]]


def filesystem_source(directory: str | os.PathLike[str]) -> Source:
    """A :data:`Source` for a filesystem blob store and its announcements (a shared mount, say)."""
    return functools.partial(_open_filesystem, os.fspath(directory))


def _open_filesystem(directory: str) -> tuple[BlobRetriever, AnnouncementWatcher]:
    return FilesystemBlobStore(directory), FilesystemAnnouncementWatcher(directory)


BACKGROUND_NICE = 10  #: the host consumer's niceness with ``background`` (see :class:`HostConsumer`)


def as_background() -> None:
    """Put the calling thread, and the threads it starts from now on, under ``SCHED_BATCH`` at nice
    :data:`BACKGROUND_NICE` where the platform has it (see :class:`HostConsumer`). On Linux both are
    the thread's own, and inherited by the threads it starts."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, 0, max(BACKGROUND_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
    except OSError as error:  # a sandbox may forbid it; the host consumer still works
        log.debug("cannot run the host consumer in the background: %s", error)


def _try_lock(directory: Path) -> int | None:
    """An open descriptor holding the directory's host lock, or None when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


class HostConsumer:
    """Follows the real blob store and shares each version it reaches with the host's workers.

    Lifecycle: ``run(stop)`` takes the directory's host lock (waiting while another process holds
    it, unless ``lock_fd`` already holds it), starts following the announcements, and returns when
    ``stop`` is set; or ``start()`` / ``close()`` do the same on a thread. Every version the consumer
    reaches is written as an indexed snapshot — after removing older ones, so that the directory then
    holds the newest ``keep`` (and the announced one) — and announced in the directory. A version
    already in the directory (written by a predecessor) is announced, not rewritten. A failure to
    write or announce is logged and counted in :attr:`failures`; the next version is shared as usual.

    With ``background`` (the default), the thread that calls :meth:`run` — and every thread it starts —
    yields the CPU to serving threads: Linux's ``SCHED_BATCH`` policy (it never preempts a running
    thread when it wakes) at nice 10 (about a tenth of a core that a busy thread also wants). Applying
    a delta and writing a snapshot is tens of milliseconds of CPU; at normal priority the woken host
    consumer took a serving thread's core for a whole scheduler tick (4 ms here), even with another
    core idle (benchmarks/RESULTS.md, lifecycle run 9). The cost: on a host whose cores are all busy
    serving, new versions arrive later. Elsewhere (no ``SCHED_BATCH``) it does nothing.
    """

    def __init__(
        self,
        retriever: BlobRetriever,
        watcher: AnnouncementWatcher,
        directory: str | os.PathLike[str],
        *,
        keep: int = 2,
        lock_fd: int | None = None,
        max_delta_chain: int = 32,
        lock_interval: float = 0.2,
        background: bool = True,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (the announced version), not {keep}")
        self.directory = Path(directory)
        self.blobs = FilesystemBlobStore(self.directory)
        self.announcer = FilesystemAnnouncer(self.directory)
        self.keep = keep
        self.lock_interval = lock_interval
        self.background = background
        self.failures = 0
        self.shared: int | None = None  # the version last announced in the directory
        self.consumer = Consumer(
            retriever, watcher, max_delta_chain=max_delta_chain, listeners=[self._share], release_delay=0.5
        )
        self._lock_fd = lock_fd
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event | None = None) -> None:
        """Hold the host lock and share versions until ``stop`` (or :meth:`close`)."""
        stop = stop or self._stop
        if self.background:
            as_background()
        while self._lock_fd is None:
            self._lock_fd = _try_lock(self.directory)
            if self._lock_fd is None and (stop.wait(self.lock_interval) or self._stop.is_set()):
                return
        log.info("host consumer for %s: following announcements (pid %d)", self.directory, os.getpid())
        try:
            self.consumer.start()
            while not stop.wait(0.5) and not self._stop.is_set():
                pass
        finally:
            self.consumer.close()
            os.close(self._lock_fd)
            self._lock_fd = None

    def start(self) -> None:
        """Run on a daemon thread (see :meth:`run`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name="marrow-host-consumer", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)

    def __enter__(self) -> HostConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _share(self, previous: ReadState | None, state: ReadState) -> None:
        """A refresh listener: write the version reached, announce it, remove what it supersedes."""
        if state.version is None:
            return
        ref = BlobRef("snapshot", state.version)
        try:
            refs = self.blobs.refs()
            if ref not in refs:
                # room first: once announced, workers map and check the new snapshot, and freeing an
                # old one's pages meanwhile would take a core from them on a small machine
                others = sorted((r for r in refs if r.kind == "snapshot"), key=lambda r: r.version)
                kept = set(others[-max(1, self.keep - 1) :])
                if self.shared is not None:
                    kept.add(BlobRef("snapshot", self.shared))  # announced: stays, even after a rollback
                for old in others:
                    if old not in kept:
                        self.blobs.remove(old)
                self.blobs.publish(ref, state.snapshot())
            self.announcer.announce(state.version)
            self.shared = state.version
        except (MarrowError, OSError) as error:
            self.failures += 1
            log.error("cannot share version %s in %s: %s", state.version, self.directory, error)


class SharedConsumer(Consumer):
    """A :class:`~marrow.store.Consumer` of the versions a :class:`HostConsumer` shares in ``directory``.

    It maps each announced snapshot and never applies a delta (``max_delta_chain=0``), so a refresh
    is a header parse and a few small objects: readers in this process keep reading while it runs.
    With ``source``, it also competes for the host lock, and the winner starts the host consumer in a
    child process (see the module docstring); without, something else must run one.

    Superseded versions are given back ``release_delay`` seconds after each refresh (see
    :meth:`Consumer._release <marrow.store.Consumer._release>`): their pages leave this process at
    once, so a worker's resident memory stays at about one version, and their objects are freed by a
    collection. A version's objects have long been promoted to the oldest generation by then, and a
    full collection holds the GIL while it visits every object of the process (the interpreter and
    its libraries alone: ~3 ms). So with ``freeze`` (the default), :meth:`start` first moves every
    object alive then into the permanent generation (``gc.freeze()``, as prefork servers do once the
    application is loaded): later full collections visit only what was made since — versions, and
    what the application keeps — and the consumer runs one after each switch while more than
    ``keep_superseded`` superseded versions are alive (default 0: at every switch). Objects alive at
    start that later become cyclic garbage are then never collected; pass ``freeze=False`` (and, say,
    ``keep_superseded=4``) where that matters more than stalls of a few milliseconds.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        source: Source | None = None,
        *,
        listeners: tuple[RefreshListener, ...] = (),
        release_delay: float | None = 0.1,
        keep_superseded: int = 0,
        freeze: bool = True,
        lock_interval: float = 0.2,
        min_backoff: float = 0.01,
        max_backoff: float = 1.0,
        switch_interval: float | None = SWITCH_INTERVAL,
    ) -> None:
        self.directory = Path(directory)
        self.source = _checked(source)
        self.lock_interval = lock_interval
        self.freeze = freeze
        self._froze = False
        super().__init__(
            FilesystemBlobStore(self.directory),
            FilesystemAnnouncementWatcher(self.directory, poll_interval=0.05),
            max_delta_chain=0,
            listeners=listeners,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            release_delay=release_delay,
            keep_superseded=keep_superseded,
            switch_interval=switch_interval,
        )
        self.host: subprocess.Popen[bytes] | None = None  # the host consumer this process started
        self._electing: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Freeze what is alive (with ``freeze``), compete for the host lock (with a ``source``), then
        follow the directory's announcements."""
        if self.freeze and self._thread is None and not self._froze:
            gc.collect()  # garbage of start-up goes first: frozen, it would stay for good
            self._froze = gc.get_freeze_count() == 0  # close() thaws only what no one else froze
            gc.freeze()
        if self.source is not None and self._electing is None:
            self._electing = threading.Thread(target=self._elect, name="marrow-host-election", daemon=True)
            self._electing.start()
        super().start()

    def _elect(self) -> None:
        backoff = self.lock_interval
        while not self._stopping.is_set():
            fd = _try_lock(self.directory)
            if fd is None:
                self._stopping.wait(self.lock_interval)
                continue
            started = time.monotonic()
            try:
                self.host = _spawn_host(self.directory, fd, self.source)
            except OSError as error:
                log.error("cannot start the host consumer for %s: %s", self.directory, error)
                self.host = None
            finally:
                os.close(fd)  # the child holds the lock now (same open file description)
            while self.host is not None and self.host.poll() is None:
                if self._stopping.wait(self.lock_interval):
                    return
            code = None
            if self.host is not None:
                code = self.host.returncode
                if self.host.stdin is not None:
                    with contextlib.suppress(OSError):
                        self.host.stdin.close()
            quick = time.monotonic() - started < 5
            log.warning("the host consumer for %s ended (exit %s); electing another", self.directory, code)
            backoff = min(backoff * 2, 10.0) if quick else self.lock_interval
            self._stopping.wait(backoff)  # a child that fails at once is not restarted in a tight loop

    def close(self) -> None:
        """Stop following; stop the host consumer this process started (another worker takes over)."""
        self._stopping.set()
        if self._electing is not None:  # first, so that it starts no host consumer after this
            self._electing.join(10)
        host = self.host
        if host is not None:
            if host.stdin is not None:
                with contextlib.suppress(OSError):
                    host.stdin.close()  # end of input: the child stops
            try:
                host.wait(10)
            except subprocess.TimeoutExpired:
                host.kill()
                host.wait()
        super().close()
        if self._froze:
            gc.unfreeze()
            self._froze = False
        watcher = self.watcher
        if isinstance(watcher, FilesystemAnnouncementWatcher):
            watcher.close()


def _checked(source: Source | None) -> Source | None:
    """``source`` if the host consumer's process can rebuild it; else a ValueError saying why."""
    if source is None:
        return None
    inner = source
    while isinstance(inner, functools.partial):
        inner = inner.func
    if getattr(inner, "__module__", None) == "__main__":
        raise ValueError(
            f"the source {source!r} is defined in __main__, which the host consumer's process does not "
            "run; define it in an importable module"
        )
    try:
        pickle.dumps(source)
    except Exception as error:
        raise ValueError(f"the source {source!r} cannot be pickled for the host consumer: {error}") from error
    return source


def _spawn_host(directory: Path, lock_fd: int, source: Source | None) -> subprocess.Popen[bytes]:
    """Start ``python -m marrow.store.host`` holding ``lock_fd``; its input is the pickled job, then
    stays open: end of input tells the child to stop (also when this process dies)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "marrow.store.host"],
        stdin=subprocess.PIPE,
        pass_fds=(lock_fd,),
        close_fds=True,
    )
    assert child.stdin is not None
    # the source is pickled apart: the child unpickles it once it has this process's import path
    job = {"path": sys.path, "directory": str(directory), "lock_fd": lock_fd, "source": pickle.dumps(source)}
    child.stdin.write(pickle.dumps(job))
    child.stdin.flush()
    return child


def _serve(stdin: IO[bytes]) -> None:
    """The child's side of :func:`_spawn_host`."""
    as_background()  # before any thread starts: each inherits it
    job: dict[str, Any] = pickle.load(stdin)  # reads no further than the pickle
    sys.path[:0] = [p for p in job["path"] if p not in sys.path]
    source: Source = pickle.loads(job["source"])
    stop = threading.Event()

    def watch_parent() -> None:
        stdin.read()  # returns at end of input: the parent closed it, or died
        stop.set()

    threading.Thread(target=watch_parent, name="marrow-host-parent", daemon=True).start()
    retriever, watcher = source()
    HostConsumer(retriever, watcher, job["directory"], lock_fd=job["lock_fd"]).run(stop)
    for opened in (watcher, retriever):
        closer = getattr(opened, "close", None)
        if callable(closer):
            closer()


if __name__ == "__main__":  # pragma: no cover - run as a child by SharedConsumer
    logging.basicConfig(level=logging.INFO, format="%(asctime)s host consumer %(process)d: %(message)s")
    _serve(sys.stdin.buffer)
