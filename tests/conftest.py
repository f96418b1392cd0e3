"""Session-wide access to real weights and real media, and the system binaries tests drive.

Both come through the same hash-checked fetch the product uses, into the user's cache, so a
second run reads them from disk. Tests never download anything else.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.assets import ensure
from monitor.config import LikenessSettings
from monitor.likeness.models import Models, prepare_weights
from monitor.likeness.weights import BUNDLED_WEIGHTS
from monitor.media.samples import sample
from monitor.storage import Database
from tests.postgres import postgres_schemas, require_postgres

EVAL_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "eval-media"


INSTALL_BINARIES = (
    "make prometheus chromium installs it (as root; the Debian packages prometheus, "
    "prometheus-alertmanager and chromium)"
)


def in_ci() -> bool:
    """``CI=true`` (or 1, yes) in the environment, as CI services set it."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_binary(name: str) -> str:
    """The path of the program ``name`` (on PATH, or an absolute path), for a test that drives
    it: chromium, prometheus, promtool, amtool.

    Without it the test is skipped on a developer's machine, and fails under ``CI=true``: a CI
    run that silently skipped the browser or Prometheus tests would pass without them.
    """
    found = shutil.which(name)
    if found is not None:
        return found
    message = f"{name} missing: {INSTALL_BINARIES}"
    if in_ci():
        pytest.fail(f"{message}; under CI=true a missing binary fails the run", pytrace=False)
    pytest.skip(message)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_at(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Path | Database]]:
    """Where a store named ``name`` lives, once in a SQLite file and once in a PostgreSQL
    schema: a test that takes this fixture is the same specification of both."""
    if request.param == "sqlite":
        yield lambda name: tmp_path / f"{name}.sqlite3"
        return
    with postgres_schemas(require_postgres(in_ci())) as schema:
        yield schema


@pytest.fixture(scope="session")
def package_file() -> Callable[[str], Path]:
    """``package_file("bigbuckbunny.mp4")``: the verified local copy of a packaged media file."""

    return sample


@pytest.fixture(scope="session")
def weight_file() -> Callable[[str], Path]:
    """``weight_file("yunet")``: the verified cached file of a bundled weight."""

    def get(name: str) -> Path:
        return ensure(BUNDLED_WEIGHTS[name])

    return get


@pytest.fixture(scope="session")
def eval_media() -> Path:
    """The labelled dev set beside the checkout (``../shared/eval-media``)."""
    if not (EVAL_MEDIA / "MANIFEST.json").is_file():
        message = f"no eval media at {EVAL_MEDIA}"
        if in_ci():
            pytest.fail(f"{message}; under CI=true the dev set is required", pytrace=False)
        pytest.skip(message)
    return EVAL_MEDIA


@pytest.fixture(scope="session")
def models() -> Models:
    """The bundled detector and embedders on the CPU, loaded once for the whole run."""
    prepare_weights()
    return Models.load(LikenessSettings(device="cpu"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Nothing a test started may keep the run from ending.

    A decode process of a pool that broke mid-test can be left blocked writing a result
    nobody reads, and Python 3.11's executor waits for it at exit (seen once in a full run:
    pytest printed its summary and never exited). The pool kills such stragglers itself; this
    is the net under it, so that a hang can never cost a CI run.
    """
    for child in multiprocessing.active_children():
        child.kill()
