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
from monitor.records import Alert, EvidenceRecord, Review, Synthetic
from monitor.review.decisions import ReviewStore
from tests.conftest import require_binary
from tests.review.conftest import (
    HOSTILE_TITLE,
    PASSWORD,
    TOKEN,
    USER,
    PageServer,
    make_alert,
    make_story,
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


# --- stories: one viral clip and its copies ------------------------------------------------


def _story_of_three(server: PageServer) -> list[Alert]:
    """A viral clip on YouTube re-posted on TikTok and again on YouTube: three alerts."""
    history = [(120, 2_000), (60, 30_000), (5, 250_000)]
    story = make_story(
        "youtube:s1", "ghostface", copies=3, platforms={"youtube": 2, "tiktok": 1}, history=history
    )
    return [
        server.add(
            make_alert(
                clip, "ghostface", platform=platform, alerted_minutes_ago=minutes, story=story
            )
        )
        for clip, platform, minutes in (
            ("s1", "youtube", 60),
            ("s2", "tiktok", 20),
            ("s3", "youtube", 5),
        )
    ]


def test_a_story_is_listed_once_with_its_copies_and_its_views_over_time(
    serve: Serve, page: Page
) -> None:
    server = serve()
    copies = _story_of_three(server)
    server.add(make_alert("lone", "sidney", alerted_minutes_ago=1))
    story_id = copies[0].story.story_id  # type: ignore[union-attr]
    page.goto(f"{server.url}/review")

    stories = page.locator("section.story")
    assert stories.count() == 2, "three copies are one story; the lone alert another"
    story = page.locator(f"#story-{story_id}")
    assert story.locator("tr.alert .title").all_inner_texts() == ["clip s3", "clip s2", "clip s1"]
    assert story.locator(".story-copies").inner_text() == "3 copies"
    assert story.locator(".story-platforms").inner_text() == "tiktok 1 · youtube 2"
    assert story.locator(".story-views").inner_text() == "250,000 views in all"
    assert story.locator(".story-states").inner_text() == "3 new · 0 confirmed · 0 dismissed"
    chart = story.locator(".story-chart svg")
    assert chart.count() == 1
    assert len(chart.locator("polyline").get_attribute("points").split()) == 3  # type: ignore[union-attr]
    assert "250.0k" in (chart.locator("title").text_content() or "")
    assert chart.bounding_box()["width"] > 0  # type: ignore[index]  # drawn, not only present
    # Each copy's own row keeps its own buttons.
    copy_row = page.locator(f"#alert-{copies[1].alert_id}")
    assert copy_row.locator("button", has_text="Confirm").count() == 1


def test_dismiss_story_dismisses_every_copy_not_already_dismissed_each_with_its_own_review(
    serve: Serve, page: Page
) -> None:
    server = serve()
    first, second, third = _story_of_three(server)
    apply_review(server.store, Review(alert_id=second.alert_id, decision="dismiss", reviewer="b"))
    story_id = first.story.story_id  # type: ignore[union-attr]
    page.goto(f"{server.url}/review?entity=ghostface")

    story = page.locator(f"#story-{story_id}")
    story.locator(".story-dismiss input[name=reason]").fill("a fan edit, not AI")
    story.locator("button", has_text="Dismiss story").click()
    assert page.url.endswith("/review?entity=ghostface")
    assert _states(page) == {"clip s1": "dismissed", "clip s2": "dismissed", "clip s3": "dismissed"}
    assert sorted((r.alert_id, r.decision, r.reason) for r in server.published) == sorted(
        (alert.alert_id, "dismiss", "a fan edit, not AI") for alert in (first, third)
    ), "one review per copy, none for the copy already dismissed"
    story = page.locator(f"#story-{story_id}")
    assert story.locator("button", has_text="Dismiss story").count() == 0
    assert story.locator(".story-states").inner_text() == "0 new · 0 confirmed · 3 dismissed"

    story.locator("button", has_text="Confirm story").click()
    assert set(_states(page).values()) == {"confirmed"}
    assert [r.decision for r in server.published[2:]] == ["confirm"] * 3
    assert all(r.reason is None for r in server.published[2:])


def test_story_actions_refuse_a_bad_or_unknown_story_and_a_missing_csrf_token(
    serve: Serve, page: Page
) -> None:
    server = serve()
    first = _story_of_three(server)[0]
    story_id = first.story.story_id  # type: ignore[union-attr]
    lone = server.add(make_alert("lone", "sidney"))
    page.goto(f"{server.url}/review")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token is not None

    def post(path: str, form: dict[str, str | float | bool]) -> int:
        return page.request.post(f"{server.url}/review/stories/{path}", form=form).status

    assert post(f"{story_id}/dismiss", {}) == 403
    assert post(f"{story_id}/dismiss", {"csrf": "0" * 64}) == 403
    for path in (
        f"{story_id[:-1]}/dismiss",  # not 20 hex digits
        f"{story_id.upper()}/dismiss",
        "..%2F..%2Fetc/dismiss",
        f"{'0' * 20}/dismiss",  # no such story
        f"{lone.alert_id}/dismiss",  # an alert, not a story
        f"{story_id}/undo",  # a story is confirmed or dismissed, never undone at once
        f"{story_id}/delete",
    ):
        assert post(path, {"csrf": token}) == 404, path
    assert server.published == []
    assert post(f"{story_id}/confirm", {"csrf": token}) == 200  # followed the 303 to the page
    assert len(server.published) == 3


def test_exports_name_each_alerts_story_and_its_copies(serve: Serve) -> None:
    server = serve()
    copies = _story_of_three(server)
    lone = server.add(make_alert("lone", "sidney"))
    for alert in (copies[0], lone):
        apply_review(
            server.store, Review(alert_id=alert.alert_id, decision="confirm", reviewer=USER)
        )
    story_id = copies[0].story.story_id  # type: ignore[union-attr]
    exported = httpx.get(f"{server.url}/review/export.json", auth=(USER, PASSWORD)).json()
    assert {(e["alert_id"], e["story_id"], e["story_copies"]) for e in exported} == {
        (copies[0].alert_id, story_id, 3),
        (lone.alert_id, None, 1),
    }
    response = httpx.get(f"{server.url}/review/export.csv", auth=(USER, PASSWORD))
    rows = {row["alert_id"]: row for row in csv.DictReader(io.StringIO(response.text))}
    assert (rows[copies[0].alert_id]["story_id"], rows[copies[0].alert_id]["story_copies"]) == (
        story_id,
        "3",
    )
    assert (rows[lone.alert_id]["story_id"], rows[lone.alert_id]["story_copies"]) == ("", "1")


def test_stories_are_paged_and_an_action_returns_to_the_same_page(serve: Serve) -> None:
    server = serve()
    server.page.page_size = 1
    for n in range(3):
        server.add(make_alert(f"p{n}", "ghostface", alerted_minutes_ago=n))
    auth = (USER, PASSWORD)
    with httpx.Client(auth=auth, base_url=server.url) as client:
        first = client.get("/review?entity=ghostface").text
        assert "clip p0" in first and "clip p1" not in first
        assert 'href="/review?entity=ghostface&amp;page=2">older stories' in first
        second = client.get("/review?entity=ghostface&page=2").text
        assert "clip p1" in second and "newer stories" in second and "older stories" in second
        last = client.get("/review?entity=ghostface&page=3").text
        assert "clip p2" in last and "older stories" not in last
        assert "clip p0" in client.get("/review?page=junk").text, "a bad page is the first"
        token = re.search(r'name="csrf" value="([^"]+)"', second)
        assert token is not None
        alert_id = Alert.id_for("youtube:p1", "ghostface")
        answer = client.post(
            f"/review/{alert_id}/confirm?entity=ghostface&page=2",
            data={"csrf": token.group(1)},
            follow_redirects=False,
        )
    assert answer.headers["Location"] == "/review?entity=ghostface&page=2"
