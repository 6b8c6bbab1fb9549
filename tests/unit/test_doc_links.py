"""The documentation's links lead somewhere, and its performance page stays one page.

A relative link must name a file that exists, and an anchor a heading of that
file (GitHub's rule: lower case, punctuation dropped, spaces to hyphens). The
README is also the package index's project page, where a relative link has
nothing to lead to: it has none.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "NOTES.md", ROOT / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```$", re.S | re.M)


def _prose(path: Path) -> str:
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def _anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", _prose(path), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return anchors


def _links(path: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(path)) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_a_heading(page: Path) -> None:
    broken = []
    for target in _links(page):
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no such heading in {linked.relative_to(ROOT)}")
    assert broken == []


def test_the_readme_has_no_link_a_package_index_page_cannot_follow() -> None:
    relative = [t for t in _links(ROOT / "README.md") if not t.startswith("#")]
    assert relative == []


def test_the_performance_page_is_one_page_and_points_to_the_notes() -> None:
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert len(page.splitlines()) <= 200
    assert "](../bench/NOTES.md)" in page
    for section in ("What a turn costs", "Against the peers", "Growth", "Rerun it"):
        assert f"\n## {section}\n" in page
    assert "](performance-growth.png)" in page
