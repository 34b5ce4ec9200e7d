"""The CMS's settings (section ``[cms]``, environment ``MARROW_CMS_*``), read with
:func:`marrow.settings.load_settings` (re-exported here).

    [cms]                                  # marrow.toml
    database = "postgresql://cms@db/cms?schema=cms"
    events = "nats"

    MARROW_CMS_DATABASE=sqlite:///var/cms/cms.db   # the environment overrides the file

:func:`load_settings` validates everything at start: an unknown key, a value of the wrong type or out
of range is a :class:`~marrow.errors.ConfigError` naming the key, where it came from, and what it
should be — before anything is started.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from marrow.settings import load_settings

__all__ = ["CMSSettings", "load_settings"]


class CMSSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The CMS and its events (section ``[cms]``, environment ``MARROW_CMS_*``)."""

    #: ``sqlite:///path`` (the embedded default) or ``postgresql://...[?schema=name]``
    database: str = "sqlite:///var/cms/cms.db"
    #: ``inprocess`` (the default: a queue in this process) or ``nats`` (a JetStream stream)
    events: Literal["inprocess", "nats"] = "inprocess"
    nats_url: str = "nats://127.0.0.1:4222"
    #: the JetStream subject the events are published on (its stream is named after it)
    nats_subject: str = "marrow.cms.events"
    #: seconds between the relay's rounds when no save nudges it
    relay_interval: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
