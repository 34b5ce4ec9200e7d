"""``marrow demo --check``: the whole platform end to end, headless — sign in, edit, preview, publish,
see it on the site, impressions change the ranking."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from marrow.demo import check
from marrow.platform import Platform, PlatformSettings, Simulation


def test_the_demo_scenario_passes_on_a_small_sample(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    outcome = check(console, titles=400, stories=60, root=tmp_path)
    assert outcome.ok, console.export_text()
    assert [name for name, _, _ in outcome.steps] == [
        "sign in to the editor",
        "edit a story and save it",
        "see the change in the preview at once",
        "publish it",
        "see it on the visitor site",
        "generate impressions",
        "see the ranking change",
    ]


def test_a_reopened_platform_keeps_its_content_and_the_simulator_feeds_history(tmp_path: Path) -> None:
    settings = PlatformSettings(root=str(tmp_path), port=0, simulate_every=0)
    platform = Platform.open(settings)
    try:
        assert platform.seed(titles=300, stories=30) > 0
        titles = len(platform.live.client.view()["Title"])
        assert titles > 0
    finally:
        platform.close()
    platform = Platform.open(settings)
    try:
        assert platform.seed(titles=300, stories=30) == 0  # the CMS had content: nothing imported again
        assert len(platform.live.client.view()["Title"]) == titles
        simulation = Simulation(platform, every=1)
        visits = [simulation.visit() for _ in range(20)]
        shown = {
            (e.profile, e.title)
            for v in visits
            for e in v.events
            if e.visible_share >= 0.5 and e.visible_ms >= 1000
        }
        assert shown
        profile, title = next(iter(shown))
        assert platform.history.histories(profile, [title])[title].count_1d >= 1
    finally:
        platform.close()
