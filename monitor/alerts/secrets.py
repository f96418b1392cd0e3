"""One POST to a receiver, its answer turned into the delivery error tree, and no secret leaked.

A Slack incoming-webhook URL is a credential (whoever has it posts to the channel), and httpx
logs every request URL at INFO. So the URL never reaches an exception message (transport
errors are re-raised by class name, without their cause) and a log filter on the HTTP
libraries' loggers blanks any configured secret before a record is emitted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import httpx
from pydantic import SecretStr

from monitor.errors import PermanentDeliveryError, RetryableDeliveryError
from monitor.retry import parse_retry_after

__all__ = ["REDACTED", "SecretFilter", "post", "url_secrets"]

REDACTED = "[redacted]"
_LOGGERS = ("httpx", "httpcore")


def url_secrets(url: SecretStr) -> list[str]:
    """The strings a logged URL may show: as configured, as httpx prints it, and its path
    (the credential part of a Slack webhook URL) when the path is long enough to be one."""
    raw = url.get_secret_value()
    out = [raw]
    try:
        parsed = httpx.URL(raw)
    except httpx.InvalidURL:
        return out
    out.append(str(parsed))
    path = parsed.raw_path.decode(errors="replace")
    if len(path) >= 12:
        out.append(path)
    return out


async def post(
    client: httpx.AsyncClient,
    sink: str,
    url: SecretStr,
    content: bytes,
    headers: Mapping[str, str],
) -> httpx.Response:
    """POST ``content``; return the 2xx response or raise the matching ``DeliveryError``."""
    secret = url.get_secret_value()
    try:
        response = await client.post(secret, content=content, headers=dict(headers))
    except httpx.TimeoutException:
        raise RetryableDeliveryError(sink, "timed out", reason="network") from None
    except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise RetryableDeliveryError(
            sink, f"unreachable ({type(exc).__name__})", reason="network"
        ) from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = response.text[:200]
    for shown in url_secrets(url):
        detail = detail.replace(shown, REDACTED)
    detail = detail.strip()
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        raise RetryableDeliveryError(sink, message, reason="rate_limited", retry_after=retry_after)
    if status >= 500:
        raise RetryableDeliveryError(sink, message, reason="server_error", retry_after=retry_after)
    raise PermanentDeliveryError(sink, message)


class SecretFilter(logging.Filter):
    """Blanks configured secrets in records of the HTTP libraries' loggers.

    Installed on the logger that creates the record, so it runs before any handler, wherever
    the record propagates.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__("likeness-secrets")
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, REDACTED)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

    def install(self) -> None:
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        for name in _LOGGERS:
            logging.getLogger(name).removeFilter(self)
