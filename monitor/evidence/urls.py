"""Evidence image URLs that only their recipients can use: signed, and expiring.

An alert id is a digest of the clip and the entity, which anyone can compute, so a plain
``/evidence/<alert_id>.jpg`` answered whether a given clip was flagged for a given entity,
to anyone. Slack fetches the image itself, without credentials, so the image cannot simply
sit behind the review sign-in: its URL carries an expiry and an HMAC-SHA256 over the id and
the expiry (``?exp=<unix seconds>&sig=<hex>``), which only a holder of the key can make.
Reviewers' pages get signed URLs too (a browser sends no bearer token with an ``<img>``).

The key is ``notify.evidence_secret`` when set, or else a random one made on first use and
kept beside the thumbnails (``<shared_dir>/evidence/.url-key``, mode 0600), so every role on
that volume (score writes, notify links, review and the web server check) uses the same one.

Who may see an image is decided once, in ``may_see_evidence``: the worker's ``/evidence`` route
and the review page's own app both ask it, so the rule tested is the rule served.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

__all__ = ["DEFAULT_TTL_S", "EvidenceUrls", "Reviewers", "may_see_evidence", "shared_key"]

DEFAULT_TTL_S = 7 * 86400.0
"""How long a link works: long enough for the alert's readers, short of forever."""

_KEY_FILE = Path("evidence") / ".url-key"


def shared_key(shared_dir: Path) -> bytes:
    """The key kept in ``shared_dir``, made (atomically: the first writer wins) if missing."""
    path = shared_dir / _KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".url-key.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(secrets.token_bytes(32))
    try:
        os.link(partial, path)  # fails if another process made it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)
    return path.read_bytes()


class EvidenceUrls:
    def __init__(
        self, key: bytes, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        if len(key) < 16:
            raise ValueError("an evidence URL key needs at least 16 bytes")
        self._key = hashlib.sha256(b"likeness-monitor evidence url\x00" + key).digest()
        self.ttl_s = ttl_s
        self._clock = clock

    @classmethod
    def for_dir(
        cls, shared_dir: Path, secret: str | None = None, *, ttl_s: float = DEFAULT_TTL_S
    ) -> EvidenceUrls:
        """With the configured ``secret``, or the key kept in ``shared_dir``."""
        key = hashlib.sha256(secret.encode()).digest() if secret else shared_key(shared_dir)
        return cls(key, ttl_s=ttl_s)

    def _signature(self, alert_id: str, expires: int) -> str:
        message = f"{alert_id}.{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def path(self, alert_id: str) -> str:
        """``/evidence/<alert_id>.jpg?exp=...&sig=...``, valid for ``ttl_s`` from now."""
        expires = int(self._clock() + self.ttl_s)
        return f"/evidence/{alert_id}.jpg?exp={expires}&sig={self._signature(alert_id, expires)}"

    def url(self, base_url: str, alert_id: str) -> str:
        return base_url.rstrip("/") + self.path(alert_id)

    def verify(self, alert_id: str, expires: str | None, signature: str | None) -> bool:
        """Whether ``exp`` and ``sig`` of a request were made by this key for this id, and
        have not expired."""
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            return False
        if int(expires) < self._clock():
            return False
        expected = self._signature(alert_id, int(expires))
        return hmac.compare_digest(expected.encode(), signature.encode())


class Reviewers(Protocol):
    """Who a request's ``Authorization`` header names, if anyone: ``monitor.review.access.Access``.
    A protocol, because alerts sit below review and must not import it."""

    def reviewer(self, authorization: str | None) -> str | None: ...


def may_see_evidence(
    urls: EvidenceUrls,
    reviewers: Reviewers,
    alert_id: str,
    query: Mapping[str, str],
    authorization: str | None,
) -> bool:
    """Whether a request for ``alert_id``'s evidence image is answered: under a URL that
    ``urls`` signed and that has not expired (what Slack and a page's ``<img>`` fetch, without
    credentials), or for a reviewer. Anyone can compute an alert id, so any other request is
    refused, and before the image is looked for: a refusal must not say whether one exists."""
    if urls.verify(alert_id, query.get("exp"), query.get("sig")):
        return True
    return reviewers.reviewer(authorization) is not None
