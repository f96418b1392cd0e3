"""One tree of exceptions for the whole project.

Callers catch the branch they can act on: the pipeline turns any ``MediaError`` into a
failure reason on the scored record and moves on, the CLI turns any ``MonitorError`` into
a one-line message and a non-zero exit. Messages name the file, the entity or the source
at fault, because the person reading them is editing a gallery folder, not the code.

Every exception the project raises past its own module is defined here::

    MonitorError                     anything raised on purpose; the CLI prints it, exits 1
        ConfigError                  the settings do not validate
        YamlLimitError               a user's YAML past the bounds (also a yaml.YAMLError)
        MediaError                   media not turned into frames; ``reason`` labels it
            UnreadableMediaError     not media, or corrupt
            NoVideoStreamError       media without a picture
            EmptyMediaError          no bytes, or no frame
            MediaTooLargeError       over a byte, duration or pixel limit
            DecodeTimeoutError       decoding took too long
            DecoderCrashError        the decode process died on this media
            FetchError               media not fetched: refused, HTTP error, too slow
        WeightsError                 a pretrained file missing or wrong
            WeightUnavailableError   no source had a file with the pinned hash
        EmbedderConfigError          a configured embedder cannot be built
        GalleryError                 a gallery folder or built gallery unusable
            GalleryFormatError       entities.yaml malformed
            ReferenceMediaError      a reference image or clip unreadable
            NoUsableReferenceError   an entity with nothing to enrol
            GalleryNotBuiltError     built files missing or not belonging together
            CohortError              the cohort cannot be drawn or read
        RecordError                  a topic record that does not parse or validate
        SourceError                  a platform that cannot be crawled
            RateLimitedError         told to wait longer than the crawler waits: pause
            QuotaExhaustedError      the day's quota spent: pause until it renews
            StaleCursorError         a saved cursor refused: the feed starts from the top
        BrokerError                  the broker cannot be started or reached
        StoreError                   a store (SQLite file, PostgreSQL schema) unusable
            StoreVersionError        a store from a newer monitor
        DeliveryError                an alert not delivered to a sink
            RetryableDeliveryError   429, 5xx, unreachable: try again later
            PermanentDeliveryError   refused: trying again would not help
                SlackApiError        Slack's Web API answered ok: false (its error code)

    ReadAgain                        not a MonitorError, on purpose: a good record that could
                                     not be applied on this host now (a locked database), to
                                     be read again, never dead-lettered; no handler of
                                     MonitorError may swallow it
        StoreUnavailableError        the PostgreSQL state cannot be reached now

Private signals that never leave their module are not here: ``media/fetch.py``'s
``_Refused`` becomes a ``FetchError`` before its caller sees it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import yaml

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
    "QuotaExhaustedError",
    "RateLimitedError",
    "ReadAgain",
    "RecordError",
    "ReferenceMediaError",
    "RetryableDeliveryError",
    "SlackApiError",
    "SourceError",
    "StaleCursorError",
    "StoreError",
    "StoreUnavailableError",
    "StoreVersionError",
    "UnreadableMediaError",
    "WeightUnavailableError",
    "WeightsError",
    "YamlLimitError",
]


class MonitorError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(MonitorError):
    """The settings do not validate. The message names each setting and what is wrong with
    it, never its value: settings hold webhook URLs, passwords and API keys."""


class YamlLimitError(MonitorError, yaml.YAMLError):
    """A YAML document uses too many aliases, expands past the node bound, or refers to
    itself (``monitor/safeyaml.py``). A ``yaml.YAMLError`` too, so a caller that reports
    malformed YAML reports this."""


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


class RateLimitedError(SourceError):
    """The platform asked for a wait longer than this crawler waits; try again at ``resume_at``
    (a Unix time)."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s
        self.resume_at = time.time() + wait_s


class StaleCursorError(SourceError):
    """The platform no longer accepts a saved cursor (or its cursor came round again); the
    feed restarts from the top."""


class QuotaExhaustedError(SourceError):
    """The platform's (or our own count of its) daily quota is spent until ``resume_at``."""

    def __init__(self, message: str, resume_at: datetime) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class BrokerError(MonitorError):
    """The Kafka-protocol broker cannot be started or reached."""


class ReadAgain(Exception):
    """A record that is fine could not be applied on this host now (a locked database, a full
    disk): read it again later, never dead-letter it. A fault that repeats stalls the read,
    loudly, and loses nothing. Not a ``MonitorError``, so that no handler of those swallows
    it (``pipeline/poison.py`` tells it from the record's own faults)."""


class StoreUnavailableError(ReadAgain):
    """The PostgreSQL server holding a store cannot be reached now (down, restarting, the
    pool's connections all lost): the record is read again once it is back."""

    def __init__(self, where: str, cause: BaseException) -> None:
        self.where = where
        super().__init__(f"{where}: the state database cannot be reached: {cause}")


class FetchError(MediaError):
    """Media could not be fetched: refused address, HTTP error, too large, too slow."""

    reason = "fetch"


# --- storage -----------------------------------------------------------------------------


class StoreError(MonitorError):
    """A store (scores, crawl state, deliveries, reviews: a SQLite file on this host or a
    PostgreSQL schema all replicas share) cannot be used."""


class StoreVersionError(StoreError):
    """The store's schema version (SQLite's ``PRAGMA user_version``, PostgreSQL's
    ``store_version`` table) is newer than any this code knows: a newer monitor wrote it, and
    this one would misread it. The store is left as it was."""

    def __init__(self, path: Path | str, version: int, newest: int) -> None:
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


class SlackApiError(PermanentDeliveryError):
    """Slack's Web API refused the call with ``{"ok": false, "error": error}``."""

    def __init__(self, sink: str, method: str, error: str) -> None:
        self.error = error
        super().__init__(sink, f"{method}: {error}")
