"""Field values between the store and the web: records as JSON, and query strings as field values.

* :class:`RecordsJSON` reads records of one version in bulk and gives each as a JSON-able dict:
  its identity (type, ordinal, primary key, a label, a URL) and its fields. A reference becomes the
  identity of the record it points to, a set a sorted list, a map a list of ``[key, value]`` pairs
  (its keys may be numbers or references, which a JSON object cannot key by).
* :func:`parse_value` reads a query-string value as a field's type; :func:`as_text` writes one back.
* :func:`jsonable` makes plain what JSON cannot hold: bytes as hex, NaN and infinities as strings.

Invariant: ``parse_value(t, as_text(v)) == v`` for every scalar value ``v`` of type ``t`` (but NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marrow.errors import NotFoundError
from marrow.store.read import ReadState, TypeReader
from marrow.store.schema import INT_RANGE, FieldType

__all__ = ["BadValue", "RecordsJSON", "as_text", "jsonable", "parse_value"]

LABEL_TEXT = 40  #: characters of a record's name shown in its label
_ORDINALS = (0, 2**32 - 1)  # the range of a reference, given as the ordinal it points to


class BadValue(ValueError):
    """A query-string value that does not parse as its field's type; the message says why."""


class RecordsJSON:
    """Records of one version as JSON-able dicts; ``record_url(type, ordinal)`` links each record.

    Lifecycle: one per request. It remembers the identities it has made, since a page shows the same
    referenced record many times (every title of a page may share a director).
    """

    def __init__(self, state: ReadState, record_url: Callable[[str, int], str]):
        self.state = state
        self.record_url = record_url
        self._refs: dict[tuple[str, int], dict[str, Any]] = {}

    def records(self, reader: TypeReader, ordinals: list[int]) -> list[dict[str, Any]]:
        """The records at ``ordinals``, read in bulk, one dict per record."""
        fields = reader.schema.fields
        columns = reader.read(ordinals, [f.name for f in fields])
        out = []
        for i, o in enumerate(ordinals):
            values = {f.name: self.value(f.type, columns[f.name][i]) for f in fields}
            out.append({**self.ref(reader.name, o), "fields": values})
        return out

    def value(self, ftype: FieldType, v: Any) -> Any:
        """A value as :meth:`TypeReader.read` gives it (references as ordinals), made JSON-able."""
        if v is None:
            return None
        if ftype.kind == "ref":
            return self.ref(str(ftype.target), v)
        if ftype.kind == "map":
            assert ftype.element is not None and ftype.value is not None
            return [[self.value(ftype.element, k), self.value(ftype.value, x)] for k, x in sorted(v.items())]
        if ftype.kind in ("list", "set"):
            assert ftype.element is not None
            items = sorted(v) if ftype.kind == "set" else v  # a set in the same order on every page
            return [self.value(ftype.element, x) for x in items]
        return jsonable(v)

    def ref(self, type_name: str, ordinal: int) -> dict[str, Any]:
        """A record's identity: type, ordinal, primary key, a label and its URL."""
        found = self._refs.get((type_name, ordinal))
        if found is None:
            reader = self.state[type_name]
            key_fields = reader.schema.primary_key
            key: Any = None
            label = f"{type_name} #{ordinal}"
            try:
                view = reader[ordinal]
            except NotFoundError:
                # A reference to a freed ordinal is a bug of whoever wrote the state: show it, don't fail.
                label += " (missing)"
            else:
                if key_fields:
                    values = [getattr(view, k) for k in key_fields]
                    key = jsonable(values[0] if len(values) == 1 else values)
                    label = f"{type_name} {', '.join(as_text(v) for v in values)}"
                # A key says which record, a name says what it is: add the first other string field.
                texts = (f.name for f in reader.schema.fields if f.type.kind == "string")
                text = next((name for name in texts if name not in key_fields), None)
                if text is not None and getattr(view, text):
                    label += f" · {_shorten(getattr(view, text), LABEL_TEXT)}"
            url = self.record_url(type_name, ordinal)
            found = {"type": type_name, "ordinal": ordinal, "key": key, "label": label, "url": url}
            self._refs[(type_name, ordinal)] = found
        return found


def parse_value(ftype: FieldType, text: str, where: str) -> Any:
    """``text`` as a value of ``ftype`` (of its elements, for a list or set); ``where`` names the field
    in the message of :class:`BadValue`. A reference is given as the ordinal it points to."""
    if ftype.kind == "map":
        raise BadValue(f"{where} is a map; a hash index takes scalar, list or set fields")
    if ftype.kind in ("list", "set"):
        assert ftype.element is not None
        ftype = ftype.element
    kind = ftype.kind
    if kind in ("int", "long", "ref"):
        what = f"a reference to {ftype.target}, given as its ordinal" if kind == "ref" else f"a {kind}"
        what = what.replace("a int", "an int")
        try:
            number = int(text.strip())
        except ValueError:
            raise BadValue(f"{where} is {what}; {text!r} is not an integer") from None
        lo, hi = INT_RANGE.get(kind, _ORDINALS)
        if not lo <= number <= hi:
            raise BadValue(f"{where} is {what}; {number} is outside {lo}..{hi}")
        return number
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            raise BadValue(f"{where} is a {kind}; {text!r} is not a number") from None
    if kind == "boolean":
        word = text.strip().lower()
        if word not in ("true", "false"):
            raise BadValue(f"{where} is a boolean; give true or false, not {text!r}")
        return word == "true"
    if kind == "bytes":
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise BadValue(f"{where} is bytes; give them as hex, like 00ff10, not {text!r}") from None
    return text


def as_text(v: Any) -> str:
    """A value as it is typed into a query string (what :func:`parse_value` reads)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def jsonable(v: Any) -> Any:
    """``v`` with what JSON cannot hold made plain: bytes as hex, NaN and infinities as strings."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _shorten(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
