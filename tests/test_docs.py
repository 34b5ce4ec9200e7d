"""The Python examples in the README and docs/ run as written, so the docs cannot drift."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _scripts() -> list[tuple[str, str]]:
    """Each document's Python blocks, in order, as one script: later examples build on earlier ones."""
    out = []
    for doc in DOCS:
        blocks = BLOCK.findall(doc.read_text())
        if blocks:
            out.append((doc.name, "\n".join(blocks)))
    return out


@pytest.mark.parametrize(("where", "code"), _scripts(), ids=[w for w, _ in _scripts()])
def test_python_examples_run(where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files (var/...) write them here
    script = tmp_path / "example.py"
    script.write_text(code)
    runpy.run_path(str(script), run_name="doc_example")  # a real module, as dataclasses need


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
