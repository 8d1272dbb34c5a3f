"""Documented limits on the size of what a search space may hold.

* :data:`MAX_NESTING` (32): the deepest a :class:`SearchSpace` may nest, counting each
  sub-space (a nested dict, the space of an option of a conditional: NNI nested choice,
  RapidFire list of configs) and each list/dict level inside a value. Deeper spaces are refused when built: beyond about 60
  levels Python's recursion limit is reached inside Tune's own ``deepcopy`` of the
  ``param_space``, long after the space was accepted.
* :data:`MAX_DOCUMENT_DEPTH` (200): the deepest nesting of lists and dicts in an input
  document (a JSON/YAML file, a dict handed to an adapter, a serialized space). Checked before
  any recursive parsing, so deep input gives this error instead of a ``RecursionError``.
* Integer parameters are 64-bit: bounds must lie in ``[INT_MIN, INT_MAX]`` (numpy and Tune
  draw int64).
"""

from __future__ import annotations

from typing import Any

from rafiki_ray._errors import invalid

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_DOCUMENT_DEPTH",
    "MAX_NESTING",
    "check_document",
    "check_value",
    "value_depth",
]

MAX_NESTING = 32
MAX_DOCUMENT_DEPTH = 200
INT_MIN = -(2**63)
#: high + 1 must still be an int64 (Tune's ``randint`` upper bound is exclusive).
INT_MAX = 2**63 - 2

_CONTAINERS = (list, tuple, dict, set, frozenset)


def value_depth(value: Any, limit: int) -> int:
    """Nesting depth of lists/tuples/dicts/sets in ``value`` (a scalar is 0), without
    recursion; stops counting at ``limit + 1``."""
    if not isinstance(value, _CONTAINERS):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    reached: dict[int, int] = {}  # id -> deepest level seen (shared sub-lists, cycles)
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return limit + 1
        if reached.get(id(node), 0) >= depth:
            continue
        reached[id(node)] = depth  # a cycle only goes deeper, up to limit + 1
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, _CONTAINERS):
                stack.append((child, depth + 1))
        if isinstance(node, dict):
            for key in node:
                if isinstance(key, (tuple, frozenset)):
                    stack.append((key, depth + 1))
    return deepest


def check_document(data: Any, path: str) -> None:
    """Refuse an input document nested deeper than :data:`MAX_DOCUMENT_DEPTH`."""
    if value_depth(data, MAX_DOCUMENT_DEPTH) > MAX_DOCUMENT_DEPTH:
        raise invalid(
            path,
            f"nests lists/dicts deeper than {MAX_DOCUMENT_DEPTH} levels "
            "(rafiki_ray.spaces.MAX_DOCUMENT_DEPTH)",
        )


def check_value(value: Any, path: str) -> int:
    """Depth of a parameter's value; refuse one deeper than :data:`MAX_NESTING`."""
    depth = value_depth(value, MAX_NESTING)
    if depth > MAX_NESTING:
        raise invalid(
            path, f"nests lists/dicts deeper than {MAX_NESTING} levels (rafiki_ray.spaces.MAX_NESTING)"
        )
    return depth
