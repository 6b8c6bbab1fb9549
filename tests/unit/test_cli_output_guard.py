"""Every line the CLI prints goes through the one escaping function.

A static scan of ``agentcore/cli``: ``print`` is called only by ``say`` (which
escapes), with a constant string, or with an f-string whose only values are
``describe(...)`` (which escapes) — so a new command cannot print stored data raw.
"""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "agentcore" / "cli"


def _safe(argument: ast.expr) -> bool:
    if isinstance(argument, ast.Constant):
        return True
    if isinstance(argument, ast.JoinedStr):
        return all(
            isinstance(part, ast.Constant)
            or (
                isinstance(part, ast.FormattedValue)
                and isinstance(part.value, ast.Call)
                and isinstance(part.value.func, ast.Name)
                and part.value.func.id == "describe"
            )
            for part in argument.values
        )
    return (
        isinstance(argument, ast.Call)
        and isinstance(argument.func, ast.Attribute | ast.Name)
        and (argument.func.attr if isinstance(argument.func, ast.Attribute) else argument.func.id)
        == "escape"
    )


def unescaped_prints() -> list[str]:
    found = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
                and not all(_safe(a) for a in node.args)
            ):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_cli_prints_only_escaped_text() -> None:
    assert unescaped_prints() == []


def test_the_scan_sees_a_raw_print(tmp_path: Path) -> None:
    raw = ast.parse("print(f'{session_id}')").body[0]
    assert isinstance(raw, ast.Expr) and isinstance(raw.value, ast.Call)
    assert not _safe(raw.value.args[0])
    assert _safe(ast.parse("print(escape(x))").body[0].value.args[0])  # type: ignore[attr-defined]
