"""The JSON encoding of parameter *values* (fixed values, choices, candidates, labels).

:meth:`SearchSpace.to_dict` must give plain, standard JSON (no bare ``NaN``) that
:meth:`SearchSpace.from_dict` turns back into exactly the same values. JSON has lists,
string-keyed objects, finite numbers, strings, booleans and null; everything else a value
may hold is written as a one-key object whose key names the Python type:

==========================  ==========================================================
Python value                JSON
==========================  ==========================================================
``float("nan")``, ``±inf``  ``{"__float__": "nan"}``, ``{"__float__": "inf"}``, ``"-inf"``
``(1, 2)``                  ``{"__tuple__": [1, 2]}``
``frozenset({1, 2})``       ``{"__frozenset__": [1, 2]}`` (elements in a stable order)
``{1, 2}`` (a set)          ``{"__set__": [1, 2]}``
a dict with a non-string    ``{"__dict__": [[key, value], ...]}`` (keys and values encoded
key, or a dict that looks   the same way)
like one of these markers
==========================  ==========================================================

Lists, string-keyed dicts, ints, finite floats, strings, booleans and ``None`` are written as
themselves. Values of any other type (a class, a function) are kept as they are by
``to_dict`` (for in-process state) and refused by ``to_json`` with an error naming them.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MARKERS", "decode_value", "encode_value"]

MARKERS = ("__float__", "__tuple__", "__frozenset__", "__set__", "__dict__")


def _sort_key(encoded: Any) -> str:
    return json.dumps(encoded, sort_keys=True, default=repr)


def encode_value(value: Any) -> Any:
    """``value`` as plain JSON data (see the module docstring for the encoding)."""
    if isinstance(value, float):
        if math.isnan(value):
            return {"__float__": "nan"}
        if math.isinf(value):
            return {"__float__": "inf" if value > 0 else "-inf"}
        return value
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        items = sorted((encode_value(v) for v in value), key=_sort_key)
        return {("__frozenset__" if isinstance(value, frozenset) else "__set__"): items}
    if isinstance(value, dict):
        plain_keys = all(isinstance(k, str) for k in value)
        if plain_keys and not (len(value) == 1 and next(iter(value)) in MARKERS):
            return {k: encode_value(v) for k, v in value.items()}
        return {"__dict__": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    return value


def decode_value(data: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if isinstance(data, dict):
        if len(data) == 1:
            (key, inner), = data.items()
            if key == "__float__" and inner in ("nan", "inf", "-inf"):
                return float(inner)
            if key in ("__tuple__", "__frozenset__", "__set__") and isinstance(inner, list):
                items = [decode_value(v) for v in inner]
                return {"__tuple__": tuple, "__frozenset__": frozenset, "__set__": set}[key](items)
            if key == "__dict__" and isinstance(inner, list):
                return {_hashable(decode_value(k)): decode_value(v) for k, v in inner}
        return {k: decode_value(v) for k, v in data.items()}
    return data


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
