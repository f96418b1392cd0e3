"""One tree of exceptions for the whole project.

Callers catch the branch they can act on: the pipeline turns any ``MediaError`` into a
failure reason on the scored record and moves on, the CLI turns any ``MonitorError`` into
a one-line message and a non-zero exit. Messages name the file, the entity or the source
at fault, because the person reading them is editing a gallery folder, not the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BrokerError",
    "CohortError",
    "ConfigError",
    "DecodeTimeoutError",
    "DecoderCrashError",
    "DeliveryError",
    "EmbedderConfigError",
    "EmptyMediaError",
    "FetchError",
    "GalleryError",
    "GalleryFormatError",
    "GalleryNotBuiltError",
    "MediaError",
    "MediaTooLargeError",
    "MonitorError",
    "NoUsableReferenceError",
    "NoVideoStreamError",
    "PermanentDeliveryError",
    "RecordError",
    "ReferenceMediaError",
    "RetryableDeliveryError",
    "SourceError",
    "StoreError",
    "StoreVersionError",
    "UnreadableMediaError",
    "WeightUnavailableError",
    "WeightsError",
]


class MonitorError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(MonitorError):
    """The settings do not validate. The message names each setting and what is wrong with
    it, never its value: settings hold webhook URLs, passwords and API keys."""


# --- media -------------------------------------------------------------------------------


class MediaError(MonitorError):
    """A clip or image could not be turned into frames."""

    reason: str = "media"

    def __init__(self, message: str, *, source: str | Path | None = None) -> None:
        self.source = str(source) if source is not None else None
        super().__init__(f"{self.source}: {message}" if self.source else message)


class UnreadableMediaError(MediaError):
    """Not a media file, or a corrupt one: the container or the stream cannot be read."""

    reason = "unreadable"


class NoVideoStreamError(MediaError):
    """The file is media, but has no picture (an audio-only file, say)."""

    reason = "no_video"


class EmptyMediaError(MediaError):
    """The file is empty, or its video stream yields no frame."""

    reason = "empty"


class MediaTooLargeError(MediaError):
    """The media exceeds a configured limit (bytes, duration or pixels)."""

    reason = "too_large"


class DecodeTimeoutError(MediaError):
    """Decoding took longer than the configured limit."""

    reason = "timeout"


class DecoderCrashError(MediaError):
    """The decode process died decoding this media, alone (out of memory, a codec crash):
    the media is at fault, and trying it again would kill another process."""

    reason = "decoder_crashed"


# --- weights -----------------------------------------------------------------------------


class WeightsError(MonitorError):
    """A pretrained file is missing or wrong."""


class WeightUnavailableError(WeightsError):
    """No source could provide a weight file whose hash matches.

    ``attempts`` holds one line per source tried, saying why it failed.
    """

    def __init__(self, name: str, attempts: Sequence[str]) -> None:
        self.name = name
        self.attempts = list(attempts)
        tried = "\n".join(f"  - {line}" for line in self.attempts) or "  (no source configured)"
        super().__init__(f"weight {name!r} is not available; sources tried:\n{tried}")


class EmbedderConfigError(MonitorError):
    """A configured embedder cannot be built: a bad spec, a missing file or optional library."""


# --- gallery -----------------------------------------------------------------------------


class GalleryError(MonitorError):
    """A gallery folder or a built gallery cannot be used."""


class GalleryFormatError(GalleryError):
    """``entities.yaml`` is malformed or describes an invalid entity."""


class ReferenceMediaError(GalleryError):
    """A reference image or clip of an entity cannot be read."""


class NoUsableReferenceError(GalleryError):
    """An entity has no reference from which its kind of signal can be enrolled."""


class GalleryNotBuiltError(GalleryError):
    """The built gallery files are missing or do not belong together."""


class CohortError(GalleryError):
    """The cohort that visual scores are measured against cannot be drawn or read: a bundled
    member that does not render, a team's ``cohort/`` file that does not decode."""


# --- pipeline ----------------------------------------------------------------------------


class RecordError(MonitorError):
    """A record on a topic cannot be parsed or does not validate against its schema."""


class SourceError(MonitorError):
    """A platform's API cannot be crawled: unreachable, failing, or answering nonsense."""


class BrokerError(MonitorError):
    """The Kafka-protocol broker cannot be started or reached."""


class FetchError(MediaError):
    """Media could not be fetched: refused address, HTTP error, too large, too slow."""

    reason = "fetch"


# --- storage -----------------------------------------------------------------------------


class StoreError(MonitorError):
    """A store's SQLite file on this host (scores, crawl state, deliveries, reviews) cannot be
    used."""


class StoreVersionError(StoreError):
    """The file's schema version (``PRAGMA user_version``) is newer than any this code knows:
    a newer monitor wrote it, and this one would misread it. The file is left as it was."""

    def __init__(self, path: Path, version: int, newest: int) -> None:
        self.path = path
        self.version = version
        self.newest = newest
        super().__init__(
            f"{path}: schema version {version} is newer than this monitor knows (at most "
            f"{newest}); a newer likeness-monitor wrote it. Upgrade the monitor to use this "
            "file; it has been left as it was"
        )


# --- alerts ------------------------------------------------------------------------------


class DeliveryError(MonitorError):
    """A sink could not deliver an alert. Messages name the sink and the status, never the URL:
    a Slack webhook URL is itself a secret.

    ``reason`` is a bounded metric label.
    """

    reason: str = "delivery"

    def __init__(self, sink: str, message: str) -> None:
        self.sink = sink
        super().__init__(f"{sink}: {message}")


class RetryableDeliveryError(DeliveryError):
    """Worth another try later: rate limited (429), a 5xx, or the receiver unreachable.

    ``retry_after`` is the receiver's own ``Retry-After``, in seconds, when it sent one.
    """

    reason = "retryable"

    def __init__(
        self, sink: str, message: str, *, reason: str, retry_after: float | None = None
    ) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(sink, message)


class PermanentDeliveryError(DeliveryError):
    """The receiver refused the message (a 4xx other than 429): trying again would not help."""

    reason = "rejected"
