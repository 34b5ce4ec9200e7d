"""Every file the package reads at run time ships in a wheel: the package-data patterns cover them all."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "marrow"
CODE = {".py", ".c", ".so", ".pyc"}


def test_package_data_covers_every_file_that_is_not_code() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "marrow"
    ]
    shipped = {p for pattern in patterns for p in PACKAGE.glob(pattern)}
    data = {
        p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in CODE and "__pycache__" not in p.parts
    }
    assert sorted(str(p.relative_to(PACKAGE)) for p in data - shipped) == []
