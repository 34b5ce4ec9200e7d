"""The S3 blob store and announcements, against moto's S3 server on a loopback port.

The module starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 (no other network), creates one
bucket, and runs the contract of ``test_blobstore.py`` with a fresh prefix per test. Without moto, or
if its server does not start, the module is skipped with the reason.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from test_blobstore import AnnouncementContract, BlobStoreContract, Recorder

from marrow.errors import BlobError
from marrow.store.blobstore import BlobRef, BlobStore
from marrow.store.s3 import ANNOUNCEMENT_KEY, S3AnnouncementWatcher, S3Announcer, S3BlobStore

pytestmark = pytest.mark.s3

BUCKET = "marrow-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server with the bucket ``marrow-test``, for the module; stopped afterwards."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        pytest.skip(f"moto[server] is not installed: {error}")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
        url = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{url}/{BUCKET}", method="PUT"), timeout=10).close()
    except Exception as error:
        server.stop()
        pytest.skip(f"moto's S3 server did not start on 127.0.0.1:{port}: {error!r}")
    yield url
    server.stop()


def options(endpoint: str) -> dict[str, Any]:
    """obstore options for moto: path-style requests over HTTP, any credentials."""
    return {
        "endpoint": endpoint,
        "region": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "virtual_hosted_style_request": False,
        "client_options": {"allow_http": True},
    }


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}/blobs"


class TestS3BlobStore(BlobStoreContract):
    large = 1 << 20  # moto holds bodies in memory and parses them in Python: keep them modest
    count = 4

    @pytest.fixture
    def store(self, endpoint: str, prefix: str) -> BlobStore:
        return S3BlobStore(BUCKET, prefix, **options(endpoint))

    def test_prefixes_keep_stores_apart(self, endpoint: str, prefix: str) -> None:
        first = S3BlobStore(BUCKET, prefix + "/a", **options(endpoint))
        second = S3BlobStore(BUCKET, prefix + "/b", **options(endpoint))
        first.publish(BlobRef("snapshot", 1), b"a")
        S3Announcer(BUCKET, prefix + "/a", **options(endpoint)).announce(1)
        assert first.refs() == [BlobRef("snapshot", 1)]  # the announcement object is not a blob
        assert second.refs() == []
        assert second.retrieve_snapshot(1) is None

    def test_an_unreachable_server_is_a_blob_error(self) -> None:
        unreachable = options(f"http://127.0.0.1:{_free_port()}")
        unreachable["retry_config"] = {"max_retries": 0, "retry_timeout": timedelta(seconds=2)}
        store = S3BlobStore(BUCKET, "p", **unreachable)
        with pytest.raises(BlobError, match="cannot publish snapshot-1 in s3://marrow-test/p"):
            store.publish(BlobRef("snapshot", 1), b"x")
        with pytest.raises(BlobError, match="cannot list blobs"):
            store.retrieve_snapshot(1)
        with pytest.raises(BlobError, match="cannot announce version 1"):
            S3Announcer(BUCKET, "p", **unreachable).announce(1)
        with pytest.raises(BlobError, match="cannot read the announcement"):
            S3AnnouncementWatcher(BUCKET, "p", **unreachable).latest()


class TestS3Announcements(AnnouncementContract):
    @pytest.fixture
    def announcement(self, endpoint: str, prefix: str) -> Iterator[tuple[S3Announcer, S3AnnouncementWatcher]]:
        announcer = S3Announcer(BUCKET, prefix, **options(endpoint))
        with S3AnnouncementWatcher(BUCKET, prefix, poll_interval=0.02, **options(endpoint)) as watcher:
            yield announcer, watcher

    def test_a_corrupt_announcement_is_ignored(
        self, announcement: tuple[S3Announcer, S3AnnouncementWatcher], endpoint: str, prefix: str
    ) -> None:
        announcer, watcher = announcement
        recorder = Recorder()
        watcher.subscribe(recorder)
        announcer.announce(4)
        recorder.wait_for(4)
        from obstore.store import S3Store

        S3Store(BUCKET, prefix=prefix, **options(endpoint)).put(ANNOUNCEMENT_KEY, b'{"version": "5"}')
        assert watcher.latest() == 4
        announcer.announce(6)
        assert recorder.wait_for(6) == [4, 6]

    def test_polling_runs_on_a_thread_of_its_own(
        self, announcement: tuple[S3Announcer, S3AnnouncementWatcher]
    ) -> None:
        announcer, watcher = announcement
        recorder = Recorder()
        watcher.subscribe(recorder)
        announcer.announce(1)
        recorder.wait_for(1)
        assert threading.get_ident() not in recorder.threads
