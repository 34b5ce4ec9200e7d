"""Settings as data: a typed struct per component, read from a TOML file and the environment.

    [platform]                             # marrow.toml
    root = "/srv/marrow"
    [cms]
    database = "postgresql://cms@db/cms?schema=cms"

    MARROW_CMS_DATABASE=sqlite:///var/cms/cms.db   # the environment overrides the file

Each component declares its settings as a frozen msgspec Struct (``PlatformSettings``, ``CMSSettings``,
``IngestSettings``, ``EditorSettings``, …) and reads them with :func:`load_settings`, which validates
everything at start: an unknown key, a value of the wrong type or out of range is a
:class:`~marrow.errors.ConfigError` naming the key, where it came from, and what it should be —
before anything is started.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from marrow.errors import ConfigError

__all__ = ["load_settings"]

S = TypeVar("S", bound=msgspec.Struct)


def load_settings(
    cls: type[S],
    section: str,
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> S:
    """``cls`` from section ``[section]`` of the TOML file at ``path`` (if given), overridden by
    environment variables ``MARROW_<SECTION>_<FIELD>``."""
    values: dict[str, Any] = {}
    where = "the defaults"
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read the settings file {path}: {e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"the settings file {path} is not valid TOML: {e}") from None
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] in {path} must be a table of settings")
        values.update(table)
        where = str(path)
    prefix = f"MARROW_{section.upper()}_"
    env = os.environ if environ is None else environ
    from_env = {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    if from_env:
        where += f" and {', '.join(prefix + k.upper() for k in from_env)}"
    values.update(from_env)
    try:
        # strict=False: environment values are strings, "0.5" must read as a float
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as e:
        field = str(e).rpartition("$.")[2].rstrip("`") if "$." in str(e) else ""
        hint = f" (setting {section}.{field})" if field else ""
        raise ConfigError(f"invalid settings from {where}{hint}: {e}") from None
