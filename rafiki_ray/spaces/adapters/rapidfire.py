"""RapidFire AI knobs (``List``, ``Range``, ``GridSearch``, ``RandomSearch``) -> SearchSpace.

Semantics follow ``rapidfireai/automl/{datatypes,grid_search,random_search}.py`` and the
"Config Knobs and AutoML" docs. A config is a dict whose values are plain values, nested dicts
(kept as nested sub-spaces, so the trial config has the same nesting) or value-set generators:

* ``List(values)`` -> a uniform Categorical; a List of dicts of which some hold generators
  becomes a ``Conditional(label_key=None)`` (RapidFire's grid expands such dicts recursively);
* ``Range(start, end, dtype=None, log=False, step=None)``: both bounds inclusive; ``int`` when
  both bounds are ints or ``dtype="int"``; ``log`` and ``step`` together are refused; ``log``
  needs positive bounds. Uniform -> ``Int``/``Float``; log -> ``Int``/``Float`` with ``log=True``;
  step -> the values ``start, start+step, ... <= end`` drawn uniformly (an ``Int`` with
  ``q=step`` when start is a multiple of the step, else a Categorical of those values).

Group generators: ``GridSearch(config)`` (recursive cartesian product over Lists; a Range is an
error naming its path), ``RandomSearch(config, num_runs=, seed=)`` (``num_runs`` distinct
configurations, seeded), and a Python list mixing plain configs and groups (RapidFire launches
all of them: :func:`expand_runs`; as a space, a ``Conditional(label_key=None)`` under the key
:data:`GROUP_KEY`, each element weighted by the number of runs it launches).

Decisions where RapidFire's code and docs disagree, or the code is wrong
    * integer log ranges: RapidFire draws ``round(exp(U(log a, log b)))``, which gives each
      bound half the weight of its log-width; we use ``Int(log=True)`` (``floor(exp(U(log a,
      log(b+1))))``, Tune's ``lograndint`` law), whose bounds are fully inclusive.
    * float steps: RapidFire counts ``int((end - start) / step)`` steps, so ``Range(0.0, 0.3,
      step=0.1)`` silently loses 0.3 to rounding error; we allow a 1e-9 relative tolerance so the
      documented inclusive end is kept.
    * reversed float bounds: the docs' own example has ``Range(1e-4, 1e-5, dtype="float")``, which
      RapidFire's ``random.uniform`` accepts (it is symmetric); we swap such bounds (float, no
      step, not log) and log a warning. Reversed int, stepped or log ranges are errors
      (RapidFire's ``randint`` raises; a log range is never swapped silently).
    * ``RandomSearch`` over a Python list of config templates (the docs allow a list wherever a
      config goes): each run picks a template uniformly, then draws its knobs; runs are
      de-duplicated across templates.
    * a generator inside a plain list (``[List([1, 2]), 3]``) is passed through unexpanded by
      RapidFire; we raise an error naming its path instead.
    * ``RandomSearch`` raises *before* sampling when a finite space has fewer than ``num_runs``
      distinct configurations, and otherwise after ``max(1000, 100 num_runs)`` draws (RapidFire:
      ``10 num_runs``; its fit mode only collects runs in the GRPO branch, a bug not reproduced).
      The default seed is 42, as in RapidFire's ``RFRandomSearch``; ``List`` draws use the same
      seeded generator (RapidFire uses the global ``random``).
    * ``GridSearch.configs()`` lists at most ``GRID_LIMIT`` (100,000) combinations and
      ``RandomSearch`` takes at most that many ``num_runs``; more is an error naming the field,
      not a list that exhausts memory.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed, make_rng
from rafiki_ray.spaces._limits import MAX_DOCUMENT_DEPTH
from rafiki_ray.spaces._params import (
    GRID_LIMIT,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Option,
    Param,
)
from rafiki_ray.spaces._space import SearchSpace
from rafiki_ray.spaces.adapters._configlist import (
    INDEX_KEY,
    config_list_param_space,
    distinct_grid_count,
    distinct_samples,
)

__all__ = [
    "GROUP_KEY",
    "INDEX_KEY",
    "GridSearch",
    "List",
    "RandomSearch",
    "Range",
    "expand_runs",
    "from_rapidfire",
]

logger = logging.getLogger(__name__)


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an int beyond float range, e.g. 10**400
        return False


#: The key under which a Python list of configs/groups puts the chosen whole config.
GROUP_KEY = "config"


class List:
    """``List(values)``: one of ``values``, uniformly (RapidFire's discrete value set)."""

    __slots__ = ("values",)

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
            raise invalid_type("List", "expects a list of values", values)
        if not values:
            raise invalid("List", "must not be empty", list(values))
        self.values = list(values)

    def __repr__(self) -> str:
        return f"List({self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, List) and other.values == self.values

    __hash__ = None  # type: ignore[assignment]


class Range:
    """``Range(start, end, dtype=None, log=False, step=None)``: both bounds inclusive.

    ``dtype`` is ``"int"`` when both bounds are ints (or when asked), else ``"float"``.
    """

    __slots__ = ("dtype", "end", "log", "start", "step")

    def __init__(
        self,
        start: float,
        end: float,
        dtype: str | None = None,
        log: bool = False,
        step: float | None = None,
    ) -> None:
        for name, v in (("start", start), ("end", end)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise invalid_type(f"Range.{name}", "must be an int or a float", v)
            if not _finite(v):
                raise invalid(f"Range.{name}", "must be finite (within float range)", v)
        if dtype is None:
            both_int = isinstance(start, (int, np.integer)) and isinstance(end, (int, np.integer))
            dtype = "int" if both_int else "float"
        if dtype not in ("int", "float"):
            raise invalid("Range.dtype", "must be None, 'int' or 'float'", dtype)
        if not isinstance(log, bool):
            raise invalid_type("Range.log", "must be a bool", log)
        if log and step is not None:
            raise invalid(
                "Range", "log=True and step are mutually exclusive", {"log": log, "step": step}
            )
        if log and (start <= 0 or end <= 0):
            raise invalid("Range", "log=True needs start > 0 and end > 0", [start, end])
        if dtype == "int":
            for name, v in (("start", start), ("end", end)):
                if float(v) != int(v):
                    raise invalid(f"Range.{name}", "must be integral for dtype='int'", v)
            start, end = int(start), int(end)
        else:
            start, end = float(start), float(end)
        if step is not None:
            if isinstance(step, bool) or not isinstance(
                step, (int, float, np.integer, np.floating)
            ):
                raise invalid_type("Range.step", "must be a number", step)
            if not _finite(step) or not step > 0:
                raise invalid("Range.step", "must be > 0 and finite", step)
            if dtype == "int":
                if float(step) != int(step):
                    raise invalid("Range.step", "must be an integer for dtype='int'", step)
                step = int(step)
        if start > end:
            if dtype == "float" and step is None and not log:
                # random.uniform is symmetric and the docs' own example relies on it
                logger.warning(
                    "Range(%r, %r): start > end; sampling uniformly between them "
                    "(as RapidFire's random.uniform does)", start, end,
                )
                start, end = end, start
            else:
                rule = "needs start <= end" + (
                    " (a log range is never swapped: give the bounds in order)" if log else ""
                )
                raise invalid("Range", rule, [start, end])
        self.start, self.end, self.dtype, self.log, self.step = start, end, dtype, log, step

    def __repr__(self) -> str:
        return (
            f"Range({self.start!r}, {self.end!r}, dtype={self.dtype!r}, log={self.log!r}, "
            f"step={self.step!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Range) and all(
            getattr(self, s) == getattr(other, s) for s in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    def to_param(self, path: str = "Range") -> Param:
        """The equivalent parameter (see the module docstring for the laws)."""
        try:
            return self._to_param(path)
        except (ValueError, TypeError) as exc:  # a rule of the space model (e.g. int64)
            if str(exc).startswith(path):
                raise
            raise type(exc)(f"{path}: {exc}") from None

    def _to_param(self, path: str) -> Param:
        if self.step is None:
            if self.dtype == "int":
                return Int(self.start, self.end, log=self.log)
            return Float(self.start, self.end, log=self.log)
        n = (self.end - self.start) / self.step
        if not math.isfinite(n) or n + 1 > GRID_LIMIT:  # a sub-normal step overflows
            raise invalid(path, f"has more than {GRID_LIMIT} steps", self)
        n_steps = math.floor(n + 1e-9 * max(1.0, abs(n)))
        if self.dtype == "int" and self.start % self.step == 0:
            return Int(
                self.start,
                self.start + n_steps * self.step,
                q=self.step if self.step > 1 else None,
            )
        return Categorical(tuple(self.start + k * self.step for k in range(n_steps + 1)))


# ---------------------------------------------------------------------------------------
# Config -> SearchSpace


def _has_generator(x: Any) -> bool:
    if isinstance(x, (List, Range, GridSearch, RandomSearch)):
        return True
    if isinstance(x, Mapping):
        return any(_has_generator(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(_has_generator(v) for v in x)
    return False


def _value(x: Any, path: str, *, grid: bool) -> Any:
    """One config value -> Param, SearchSpace, or a plain value (kept as Fixed)."""
    if isinstance(x, Range):
        if grid:
            raise invalid(path, "GridSearch cannot expand a Range (use List, or RandomSearch)", x)
        return x.to_param(path)
    if isinstance(x, List):
        return _list(x, path, grid=grid)
    if isinstance(x, (GridSearch, RandomSearch)):
        raise invalid(
            path, "a group generator can only stand at the top of a config or in a list", x
        )
    if isinstance(x, Mapping):
        return _space(x, path, grid=grid)
    if isinstance(x, (list, tuple)) and _has_generator(x):
        raise invalid(path, "RapidFire does not expand List/Range inside a plain list", x)
    return Fixed(copy.deepcopy(x))


def _space(config: Mapping[str, Any], path: str, *, grid: bool) -> SearchSpace:
    out: dict[str, Any] = {}
    for key, v in config.items():
        if not isinstance(key, str):
            raise invalid_type(path, "config keys must be strings", key)
        out[key] = _value(v, f"{path}.{key}", grid=grid)
    return SearchSpace(out)


def _list(lst: List, path: str, *, grid: bool) -> Param:
    values = lst.values
    if not any(_has_generator(v) for v in values):
        return Categorical(tuple(copy.deepcopy(values)))
    options = []
    for i, v in enumerate(values):
        where = f"{path}[{i}]"
        if not isinstance(v, Mapping):
            raise invalid(where, "a List mixing generators must hold only dicts", v)
        options.append(Option(i, _space(v, where, grid=grid)))
    return Conditional(tuple(options), label_key=None)


def _config_space(config: Any, path: str, *, grid: bool) -> SearchSpace:
    if not isinstance(config, Mapping):
        raise invalid_type(path, "must be a config dict", config)
    _check_depth(config, path)
    try:
        return _space(config, path, grid=grid)
    except (ValueError, TypeError) as exc:  # a limit of the space model (e.g. nesting)
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path}: {exc}") from None


def _check_depth(config: Any, path: str) -> None:
    """Refuse a config nested deeper than MAX_DOCUMENT_DEPTH (dicts, lists and ``List``
    values all count), before the recursive conversion could hit Python's recursion limit."""
    stack: list[tuple[Any, int]] = [(config, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DOCUMENT_DEPTH:
            raise invalid(
                path,
                f"nests dicts/lists/List values deeper than {MAX_DOCUMENT_DEPTH} levels "
                "(rafiki_ray.spaces.MAX_DOCUMENT_DEPTH)",
            )
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        elif isinstance(node, List):
            children = node.values
        else:
            continue
        stack.extend((c, depth + 1) for c in children)


# ---------------------------------------------------------------------------------------
# Group generators


class GridSearch:
    """``GridSearch(config)``: every combination of the config's ``List`` values.

    ``configs()`` lists them in RapidFire's order (dict order, the last knob varying fastest);
    ``to_tune()`` is ``space.to_tune(grid=True)`` (the same set, in Tune's order).
    """

    def __init__(self, config: Mapping[str, Any], *, path: str = "config") -> None:
        self.config = config
        self._path = path
        self.space = _config_space(config, path, grid=True)

    def __repr__(self) -> str:
        return f"GridSearch({self.config!r})"

    def __len__(self) -> int:
        return self.space.grid_size()

    def configs(self) -> list[dict[str, Any]]:
        """Every combination, listed; more than ``GRID_LIMIT`` is an error (the runs could
        not all be launched, and the list alone could exhaust memory)."""
        size = len(self)
        if size > GRID_LIMIT:
            raise invalid(self._path, f"GridSearch has more than {GRID_LIMIT} combinations",
                          size)
        return list(self.space.grid())

    def to_tune(self) -> dict[str, Any]:
        """A Tune param_space of ``tune.grid_search`` values (use ``num_samples=1``)."""
        return self.space.to_tune(grid=True)


class RandomSearch:
    """``RandomSearch(config, num_runs=, seed=42)``: ``num_runs`` distinct i.i.d. configurations.

    Lists are drawn uniformly, Ranges by their law. The configurations are drawn once, at
    construction, so a space that cannot yield ``num_runs`` distinct ones fails here, with an
    error naming ``num_runs``.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        num_runs: int = 1,
        seed: int | None = 42,
        path: str = "config",
    ) -> None:
        if (
            isinstance(num_runs, bool)
            or not isinstance(num_runs, (int, np.integer))
            or num_runs < 1
        ):
            raise invalid("num_runs", "must be a positive integer", num_runs)
        if num_runs > GRID_LIMIT:  # each run is drawn and listed here, at construction
            raise invalid("num_runs", f"must be at most {GRID_LIMIT}", num_runs)
        self.config = config
        self.num_runs = int(num_runs)
        self.seed = check_seed(seed)
        self._templates = isinstance(config, (list, tuple))
        if self._templates:
            self.space = _templates_space(config, path)
        else:
            self.space = _config_space(config, path, grid=False)
        n_distinct = distinct_grid_count(self.space)
        if n_distinct is not None and n_distinct < self.num_runs:
            raise invalid(
                "num_runs",
                f"{path} has only {n_distinct} distinct configurations, fewer than num_runs",
                self.num_runs,
            )
        self._configs = distinct_samples(
            self.space, self.num_runs, make_rng(self.seed), path="num_runs"
        )
        if self._templates:
            self._configs = [c[GROUP_KEY] for c in self._configs]

    def __repr__(self) -> str:
        return f"RandomSearch({self.config!r}, num_runs={self.num_runs}, seed={self.seed})"

    def __len__(self) -> int:
        return self.num_runs

    def configs(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._configs)

    def to_tune(self) -> dict[str, Any]:
        """A Tune param_space yielding exactly :meth:`configs` (use ``num_samples=1``).

        One ``tune.grid_search`` over :data:`INDEX_KEY` plus one ``tune.sample_from`` per
        top-level key: the users' keys keep their names and nesting.
        """
        same_keys = all(set(c) == set(self._configs[0]) for c in self._configs)
        wrap = None if same_keys else GROUP_KEY
        return config_list_param_space(self._configs, wrap_key=wrap, path="config")


def _templates_space(config: Sequence[Any], path: str) -> SearchSpace:
    """A list of config templates: ``{GROUP_KEY: Conditional}``, one template uniformly."""
    if not config:
        raise invalid(path, "must not be an empty list of config templates", list(config))
    options = []
    for i, item in enumerate(config):
        if not isinstance(item, Mapping):
            raise invalid_type(f"{path}[{i}]", "must be a config dict (a template)", item)
        options.append(Option(i, _config_space(item, f"{path}[{i}]", grid=False)))
    return SearchSpace({GROUP_KEY: Conditional(tuple(options), label_key=None)})


# ---------------------------------------------------------------------------------------
# Entry points


def from_rapidfire(config: Any, path: str = "config") -> SearchSpace:
    """Convert a RapidFire config (dict with List/Range), a group, or a list of configs/groups.

    A Python list (RapidFire launches every element) becomes ``{GROUP_KEY: Conditional}``: a
    choice of one element, weighted by the runs it launches (1 for a plain config, the grid
    size for a GridSearch, ``num_runs`` for a RandomSearch), whose value is the whole config.
    """
    if isinstance(config, (GridSearch, RandomSearch)):
        return config.space
    if isinstance(config, (list, tuple)):
        if not config:
            raise invalid(path, "must not be an empty list", list(config))
        options, runs = [], []
        for i, item in enumerate(config):
            where = f"{path}[{i}]"
            if isinstance(item, (GridSearch, RandomSearch)):
                options.append(Option(i, item.space))
                runs.append(len(item))
            elif isinstance(item, Mapping):
                options.append(Option(i, _config_space(item, where, grid=False)))
                runs.append(1)
            else:
                raise invalid_type(
                    where, "must be a config dict, a GridSearch or a RandomSearch", item
                )
        weights = tuple(r / sum(runs) for r in runs)
        return SearchSpace(
            {GROUP_KEY: Conditional(tuple(options), weights=weights, label_key=None)}
        )
    if isinstance(config, Mapping):
        return _config_space(config, path, grid=False)
    raise invalid_type(
        path, "must be a config dict, a GridSearch, a RandomSearch or a list of them", config
    )


def expand_runs(config: Any, path: str = "config") -> list[dict[str, Any]]:
    """The concrete configurations RapidFire's ``run_fit`` launches for ``config``.

    A plain config (no generators) is one run; a GridSearch / RandomSearch its ``configs()``;
    a list the concatenation of its elements' runs.
    """
    if isinstance(config, (GridSearch, RandomSearch)):
        return config.configs()
    if isinstance(config, (list, tuple)):
        return [run for i, item in enumerate(config) for run in expand_runs(item, f"{path}[{i}]")]
    if isinstance(config, Mapping):
        if _has_generator(config):
            raise invalid(
                path, "holds List/Range values; wrap it in GridSearch or RandomSearch", config
            )
        return [copy.deepcopy(dict(config))]
    raise invalid_type(
        path, "must be a config dict, a GridSearch, a RandomSearch or a list of them", config
    )


def runs_to_tune(config: Any, path: str = "config") -> dict[str, Any]:
    """A Tune param_space yielding exactly :func:`expand_runs` (use ``num_samples=1``).

    Each trial gets the whole run config under :data:`GROUP_KEY` when the runs' top-level keys
    differ, else directly.
    """
    runs = expand_runs(config, path)
    same_keys = all(set(r) == set(runs[0]) for r in runs)
    return config_list_param_space(runs, wrap_key=None if same_keys else GROUP_KEY, path=path)
