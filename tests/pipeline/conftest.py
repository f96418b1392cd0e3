"""Fixtures of the whole-monitor tests (``test_end_to_end.py``, ``test_postgres_state.py``),
one of each per test module: a real broker process, the demo catalogue with its gallery built
by the real models, its platform on 127.0.0.1, a reader of every topic, and Slack's webhook."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from monitor.config import LikenessSettings
from monitor.demo.catalogue import DemoCatalogue, build_demo
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.models import Models
from monitor.pipeline.broker import EmbeddedBroker
from monitor.pipeline.harness import Topics
from monitor.pipeline.run import demo_platform_in_thread
from tests.media.c2pa_signing import sign_media
from tests.pipeline.monitor_run import DECODE, SIGNED_CLIP, FakeSlack


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, models: Models) -> DemoCatalogue:
    catalogue = build_demo(tmp_path_factory.mktemp("demo"))
    # One positive is an upload whose file a generator signed (C2PA, a chain made here).
    media = catalogue.media_dir / catalogue.clip(SIGNED_CLIP).media
    sign_media(media, media.with_suffix(".signed.mp4"), generator="DemoGen").replace(media)
    built = build_gallery(catalogue.gallery_dir, models, LikenessSettings(device="cpu"), DECODE)
    built.save(catalogue.gallery_dir / "built")
    return catalogue


@pytest.fixture(scope="module")
def platform_url(demo: DemoCatalogue) -> Iterator[str]:
    with demo_platform_in_thread(demo.root, 0) as url:
        yield url


@pytest.fixture(scope="module")
def topics(broker: EmbeddedBroker) -> Iterator[Topics]:
    observed = Topics(broker.bootstrap)
    yield observed
    observed.close()


@pytest.fixture(scope="module")
def slack() -> Iterator[str]:
    FakeSlack.messages.clear()  # the class keeps them: none of another module's
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSlack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/e2e"
    server.shutdown()
