"""The review page in a real headless browser (Debian's chromium, driven by Playwright).

The page runs on 127.0.0.1 from its own handlers and a store in a temporary folder; what the
page publishes is applied to that store, as the worker's review agent would.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr

from monitor.config import ReviewSettings
from monitor.pipeline.review_role import apply_review
from monitor.records import EvidenceRecord, Review, Synthetic
from monitor.review.decisions import ReviewStore
from tests.conftest import require_binary
from tests.review.conftest import (
    HOSTILE_TITLE,
    PASSWORD,
    TOKEN,
    USER,
    PageServer,
    make_alert,
    store_as_before,
)

CHROMIUM = "/usr/bin/chromium"

Serve = Callable[..., PageServer]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Only the browser tests need chromium; the plain HTTP ones run without it.
    chromium = require_binary(CHROMIUM)
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    yield context.new_page()
    context.close()


def _states(page: Page) -> dict[str, str | None]:
    rows = page.locator("tr.alert")
    return {
        rows.nth(i).locator(".title").inner_text(): rows.nth(i).get_attribute("data-state")
        for i in range(rows.count())
    }


def test_the_list_shows_each_alert_with_evidence_signals_spread_and_clip_link(
    serve: Serve, page: Page, package_file: Callable[[str], Path]
) -> None:
    server = serve()
    fast = server.add(
        make_alert("fast", "ghostface", views=50_000, hours_old=1, alerted_minutes_ago=90),
        package_file("t1.jpg"),
    )
    server.add(make_alert("newest", "sidney", platform="tiktok", alerted_minutes_ago=1))
    server.add(make_alert("middle", "ghostface", alerted_minutes_ago=30))
    page.goto(f"{server.url}/review")
    titles = page.locator("tr.alert .title").all_inner_texts()
    assert titles == ["clip newest", "clip middle", "clip fast"]
    row = page.locator(f"#alert-{fast.alert_id}")
    thumbnail = row.locator("img.evidence")
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") > 0
    text = row.inner_text()
    assert "face 0.912 / 0.800" in text and "score 0.912 / threshold 0.800" in text
    assert "50,000 views" in text and "50,000 views/h" in text
    assert row.locator("a.clip-link").get_attribute("href") == "https://www.youtube.com/watch/fast"
    assert page.locator("#reviewer").inner_text() == USER

    page.select_option("select[name=sort]", "spreading")
    page.click("button[type=submit] >> text=Filter")
    assert page.locator("tr.alert .title").first.inner_text() == "clip fast"
    page.select_option("select[name=platform]", "tiktok")
    page.click("button[type=submit] >> text=Filter")
    assert page.locator("tr.alert .title").all_inner_texts() == ["clip newest"]


def test_confirm_dismiss_with_a_reason_and_undo_are_published_and_kept(
    serve: Serve, page: Page, tmp_path: Path
) -> None:
    server = serve()
    a = server.add(make_alert("a", "ghostface", alerted_minutes_ago=2))
    b = server.add(make_alert("b", "ghostface", alerted_minutes_ago=1))
    page.goto(f"{server.url}/review?entity=ghostface")
    page.locator(f"#alert-{a.alert_id} button", has_text="Confirm").click()
    assert page.url.endswith("/review?entity=ghostface")
    row_b = page.locator(f"#alert-{b.alert_id}")
    row_b.locator("input[name=reason]").fill("a cosplayer, not the character")
    row_b.locator("button", has_text="Dismiss").click()
    assert _states(page) == {"clip a": "confirmed", "clip b": "dismissed"}
    assert "a cosplayer, not the character" in page.locator(f"#alert-{b.alert_id}").inner_text()

    page.locator(f"#alert-{b.alert_id} button", has_text="Undo").click()
    assert _states(page) == {"clip a": "confirmed", "clip b": "new"}
    assert [(r.alert_id, r.decision, r.reviewer) for r in server.published] == [
        (a.alert_id, "confirm", USER),
        (b.alert_id, "dismiss", USER),
        (b.alert_id, "undo", USER),
    ]
    assert server.published[1].reason == "a cosplayer, not the character"

    # What the page reads after a restart: the store on disk.
    reopened = ReviewStore(tmp_path / "review.sqlite3")
    assert {row.alert.clip.clip_id: row.state for row in reopened.alerts()} == {
        "a": "confirmed",
        "b": "new",
    }
    reopened.close()

    exported = page.request.get(f"{server.url}/review/export.json").json()
    assert [(e["alert_id"], e["confirmed_by"]) for e in exported] == [(a.alert_id, USER)]
    evidence_url = exported[0]["evidence_url"]
    assert evidence_url.startswith(f"https://monitor.example/evidence/{a.alert_id}.jpg?exp=")
    assert exported[0]["evidence"][0]["signal"] == "face"
    csv_text = page.request.get(f"{server.url}/review/export.csv").text()
    header, line, *rest = csv_text.strip().splitlines()
    assert header.startswith("alert_id,entity_id,") and not rest
    assert a.alert_id in line and "face 0.912/0.800" in line and a.clip.url in line


def test_an_attackers_title_and_url_are_shown_as_text(serve: Serve, page: Page) -> None:
    server = serve()
    hostile = server.add(
        make_alert("x", "ghostface", title=HOSTILE_TITLE, url="javascript:alert(1)")
    )
    page.goto(f"{server.url}/review")
    row = page.locator(f"#alert-{hostile.alert_id}")
    assert row.locator(".title").inner_text() == HOSTILE_TITLE
    assert row.locator(".title script, .title b").count() == 0
    assert page.title() != "pwned"
    assert row.locator("a.clip-link").count() == 0
    assert row.locator(".clip-url").inner_text() == "javascript:alert(1)"


def test_actions_without_credentials_or_the_csrf_token_are_refused(
    serve: Serve, page: Page
) -> None:
    server = serve()
    alert = server.add(make_alert("a", "ghostface"))
    page.goto(f"{server.url}/review")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["review_csrf"]
    action = f"{server.url}/review/{alert.alert_id}/confirm"
    bearer = f"Bearer {TOKEN}"

    def post(authorization: str | None, nonce: str | None, field: str | None) -> int:
        headers = {} if authorization is None else {"Authorization": authorization}
        if nonce is not None:
            headers["Cookie"] = f"review_csrf={nonce}"
        data = {} if field is None else {"csrf": field}
        with httpx.Client() as client:
            return client.post(action, data=data, headers=headers).status_code

    # The browser's own session (credentials and cookie), without the form's hidden field.
    assert page.request.post(action, form={}).status == 403
    assert post(None, cookie, token) == 401
    assert post("Bearer wrong", cookie, token) == 401
    assert post(bearer, None, token) == 403
    assert post(bearer, cookie, None) == 403
    assert post(bearer, "attacker-chosen-nonce", token) == 403
    assert post(bearer, cookie, "0" * 64) == 403
    assert server.published == [] and server.store.get(alert.alert_id).state == "new"  # type: ignore[union-attr]
    # With all three the same request is accepted: the refusals were for what was missing.
    assert post(bearer, cookie, token) == 303
    assert [(r.decision, r.reviewer) for r in server.published] == [("confirm", "token")]


def test_without_configured_credentials_the_page_says_what_to_set(serve: Serve) -> None:
    server = serve(ReviewSettings())
    response = httpx.get(f"{server.url}/review")
    assert response.status_code == 503 and "LIKENESS_MONITOR_REVIEW__TOKEN" in response.text


def test_an_alert_stored_before_times_needed_a_zone_is_listed(tmp_path: Path) -> None:
    old = make_alert("old", "ghostface", title="kept last month")
    store_as_before(tmp_path / "review.sqlite3", old)
    server = PageServer(tmp_path, ReviewSettings(username=USER, password=SecretStr(PASSWORD)))
    try:
        server.add(make_alert("new", "ghostface", title="kept today"))
        response = httpx.get(f"{server.url}/review", auth=(USER, PASSWORD))
        apply_review(server.store, Review(alert_id=old.alert_id, decision="confirm", reviewer=USER))
        exported = httpx.get(f"{server.url}/review/export.csv", auth=(USER, PASSWORD))
    finally:
        server.close()
    assert response.status_code == 200
    assert "kept last month" in response.text and "kept today" in response.text
    assert exported.status_code == 200 and "kept last month" in exported.text


def test_basic_auth_with_the_wrong_password_is_refused(serve: Serve) -> None:
    server = serve(ReviewSettings(username=USER, password=SecretStr(PASSWORD)))
    assert httpx.get(f"{server.url}/review", auth=(USER, "wrong")).status_code == 401
    assert httpx.get(f"{server.url}/review", auth=(USER, PASSWORD)).status_code == 200
    assert (
        httpx.get(f"{server.url}/review", headers={"Authorization": "Bearer x"}).status_code == 401
    )


@pytest.mark.parametrize(
    "title",
    [
        '=HYPERLINK("https://evil.example")',
        "\n=1+1",
        " =1+1",
        "\t@SUM(A1)",
        "\r\n-2+3",
        "  +cmd|' /C calc'!A0",
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_as_text(
    serve: Serve, title: str
) -> None:
    server = serve()
    alert = server.add(make_alert("f", "ghostface", title=title))
    apply_review(server.store, Review(alert_id=alert.alert_id, decision="confirm", reviewer=USER))
    response = httpx.get(f"{server.url}/review/export.csv", auth=(USER, PASSWORD))
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["title"] for row in rows] == ["'" + title]


def test_the_pages_evidence_images_are_signed_and_served_only_so_or_to_reviewers(
    serve: Serve, package_file: Callable[[str], Path]
) -> None:
    server = serve()
    alert = server.add(make_alert("e", "ghostface"), package_file("t1.jpg"))
    html = httpx.get(f"{server.url}/review", headers={"Authorization": f"Bearer {TOKEN}"}).text
    src = re.search(r'<img class="evidence" src="([^"]+)"', html)
    assert src is not None
    signed = src.group(1).replace("&amp;", "&")
    assert signed.startswith(f"/evidence/{alert.alert_id}.jpg?exp=")
    # The browser fetches the signed src without a bearer token: served.
    assert httpx.get(f"{server.url}{signed}").status_code == 200
    # The plain, predictable URL: refused without credentials, served with them.
    plain = f"{server.url}/evidence/{alert.alert_id}.jpg"
    assert httpx.get(plain).status_code == 403
    assert httpx.get(plain, auth=(USER, PASSWORD)).status_code == 200


def test_caption_evidence_shows_the_sentence_and_the_description_it_read_like(
    serve: Serve, page: Page
) -> None:
    server = serve()
    alert = make_alert("described", "ghostface")
    alert = alert.model_copy(
        update={
            "evidence": [
                *alert.evidence,
                EvidenceRecord(
                    signal="caption",
                    score=0.71,
                    threshold=0.42,
                    region="described",
                    text="the masked <b>killer</b> in the long black robe",
                    reference="a killer in a white screaming mask and a black hooded robe",
                ),
            ]
        }
    )
    server.add(alert)
    page.goto(f"{server.url}/review")
    signals = page.locator(f"#alert-{alert.alert_id} ul.signals li").all_inner_texts()
    assert signals[-1] == (
        "caption 0.710 / 0.420 (described): “the masked <b>killer</b> in the long black robe” "
        "reads like “a killer in a white screaming mask and a black hooded robe”"
    )
    assert signals[-2] == "caption 1.000: “ghostface”"


def test_whether_a_clip_is_ai_generated_is_shown_and_exported(serve: Serve, page: Page) -> None:
    server = serve()
    synthetic = Synthetic(
        source="c2pa",
        value="ai_generated",
        validated=True,
        generator="Sora <1.0>",
        detail="C2PA: digitalSourceType trainedAlgorithmicMedia; manifest Valid",
    )
    made = server.add(make_alert("made", "ghostface").model_copy(update={"synthetic": synthetic}))
    plain = server.add(make_alert("plain", "ghostface"))
    page.goto(f"{server.url}/review")
    said = page.locator(f"#alert-{made.alert_id} .synthetic")
    assert said.inner_text() == (
        "AI-generated (C2PA manifest, validated, generator Sora <1.0>): "
        "C2PA: digitalSourceType trainedAlgorithmicMedia; manifest Valid"
    )
    assert said.get_attribute("data-source") == "c2pa"
    assert page.locator(f"#alert-{plain.alert_id} .synthetic").inner_text() == (
        "AI provenance unknown: nothing says"
    )

    for alert in (made, plain):
        apply_review(
            server.store, Review(alert_id=alert.alert_id, decision="confirm", reviewer=USER)
        )
    exported = httpx.get(f"{server.url}/review/export.json", auth=(USER, PASSWORD)).json()
    by_id = {row["alert_id"]: row["synthetic"] for row in exported}
    assert by_id[made.alert_id] == synthetic.model_dump(mode="json")
    assert by_id[plain.alert_id]["value"] == "unknown"
    response = httpx.get(f"{server.url}/review/export.csv", auth=(USER, PASSWORD))
    rows = {row["alert_id"]: row for row in csv.DictReader(io.StringIO(response.text))}
    assert (rows[made.alert_id]["synthetic"], rows[made.alert_id]["synthetic_source"]) == (
        "ai_generated",
        "c2pa",
    )
    assert rows[made.alert_id]["synthetic_detail"].startswith("AI-generated (C2PA manifest")
    assert rows[plain.alert_id]["synthetic"] == "unknown"
