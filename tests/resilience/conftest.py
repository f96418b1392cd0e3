"""Fixtures of the scorer resilience tests: the media server and a one-entity gallery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.likeness.models import Models
from tests.resilience.media import DRIP_S, MediaServer, build_bunny_gallery


@pytest.fixture(scope="module")
def media_server(package_file: Callable[[str], Path]) -> Iterator[MediaServer]:
    running = MediaServer(package_file("bigbuckbunny.mp4"), DRIP_S)
    yield running
    running.close()


@pytest.fixture(scope="module")
def bunny_gallery(
    tmp_path_factory: pytest.TempPathFactory, package_file: Callable[[str], Path], models: Models
) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    return build_bunny_gallery(root, package_file("bigbuckbunny.mp4"), models)
