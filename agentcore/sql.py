"""Load the named SQL statements from ``sql/*.sql``, once.

Each statement sits under a ``-- name: some_name`` header, followed by at least
one ``--`` description line, then the statement itself. Values are always bound
through named ``%(param)s`` placeholders; no SQL text is ever built from values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import LiteralString, cast

from agentcore.resources import data_dir

_NAME = re.compile(r"^--\s*name:\s*(?P<name>\S+)\s*$")
_VALID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SQLFileError(ValueError):
    """A ``.sql`` file is malformed: a duplicate, empty, or badly named block."""


@dataclass(frozen=True, slots=True)
class Query:
    """One named statement.

    Attributes:
        name: The block's name.
        description: The block's ``--`` description lines, joined.
        text: The statement, ready to execute with named parameters.
        source: ``file:line`` of the header, for error messages.
    """

    name: str
    description: str
    text: LiteralString
    source: str


class Queries(Mapping[str, Query]):
    """An immutable name -> :class:`Query` mapping that fails loudly on unknown names."""

    def __init__(self, queries: Mapping[str, Query]) -> None:
        self._queries = MappingProxyType(dict(queries))

    def __getitem__(self, name: str) -> Query:
        try:
            return self._queries[name]
        except KeyError:
            known = ", ".join(sorted(self._queries))
            raise KeyError(f"no SQL statement named {name!r}; known: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)


def parse_sql(text: str, source: str) -> dict[str, Query]:
    """Split one file's text into named queries.

    Raises:
        SQLFileError: text before the first header, a bad or repeated name, a
            block without a description, or a block without a statement.
    """
    queries: dict[str, Query] = {}
    name: str | None = None
    start = 0
    body: list[str] = []

    def close() -> None:
        if name is None:
            if any(ln.strip() and not ln.strip().startswith("--") for ln in body):
                raise SQLFileError(f"{source}: SQL before the first '-- name:' header")
            return
        description, statement = _split_block(body)
        where = f"{source}:{start}"
        if not description:
            raise SQLFileError(f"{where}: {name!r} needs a '--' description line")
        if not statement:
            raise SQLFileError(f"{where}: {name!r} has no statement")
        # The text comes from the package's own files, never from a caller:
        # this is the one place where it becomes a LiteralString.
        text = cast(LiteralString, statement)  # type: ignore[redundant-cast]
        queries[name] = Query(name, description, text, where)

    for number, line in enumerate(text.splitlines(), start=1):
        match = _NAME.match(line)
        if not match:
            body.append(line)
            continue
        close()
        name, start, body = match["name"], number, []
        if not _VALID_NAME.match(name):
            raise SQLFileError(f"{source}:{number}: bad statement name {name!r}")
        if name in queries:
            raise SQLFileError(f"{source}:{number}: duplicate statement name {name!r}")
    close()
    return queries


def _split_block(lines: list[str]) -> tuple[str, str]:
    description: list[str] = []
    rest = iter(lines)
    for line in rest:
        stripped = line.strip()
        if stripped.startswith("--"):
            description.append(stripped.removeprefix("--").strip())
            continue
        statement = "\n".join([line, *rest]).strip().rstrip(";").strip()
        return " ".join(d for d in description if d), statement
    return " ".join(d for d in description if d), ""


def load_queries(folder: Path | None = None) -> Queries:
    """Parse every ``*.sql`` file in ``folder`` (default: agentcore's ``sql/``).

    Raises:
        SQLFileError: a file is malformed or two files define the same name.
    """
    folder = folder or data_dir("sql")
    found: dict[str, Query] = {}
    for path in sorted(folder.glob("*.sql")):
        for name, query in parse_sql(path.read_text(encoding="utf-8"), path.name).items():
            if name in found:
                raise SQLFileError(
                    f"{query.source}: duplicate statement name {name!r} "
                    f"(first defined at {found[name].source})"
                )
            found[name] = query
    return Queries(found)
