"""Every relative link in the README, the changelog and the docs resolves: the file exists, and a
``#anchor`` names a heading of its target (GitHub's heading slugs)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", flags=re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the target ends at whitespace (a "title") or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", flags=re.M)


def prose(text: str) -> str:
    """The markdown without code blocks and code spans, where brackets are code, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").replace("*", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of ``path``, duplicates numbered as GitHub does (``name``, ``name-1``, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def is_relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I)  # http:, https:, mailto:, ...


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def broken_links(path: Path) -> list[str]:
    problems = []
    for target in filter(is_relative, links(path)):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{target}: {shown(resolved)} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading with anchor #{anchor} in {shown(resolved)}")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_checker_sees_what_it_must(tmp_path):
    # The checker itself: a missing file, a missing anchor, an anchor GitHub would make from a heading
    # with code and punctuation, a duplicate heading, links inside code (ignored), external links (ignored).
    headings = ["# Other", "## `metrics.json`", "## New users: activity (history) towers", "## Same", "## Same"]
    (tmp_path / "other.md").write_text("\n\n".join(headings) + "\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md) [ok](other.md#metricsjson) [ok](other.md#new-users-activity-history-towers)\n"
        "[ok](other.md#same-1) [ok](#top) [web](https://example.com/missing.md)\n"
        "[gone](missing.md) [bad anchor](other.md#nope) ![img](pic.png)\n"
        "`model.signatures[\"x\"](user_id=1)`\n\n```python\nf[\"a\"](b)\n```\n\n# Top\n"
    )
    problems = broken_links(doc)
    assert len(problems) == 3, problems
    assert problems[0].startswith("missing.md:") and "does not exist" in problems[0]
    assert problems[1].startswith("other.md#nope: no heading with anchor #nope in ")
    assert problems[2].startswith("pic.png:")


def test_the_docs_are_all_checked():
    names = {str(p.relative_to(ROOT)) for p in DOCS}
    assert {"README.md", "CHANGELOG.md", "docs/irns.md", "docs/results/README.md"} <= names
