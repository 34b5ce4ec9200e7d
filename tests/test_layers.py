"""Layers you can see: ``marrow.store`` depends on nothing of ours but ``marrow.errors``;
``marrow.raw`` on nothing but the store and ``marrow.errors``.

Imports are read from the source with :mod:`ast` (also those inside functions and ``TYPE_CHECKING``
blocks), so a layering mistake is caught even where no test imports the module that makes it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
STORE = SRC / "marrow" / "store"
RAW = SRC / "marrow" / "raw"

#: What the store may import of ours besides itself.
ALLOWED_OURS = {"marrow.errors"}
#: The core of the engine uses the standard library and numpy, nothing else. (Blob stores for
#: networked services, beside it in the package, import their clients.)
CORE = [
    "schema.py",
    "write.py",
    "read.py",
    "blob.py",
    "index.py",
    "testing.py",
    "_columns.py",
    "_typedata.py",
    "_encode.py",
    "_views.py",
    "_packed.py",
]
ALLOWED_THIRD_PARTY = {"numpy"}


def imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, a module of ``package``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # ``from marrow import errors`` imports marrow.errors
            if module == "marrow":
                found += [(node.lineno, f"marrow.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return found


def package_of(path: Path) -> str:
    """The package a module belongs to (for ``__init__.py``, the package itself)."""
    return ".".join(path.relative_to(SRC).parent.parts)


def layer_violations(path: Path, core: bool = False, below: tuple[str, ...] = ("marrow.store",)) -> list[str]:
    """Imports of ``path`` that break the layering: anything of ours but ``marrow.errors`` and the
    packages ``below``; with ``core``, also any third-party package but numpy."""
    out = []
    for line, module in imports(path, package_of(path)):
        top = module.split(".")[0]
        if top == "marrow":
            if module in ALLOWED_OURS or any(module == b or module.startswith(b + ".") for b in below):
                continue
            out.append(f"{path.relative_to(SRC)}:{line} imports {module}")
        elif core and top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY:
            out.append(f"{path.relative_to(SRC)}:{line} imports the third-party package {top}")
    return out


STORE_MODULES = sorted(STORE.rglob("*.py"))


def test_the_store_has_its_core_modules() -> None:
    assert set(CORE) <= {p.name for p in STORE_MODULES}


@pytest.mark.parametrize("path", STORE_MODULES, ids=lambda p: str(p.relative_to(STORE)))
def test_the_store_imports_nothing_of_ours_but_errors(path: Path) -> None:
    assert layer_violations(path) == []


RAW_MODULES = sorted(RAW.rglob("*.py"))


@pytest.mark.parametrize("path", RAW_MODULES, ids=lambda p: str(p.relative_to(RAW)))
def test_raw_imports_only_the_store_and_errors(path: Path) -> None:
    assert layer_violations(path, below=("marrow.store", "marrow.raw")) == []


def test_the_raw_check_sees_an_import_from_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_src = tmp_path / "src"
    module = fake_src / "marrow" / "raw" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from marrow.web.writes import writes_app\nfrom marrow.store import Schema\n", encoding="utf-8"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake_src)
    (violation,) = layer_violations(module, below=("marrow.store", "marrow.raw"))
    assert "imports marrow.web.writes" in violation


@pytest.mark.parametrize("name", CORE)
def test_the_core_of_the_store_needs_only_numpy(name: str) -> None:
    assert layer_violations(STORE / name, core=True) == []


def test_errors_import_nothing_of_ours() -> None:
    errors = SRC / "marrow" / "errors.py"
    assert [m for _, m in imports(errors, "marrow") if m.startswith("marrow")] == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from marrow.raw import writer", "imports marrow.raw"),
        ("import marrow.cms.store", "imports marrow.cms.store"),
        ("from marrow import pages", "imports marrow.pages"),
        ("from ..web import app", "imports marrow.web"),
        ("def f():\n    from marrow.ingest import rules", "imports marrow.ingest"),
        ("import requests", "third-party package requests"),
    ],
)
def test_the_check_sees_a_wrong_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, found: str
) -> None:
    fake_src = tmp_path / "src"
    module = fake_src / "marrow" / "store" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake_src)
    (violation,) = layer_violations(module, core=True)
    assert found in violation and "bad.py:" in violation


def test_the_check_lets_allowed_imports_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_src = tmp_path / "src"
    module = fake_src / "marrow" / "store" / "good.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "import json\nimport numpy as np\nfrom marrow.errors import MarrowError\nfrom marrow import errors\n"
        "from marrow.store.schema import Schema\nfrom . import _packed\nfrom .read import ReadState\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake_src)
    assert layer_violations(module, core=True) == []


# --- the content platform ---------------------------------------------------------------------------
# cms depends on the store layer at most (today: nothing of ours but errors); ingest on cms, records,
# the store and raw; impressions on the layers below it; pages on those and records (it reads impression
# history through its own HistoryReader protocol). None of them imports the web apps, and no two
# platform packages import each other except ingest → cms.

PLATFORM_RULES = {
    "cms": {"marrow.errors", "marrow.settings", "marrow.cms", "marrow.store"},
    "ingest": {
        "marrow.errors",
        "marrow.settings",
        "marrow.cms",
        "marrow.ingest",
        "marrow.records",
        "marrow.store",
        "marrow.raw",
    },
    "impressions": {"marrow.errors", "marrow.settings", "marrow.store", "marrow.raw", "marrow.impressions"},
    "pages": {
        "marrow.errors",
        "marrow.settings",
        "marrow.store",
        "marrow.raw",
        "marrow.records",
        "marrow.pages",
    },
}


def platform_violations(path: Path, allowed: set[str]) -> list[str]:
    out = []
    for line, module in imports(path, package_of(path)):
        if module.split(".")[0] != "marrow":
            continue
        if not any(module == a or module.startswith(a + ".") for a in allowed):
            out.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    return out


@pytest.mark.parametrize(
    ("package", "path"),
    [(p, m) for p in PLATFORM_RULES for m in sorted((SRC / "marrow" / p).rglob("*.py"))],
    ids=lambda v: v if isinstance(v, str) else str(v.relative_to(SRC / "marrow")),
)
def test_the_content_platform_keeps_its_layers(package: str, path: Path) -> None:
    assert platform_violations(path, PLATFORM_RULES[package]) == []


def test_the_platform_check_sees_a_wrong_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_src = tmp_path / "src"
    module = fake_src / "marrow" / "cms" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from marrow.store import WriteState\nfrom marrow.web import editor\n", encoding="utf-8"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake_src)
    assert platform_violations(module, PLATFORM_RULES["cms"]) == ["marrow/cms/bad.py:2 imports marrow.web"]


def test_settings_import_nothing_of_ours_but_errors() -> None:
    """Every layer reads its settings through marrow.settings, so it must sit below all of them."""
    settings = SRC / "marrow" / "settings.py"
    assert [m for _, m in imports(settings, "marrow") if m.startswith("marrow")] == ["marrow.errors"]
