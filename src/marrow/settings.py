"""Settings as data: a typed struct per component, read from a TOML file and the environment.

    [platform]                             # marrow.toml
    root = "/srv/marrow"
    [cms]
    database = "postgresql://cms@db/cms?schema=cms"

    MARROW_CMS_DATABASE=sqlite:///var/cms/cms.db   # the environment overrides the file

Each component declares its settings as a frozen msgspec Struct (``PlatformSettings``, ``CMSSettings``,
``IngestSettings``, ``EditorSettings``, ``ImpressionSettings``, ``WritesSettings``, …) and reads them
with :func:`load_settings`. The rules, the same for every component:

* the TOML table ``[section]``, then ``MARROW_<SECTION>_<FIELD>`` variables over it, then values the
  caller was given (command-line options) over both;
* an unknown key — in the file, or an environment variable under the component's prefix — is refused
  with the list of the component's settings (a misspelt variable must not be ignored);
* environment values are text: numbers are parsed, a list, tuple or set field takes a comma-separated
  list (``a,b,c``; a JSON list ``["a","b"]`` is read as JSON), a bool field takes
  ``1/0/true/false/yes/no``;
* the struct's own invariants run too: its ``__post_init__``, then its ``check()`` method if it has one.

Anything wrong is a :class:`~marrow.errors.ConfigError` naming the setting, where its value came from
(the file or the variable) and what it should be — before anything is started.
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

_COLLECTIONS = (
    msgspec.inspect.ListType,
    msgspec.inspect.VarTupleType,
    msgspec.inspect.SetType,
    msgspec.inspect.FrozenSetType,
)
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def load_settings(
    cls: type[S],
    section: str,
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    given: Mapping[str, Any] | None = None,
) -> S:
    """``cls`` from section ``[section]`` of the TOML file at ``path`` (if given), overridden by
    environment variables ``MARROW_<SECTION>_<FIELD>`` (of ``environ``; ``os.environ`` by default),
    overridden by ``given`` (values the caller was given, such as command-line options; None means
    not given). The rules are in the module docstring."""
    fields = {f.encode_name: f.type for f in msgspec.structs.fields(cls)}
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}  # setting -> where its value came from
    if path is not None:
        table = _table(path, section)
        where = f"[{section}] in {path}"
        for key in table:
            if key not in fields:
                raise ConfigError(f"{where}: {key!r} is no setting; {_valid(fields)}")
        values.update(table)
        origins.update(dict.fromkeys(table, where))
    prefix = f"MARROW_{section.upper()}_"
    env = os.environ if environ is None else environ
    for name, text in env.items():
        if not name.startswith(prefix):
            continue
        key = name.removeprefix(prefix).lower()
        if key not in fields:
            raise ConfigError(f"{name} names no {section} setting; {_valid(fields)}")
        values[key] = _from_text(text, fields[key], name)
        origins[key] = name
    for key, value in (given or {}).items():
        if key not in fields:
            raise ConfigError(f"{key!r} is no {section} setting; {_valid(fields)}")
        if value is not None:
            values[key] = value
            origins[key] = "the arguments given"
    try:
        # strict=False: environment values are text, "0.5" must read as a float
        settings = msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(_explain(str(e), section, origins)) from None
    check = getattr(settings, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as e:  # ConfigError is a ValueError too
            raise ConfigError(_explain(str(e), section, origins)) from None
    return settings


def _table(path: str | Path, section: str) -> dict[str, Any]:
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
    return table


def _valid(fields: Mapping[str, Any]) -> str:
    return f"the settings are {', '.join(sorted(fields))}"


def _from_text(text: str, ftype: Any, name: str) -> Any:
    """An environment variable's text as a value for a field of type ``ftype`` (msgspec's
    non-strict conversion does the rest: numbers, and the elements of a list)."""
    info = msgspec.inspect.type_info(ftype)
    kinds = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    if any(isinstance(k, _COLLECTIONS) for k in kinds):
        if text.lstrip().startswith("["):
            try:
                return msgspec.json.decode(text)
            except msgspec.DecodeError:
                raise ConfigError(f"{name} starts like a JSON list but is not one: {text!r}") from None
        return [item.strip() for item in text.split(",") if item.strip()]
    if any(isinstance(k, msgspec.inspect.BoolType) for k in kinds):
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ConfigError(f"{name} is true or false (1/0/true/false/yes/no), not {text!r}")
    return text


def _explain(message: str, section: str, origins: Mapping[str, str]) -> str:
    """msgspec says "Expected `int`, got `str` - at `$.port`": name the setting and where its value
    came from first."""
    what, at, where = message.rpartition(" - at `$.")
    if at:
        field = where.rstrip("`")
        key = field.split("[", 1)[0].split(".", 1)[0]
        return f"invalid setting {section}.{field} (from {origins.get(key, 'the defaults')}): {what}"
    sources = ", ".join(sorted(set(origins.values())))
    return f"invalid {section} settings (from {sources + ' and ' if sources else ''}the defaults): {message}"
