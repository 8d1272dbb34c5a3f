"""Concrete lists of configurations (Polyaxon grid/random, RapidFire groups) as Tune input.

Some sources do not hand a *distribution* to their scheduler but a fixed list of
configurations: Polyaxon's grid search truncated to ``n_experiments`` and its de-duplicated
random search, RapidFire's ``RandomSearch`` with ``num_runs`` distinct runs. A Tune
``param_space`` that yields exactly such a list (nothing more, nothing less, in order) is
built here as one ``tune.grid_search`` over an index plus one ``tune.sample_from`` per
top-level key that reads that index. The users' keys keep their names and nesting; the
extra key :data:`INDEX_KEY` tells the trainable which entry of the list it got.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid
from rafiki_ray.spaces._params import Categorical, Conditional, Fixed, Int, Param
from rafiki_ray.spaces._space import SearchSpace

__all__ = [
    "INDEX_KEY",
    "canonical",
    "config_list_param_space",
    "distinct_count",
    "distinct_grid_count",
    "distinct_samples",
]

#: The key of the list index in a param_space built by :func:`config_list_param_space`.
INDEX_KEY = "__config_index__"

#: Largest grid enumerated to count distinct configurations.
_COUNT_LIMIT = 200_000


class _Pick:
    """``tune.sample_from`` function: the value of ``key`` in the config at the index."""

    def __init__(
        self, configs: Sequence[Mapping[str, Any]], key: str | None, index_key: str
    ) -> None:
        self.configs = [copy.deepcopy(dict(c)) for c in configs]
        self.key = key
        self.index_key = index_key

    def __call__(self, config: Mapping[str, Any]) -> Any:
        entry = self.configs[int(config[self.index_key])]
        return copy.deepcopy(entry if self.key is None else entry[self.key])


def config_list_param_space(
    configs: Sequence[Mapping[str, Any]],
    *,
    index_key: str = INDEX_KEY,
    wrap_key: str | None = None,
    path: str = "configs",
) -> dict[str, Any]:
    """A Tune ``param_space`` whose grid yields exactly ``configs``, in order.

    Use it with ``num_samples=1``. When the configurations do not all share the same top-level
    keys, pass ``wrap_key``: each trial then gets the whole configuration under that key.
    """
    from ray import tune

    configs = list(configs)
    if not configs:
        raise invalid(path, "needs at least one configuration", configs)
    if wrap_key is not None:
        return {
            index_key: tune.grid_search(list(range(len(configs)))),
            wrap_key: tune.sample_from(_Pick(configs, None, index_key)),
        }
    keys = list(configs[0])
    for i, cfg in enumerate(configs):
        if set(cfg) != set(keys):
            raise invalid(
                f"{path}[{i}]", f"must have the same keys as {path}[0] ({keys})", sorted(cfg)
            )
    if index_key in keys:
        raise invalid(path, f"must not use the reserved key {index_key!r}", keys)
    space: dict[str, Any] = {index_key: tune.grid_search(list(range(len(configs))))}
    for key in keys:
        space[key] = tune.sample_from(_Pick(configs, key, index_key))
    return space


def canonical(config: Any) -> str:
    """A string that is equal for equal configurations (used to de-duplicate)."""
    return json.dumps(config, sort_keys=True, default=repr)


def distinct_samples(
    space: SearchSpace,
    n: int,
    rng: np.random.Generator,
    *,
    path: str,
    max_attempts: int | None = None,
) -> list[dict[str, Any]]:
    """``n`` distinct configurations drawn i.i.d. from ``space``, duplicates rejected.

    Raises a ValueError naming ``path`` when ``max_attempts`` draws (default ``max(1000,
    100 n)``) do not yield ``n`` distinct ones (never loops forever, unlike Polyaxon).
    """
    attempts = max_attempts if max_attempts is not None else max(1000, 100 * n)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(attempts):
        if len(out) >= n:
            break
        cfg = space.sample(rng)
        key = canonical(cfg)
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    if len(out) < n:
        raise invalid(
            path,
            f"the space yielded only {len(out)} distinct configurations in {attempts} draws",
            n,
        )
    return out


def _param_count(p: Param) -> int | None:
    """Distinct values a parameter can draw (with non-zero probability), None if infinite."""
    if isinstance(p, Fixed):
        return 1
    if isinstance(p, Int):
        return p.size
    if isinstance(p, Categorical):
        idx = (
            range(len(p.choices))
            if p.weights is None
            else [i for i, w in enumerate(p.weights) if w > 0]
        )
        return len({canonical(p.choices[i]) for i in idx})
    if isinstance(p, Conditional):
        total = 0
        for o in p.options:
            c = distinct_count(o.space)
            if c is None:
                return None
            total += c
        return total
    return None


def distinct_count(space: SearchSpace) -> int | None:
    """Upper bound on the distinct configurations of ``space`` (None when infinite).

    Exact for products of Fixed, Int and Categorical parameters; a Conditional counts the sum
    of its options (exact unless two options can produce the same configuration).
    """
    total = 1
    for _, p in space.leaves():
        c = _param_count(p)
        if c is None:
            return None
        total *= c
        if total > 10**15:
            return total
    return total


def distinct_grid_count(space: SearchSpace) -> int | None:
    """Exact number of distinct configurations of a finite space (None if too large/infinite)."""
    if not space.is_finite():
        return None
    if space.grid_size() > _COUNT_LIMIT:
        return None
    return len({canonical(c) for c in space.grid()})
