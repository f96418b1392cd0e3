"""Who may look and who may act: credentials from the environment, and CSRF tokens for forms.

A browser sends basic-auth credentials with every request to the site, including requests
that another site's page makes it send, so a form action needs more than credentials: a
token that only a page served by this monitor knows. The token is a random nonce kept in a
``SameSite=Strict`` cookie plus its HMAC in the form's hidden field; a forged form can set
neither. The HMAC key comes from the configured secret, so every worker and every restart
accepts the forms the others rendered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from monitor.review.settings import ReviewSettings

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "Access"]

CSRF_COOKIE = "review_csrf"
CSRF_FIELD = "csrf"


class Access:
    def __init__(self, settings: ReviewSettings) -> None:
        self.settings = settings
        secret = b"".join(
            value.get_secret_value().encode()
            for value in (settings.token, settings.password)
            if value is not None
        )
        self._key = hashlib.sha256(b"likeness-monitor review csrf\x00" + secret).digest()

    @property
    def configured(self) -> bool:
        return self.settings.configured

    def reviewer(self, authorization: str | None) -> str | None:
        """Who the ``Authorization`` header names, or None when it grants nothing."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.partition(" ")
        token, username, password = (
            self.settings.token,
            self.settings.username,
            self.settings.password,
        )
        if scheme.lower() == "bearer" and token is not None:
            if _same(credentials.strip(), token.get_secret_value()):
                return "token"
        elif scheme.lower() == "basic" and username is not None and password is not None:
            try:
                user, _, given = base64.b64decode(credentials.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            # Both compared, always: no early exit that times which half was wrong.
            if _same(user, username) & _same(given, password.get_secret_value()):
                return user
        return None

    def new_nonce(self) -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return _same(token, self.csrf_token(nonce))


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
