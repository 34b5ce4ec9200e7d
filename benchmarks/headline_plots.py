"""The headline benchmark's plots (PNG, matplotlib without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save(directory: Path, figures: dict[str, Any], samples: dict[str, list[float]]) -> list[str]:
    """Write the plots into ``directory``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, label in (("page_ms_marrow", "Marrow (PageBuilder over a local client)"),
                        ("page_ms_legacy", "legacy, one call per fragment step"),
                        ("page_ms_legacy_per_section", "legacy, calls per section")):  # fmt: skip
        values = sorted(samples.get(name, []))
        if values:
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("home page construction, all fragments (ms, log scale)")
    ax.set_ylabel("share of pages")
    ax.set_title(f"Home page: legacy / Marrow = {figures['page_speedup_p50']}× at p50, "
                 f"{figures['page_speedup_p99']}× at p99")  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    paths.append(_save(fig, directory / "headline_pages.png"))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    series = [
        ("preview_s_legacy", "legacy\n(stream → table → timer)"),
        ("preview_s_marrow_eventual", "Marrow\neventual read"),
        ("preview_s_marrow_strong", "Marrow strong read\nat the save's offset"),
    ]
    data = [samples.get(k, []) for k, _ in series]
    ax.boxplot([d or [float("nan")] for d in data], vert=False, whis=(0, 100))
    ax.set_yticks(range(1, len(series) + 1), [label for _, label in series], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("editor save → change visible in the preview (s, log scale)")
    ax.set_title(f"Preview (near-cache ttl {figures['legacy_ttl_s']:g} s ± {figures['legacy_jitter']:.0%})")
    ax.grid(True, which="both", axis="x", alpha=0.3)
    paths.append(_save(fig, directory / "headline_preview.png"))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [
        "Marrow store",
        "Parquet + zstd",
        "JSON",
        "Python objects",
        "legacy table\n(+ row lists, indexes)",
    ]
    keys = ["marrow_bytes", "parquet_zstd_bytes", "json_bytes", "objects_bytes", "legacy_table_bytes"]
    values = [figures.get(k) or 0 for k in keys]
    ax.barh(names, [v / 1e6 for v in values])
    for i, v in enumerate(values):
        ax.text(v / 1e6, i, f" {v / 1e6:.1f} MB", va="center", fontsize=8)
    ax.set_xlabel(f"the read dataset ({figures['records']:,} render-ready records), MB")
    ax.set_title(f"Memory: Marrow / JSON = {figures['memory_ratio_vs_json']}")
    ax.invert_yaxis()
    paths.append(_save(fig, directory / "headline_memory.png"))
    return paths


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
