"""SQL lives in sql/*.sql: no module builds SQL text, every executed statement is loaded.

A static scan of every module in ``agentcore/``:

* a call to ``.execute``/``.executemany``/``.copy``/``.stream`` passes, as the
  statement, the ``.text`` of a loaded query: ``<queries>["name"].text``, or
  ``q.text`` where ``q`` is a parameter typed ``Query`` or a loop variable over
  a parameter typed ``Sequence[Query]``;
* ``Query`` objects are built only by the loader (``agentcore/sql.py``);
* no f-string, ``%``, ``+``, ``.format`` or ``.join`` touches text that
  looks like SQL, no string literal looks like a statement, and
  ``psycopg.sql`` (SQL composition) is never imported.

And the names: every block in ``sql/*.sql`` is used by the code, and every name
the code uses is a block that exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import cast

import pytest

from agentcore.sql import load_queries

PACKAGE = Path(__file__).resolve().parents[2] / "agentcore"
EXECUTING = {"execute", "executemany", "copy", "stream"}
NOT_A_DATABASE = {"self._workflows"}
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|DROP|CREATE|ALTER|TRUNCATE|COPY|GRANT|"
    r"WHERE|VALUES|BEGIN|COMMIT|ROLLBACK)\b"
)
STATEMENT_START = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|COPY|CREATE|ALTER|DROP|TRUNCATE|GRANT|SET|BEGIN)\b",
    re.IGNORECASE,
)


def modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def is_loaded_query_lookup(node: ast.expr) -> bool:
    """``<something>_sql["name"]`` or ``_queries()["name"]``, with a literal name."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)):
        return False
    if not isinstance(node.slice.value, str):
        return False
    source = ast.unparse(node.value)
    return source.endswith("_sql") or source == "_queries()"


def annotation_of(function: ast.AsyncFunctionDef | ast.FunctionDef, name: str) -> str | None:
    for arg in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]:
        if arg.arg == name and arg.annotation is not None:
            return ast.unparse(arg.annotation)
    return None


def is_query_variable(name: str, function: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    """A parameter typed ``Query``, or a loop variable over a ``Sequence[Query]`` parameter."""
    if annotation_of(function, name) == "Query":
        return True
    for node in ast.walk(function):
        loops: list[ast.For | ast.AsyncFor | ast.comprehension] = (
            [node] if isinstance(node, ast.For | ast.AsyncFor) else []
        )
        loops += node.generators if isinstance(node, ast.ListComp | ast.GeneratorExp) else []
        for loop in loops:
            target, source = loop.target, loop.iter
            if isinstance(target, ast.Name) and target.id == name and isinstance(source, ast.Name):
                annotation = annotation_of(function, source.id) or ""
                if re.fullmatch(r"(Sequence|list|tuple)\[Query(, \.\.\.)?\]", annotation):
                    return True
    return False


def is_query_sequence(name: str, function: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    annotation = annotation_of(function, name) or ""
    return re.fullmatch(r"(Sequence|list|tuple)\[Query(, \.\.\.)?\]", annotation) is not None


def statement_is_loaded(arg: ast.expr, function: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    if not (isinstance(arg, ast.Attribute) and arg.attr == "text"):
        return False
    if is_loaded_query_lookup(arg.value):
        return True
    if (  # queries[i].text, where queries is a parameter typed Sequence[Query]
        isinstance(arg.value, ast.Subscript)
        and isinstance(arg.value.value, ast.Name)
        and is_query_sequence(arg.value.value.id, function)
    ):
        return True
    return isinstance(arg.value, ast.Name) and is_query_variable(arg.value.id, function)


def functions(tree: ast.Module) -> list[ast.AsyncFunctionDef | ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)]


def unloaded_statements(tree: ast.Module) -> list[str]:
    """Calls that execute something other than a loaded query."""
    found = []
    for function in functions(tree):
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in EXECUTING:
                continue
            # CustomWorkflowExecutor.execute runs a workflow, not SQL (its name
            # comes from the seed plan).
            if ast.unparse(node.func.value) in NOT_A_DATABASE:
                continue
            if not node.args or not statement_is_loaded(node.args[0], function):
                found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def literal_texts(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def built_sql(tree: ast.Module) -> list[str]:
    """String building (f-string, %, +, .format, .join) over SQL-looking text."""
    found = []
    for node in ast.walk(tree):
        building = (
            isinstance(node, ast.JoinedStr)
            or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add))
            or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"format", "join", "format_map"}
            )
        )
        if building and any(SQL_WORDS.search(text) for text in literal_texts(node)):
            found.append(f"line {cast(ast.expr, node).lineno}: {ast.unparse(node)[:80]}")
    return found + sql_literals(tree) + sql_composition(tree)


