"""The demo is built once per test session: building it is the slow part (about 3 s)."""

from __future__ import annotations

import pytest

from monitor.demo import DemoCatalogue, build_demo


@pytest.fixture(scope="session")
def demo_catalogue(tmp_path_factory: pytest.TempPathFactory) -> DemoCatalogue:
    return build_demo(tmp_path_factory.mktemp("demo"))
