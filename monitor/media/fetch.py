"""Download a clip's media from a URL that a stranger chose, within bounds.

A scorer fetches whatever a platform listing points at, so the fetch itself is bounded like
the decode after it: only http(s), a cap on bytes (the declared length is checked before
reading, the received length while reading, since a server may declare nothing or lie), a
cap on connect, read and total time, redirects followed by hand so each hop is checked, and
pages that are plainly not media (an HTML error or login page answered with 200) refused.
Every failure is a ``FetchError`` whose ``reason`` is one of ``FETCH_REASONS``, a short
fixed set, because reasons become metric labels.

Which addresses may be fetched at all (no private networks in production) is decided by the
``validate_url`` hook, called before every request, redirects included.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import httpx

from monitor.errors import FetchError

__all__ = ["DEFAULT_MAX_BYTES", "FETCH_REASONS", "UrlValidator", "fetch_error", "fetch_media"]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024

FETCH_REASONS = (
    "bad_url",
    "refused",
    "http_404",
    "http_4xx",
    "http_5xx",
    "http_other",
    "redirects",
    "not_media",
    "too_large",
    "timeout",
    "network",
    "resolve_failed",
)
"""Every ``FetchError.reason`` of a media fetch (``refused`` is for ``validate_url``,
``resolve_failed`` for a media resolver command)."""

UrlValidator = Callable[[httpx.URL], Awaitable[None]]
"""Raises ``FetchError`` (reason ``refused``) for a URL that must not be fetched."""

_SCHEMES = ("http", "https")
# Documents, not media: what a server answers when the clip is gone behind a page.
_NOT_MEDIA_TYPES = (
    "application/json",
    "application/xml",
    "application/xhtml+xml",
    "application/javascript",
)
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_CHUNK = 64 * 1024


def fetch_error(reason: str, message: str, url: str | httpx.URL) -> FetchError:
    """A ``FetchError`` with its ``reason`` (one of ``FETCH_REASONS``)."""
    error = FetchError(message, source=str(url))
    error.reason = reason
    return error


async def fetch_media(
    client: httpx.AsyncClient,
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
    total_timeout: float = 60.0,
    max_redirects: int = 5,
    validate_url: UrlValidator | None = None,
) -> Path:
    """Stream ``url`` into a new file in ``dest_dir`` and return its path (the caller
    deletes it). On any failure nothing is left behind and ``FetchError`` is raised, its
    ``source`` the URL asked for and its message naming the redirect hop at fault, if any.

    ``read_timeout`` bounds each wait for bytes, ``total_timeout`` the whole download.
    """
    try:
        target = _checked(url)
    except _Refused as refused:
        raise fetch_error(refused.reason, refused.message, url) from None
    dest_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="fetch-", suffix=_suffix(target), dir=dest_dir)
    path = Path(name)
    timeout = httpx.Timeout(
        connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
    )
    try:
        with os.fdopen(handle, "wb") as sink:
            async with asyncio.timeout(total_timeout):
                await _download(
                    client, target, sink, max_bytes, timeout, max_redirects, validate_url
                )
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, _Refused):
            raise fetch_error(exc.reason, exc.message, url) from None
        if isinstance(exc, TimeoutError):
            raise fetch_error("timeout", f"not fetched within {total_timeout:g} s", url) from None
        if isinstance(exc, httpx.TimeoutException):
            raise fetch_error("timeout", f"too slow ({type(exc).__name__})", url) from None
        if isinstance(exc, httpx.TransportError):
            raise fetch_error("network", f"{type(exc).__name__}: {exc}", url) from None
        raise
    return path


class _Refused(Exception):
    def __init__(self, reason: str, message: str, at: httpx.URL | None = None) -> None:
        self.reason = reason
        self.message = f"{message} (at {at})" if at is not None else message


async def _download(
    client: httpx.AsyncClient,
    target: httpx.URL,
    sink: BinaryIO,
    max_bytes: int,
    timeout: httpx.Timeout,
    max_redirects: int,
    validate_url: UrlValidator | None,
) -> None:
    first = target
    for _ in range(max_redirects + 1):
        if validate_url is not None:
            await validate_url(target)
        hop = None if target == first else target
        async with client.stream("GET", target, timeout=timeout, follow_redirects=False) as answer:
            if answer.is_redirect:
                location = answer.headers.get("Location")
                if not location:
                    raise _Refused("http_other", "a redirect without a Location", hop)
                target = _checked(target.join(location), redirected=True)
                continue
            _check_answer(answer, max_bytes, hop)
            received = 0
            async for chunk in answer.aiter_bytes(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise _Refused("too_large", f"more than {max_bytes} bytes", hop)
                sink.write(chunk)
            return
    raise _Refused("redirects", f"more than {max_redirects} redirects", target)


def _check_answer(answer: httpx.Response, max_bytes: int, hop: httpx.URL | None) -> None:
    status = answer.status_code
    if status >= 400:
        reason = "http_404" if status == 404 else "http_5xx" if status >= 500 else "http_4xx"
        raise _Refused(reason, f"HTTP {status}", hop)
    if not answer.is_success:
        raise _Refused("http_other", f"unexpected HTTP {status}", hop)
    kind = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind.startswith("text/") or kind in _NOT_MEDIA_TYPES:
        raise _Refused("not_media", f"the server answered a document ({kind})", hop)
    declared = answer.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _Refused("too_large", f"declares {int(declared)} bytes, over {max_bytes}", hop)


def _checked(url: str | httpx.URL, *, redirected: bool = False) -> httpx.URL:
    where = f"redirected to {url}: " if redirected else ""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise _Refused("bad_url", f"{where}not a URL ({exc})") from None
    if parsed.scheme not in _SCHEMES or not parsed.host:
        raise _Refused("bad_url", f"{where}only http and https URLs are fetched")
    return parsed


def _suffix(url: httpx.URL) -> str:
    match = _SUFFIX.search(url.path)
    return match.group(0).lower() if match else ""