def sql_literals(tree: ast.Module) -> list[str]:
    """String literals (not docstrings) that are SQL statements (one word is not one)."""
    skip = docstrings(tree)
    return [
        f"line {node.lineno}: SQL literal {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and len(node.value.split()) > 1
        and STATEMENT_START.match(node.value)
        and SQL_WORDS.search(node.value.upper())
    ]


def sql_composition(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "psycopg":
            if any(alias.name == "sql" for alias in node.names):
                found.append(f"line {node.lineno}: imports psycopg.sql (SQL composition)")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if "psycopg.sql" in names:
                found.append(f"line {node.lineno}: imports psycopg.sql (SQL composition)")
    return found


def query_constructions(name: str, tree: ast.Module) -> list[str]:
    if name == "sql.py":
        return []
    return [
        f"line {node.lineno}: builds a Query"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "Query"
    ]


def used_query_names() -> set[str]:
    return {
        node.slice.value  # type: ignore[attr-defined]
        for tree in modules().values()
        for node in ast.walk(tree)
        if isinstance(node, ast.expr) and is_loaded_query_lookup(node)
    }


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_executes_only_loaded_sql(name: str) -> None:
    tree = modules()[name]
    problems = unloaded_statements(tree) + built_sql(tree) + query_constructions(name, tree)
    assert problems == [], f"agentcore/{name}: " + "; ".join(problems)


def test_every_sql_block_is_used_by_the_code() -> None:
    assert sorted(set(load_queries()) - used_query_names()) == []


def test_every_sql_name_in_the_code_is_a_block() -> None:
    used = used_query_names()
    assert used, "found no query lookups at all: the scan is broken"
    assert sorted(used - set(load_queries())) == []


# The scan itself must be able to fail: each of these snippets is caught.
BAD_SNIPPETS = [
    'async def f(conn):\n    await conn.execute("SELECT 1")\n',
    'async def f(conn, table):\n    await conn.execute(f"SELECT * FROM {table}")\n',
    'async def f(conn, v):\n    await conn.execute("DELETE FROM t WHERE id = %s" % v)\n',
    'async def f(conn, v):\n    await conn.execute("SELECT * FROM t WHERE a = " + v)\n',
    'async def f(conn, v):\n    q = "UPDATE t SET a = {}".format(v)\n    await conn.execute(q)\n',
    "async def f(conn, q: str):\n    await conn.execute(q)\n",
    "async def f(conn, qs: list[str]):\n    for q in qs:\n        await conn.execute(q)\n",
    'async def f(cur):\n    async with cur.copy("COPY t FROM STDIN"):\n        pass\n',
    "async def f(conn, self):\n    await conn.execute(self._sql[name].text)\n",
    "from psycopg import sql\n",
    'def f():\n    return Query("x", "d", "SELECT 1", "here")\n',
    'X = " ".join(["SELECT", "1"])\n',
]


@pytest.mark.parametrize("snippet", BAD_SNIPPETS)
def test_the_scan_catches_sql_built_in_python(snippet: str) -> None:
    tree = ast.parse(snippet)
    problems = unloaded_statements(tree) + built_sql(tree) + query_constructions("x.py", tree)
    assert problems, snippet


GOOD_SNIPPETS = [
    'async def f(self, conn, p):\n    await conn.execute(self._sql["list_sessions"].text, p)\n',
    "async def f(conn, queries: Sequence[Query], p):\n"
    "    return await conn.execute(queries[0].text, p)\n",
    "async def f(conn, queries: Sequence[Query], p):\n"
    "    return [await conn.execute(q.text, p) for q in queries]\n",
    'def f(what, n):\n    return f"{what} is {n} characters; the limit is 255"\n',
]


@pytest.mark.parametrize("snippet", GOOD_SNIPPETS)
def test_the_scan_accepts_loaded_queries(snippet: str) -> None:
    tree = ast.parse(snippet)
    assert unloaded_statements(tree) + built_sql(tree) == []
