"""The review page's HTML, as Jinja2 templates kept in code: one module, no package data.

Autoescaping is on for every template, and nothing is marked safe but a story's views chart:
titles, authors, names and reasons are text that anyone who uploads a clip (or names an
account) chooses. The chart is SVG markup built by ``chart.views_chart`` from times and counts
alone, every text in it escaped there. A clip's URL
becomes a link only when it is http(s); any other scheme (``javascript:``) is shown as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from monitor.media.provenance import describe
from monitor.records import ViewsAt
from monitor.review.chart import views_chart

__all__ = ["environment"]

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}Review{% endblock %} · likeness monitor</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: .4rem; vertical-align: top; text-align: left; }
img.evidence { max-width: 200px; max-height: 140px; }
.state-new { color: #a60; } .state-confirmed { color: #070; } .state-dismissed { color: #777; }
.below { color: #777; } .above { font-weight: bold; }
form.inline { display: inline; }
.filters label { margin-right: 1rem; }
.empty { color: #777; padding: 2rem 0; }
.synthetic { color: #777; font-size: 90%; } .synthetic-ai_generated { color: #a0a; font-weight: bold; }
section.story { border: 1px solid #ccc; border-radius: 4px; margin: 1rem 0; padding: .5rem 1rem; }
.story-head { display: flex; gap: 2rem; align-items: flex-start; flex-wrap: wrap; }
.story-head h2 { font-size: 1.1rem; margin: 0 0 .3rem; }
.story-actions form { margin-bottom: .3rem; }
.more-copies, .chart-empty { color: #777; }
.pages a { margin-right: 1rem; }
</style>
</head>
<body>
{% block body %}{% endblock %}
</body>
</html>
"""

