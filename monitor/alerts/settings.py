"""Where alerts go and how hard the notifier tries, as settings (``monitor.config`` composes
them under ``notify``; the alerts package reads only these). Validation errors never quote
their input: these carry webhook URLs, a bot token and signing keys.

Slack is reached one of two ways: an incoming webhook, which can only post, so a story's
copies past ``slack_story_messages`` are counted in it without a message; or the Web API with
a bot token, which posts a story once and edits that message as copies come in.
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
    slack_story_messages: int = Field(
        default=3,
        gt=0,
        description="with the incoming webhook, which cannot edit a message: how many copies "
        "of one story get a message of their own; the rest are counted in the story only",
    )
    slack_bot_token: SecretStr | None = Field(
        default=None,
        description="a Slack app's bot token (xoxb-..., scope chat:write): one message per "
        "story, updated as its copies come in",
    )
    slack_channel: str | None = Field(
        default=None, description="the channel id (C...) the bot posts to; needed with the token"
    )
    slack_api_url: str = Field(
        default="https://slack.com/api", description="the Slack Web API's base URL"
    )
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

    @model_validator(mode="after")
    def _bot_has_a_channel(self) -> NotifySettings:
        # Both ways: a channel without its token would quietly send nothing to Slack.
        if self.slack_bot_token is not None and not self.slack_channel:
            raise ValueError(
                "slack_bot_token needs slack_channel: the channel id (C...) to post to"
            )
        if self.slack_channel and self.slack_bot_token is None:
            raise ValueError("slack_channel needs slack_bot_token: the bot posts to the channel")
        return self
