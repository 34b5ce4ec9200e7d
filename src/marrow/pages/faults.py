"""Fault injection: make a section generator slow or failing, to test and measure fallbacks.

Configuration is data, e.g. from the site's settings::

    faults = Faults.parse({"because_you_watched": {"delay_ms": 500}, "trending": {"error_rate": 0.1}})

A generator with a fault runs in the page's pool (never inline), so the deadline can abandon it, as
it would a slow personalisation service.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marrow.errors import ConfigError


class InjectedFault(RuntimeError):
    """Raised by a generator a fault was injected into."""


@dataclass(frozen=True)
class Fault:
    delay_ms: float = 0.0
    error_rate: float = 0.0


@dataclass(frozen=True)
class Faults:
    """Faults by generator name; empty (no faults) by default."""

    by_generator: Mapping[str, Fault] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Faults:
        out = {}
        for name, spec in raw.items():
            if not isinstance(spec, Mapping) or set(spec) - {"delay_ms", "error_rate"}:
                raise ConfigError(
                    f"faults.{name}: expected a table of delay_ms and/or error_rate, got {spec!r}"
                )
            delay, rate = spec.get("delay_ms", 0), spec.get("error_rate", 0)
            if not isinstance(delay, int | float) or delay < 0:
                raise ConfigError(f"faults.{name}.delay_ms: expected a number ≥ 0, got {delay!r}")
            if not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ConfigError(f"faults.{name}.error_rate: expected a share between 0 and 1, got {rate!r}")
            out[name] = Fault(float(delay), float(rate))
        return cls(out)

    def wrap(self, name: str, generator: Any) -> Any:
        fault = self.by_generator.get(name)
        return generator if fault is None else _Faulty(generator, fault, name)


class _Faulty:
    inline = False

    def __init__(self, inner: Any, fault: Fault, name: str):
        self.inner, self.fault, self.name = inner, fault, name

    def check(self, params: Mapping[str, Any]) -> None:
        self.inner.check(params)

    def __getattr__(self, name: str) -> Any:  # the unpersonalised variant, if any, has no fault
        return getattr(self.inner, name)

    def generate(self, ctx: Any, params: Mapping[str, Any]) -> Any:
        if self.fault.delay_ms:
            time.sleep(self.fault.delay_ms / 1000)
        if self.fault.error_rate and random.random() < self.fault.error_rate:
            raise InjectedFault(f"injected fault in generator {self.name!r}")
        return self.inner.generate(ctx, params)
