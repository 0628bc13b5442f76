"""Unit tests of the pure parts: ADF <-> wiki conversion and the JQL parser."""

from __future__ import annotations

import datetime as dt

import pytest

from jirasim import adf, jql


@pytest.mark.parametrize(
    "wiki",
    [
        "plain text",
        "two\n\nparagraphs",
        "line one\nline two",
        "*bold* and _italic_ and {{code}}",
        "h2. Heading\n\nbody",
        "* one\n* two",
        "# first\n# second",
        "{code:python}\nx = 1\n{code}",
        "see [the docs|https://example.com/docs]",
    ],
)
def test_wiki_survives_a_round_trip_through_adf(wiki):
    doc = adf.wiki_to_adf(wiki)
    assert doc["type"] == "doc" and doc["version"] == 1
    assert adf.adf_to_wiki(doc) == wiki


def test_adf_paragraphs_become_wiki_paragraphs():
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "a"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "b"}]},
        ],
    }
    assert adf.adf_to_wiki(doc) == "a\n\nb"
    assert adf.adf_to_wiki(None) is None


def test_jql_parses_boolean_structure_and_order():
    q = jql.parse("project = ENG AND (status in (Done, 'To Do') OR key = ENG-1) ORDER BY key DESC")
    assert isinstance(q.where, jql.BoolOp) and q.where.op == "and"
    assert q.order == [("key", "desc")]


@pytest.mark.parametrize("bad", ["project =", "project = ENG AND", "(project = ENG", "= 1"])
def test_jql_syntax_errors(bad):
    with pytest.raises(jql.JqlError):
        jql.parse(bad)


def test_relative_and_absolute_dates():
    now = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
    assert jql.parse_date("-5m", now) == now - dt.timedelta(minutes=5)
    assert jql.parse_date("-2d", now) == now - dt.timedelta(days=2)
    assert jql.parse_date("2026-01-01 10:30", now) == dt.datetime(2026, 1, 1, 10, 30, tzinfo=dt.UTC)
    with pytest.raises(jql.JqlError):
        jql.parse_date("yesterday", now)
