"""Settings: data from TOML and the environment, validated at start with errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from marrow.errors import ConfigError
from marrow.impressions import ImpressionSettings
from marrow.settings import load_settings


def load(path: Path | None, env: dict[str, str]) -> ImpressionSettings:
    return load_settings(ImpressionSettings, "impressions", path, env)


def test_the_defaults_are_valid_and_match_the_issue() -> None:
    s = ImpressionSettings()
    assert s.store == "sqlite:var/impressions.db"
    assert s.dedup_key == ("profile", "title", "page", "section", "position", "timestamp_bucket")
    assert (s.min_visible_share, s.min_visible_ms) == (0.5, 1000)


def test_load_reads_toml_then_the_environment_over_it(tmp_path: Path) -> None:
    path = tmp_path / "marrow.toml"
    path.write_text(
        '[impressions]\nstore = "memory"\nmin_visible_ms = 500\n'
        'dedup_key = ["profile", "title", "timestamp"]\n'
    )
    env = {
        "MARROW_IMPRESSIONS_MIN_VISIBLE_MS": "250",
        "MARROW_IMPRESSIONS_TOKENS": "a, b",
        "MARROW_IMPRESSIONS_DEVICES": '["tv", "web"]',  # a JSON list is read as JSON
        "MARROW_IMPRESSIONS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "UNRELATED": "x",
    }
    s = load(path, env)
    assert s.store == "memory"
    assert s.min_visible_ms == 250
    assert s.tokens == ("a", "b")
    assert s.devices == ("tv", "web")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.dedup_key == ("profile", "title", "timestamp")


def test_load_without_a_file_uses_the_environment_alone() -> None:
    assert load(None, {"MARROW_IMPRESSIONS_STORE": "memory"}).store == "memory"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_visible_share": 1.5}, "min_visible_share (from the arguments given): Expected `float` <= 1.0"),
        ({"buffer_events": 0}, "buffer_events (from the arguments given): Expected `int` >= 1"),
        ({"retention_days": 7}, "retention_days (from the arguments given): Expected `int` >= 30"),
        ({"dial_up": "all"}, "dial_up (from the arguments given): Expected `float`, got `str`"),
        ({"colour": "red"}, "'colour' is no impressions setting"),
        ({"dedup_key": ["profile", "title", "colour", "timestamp"]}, "dedup_key names 'colour'"),
        ({"dedup_key": ["profile", "timestamp"]}, "dedup_key must contain title"),
        ({"dedup_key": ["profile", "title"]}, "must contain timestamp or timestamp_bucket"),
        ({"dedup_key": ["profile", "title", "title", "timestamp"]}, "names a field twice"),
        ({"dedup_bucket_s": 7}, "dedup_bucket_s must divide a day"),
        ({"batch_max": 10, "buffer_events": 5}, "could never be taken"),
        ({"store": "mysql://x"}, "store must be memory, sqlite:PATH or postgresql://"),
        ({"redis_url": "127.0.0.1:6379"}, "redis_url must be a redis:// URL"),
        ({"devices": []}, "devices must be a list of device names"),
    ],
)
def test_a_wrong_value_names_the_setting(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(ImpressionSettings, "impressions", environ={}, given=values)
    assert message in str(caught.value)


def test_the_environment_is_checked_too() -> None:
    with pytest.raises(ConfigError, match="MARROW_IMPRESSIONS_COLOUR names no impressions setting"):
        load(None, {"MARROW_IMPRESSIONS_COLOUR": "red"})
    with pytest.raises(ConfigError, match=r"dial_up \(from MARROW_IMPRESSIONS_DIAL_UP\): Expected `float`"):
        load(None, {"MARROW_IMPRESSIONS_DIAL_UP": "half"})
    with pytest.raises(ConfigError, match="dedup_key must contain title"):
        load(None, {"MARROW_IMPRESSIONS_DEDUP_KEY": "profile,timestamp"})


def test_a_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the settings file"):
        load(tmp_path / "missing.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[impressions\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load(bad, {})


def test_as_dict_hides_the_tokens() -> None:
    assert ImpressionSettings(tokens=("secret",)).as_dict()["tokens"] == ["…"]
