"""The one settings loader: a TOML table, the environment over it, given values over both, validated
into the component's struct, every error a ConfigError naming the setting and where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import pytest

from marrow.errors import ConfigError
from marrow.settings import load_settings


class Sample(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str = "marrow"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    share: float = 0.5
    verbose: bool = False
    tokens: tuple[str, ...] = ()
    ports: list[int] = []
    devices: frozenset[str] = frozenset()
    cache: str | None = None

    def __post_init__(self) -> None:
        if self.name == "reserved":
            raise ConfigError("name 'reserved' is taken; choose another")

    def check(self) -> None:
        if self.verbose and not self.tokens:
            raise ConfigError("verbose needs at least one token")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "marrow.toml"
    path.write_text(text)
    return path


def test_the_defaults_without_a_file_or_variables() -> None:
    assert load_settings(Sample, "sample", environ={}) == Sample()


def test_the_file_section_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, '[sample]\nname = "x"\nport = 9000\ntokens = ["a"]\n[other]\nport = "ignored"\n')
    s = load_settings(Sample, "sample", path, environ={})
    assert (s.name, s.port, s.tokens) == ("x", 9000, ("a",))


def test_the_environment_is_over_the_file_and_given_values_over_both(tmp_path: Path) -> None:
    path = write(tmp_path, '[sample]\nname = "file"\nport = 9000\nshare = 0.1\n')
    env = {"MARROW_SAMPLE_PORT": "9001", "MARROW_SAMPLE_SHARE": "0.25", "MARROW_OTHER_PORT": "x", "PATH": "/"}
    s = load_settings(Sample, "sample", path, env)
    assert (s.name, s.port, s.share) == ("file", 9001, 0.25)
    s = load_settings(Sample, "sample", path, env, given={"port": 7000, "name": None})  # None: not given
    assert (s.name, s.port) == ("file", 7000)


def test_lists_tuples_and_sets_read_comma_separated_or_as_a_json_list() -> None:
    env = {
        "MARROW_SAMPLE_TOKENS": " a, b ,,c ",
        "MARROW_SAMPLE_PORTS": "[1, 2]",
        "MARROW_SAMPLE_DEVICES": "tv,web,tv",
    }
    s = load_settings(Sample, "sample", environ=env)
    assert (s.tokens, s.ports, s.devices) == (("a", "b", "c"), [1, 2], frozenset({"tv", "web"}))
    assert load_settings(Sample, "sample", environ={"MARROW_SAMPLE_PORTS": "80, 443"}).ports == [80, 443]
    assert load_settings(Sample, "sample", environ={"MARROW_SAMPLE_TOKENS": ""}).tokens == ()
    with pytest.raises(ConfigError, match="MARROW_SAMPLE_PORTS starts like a JSON list but is not one"):
        load_settings(Sample, "sample", environ={"MARROW_SAMPLE_PORTS": "[1, 2"})
    with pytest.raises(ConfigError, match=r"sample\.ports\[1\] \(from MARROW_SAMPLE_PORTS\): Expected `int`"):
        load_settings(Sample, "sample", environ={"MARROW_SAMPLE_PORTS": "80,https"})


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("true", True), ("Yes", True), ("0", False), ("FALSE", False), (" no ", False)],
)
def test_bools_read_1_0_true_false_yes_no(text: str, value: bool) -> None:
    env = {"MARROW_SAMPLE_VERBOSE": text, "MARROW_SAMPLE_TOKENS": "t"}
    assert load_settings(Sample, "sample", environ=env).verbose is value


def test_a_bool_that_is_not_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"MARROW_SAMPLE_VERBOSE is true or false .*not 'on'"):
        load_settings(Sample, "sample", environ={"MARROW_SAMPLE_VERBOSE": "on"})


def test_an_unknown_key_in_the_file_is_refused_with_the_settings(tmp_path: Path) -> None:
    path = write(tmp_path, '[sample]\ncolour = "red"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(Sample, "sample", path, environ={})
    assert f"[sample] in {path}: 'colour' is no setting" in str(caught.value)
    assert "the settings are cache, devices, name, port, ports, share, tokens, verbose" in str(caught.value)


def test_an_unknown_variable_under_the_prefix_is_refused_with_the_settings() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Sample, "sample", environ={"MARROW_SAMPLE_COLOUR": "red"})
    assert "MARROW_SAMPLE_COLOUR names no sample setting; the settings are cache," in str(caught.value)


def test_an_unknown_given_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="'colour' is no sample setting"):
        load_settings(Sample, "sample", environ={}, given={"colour": "red"})


def test_a_wrong_type_names_the_setting_and_where_it_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, '[sample]\nport = "high"\n')
    with pytest.raises(ConfigError, match=rf"sample\.port \(from \[sample\] in {path}\): Expected `int`"):
        load_settings(Sample, "sample", path, environ={})
    with pytest.raises(ConfigError, match=r"sample\.share \(from MARROW_SAMPLE_SHARE\): Expected `float`"):
        load_settings(Sample, "sample", path, {"MARROW_SAMPLE_SHARE": "half", "MARROW_SAMPLE_PORT": "1"})
    with pytest.raises(ConfigError, match=r"port \(from MARROW_SAMPLE_PORT\): Expected `int` <= 65535"):
        load_settings(Sample, "sample", environ={"MARROW_SAMPLE_PORT": "70000"})


def test_the_structs_own_invariants_are_config_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"from MARROW_SAMPLE_NAME and the defaults\): name 'reserved' is taken"
    ):
        load_settings(Sample, "sample", environ={"MARROW_SAMPLE_NAME": "reserved"})
    with pytest.raises(
        ConfigError, match=r"from MARROW_SAMPLE_VERBOSE and the defaults\): verbose needs at least one token"
    ):
        load_settings(Sample, "sample", environ={"MARROW_SAMPLE_VERBOSE": "yes"})


def test_a_file_that_cannot_be_read_or_parsed_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the settings file"):
        load_settings(Sample, "sample", tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(Sample, "sample", write(tmp_path, "[sample\n"), environ={})
    with pytest.raises(ConfigError, match=r"\[sample\] in .* must be a table of settings"):
        load_settings(Sample, "sample", write(tmp_path, 'sample = "x"\n'), environ={})
