from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentcore.sql import SQLFileError, load_queries, parse_sql

ROOT = Path(__file__).resolve().parents[2]


def test_every_statement_has_a_name_description_and_text() -> None:
    queries = load_queries()
    assert len(queries) >= 8
    for name, query in queries.items():
        assert query.name == name and query.description and query.text
        assert "%s" not in query.text, f"{name}: use named %(param)s placeholders"


def test_unknown_name_fails_loudly_listing_known_names() -> None:
    with pytest.raises(KeyError, match=r"no SQL statement named 'nope'; known: .*append_messages"):
        load_queries()["nope"]


def test_parse_splits_blocks_and_keeps_descriptions() -> None:
    text = (
        "-- file comment\n\n-- name: one\n-- First.\nSELECT 1;\n\n"
        "-- name: two\n-- Second\n-- line.\nSELECT\n  2\n"
    )
    queries = parse_sql(text, "x.sql")
    assert list(queries) == ["one", "two"]
    assert queries["one"].text == "SELECT 1"
    assert queries["two"].description == "Second line."
    assert queries["two"].text == "SELECT\n  2"
    assert queries["two"].source == "x.sql:7"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "-- name: a\n-- d\nSELECT 1;\n-- name: a\n-- d\nSELECT 2;",
            "duplicate statement name 'a'",
        ),
        ("-- name: a\nSELECT 1;", "needs a '--' description"),
        ("-- name: a\n-- only a description\n", "has no statement"),
        ("SELECT 1;\n-- name: a\n-- d\nSELECT 1;", "before the first"),
        ("-- name: Bad-Name\n-- d\nSELECT 1;", "bad statement name"),
    ],
)
def test_malformed_sql_files_are_rejected(text: str, error: str) -> None:
    with pytest.raises(SQLFileError, match=re.escape(error)):
        parse_sql(text, "bad.sql")


def test_duplicate_name_across_files_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("-- name: same\n-- d\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- name: same\n-- d\nSELECT 2;\n")
    with pytest.raises(
        SQLFileError, match=r"duplicate statement name 'same'.*first defined at a"
    ):
        load_queries(tmp_path)


def test_queries_mapping_is_read_only() -> None:
    queries = load_queries()
    with pytest.raises(TypeError):
        queries["x"] = queries["append_messages"]  # type: ignore[index]
