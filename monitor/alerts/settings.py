"""Where alerts go and how hard the notifier tries, as settings (``monitor.config`` composes
them under ``notify``; the alerts package reads only these). Validation errors never quote
their input: these carry webhook URLs and signing keys.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["NotifySettings"]


class NotifySettings(BaseModel):
    """Where alerts go (the console, Slack, a webhook), and how hard the notifier tries.

    URLs and secrets are ``SecretStr``: a Slack webhook URL grants posting to a channel, so
    none of them is ever printed, logged or put in a metric or an error message.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    console: bool = Field(default=True, description="print each alert on standard output")
    slack_webhook_url: SecretStr | None = None
    webhook_url: SecretStr | None = None
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the generic webhook's signature"
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:6066",
        description="where receivers reach this monitor's web server (evidence thumbnails)",
    )
    evidence_images: bool = Field(
        default=True, description="put the evidence thumbnail in Slack messages"
    )
    evidence_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of the signed, expiring evidence URLs; default: a random key "
        "kept in shared_dir/evidence/.url-key",
    )
    evidence_url_ttl_s: float = Field(
        default=7 * 86400.0, gt=0, description="how long an evidence link keeps working"
    )
    timeout_s: float = Field(default=10.0, gt=0)
    flood_max_per_window: int = Field(
        default=10, gt=0, description="alerts per entity per window before a summary replaces them"
    )
    flood_window_s: float = Field(default=600.0, gt=0)
    flush_interval_s: float = Field(default=5.0, gt=0)
    retry_inline_attempts: int = Field(
        default=3, gt=0, description="tries before an alert is parked on the retry topic"
    )
    retry_backoff_s: float = Field(default=1.0, gt=0)
    retry_backoff_max_s: float = Field(default=300.0, gt=0)
    retry_inline_max_wait_s: float = Field(
        default=10.0, ge=0, description="a longer wait (a Retry-After, say) parks the alert"
    )
    retry_give_up_after_s: float = Field(
        default=86400.0, gt=0, description="a parked alert older than this goes to deadletter"
    )

    @model_validator(mode="after")
    def _webhook_is_signed(self) -> NotifySettings:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret: receivers verify the signature")
        return self
