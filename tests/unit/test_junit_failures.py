"""A framework suite's failures read in a few lines: each failed test with a one-line reason."""

from __future__ import annotations

from pathlib import Path

from tests.junit_failures import FailedTest, failed_tests, failure_summary

REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="1" failures="3" skipped="0" tests="5">
<testcase classname="tests.memory.test_a.TestX" name="test_in_class">
<failure message="AttributeError: module 'cryptography.fernet' has no attribute 'time'&#10;more"
>long traceback</failure></testcase>
<testcase classname="tests.memory.test_a" name="test_err">
<error message="failed on setup with &quot;RuntimeError: setup broke&quot;">trace</error></testcase>
<testcase classname="tests.memory.test_a" name="test_param[1]"><failure message=""
>    def test_param(x): assert x == 3
E   assert 1 == 3
E    + where 1 = f()</failure></testcase>
<testcase classname="tests.memory.test_a" name="test_long"><failure message="{}">t</failure>
</testcase>
<testcase classname="tests.memory.test_a" name="test_ok" />
</testsuite></testsuites>
""".replace("{}", "x" * 300)


def test_each_failed_or_errored_test_has_its_node_id_and_a_one_line_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "tests" / "memory").mkdir(parents=True)
    (tmp_path / "tests" / "memory" / "test_a.py").touch()
    (tmp_path / "junit.xml").write_text(REPORT)

    failed = failed_tests(tmp_path / "junit.xml", tmp_path)

    assert failed == [
        FailedTest(
            "tests/memory/test_a.py::TestX::test_in_class",
            "AttributeError: module 'cryptography.fernet' has no attribute 'time'",
        ),
        FailedTest("tests/memory/test_a.py::test_err", "RuntimeError: setup broke (in setup)"),
        FailedTest("tests/memory/test_a.py::test_param[1]", "assert 1 == 3"),
        FailedTest("tests/memory/test_a.py::test_long", "x" * 157 + "..."),
    ]


def test_the_summary_gives_each_reason_once_with_a_few_of_its_tests() -> None:
    failed = [FailedTest(f"t.py::test_{n}", "KeyError: 'time'") for n in range(40)]
    failed += [FailedTest(f"t.py::test_{n}_again", f"reason {n}") for n in range(4)]
    failed.insert(1, FailedTest("t.py::test_other", "assert 1 == 2"))

    summary = failure_summary("suite: 45 failed", failed, Path("/tmp/out.txt"), reasons=3)

    assert summary.splitlines() == [
        "suite: 45 failed",
        "40 x KeyError: 'time'",
        "    t.py::test_0",
        "    t.py::test_1",
        "    t.py::test_2",
        "    ...and 37 more",
        "1 x assert 1 == 2",
        "    t.py::test_other",
        "1 x reason 0",
        "    t.py::test_0_again",
        "...and 3 more tests, failed for 3 other reasons",
        "every failed test and pytest's whole output: /tmp/out.txt",
    ]
