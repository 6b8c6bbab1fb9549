"""Migrations are plain SQL files with enforced names, each with a rollback and a parent."""

from __future__ import annotations

import itertools
import re

from agentcore.resources import data_dir

NAME = re.compile(r"^(?P<number>\d{4})_[a-z0-9]+(?:_[a-z0-9]+)*\.sql$")


def test_every_migration_is_numbered_named_and_has_a_rollback() -> None:
    folder = data_dir("migrations")
    forward = sorted(p for p in folder.glob("*.sql") if not p.name.endswith(".rollback.sql"))
    assert forward, "no migrations found"
    for expected, path in enumerate(forward, start=1):
        match = NAME.match(path.name)
        assert match, f"{path.name}: migrations are named NNNN_snake_description.sql"
        assert int(match["number"]) == expected, f"{path.name}: numbers must run 0001, 0002, …"
        assert (folder / f"{path.stem}.rollback.sql").is_file(), f"{path.name} has no rollback"
    rollbacks = {p.name.removesuffix(".rollback.sql") for p in folder.glob("*.rollback.sql")}
    assert rollbacks == {p.stem for p in forward}, "a rollback without its migration"


def test_each_migration_depends_on_the_previous_one() -> None:
    forward = sorted(
        p for p in data_dir("migrations").glob("*.sql") if not p.name.endswith(".rollback.sql")
    )
    for previous, path in itertools.pairwise(forward):
        header = path.read_text(encoding="utf-8").split("\n\n")[0]
        assert f"-- depends: {previous.stem}" in header, (
            f"{path.name} must declare '-- depends: {previous.stem}' in its leading comments"
        )
    assert "-- depends:" not in forward[0].read_text(encoding="utf-8")
