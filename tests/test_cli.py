"""The CLI is a thin shell: the demo runs end to end, inspect describes blobs and refuses bad ones."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from marrow.cli import app

runner = CliRunner()


def test_the_store_tour_runs_and_writes_blobs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tour", "--directory", str(tmp_path), "--titles", "2000"])
    assert result.exit_code == 0, result.output
    assert "checksum equal = True" in result.output
    assert {p.name for p in tmp_path.iterdir()} == {"snapshot-1.blob", "delta-1-2.blob", "reverse-2-1.blob"}


def test_inspect_describes_a_snapshot_and_a_delta(tmp_path: Path) -> None:
    runner.invoke(app, ["tour", "--directory", str(tmp_path), "--titles", "500"])
    snap = runner.invoke(app, ["inspect", str(tmp_path / "snapshot-1.blob")])
    assert snap.exit_code == 0, snap.output
    assert "snapshot" in snap.output and "Title" in snap.output and "500" in snap.output
    delta = runner.invoke(app, ["inspect", str(tmp_path / "delta-1-2.blob")])
    assert delta.exit_code == 0 and "delta" in delta.output


def test_inspect_refuses_a_corrupt_blob(tmp_path: Path) -> None:
    bad = tmp_path / "bad.blob"
    bad.write_bytes(b"MRRW" + b"\0" * 40)
    result = runner.invoke(app, ["inspect", str(bad)])
    assert result.exit_code == 1
    assert "bad.blob" in result.output


def test_cms_seed_and_add_editor(tmp_path: Path) -> None:
    from marrow.cms import CMS

    url = f"sqlite:///{tmp_path}/var/cms.db"
    seeded = runner.invoke(app, ["cms", "seed", "--database", url, "--titles", "50", "--stories", "10"])
    assert seeded.exit_code == 0, seeded.output
    assert "imported" in seeded.output
    added = runner.invoke(app, ["cms", "add-editor", "ana", "--database", url], input="long enough pw\n" * 2)
    assert added.exit_code == 0 and "added editor ana" in added.output
    again = ["cms", "add-editor", "ana", "--database", url, "--password", "long enough pw"]
    assert runner.invoke(app, again).exit_code != 0  # there is an editor ana already
    cms = CMS.open(url)
    assert len(cms.documents("title", published=True)) == 50 and cms.editors.get("ana") is not None
    cms.close()


def test_impressions_serve_refuses_to_start_on_bad_settings(tmp_path: Path) -> None:
    env = {"MARROW_IMPRESSIONS_STORE": f"sqlite:{tmp_path / 'i.db'}"}
    result = runner.invoke(app, ["impressions", "serve"], env=env)
    assert result.exit_code == 1
    assert "needs at least one non-blank token" in result.output
    result = runner.invoke(app, ["impressions", "serve"], env={**env, "MARROW_IMPRESSIONS_DIAL_UP": "2"})
    assert result.exit_code == 1
    assert "impressions.dial_up (from MARROW_IMPRESSIONS_DIAL_UP)" in result.output
    assert "<= 1.0" in result.output


def test_serve_writes_refuses_to_start_on_bad_settings(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve-writes", str(tmp_path / "ns")], env={})
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "tokens = [...] in [writes] or MARROW_WRITES_TOKENS" in output
    env = {"MARROW_WRITES_TOKENS": "t", "MARROW_WRITES_SCHEMA": "marrow.nowhere:TYPES"}
    result = runner.invoke(app, ["serve-writes", str(tmp_path / "ns")], env=env)
    assert result.exit_code == 1 and "cannot load the schema classes" in " ".join(result.output.split())
    assert not (tmp_path / "ns").exists()


def test_demo_refuses_bad_settings_before_starting_anything(tmp_path: Path) -> None:
    config = tmp_path / "marrow.toml"
    config.write_text('[platform]\nport = "eighty"\n')
    result = runner.invoke(app, ["demo", "--config", str(config)])
    assert result.exit_code == 1 and "setting platform.port" in result.output
    result = runner.invoke(app, ["demo"], env={"MARROW_PLATFORM_FOLD_INTERVAL": "0"})
    assert result.exit_code == 1 and "fold_interval" in result.output
    assert not (tmp_path / "var").exists()


def test_bench_runs_the_scripts_of_the_checkout() -> None:
    from marrow.cli._bench import BENCHMARKS

    assert (BENCHMARKS / "store.py").is_file() and (BENCHMARKS / "headline.py").is_file()
    result = runner.invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    assert {"raw", "store", "lifecycle", "ingest", "preview", "pages", "impressions", "headline"} <= set(
        result.output.split()
    )
