"""Every ``docs/...`` path named in the code, tests, examples or Markdown exists in the repository.

A docstring that sends a reader to a page that is not there is worse than none; this scans every
``.py`` and ``.md`` file of the checkout (not the virtual environment, VCS data or build output)
and resolves each ``docs/<path>`` it mentions against the repository root.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", "venv", ".git", "build", "dist", "node_modules", "__pycache__", ".pytest_cache",
             ".mypy_cache", ".ruff_cache", ".tox"}
# "docs/" starting a path of its own: not part of a URL or of another path (such as a peer project's ``verl/docs/...``)
REFERENCE = re.compile(r"(?<![\w./-])(docs/[\w./-]*[\w/])(?:,? §(\d+(?:\.\d+)*))?")


def _files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.suffix in (".py", ".md") and path.is_file():
            found.append(path)
    return found


def references(text: str) -> list[str]:
    """The ``docs/...`` paths mentioned in ``text``, with ``#N`` for a "§N" section that follows."""
    return [m.group(1).rstrip("/") + (f"#{m.group(2)}" if m.group(2) else "") for m in REFERENCE.finditer(text)]


def _resolves(ref: str) -> bool:
    path, _, section = ref.partition("#")
    target = ROOT / path
    if not target.exists():
        return False
    if not section:
        return True
    # a numbered section "§4.2" must be a heading "### 4.2 ..." (or "## 4. ...") of that page
    number = re.escape(section)
    heading = re.compile(rf"^#+ {number}\.? ", re.MULTILINE)
    return target.is_file() and bool(heading.search(target.read_text(encoding="utf-8", errors="replace")))


# Paths to pages that do not exist are assembled at run time, so this file itself holds no
# reference to a missing page (the repository-wide scan below reads it too).
D = "docs"


def test_the_reference_pattern_finds_paths_and_ignores_urls():
    text = (
        f"see {D}/algorithms.md §4.2, ({D}/architecture.md), `{D}/guide/setup.md`. "
        f"https://verl.readthedocs.io/en/{D}/x.md and verl/{D}/algo/entropy.md are not ours."
    )
    assert references(text) == [f"{D}/algorithms.md#4.2", f"{D}/architecture.md", f"{D}/guide/setup.md"]


def test_numbered_sections_must_exist_on_the_page():
    assert _resolves("docs/algorithms.md#4.2") and _resolves("docs/algorithms.md#13")
    assert not _resolves("docs/algorithms.md#99") and not _resolves(f"{D}/no-such-page.md")


def test_the_scan_covers_the_code_and_the_docs():
    names = {p.relative_to(ROOT).as_posix() for p in _files()}
    assert "trainer/algorithms/__init__.py" in names
    assert "docs/algorithms.md" in names
    assert not any(n.startswith((".venv/", ".git/")) for n in names)


def _all_references() -> list[tuple[str, int, str]]:
    out = []
    for path in _files():
        if path == Path(__file__).resolve():
            continue  # this file's examples are not references
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            out.extend((path.relative_to(ROOT).as_posix(), lineno, ref) for ref in references(line))
    return out


def test_there_are_docs_references_to_check():
    assert len(_all_references()) >= 10


def test_every_docs_reference_resolves():
    missing = [f"{file}:{line}: {ref}" for file, line, ref in _all_references() if not _resolves(ref)]
    assert not missing, "references to docs (or numbered sections) that do not exist:\n" + "\n".join(missing)
