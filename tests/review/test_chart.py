"""A story's views over time as a small SVG chart: well-formed, inside its box, readable, and
sound for every shape of history a story can have."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

from monitor.records import ViewsAt
from monitor.review.chart import views_chart

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _points(*pairs: tuple[float, int]) -> list[ViewsAt]:
    """(hours after T0, views) pairs."""
    return [ViewsAt(at=T0 + timedelta(hours=hours), views=views) for hours, views in pairs]


def _parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return root


def _coordinates(root: ET.Element) -> list[tuple[float, float]]:
    line = root.find(f"{SVG}polyline")
    assert line is not None
    return [
        (float(x), float(y)) for x, y in (pair.split(",") for pair in line.attrib["points"].split())
    ]


def _texts(root: ET.Element) -> list[str]:
    return [text.text or "" for text in root.iter(f"{SVG}text")]


def test_views_over_time_are_a_line_across_the_box_with_start_end_and_peak_labelled() -> None:
    root = _parsed(views_chart(_points((0, 100), (1, 5_000), (2, 12_345)), width=200, height=60))
    xy = _coordinates(root)
    assert len(xy) == 3
    assert [x for x, _ in xy] == sorted(x for x, _ in xy), "time runs left to right"
    assert all(0 <= x <= 200 and 0 <= y <= 60 for x, y in xy)
    assert xy[-1][1] < xy[1][1] < xy[0][1], "more views is higher up"
    assert _texts(root) == ["max 12.3k views", "2025-03-01 12:00", "2025-03-01 14:00"]
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == (
        "Views over time: 12.3k at 2025-03-01 14:00 UTC, peak 12.3k"
    )


def test_points_in_any_order_are_drawn_in_time_order() -> None:
    ordered = views_chart(_points((0, 1), (1, 2), (2, 3)))
    assert views_chart(_points((2, 3), (0, 1), (1, 2))) == ordered


def test_no_points_is_a_note_and_no_chart() -> None:
    drawn = views_chart([])
    assert "<svg" not in drawn and "no views yet" in drawn


def test_one_point_or_one_time_is_a_dot_not_a_line() -> None:
    for points in (_points((0, 700)), _points((0, 300), (0, 700))):
        root = _parsed(views_chart(points))
        assert root.find(f"{SVG}polyline") is None
        dot = root.find(f"{SVG}circle")
        assert dot is not None and float(dot.attrib["cx"]) > 0
        assert _texts(root) == ["max 700 views", "2025-03-01 12:00"]


def test_no_views_at_all_lie_on_the_floor_without_dividing_by_zero() -> None:
    root = _parsed(views_chart(_points((0, 0), (1, 0)), width=100, height=50))
    xy = _coordinates(root)
    assert len({y for _, y in xy}) == 1 and all(0 < y < 50 for _, y in xy)
    assert "max 0 views" in _texts(root)


def test_huge_counts_are_shortened_and_still_fit() -> None:
    svg = views_chart(_points((0, 3), (1, 12_345_678_901)), width=120, height=40)
    root = _parsed(svg)
    assert "max 12.3B views" in _texts(root)
    assert all(0 <= x <= 120 and 0 <= y <= 40 for x, y in _coordinates(root))
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


def test_times_in_another_zone_are_labelled_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    points = [
        ViewsAt(at=datetime(2025, 3, 1, 14, 0, tzinfo=plus_two), views=5),
        ViewsAt(at=datetime(2025, 3, 1, 17, 0, tzinfo=plus_two), views=9),
    ]
    assert _texts(_parsed(views_chart(points)))[1:] == ["2025-03-01 12:00", "2025-03-01 15:00"]


def test_the_chart_is_markup_only_of_its_own_making() -> None:
    # Only times and counts reach it, formatted here; what it writes is escaped all the same,
    # and the page inlines it: no script, no link, no attribute outside its drawing.
    svg = views_chart(_points((0, 10), (5, 20)))
    root = _parsed(svg)
    tags = {element.tag.removeprefix(SVG) for element in root.iter()}
    assert tags <= {"svg", "title", "polyline", "circle", "text"}
    assert "<script" not in svg and "href" not in svg and "on" not in root.attrib


def test_a_peak_that_rounds_up_to_the_next_unit_is_written_in_it() -> None:
    labels = {
        views: _texts(_parsed(views_chart(_points((0, views)))))[0]
        for views in (9_000, 999_999, 999_960_000)
    }
    assert labels == {
        9_000: "max 9,000 views",
        999_999: "max 1.0M views",
        999_960_000: "max 1.0B views",
    }