_INDEX = """{% extends "base.html" %}
{% block body %}
<h1>Alerts to review</h1>
<p>Signed in as <span id="reviewer">{{ reviewer }}</span>.
Export confirmed alerts: <a href="/review/export.csv">CSV</a> · <a href="/review/export.json">JSON</a></p>
<form class="filters" method="get" action="/review">
{% for name, label in (("entity", "Entity"), ("franchise", "Franchise"), ("platform", "Platform")) %}
<label>{{ label }}
<select name="{{ name }}">
<option value="">all</option>
{% for value in facets[name] %}<option value="{{ value }}"{% if filters[name] == value %} selected{% endif %}>{{ value }}</option>{% endfor %}
</select></label>
{% endfor %}
<label>State
<select name="state">
<option value="">all</option>
{% for value in states %}<option value="{{ value }}"{% if filters.state == value %} selected{% endif %}>{{ value }}</option>{% endfor %}
</select></label>
<label>Order
<select name="sort">
<option value="newest"{% if filters.sort == "newest" %} selected{% endif %}>newest first</option>
<option value="spreading"{% if filters.sort == "spreading" %} selected{% endif %}>fastest-spreading first</option>
</select></label>
<button type="submit">Filter</button>
</form>
{% if not stories %}
<p class="empty">No alerts match.</p>
{% else %}
{% for story in stories %}
<section class="story" id="story-{{ story.key }}" data-story-id="{{ story.story_id or "" }}" data-copies="{{ story.copies }}">
<div class="story-head">
<div class="story-facts">
<h2><span class="story-entity">{{ story.entity.name }}</span> · <span class="story-copies">{{ story.copies }} {{ "copy" if story.copies == 1 else "copies" }}</span></h2>
<div class="story-platforms">{% for platform, count in story.platforms.items() %}{{ platform }} {{ count }}{% if not loop.last %} · {% endif %}{% endfor %}</div>
<div class="story-views">{{ "{:,}".format(story.views) if story.views is not none else "?" }} views in all</div>
<div class="story-first-seen">first seen {{ story.first_seen.strftime("%Y-%m-%d %H:%M UTC") }}</div>
<div class="story-states">{% for state in states %}<span class="state-{{ state }}">{{ story.states[state] }} {{ state }}</span>{% if not loop.last %} · {% endif %}{% endfor %}</div>
</div>
<div class="story-chart">{{ story.history|views_chart }}</div>
{% if story.story_id %}
<div class="story-actions">
{% if story.states.confirmed < story.copies %}
<form class="story-confirm" method="post" action="/review/stories/{{ story.story_id }}/confirm{{ back }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<button type="submit" name="action" value="confirm">Confirm story</button>
</form>
{% endif %}
{% if story.states.dismissed < story.copies %}
<form class="story-dismiss" method="post" action="/review/stories/{{ story.story_id }}/dismiss{{ back }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="text" name="reason" maxlength="2000" placeholder="why (optional)">
<button type="submit" name="action" value="dismiss">Dismiss story</button>
</form>
{% endif %}
</div>
{% endif %}
</div>
<table>
<thead><tr><th>Evidence</th><th>Clip</th><th>Entity</th><th>Signals</th><th>Spread</th><th>State</th><th>Actions</th></tr></thead>
<tbody>
{% for row in story.shown %}{% set alert = row.alert %}
<tr class="alert" id="alert-{{ alert.alert_id }}" data-state="{{ row.state }}">
<td>{% set src = evidence_src(alert.alert_id) %}<a href="{{ src }}"><img class="evidence" src="{{ src }}" alt="evidence frame"></a></td>
<td>
<div class="title">{{ alert.clip.title or "(untitled)" }}</div>
<div>{{ alert.clip.platform }}{% if alert.clip.author %} · {{ alert.clip.author }}{% endif %}</div>
<div>{% if alert.clip.url is web_url %}<a class="clip-link" href="{{ alert.clip.url }}" rel="noopener noreferrer" target="_blank">open clip</a>{% else %}<span class="clip-url">{{ alert.clip.url }}</span>{% endif %}</div>
<div>alerted {{ alert.alerted_at.strftime("%Y-%m-%d %H:%M UTC") }}</div>
</td>
<td><div class="entity">{{ alert.entity.name }}</div><div>{{ alert.entity.kind }}{% if alert.entity.franchise %} · {{ alert.entity.franchise }}{% endif %}</div></td>
<td>
<div class="{{ 'above' if alert.score >= alert.threshold else 'below' }}">score {{ "%.3f"|format(alert.score) }} / threshold {{ "%.3f"|format(alert.threshold) }}</div>
<ul class="signals">
{% for e in alert.evidence %}<li>{{ e.signal }} {{ "%.3f"|format(e.score) }}{% if e.threshold is not none %} / {{ "%.3f"|format(e.threshold) }}{% endif %}{% if e.region %} ({{ e.region }}){% endif %}{% if e.frame_time is not none %} at {{ "%.1f"|format(e.frame_time) }} s{% endif %}{% if e.signal == "caption" and e.text %}: “{{ e.text }}”{% if e.reference %} reads like “{{ e.reference }}”{% endif %}{% endif %}</li>
{% endfor %}</ul>
<div class="synthetic synthetic-{{ alert.synthetic.value }}" data-source="{{ alert.synthetic.source }}">{{ alert.synthetic|provenance }}</div>
</td>
<td><div class="views">{{ "{:,}".format(alert.views) if alert.views is not none else "?" }} views</div>
<div class="velocity">{{ "{:,.0f}".format(row.velocity) if row.velocity is not none else "?" }} views/h</div></td>
<td><span class="state state-{{ row.state }}">{{ row.state }}</span>
{% if row.state != "new" %}<div>by {{ row.reviewer }}</div>{% endif %}
{% if row.reason %}<div class="reason">{{ row.reason }}</div>{% endif %}</td>
<td>
{% if row.state == "new" %}
<form class="inline" method="post" action="/review/{{ alert.alert_id }}/confirm{{ back }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<button type="submit" name="action" value="confirm">Confirm</button>
</form>
<form class="inline" method="post" action="/review/{{ alert.alert_id }}/dismiss{{ back }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="text" name="reason" maxlength="2000" placeholder="why (optional)">
<button type="submit" name="action" value="dismiss">Dismiss</button>
</form>
{% else %}
<form class="inline" method="post" action="/review/{{ alert.alert_id }}/undo{{ back }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<button type="submit" name="action" value="undo">Undo</button>
</form>
{% endif %}
</td>
</tr>
{% endfor %}
</tbody>
</table>
{% if story.not_shown %}<p class="more-copies">and {{ story.not_shown }} more {{ "copy" if story.not_shown == 1 else "copies" }} not listed</p>{% endif %}
</section>
{% endfor %}
<nav class="pages">
{% if newer %}<a class="newer" href="/review{{ newer }}">newer stories</a>{% endif %}
{% if older %}<a class="older" href="/review{{ older }}">older stories</a>{% endif %}
</nav>
{% endif %}
{% endblock %}
"""


def _web_url(value: object) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")


def _chart(points: Sequence[ViewsAt]) -> Markup:
    return Markup(views_chart(points))  # escaped where it is built (chart.py)


def environment() -> Environment:
    env = Environment(
        loader=DictLoader({"base.html": _BASE, "index.html": _INDEX}),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests["web_url"] = _web_url
    env.filters["provenance"] = describe
    env.filters["views_chart"] = _chart
    return env
