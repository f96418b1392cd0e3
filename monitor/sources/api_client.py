"""One polite HTTP client for every platform adapter: retries, rate limits, quotas, tokens.

Platforms differ in how they say "slow down" (``Retry-After``, ``x-rate-limit-reset`` as an
epoch, ``X-Ratelimit-Reset`` as seconds, a 403 whose body says ``quotaExceeded``), but the
response to each is the same: wait as long as asked when that is short, give the pass up
when it is long (the cursor is kept, so nothing is lost), and never hammer a failing server.
The adapter supplies a ``ResponsePolicy`` that reads its platform's dialect; this module does
the waiting. Waits carry jitter so that many workers released by one reset do not return in
lockstep. Credentials travel only in headers and request bodies, never in URLs, because URLs
end up in logs (httpx logs every request URL at INFO).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from monitor.errors import (
    QuotaExhaustedError,
    RateLimitedError,
    SourceError,
    StaleCursorError,
)
from monitor.retry import RetryPolicy, parse_retry_after

__all__ = [
    "ApiClient",
    "BearerToken",
    "RateLimit",
    "ResponsePolicy",
    "Verdict",
    "error_reason",
    "parse",
]

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class RateLimit:
    """What a response's rate-limit headers say: requests left and seconds until they refill."""

    remaining: float | None
    reset_s: float | None


@dataclass(frozen=True)
class Verdict:
    """An adapter's reading of one response that is not plainly a success.

    ``kind``: ``ok`` (hand it to the adapter), ``retry`` (transient), ``rate_limited`` (wait
    ``wait_s`` if known, then retry), ``quota`` (give up until ``resume_at``), ``auth`` (the
    token expired: refresh once and retry), ``stale`` (the cursor expired), ``fail`` (give up).
    """

    kind: str
    message: str = ""
    wait_s: float | None = None
    resume_at: datetime | None = None


class ResponsePolicy:
    """The generic reading of HTTP; adapters override what their platform says differently."""

    def verdict(self, response: httpx.Response) -> Verdict:
        status = response.status_code
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            return Verdict("rate_limited", "HTTP 429", wait)
        if status == 401:
            return Verdict("auth", "HTTP 401")
        if status >= 500:
            return Verdict("retry", f"HTTP {status}")
        if response.is_success or status == 304:
            return Verdict("ok")
        return Verdict("fail", f"HTTP {status}: {response.text[:200]}")

    def rate_limit(self, response: httpx.Response) -> RateLimit | None:
        """The platform's rate-limit headers, if it sends any."""
        return None


