"""The console every ``marrow`` command prints to, and how it prints an error."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

__all__ = ["console", "error"]

console = Console()


def error(message: object) -> None:
    """An error in red; escaped, since messages name TOML tables (``[writes]``) that rich would
    take for markup."""
    console.print(f"[red]{escape(str(message))}[/]")
