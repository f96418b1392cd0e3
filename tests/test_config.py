"""Settings errors name the bad setting and never quote a secret (issue 11, found 8)."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, SecretStr

from monitor.config import NotifySettings, ReviewSettings, Settings, load_settings
from monitor.errors import ConfigError

SECRET = "s3cr3t-value-that-must-not-print"


def _secret_fields(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, type[BaseModel]]]:
    for name, field in model.model_fields.items():
        env = f"{prefix}__{name.upper()}" if prefix else name.upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _secret_fields(annotation, env)
        elif "SecretStr" in str(annotation):
            yield env, model


SECRET_SETTINGS = sorted(_secret_fields(Settings, ""), key=lambda pair: pair[0])


def _breakers(env: str, model: type[BaseModel]) -> dict[str, str]:
    """Settings that make ``env``'s own group fail to validate along with it."""
    section = env.rsplit("__", 1)[0]
    validator_breakers = {
        # A webhook URL without its signing key: the model validator refuses the whole group
        # and, unless told not to, quotes everything the group was given.
        "NOTIFY__SLACK_WEBHOOK_URL": {"NOTIFY__WEBHOOK_URL": "https://receiver.example/x"},
        "NOTIFY__WEBHOOK_URL": {},
        # A password without a user name (or a user name without a password): the same.
        "REVIEW__PASSWORD": {},
        "REVIEW__TOKEN": {"REVIEW__USERNAME": "rita"},
    }
    if env in validator_breakers:
        return validator_breakers[env]
    numeric = next(name for name, f in model.model_fields.items() if f.annotation in (int, float))
    return {f"{section}__{numeric.upper()}": "not-a-number"}


def test_every_secret_setting_is_found() -> None:
    names = {env for env, _ in SECRET_SETTINGS}
    assert {"NOTIFY__SLACK_WEBHOOK_URL", "REVIEW__PASSWORD", "SOURCES__X__BEARER_TOKEN"} <= names
    assert len(names) >= 10


@pytest.mark.parametrize(("env", "model"), SECRET_SETTINGS, ids=[e for e, _ in SECRET_SETTINGS])
def test_a_malformed_setting_names_itself_but_never_prints_a_secret(
    monkeypatch: pytest.MonkeyPatch, env: str, model: type[BaseModel]
) -> None:
    for name, value in {env: SECRET, **_breakers(env, model)}.items():
        monkeypatch.setenv(f"LIKENESS_MONITOR_{name}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    printed = "".join(traceback.format_exception(caught.value))
    assert SECRET not in printed
    assert "LIKENESS_MONITOR_" + env.split("__")[0] in str(caught.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ReviewSettings.model_validate({"password": SECRET}),
        lambda: NotifySettings.model_validate({"webhook_url": SECRET}),
        lambda: Settings.model_validate({"review": {"password": SECRET}}),
        lambda: Settings.model_validate(
            {"notify": {"slack_webhook_url": SECRET, "timeout_s": "x"}}
        ),
    ],
)
def test_settings_built_in_code_do_not_quote_their_input_either(build: object) -> None:
    with pytest.raises(ValueError) as caught:
        build()  # type: ignore[operator]
    assert SECRET not in "".join(traceback.format_exception(caught.value))


def test_valid_secrets_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIKENESS_MONITOR_REVIEW__USERNAME", "rita")
    monkeypatch.setenv("LIKENESS_MONITOR_REVIEW__PASSWORD", SECRET)
    settings = load_settings()
    assert settings.review.password == SecretStr(SECRET)