class BearerToken:
    """An app-only OAuth2 token (client credentials), fetched when needed and again on expiry.

    ``fetch`` performs the platform's token request and returns the parsed JSON body, which
    must hold ``access_token`` and ``expires_in``. The token is renewed a minute early, and at
    once when a request is refused with 401 (``invalidate``).
    """

    def __init__(
        self,
        fetch: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
        *,
        early_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._early_s = early_s
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0

    def invalidate(self) -> None:
        self._token = None

    async def header(self, client: httpx.AsyncClient) -> dict[str, str]:
        if self._token is None or self._clock() >= self._expires:
            response = await self._fetch(client)
            try:
                body = response.json()
                token, expires_in = str(body["access_token"]), float(body["expires_in"])
            except (ValueError, KeyError, TypeError):
                # The body of a refused token request names the fault, never the secret.
                raise SourceError(
                    f"token request refused: HTTP {response.status_code}: {response.text[:200]}"
                ) from None
            if not response.is_success or not token:
                raise SourceError(f"token request refused: HTTP {response.status_code}")
            self._token = token
            self._expires = self._clock() + max(expires_in - self._early_s, 0.0)
            self.fetched += 1
        return {"Authorization": f"Bearer {self._token}"}


class ApiClient:
    """Sends one logical request until it succeeds, the policy gives up, or a wait is too long.

    It also paces: when a response says no requests are left in the window, the next request
    waits for the reset (or raises ``RateLimitedError`` if that is longer than ``max_wait_s``).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: ResponsePolicy,
        retry: RetryPolicy,
        *,
        name: str,
        token: BearerToken | None = None,
        headers: Mapping[str, str] | None = None,
        spend: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.retry = retry
        self.name = name
        self.token = token
        self.headers = dict(headers or {})
        self.spend = spend
        self.requests = 0
        self._not_before = 0.0

    async def send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cost: int = 1,
    ) -> httpx.Response:
        """``cost``: quota units this request spends (counted before it is sent, failed
        requests cost too)."""
        where = f"{self.name} {method} {httpx.URL(url).copy_with(query=None)}"
        failures = waits = 0
        refreshed = False
        while True:
            await self._pace(where)
            if self.spend is not None:
                self.spend(cost)
            request_headers = {**self.headers, **(headers or {})}
            if self.token is not None:
                request_headers.update(await self.token.header(self.client))
            try:
                response = await self.client.request(
                    method, url, params=params, json=json, data=data, headers=request_headers
                )
            except httpx.TransportError as exc:
                verdict = Verdict("retry", f"{type(exc).__name__}: {exc}".rstrip(": "))
            else:
                self.requests += 1
                self._remember_limit(response)
                verdict = self.policy.verdict(response)
                if verdict.kind == "ok":
                    return response
            if verdict.kind == "auth" and self.token is not None and not refreshed:
                log.info("%s: token refused; fetching a new one", where)
                self.token.invalidate()
                refreshed = True
                continue
            if verdict.kind == "rate_limited":
                waits += 1
                await self.retry.sleep(self._rate_limit_wait(where, verdict, waits))
                self._not_before = 0.0  # that wait was the window's reset
                continue
            if verdict.kind == "quota":
                assert verdict.resume_at is not None
                raise QuotaExhaustedError(f"{where}: {verdict.message}", verdict.resume_at)
            if verdict.kind == "stale":
                raise StaleCursorError(f"{where}: {verdict.message}")
            if verdict.kind != "retry":
                raise SourceError(f"{where}: {verdict.message}")
            failures += 1
            if failures > self.retry.retries:
                raise SourceError(f"{where}: {verdict.message} (gave up after {failures} tries)")
            delay = self.retry.backoff(failures)
            log.warning("%s: %s; retrying in %.2f s", where, verdict.message, delay)
            await self.retry.sleep(delay)

    def _rate_limit_wait(self, where: str, verdict: Verdict, waits: int) -> float:
        if waits > self.retry.rate_limit_waits:
            raise RateLimitedError(
                f"{where}: still rate limited after {waits - 1} waits", self.retry.max_wait_s
            )
        asked = verdict.wait_s
        wait = self.retry.backoff(waits) if asked is None else self.retry.stretched(asked)
        if wait > self.retry.max_wait_s:
            raise RateLimitedError(
                f"{where}: rate limited for {wait:.0f} s, over the {self.retry.max_wait_s:.0f} s "
                "this crawler waits; the cursor is kept for the next pass",
                wait,
            )
        log.info("%s: rate limited; waiting %.2f s", where, wait)
        return wait

    def _remember_limit(self, response: httpx.Response) -> None:
        limit = self.policy.rate_limit(response)
        if limit is None or limit.remaining is None or limit.reset_s is None:
            return
        if limit.remaining < 1:
            self._not_before = time.monotonic() + max(limit.reset_s, 0.0)

    async def _pace(self, where: str) -> None:
        wait = self._not_before - time.monotonic()
        if wait <= 0:
            return
        if wait > self.retry.max_wait_s:
            raise RateLimitedError(
                f"{where}: no requests left for {wait:.0f} s; the cursor is kept", wait
            )
        log.info("%s: the rate-limit window is spent; waiting %.2f s", where, wait)
        await self.retry.sleep(self.retry.stretched(wait))
        self._not_before = 0.0


def parse(model: type[Model], response: httpx.Response, what: str) -> Model:
    """The body as ``model``, or a ``SourceError`` saying what was expected and what came."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise SourceError(
            f"{response.request.url.copy_with(query=None)}: not {what} ({where}: {first['msg']}): "
            f"{response.text[:200]!r}"
        ) from None


def error_reason(response: httpx.Response, *path: str | int) -> str | None:
    """A string deep in a JSON error body (``error_reason(r, "error", "code")``), if there."""
    try:
        node: Any = response.json()
    except ValueError:
        return None
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, str) else None
