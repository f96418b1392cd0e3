"""Who may use the review page and how often reviews rebuild the gallery, as settings
(``monitor.config`` composes them under ``review``). Validation errors never quote their
input: these carry a token and a password.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ReviewSettings"]


class ReviewSettings(BaseModel):
    """Who may use the review page (``/review``): a bearer token, or basic auth, or both.

    With neither configured the page answers 503 and says what to set: alerts name people and
    carry attacker-chosen text, so the page is never open by default, not even on loopback
    (a reverse proxy on the same host would make every visitor local).
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    token: SecretStr | None = Field(default=None, description="Authorization: Bearer <token>")
    username: str | None = None
    password: SecretStr | None = None
    page_size: int = Field(
        default=50,
        gt=0,
        le=5000,
        description="stories listed per page (each with up to 20 of its copies)",
    )
    recalibrate_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="rebuild the gallery at most this often after dismissals (a rebuild embeds "
        "only the files added since the last one)",
    )

    @model_validator(mode="after")
    def _basic_auth_is_whole(self) -> ReviewSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("review username and password go together")
        return self

    @property
    def configured(self) -> bool:
        return self.token is not None or self.password is not None
