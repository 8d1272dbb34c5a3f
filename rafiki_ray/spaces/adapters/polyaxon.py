"""Polyaxon v0.x ``hptuning`` sections -> :class:`PolyaxonMatrix` (a SearchSpace plus settings).

Semantics follow ``polyaxon_schemas/ops/group/{matrix,hptuning}.py`` and Polyaxon's search
managers (``hpsearch/search_managers/{grid,random}.py``); where they disagree with the docs, or
are buggy, the decision taken here is listed below, with the reason.

Matrix options (exactly one per parameter)
    ``values`` -> Categorical (duplicates kept, as Polyaxon's grid keeps them);
    ``pvalues [[v, p], ...]`` -> weighted Categorical: each ``p`` in [0, 1), their sum <= 1, and
    the *last* value receives the remaining probability (Polyaxon draws with
    ``numpy.random.multinomial``, which ignores the last ``p``: [[a, .1], [b, .2], [c, .3]] gives
    c probability 0.7);
    ``range`` = ``np.arange`` (stop exclusive) -> an ``Int`` (with ``q=step``) when start, stop and
    step are integers and start is a multiple of step (same values, same uniform law, and
    searchers see the order), else a Categorical of arange's values;
    ``linspace`` / ``logspace`` / ``geomspace`` -> Categorical of numpy's values;
    ``uniform`` -> Float; ``quniform`` = ``floor(U/q)*q`` -> ``Float(rounding="floor",
    clip=False)``; ``loguniform`` = ``exp(U(low, high))`` -> ``Float(e**low, e**high, log=True)``
    (the bounds are natural-log exponents); ``qloguniform`` = ``floor(exp(U)/q)*q``;
    ``normal``; ``qnormal`` = ``floor(N/q)*q``; ``lognormal`` = ``exp(N)``.

Syntaxes: ``'a:b:c'`` strings (each piece ``literal_eval``'d), lists, and dicts
(``{start, stop, step}``, ``{start, stop, num[, base]}``, ``{low, high[, q]}``,
``{loc, scale[, q]}``; distributions also take an ignored ``size``).

Decisions where Polyaxon's docs and code disagree, or the code is wrong
    * ``logspace``: the bounds are **exponents** (``np.logspace``, optional 4th ``base``), as the
      code does; the docs' claim that ``logspace: 0.01:0.1:5`` spans 0.01..0.1 is wrong (the code
      gives 10**0.01..10**0.1 = 1.023..1.259). We keep the code's values, because that is what
      Polyaxon ran, and log a warning when both exponents lie in (0, 1), the docs' mistake.
    * ``qlognormal``: Polyaxon's code ignores ``q`` and returns ``exp(lognormal draw)``, a
      double exponential. We implement the evident intent, ``floor(exp(N)/q)*q``, the same
      floor family as its ``qnormal``/``qloguniform``: nobody can rely on ``exp(exp(N))``.
    * ``normal``-family: Polyaxon's shared range validator demands ``loc < scale`` (so
      ``normal: [5, 1]`` is refused); we only require ``scale > 0``.
    * ``low < high`` and ``start < stop`` are required (the code checks them, the docs do not).
    * ``seed: 0`` is a seed (Polyaxon tests ``if seed`` and silently ignores 0).
    * random search never loops forever: Polyaxon caps ``n_experiments`` at the product of the
      option lengths when everything is discrete (counting duplicates and zero-probability
      ``pvalues``, and crashing on ``pvalues``, whose ``to_numpy`` raises); we cap at the number
      of *distinct reachable* configurations, and raise after a bounded number of draws when a
      quantised continuous space cannot yield ``n_experiments`` distinct ones.
    * ``bo`` needs ``utility_function`` (Polyaxon's BO manager fails without one) and, as in the
      code, only ``uniform`` among distributions (the docs' BO example with ``pvalues`` fails).
    * ``hyperband.eta`` must be > 1 (the schema accepts >= 0, but ``log(eta)`` divides).
    * a grid listed by ``configs()`` holds at most ``MAX_COUNT`` (10**6) experiments: a
      larger one without ``grid_search.n_experiments`` is an error, not a list that exhausts
      memory (Polyaxon would enumerate it all).

Alias table (the one place source names are mapped): ``params`` (Polyaxon 0.6's name) is
``declarations``; ``optimization``, kernel, acquisition and resource-type names accept
Polyaxon's ``lower``/``UPPER``/``Capitalized`` spellings.
"""

from __future__ import annotations

import ast
import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed, make_rng
from rafiki_ray.spaces._limits import check_document
from rafiki_ray.spaces._params import GRID_LIMIT, Categorical, Float, Int, Normal, Param
from rafiki_ray.spaces._space import SearchSpace
from rafiki_ray.spaces.adapters._configlist import (
    INDEX_KEY,
    config_list_param_space,
    distinct_count,
    distinct_samples,
)
from rafiki_ray.spaces.adapters._polyaxon_settings import (
    ALGORITHM_PARSERS,
    MAX_COUNT,
    parse_declarations,
    parse_early_stopping,
    parse_int,
)

__all__ = ["INDEX_KEY", "PolyaxonMatrix", "from_polyaxon"]

logger = logging.getLogger(__name__)

#: Source names -> our names (file level). Polyaxon 0.6 renamed ``declarations`` to ``params``.
ALIASES: dict[str, str] = {"params": "declarations"}

ALGORITHMS = ("grid_search", "random_search", "hyperband", "bo")
_SECTION_KEYS = frozenset({"seed", "matrix", "concurrency", "early_stopping", *ALGORITHMS})

#: option -> (required keys, optional keys), in Polyaxon's positional order.
_NUMERIC_OPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "range": (("start", "stop", "step"), ()),
    "linspace": (("start", "stop", "num"), ()),
    "logspace": (("start", "stop", "num"), ("base",)),
    "geomspace": (("start", "stop", "num"), ()),
    "uniform": (("low", "high"), ("size",)),
    "quniform": (("low", "high", "q"), ("size",)),
    "loguniform": (("low", "high"), ("size",)),
    "qloguniform": (("low", "high", "q"), ("size",)),
    "normal": (("loc", "scale"), ("size",)),
    "qnormal": (("loc", "scale", "q"), ("size",)),
    "lognormal": (("loc", "scale"), ("size",)),
    "qlognormal": (("loc", "scale", "q"), ("size",)),
}
OPTIONS = ("values", "pvalues", *_NUMERIC_OPTIONS)
_DISCRETE = frozenset({"values", "range", "linspace", "logspace", "geomspace"})
_DISTRIBUTIONS = frozenset(OPTIONS) - _DISCRETE


# ---------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class PolyaxonMatrix:
    """A parsed ``hptuning`` section.

    ``space`` holds the matrix parameters plus the ``declarations`` as fixed values (a matrix
    value overrides a declaration of the same name, as in ``POLYAXON_DECLARATIONS``).
    ``settings`` is the algorithm's own section, validated and with Polyaxon's defaults filled
    in (``{"n_experiments": ...}`` for grid/random; ``max_iter``, ``eta``, ``resource``,
    ``metric``, ``resume`` for hyperband; ``n_initial_trials``, ``n_iterations``, ``metric``,
    ``utility_function`` for bo), for schedulers and searchers to consume.
    """

    space: SearchSpace
    algorithm: str = "grid_search"
    n_experiments: int | None = None
    seed: int | None = None
    concurrency: int = 1
    declarations: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    early_stopping: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metric(self) -> str | None:
        """The metric name of ``hyperband``/``bo`` (None for grid and random search)."""
        m = self.settings.get("metric")
        return m["name"] if m else None

    @property
    def mode(self) -> str | None:
        """Tune's ``"max"``/``"min"`` for :attr:`metric`."""
        m = self.settings.get("metric")
        return None if not m else ("max" if m["optimization"] == "maximize" else "min")

    @property
    def num_samples(self) -> int | None:
        """Tune's ``num_samples`` to use with :meth:`to_tune` (None: the scheduler decides)."""
        if self.algorithm in ("grid_search", "random_search"):
            return 1
        if self.algorithm == "bo":
            return int(self.settings["n_initial_trials"] + self.settings["n_iterations"])
        return None

    def configs(self) -> list[dict[str, Any]]:
        """The concrete experiments of ``grid_search`` and ``random_search``.

        Grid: the cartesian product in matrix order (the last parameter varies fastest),
        truncated to ``n_experiments``. Random: ``n_experiments`` distinct draws seeded by
        ``seed`` (fresh entropy when None), capped at the number of distinct configurations
        when every parameter is discrete.
        """
        if self.algorithm == "grid_search":
            total = self.space.grid_size()
            size = total if self.n_experiments is None else min(total, self.n_experiments)
            if size > MAX_COUNT:  # a list that would exhaust memory long before a run ends
                raise invalid(
                    "hptuning.matrix",
                    f"its grid has more than {MAX_COUNT} experiments to list; set "
                    "hptuning.grid_search.n_experiments",
                    total,
                )
            return list(itertools.islice(self.space.grid(), size))
        if self.algorithm == "random_search":
            n = int(self.n_experiments or 0)
            cap = distinct_count(self.space)
            if cap is not None and cap < n:
                n = cap
            return distinct_samples(
                self.space, n, make_rng(self.seed), path="hptuning.random_search.n_experiments"
            )
        raise invalid(
            f"hptuning.{self.algorithm}",
            "chooses its configurations adaptively; configs() exists for grid_search and "
            "random_search (use .space / .to_tune() with a scheduler or searcher)",
        )

    def to_tune(self) -> dict[str, Any]:
        """A Tune ``param_space`` (run it with ``num_samples=self.num_samples``).

        * ``grid_search`` over the whole product: ``space.to_tune(grid=True)`` (Tune enumerates
          the same set in its own order; :meth:`configs` has Polyaxon's order);
        * truncated grids and ``random_search``: a param_space yielding exactly
          :meth:`configs`, one ``tune.grid_search`` over ``INDEX_KEY`` plus one
          ``tune.sample_from`` per key (users' keys kept exactly; the extra key
          ``"__config_index__"`` is the position in the list);
        * ``hyperband`` / ``bo``: ``space.to_tune()`` (Tune domains) for a scheduler/searcher.
        """
        if self.algorithm == "grid_search":
            if self.n_experiments is None or self.n_experiments >= self.space.grid_size():
                return self.space.to_tune(grid=True)
            return config_list_param_space(self.configs(), path="hptuning.matrix")
        if self.algorithm == "random_search":
            return config_list_param_space(self.configs(), path="hptuning.matrix")
        return self.space.to_tune()


# ---------------------------------------------------------------------------------------
# Entry point


def from_polyaxon(
    hptuning: Any, path: str = "hptuning", *, declarations: Mapping[str, Any] | None = None
) -> PolyaxonMatrix:
    """Parse a Polyaxon v0.x ``hptuning`` section (or a bare ``matrix``, or a whole polyaxonfile).

    ``hptuning`` may be a dict, or a YAML string of one. A whole polyaxonfile (a dict with an
    ``hptuning`` key) also contributes its ``declarations`` / ``params``; ``declarations``
    given here are merged after them. Errors name the field:
    ``hptuning.matrix.lr.logspace: ...``.
    """
    if isinstance(hptuning, str):
        import yaml

        try:
            hptuning = yaml.safe_load(hptuning)
        except yaml.YAMLError as exc:
            raise invalid(path, f"is not valid YAML ({exc})") from None
    if not isinstance(hptuning, Mapping):
        raise invalid_type(path, "must be a dict (an hptuning section or a matrix)", hptuning)

    check_document(hptuning, path)
    decl: dict[str, Any] = {}
    if "hptuning" in hptuning:  # a whole polyaxonfile
        both = [k for k in ("declarations", *ALIASES) if hptuning.get(k) is not None]
        if len(both) > 1:  # Polyaxon 0.6 renamed declarations to params; one file has one
            raise invalid(
                "declarations", "and params are the same section (params is Polyaxon 0.6's "
                "name); give one", both,
            )
        for key in ("declarations", *ALIASES):  # params: Polyaxon 0.6's name for declarations
            decl.update(parse_declarations(hptuning.get(key), key))
        section = hptuning["hptuning"]
        if not isinstance(section, Mapping):
            raise invalid_type(path, "must be a dict", section)
    elif _is_section(hptuning):
        section = hptuning
    else:
        section = {"matrix": hptuning}
    decl.update(parse_declarations(declarations, "declarations"))

    unknown = sorted(set(section) - _SECTION_KEYS, key=str)
    if unknown:
        raise invalid(
            path, f"has unknown keys {unknown}; allowed: {sorted(_SECTION_KEYS)}", unknown
        )

    used = [a for a in ALGORITHMS if section.get(a) is not None]
    if len(used) > 1:
        raise invalid(path, "takes only one search algorithm", used)
    algorithm = used[0] if used else "grid_search"

    if "matrix" not in section:
        raise invalid(f"{path}.matrix", "is missing: an hptuning section needs a matrix of parameters")
    matrix = section.get("matrix")
    if not isinstance(matrix, Mapping) or not matrix:
        raise invalid(f"{path}.matrix", "must be a non-empty dict of parameters", matrix)
    params: dict[str, Any] = {}
    for name, spec in matrix.items():
        where = f"{path}.matrix.{name}"
        if not isinstance(name, str):
            raise invalid_type(f"{path}.matrix", "parameter names must be strings", name)
        option, param = _parse_param(spec, where)
        if algorithm == "grid_search" and option in _DISTRIBUTIONS:
            raise invalid(
                f"{where}.{option}",
                "grid_search cannot use a distribution (use values, range, linspace, logspace "
                "or geomspace, or random_search)",
                spec[option],
            )
        if algorithm == "bo" and option in _DISTRIBUTIONS and option != "uniform":
            raise invalid(
                f"{where}.{option}",
                "bo accepts no distribution but uniform (values, range, linspace, logspace, "
                "geomspace and uniform)",
                spec[option],
            )
        params[name] = param

    # Polyaxon builds each experiment's params as the matrix values deep-updated with the
    # declarations (polyaxon-schemas' Parser: deep_update), so a declaration wins over a
    # matrix parameter of the same name; plain values become Fixed, dicts nested sub-spaces
    overridden = sorted(set(decl) & set(params))
    if overridden:
        logger.warning(
            "%s.matrix: parameters %s are also declarations; as in Polyaxon the declared values "
            "win and the matrix values are never used",
            path,
            overridden,
        )
    merged: dict[str, Any] = {**params, **decl}

    settings = ALGORITHM_PARSERS[algorithm](section.get(algorithm) or {}, f"{path}.{algorithm}")
    return PolyaxonMatrix(
        space=SearchSpace(merged),
        algorithm=algorithm,
        n_experiments=settings.get("n_experiments"),
        seed=check_seed(section.get("seed"), f"{path}.seed"),
        concurrency=parse_int(section.get("concurrency", 1), f"{path}.concurrency", 1, default=1),
        declarations=decl,
        settings=settings,
        early_stopping=parse_early_stopping(
            section.get("early_stopping"), f"{path}.early_stopping"
        ),
    )


def _is_section(data: Mapping[str, Any]) -> bool:
    """An hptuning section, not a bare matrix (which may name a parameter ``matrix``, or
    ``seed``...): a section key whose value is not a dict of matrix options makes it one."""
    for key in _SECTION_KEYS:
        if key in data:
            inner = data[key]
            if not (isinstance(inner, Mapping) and inner and set(inner) <= set(OPTIONS)):
                return True
    return False


# ---------------------------------------------------------------------------------------
# Matrix parameters


def _parse_param(spec: Any, where: str) -> tuple[str, Param]:
    if not isinstance(spec, Mapping):
        raise invalid_type(where, f"must be a dict with one option of {list(OPTIONS)}", spec)
    unknown = [k for k in spec if k not in OPTIONS]
    if unknown:
        raise invalid(
            where, f"has unknown options {unknown}; allowed: {list(OPTIONS)}", dict(spec)
        )
    given = [k for k in spec if spec[k] is not None]  # Polyaxon: None means absent
    if len(given) != 1:
        raise invalid(where, f"needs exactly one option of {list(OPTIONS)}", sorted(given))
    option = given[0]
    raw = spec[option]
    at = f"{where}.{option}"
    if option == "values":
        if not isinstance(raw, (list, tuple)) or not raw:
            raise invalid(at, "must be a non-empty list", raw)
        return option, Categorical(tuple(raw))
    if option == "pvalues":
        return option, _pvalues(raw, at)
    args = _numeric_args(option, raw, at)
    try:
        return option, _BUILDERS[option](args, at)
    except (ValueError, TypeError) as exc:  # a rule of the space model (e.g. int64 bounds)
        if str(exc).startswith(at):
            raise
        raise type(exc)(f"{at}: {exc}") from None


def _pvalues(raw: Any, at: str) -> Categorical:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise invalid(at, "must be a non-empty list of [value, probability] pairs", raw)
    values, probs = [], []
    for i, pair in enumerate(raw):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise invalid(f"{at}[{i}]", "must be a [value, probability] pair", pair)
        p = pair[1]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise invalid(f"{at}[{i}]", "probability must be a number in [0, 1)", p)
        values.append(pair[0])
        probs.append(float(p))
    if sum(probs) > 1 + 1e-9:
        raise invalid(at, "probabilities must sum to at most 1", probs)
    head = probs[:-1]
    weights = [*head, max(0.0, 1.0 - sum(head))]  # numpy.multinomial: the last takes the rest
    return Categorical(tuple(values), weights=tuple(weights))


def _sexagesimal(n: int) -> str:
    digits = []
    n = abs(n)
    while n >= 60:
        n, r = divmod(n, 60)
        digits.append(r)
    digits.append(n)
    return ":".join(str(d) for d in reversed(digits))


def _number(v: Any, at: str) -> float | int:
    if isinstance(v, str):
        try:
            float(v)
            v = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError, TypeError):
            raise invalid(at, "must be a number", v) from None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise invalid_type(at, "must be a number", v)
    try:
        finite = math.isfinite(float(v))
    except OverflowError:  # an int beyond float range, e.g. 10**400
        finite = False
    if not finite:
        raise invalid(at, "must be finite (within float range)", v)
    return int(v) if isinstance(v, (int, np.integer)) else float(v)


def _numeric_args(option: str, raw: Any, at: str) -> dict[str, Any]:
    required, optional = _NUMERIC_OPTIONS[option]
    keys = required + optional
    form = ":".join(required)
    if isinstance(raw, (bool, int, float)):
        hint = ""
        if isinstance(raw, int) and abs(raw) >= 60:
            hint = (
                f"; YAML 1.1 reads an unquoted {_sexagesimal(raw)} as the sexagesimal number "
                f"{raw}: quote it ('{_sexagesimal(raw)}')"
            )
        elif isinstance(raw, float) and not isinstance(raw, bool):
            hint = "; an unquoted a:b:c is read by YAML 1.1 as a sexagesimal number: quote it"
        raise invalid(at, f"must be a '{form}' string, a list or a dict{hint}", raw)
    if isinstance(raw, str):
        items: list[Any] = raw.split(":")
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    elif isinstance(raw, Mapping):
        unknown = [k for k in raw if k not in keys]
        missing = [k for k in required if k not in raw]
        if unknown or missing:
            raise invalid(
                at, f"dict needs keys {list(required)} (optional {list(optional)})", dict(raw)
            )
        items = [raw[k] for k in keys if k in raw]
    else:
        raise invalid_type(at, f"must be a '{form}' string, a list or a dict", raw)
    if len(items) not in (len(required), len(keys)):
        n = f"{len(required)} or {len(keys)}" if optional else str(len(required))
        raise invalid(at, f"needs {n} numbers ({list(keys)})", raw)
    return {k: _number(v, f"{at}.{k}") for k, v in zip(keys, items)}


def _ordered(args: dict[str, Any], lo: str, hi: str, at: str) -> None:
    if not args[lo] < args[hi]:
        raise invalid(at, f"needs {lo} < {hi}", [args[lo], args[hi]])


def _num(args: dict[str, Any], at: str) -> int:
    num = args["num"]
    if not isinstance(num, int) or num < 1:
        raise invalid(f"{at}.num", "must be an integer >= 1", num)
    if num > GRID_LIMIT:
        raise invalid(f"{at}.num", f"must be at most {GRID_LIMIT}", num)
    return num


def _discrete(values: np.ndarray) -> Categorical:
    return Categorical(tuple(v.item() for v in values))


def _build_range(a: dict[str, Any], at: str) -> Param:
    _ordered(a, "start", "stop", at)
    start, stop, step = a["start"], a["stop"], a["step"]
    if step <= 0:
        raise invalid(f"{at}.step", "must be > 0 (start < stop)", step)
    if (stop - start) / step > GRID_LIMIT:
        raise invalid(at, f"has more than {GRID_LIMIT} values", [start, stop, step])
    if all(isinstance(x, int) for x in (start, stop, step)):
        if max(abs(start), abs(stop)) >= 2**63:
            raise invalid(at, "integer bounds must lie within 64-bit range", [start, stop])
    else:
        start, stop, step = float(start), float(stop), float(step)
    values = np.arange(start, stop, step)
    if all(isinstance(x, int) for x in (start, stop, step)) and start % step == 0:
        last = int(values[-1])
        return Int(start, last, q=step if step > 1 else None)
    return _discrete(values)


def _floats(a: dict[str, Any], *keys: str) -> tuple[float, ...]:
    # numpy cannot cast a Python int beyond int64 (a finite float), so hand it floats
    return tuple(float(a[k]) for k in keys)


def _build_linspace(a: dict[str, Any], at: str) -> Param:
    _ordered(a, "start", "stop", at)
    return _discrete(np.linspace(*_floats(a, "start", "stop"), _num(a, at)))


def _build_logspace(a: dict[str, Any], at: str) -> Param:
    _ordered(a, "start", "stop", at)
    base = a.get("base", 10.0)
    if base <= 0 or base == 1:
        raise invalid(f"{at}.base", "must be > 0 and != 1", base)
    with np.errstate(over="ignore"):  # reported below as this option's error, not a warning
        values = np.logspace(*_floats(a, "start", "stop"), _num(a, at), base=float(base))
    if not np.all(np.isfinite(values)):
        raise invalid(
            at, "overflows (start and stop are exponents of base)", [a["start"], a["stop"]]
        )
    if 0 < a["start"] < a["stop"] < 1:
        logger.warning(
            "%s: start and stop are exponents (np.logspace), giving %s..%s; for values between "
            "%s and %s use geomspace (Polyaxon's docs get this wrong)",
            at,
            values[0],
            values[-1],
            a["start"],
            a["stop"],
        )
    return _discrete(values)


def _build_geomspace(a: dict[str, Any], at: str) -> Param:
    _ordered(a, "start", "stop", at)
    if a["start"] * a["stop"] <= 0:
        raise invalid(
            at, "needs non-zero start and stop of the same sign", [a["start"], a["stop"]]
        )
    return _discrete(np.geomspace(*_floats(a, "start", "stop"), _num(a, at)))


def _q(a: dict[str, Any], at: str) -> float:
    if a["q"] <= 0:
        raise invalid(f"{at}.q", "must be > 0", a["q"])
    return float(a["q"])


def _exp_bounds(a: dict[str, Any], at: str) -> tuple[float, float]:
    _ordered(a, "low", "high", at)
    if a["high"] > 700 or a["low"] < -700:
        raise invalid(
            at,
            "low/high are natural-log exponents and must lie in [-700, 700]",
            [a["low"], a["high"]],
        )
    return math.exp(a["low"]), math.exp(a["high"])


def _build_uniform(a: dict[str, Any], at: str) -> Param:
    _ordered(a, "low", "high", at)
    return Float(a["low"], a["high"])


def _build_quniform(a: dict[str, Any], at: str) -> Param:
    _ordered(a, "low", "high", at)
    return Float(a["low"], a["high"], q=_q(a, at), rounding="floor", clip=False)


def _warn_raw_exponents(a: dict[str, Any], at: str) -> None:
    if 0 < a["low"] < a["high"] <= 1:
        logger.warning(
            "%s: low and high are natural-log exponents (exp(U(low, high))), giving values "
            "%s..%s; for values between %s and %s use loguniform: %s:%s",
            at,
            math.exp(a["low"]),
            math.exp(a["high"]),
            a["low"],
            a["high"],
            math.log(a["low"]),
            math.log(a["high"]),
        )


def _build_loguniform(a: dict[str, Any], at: str) -> Param:
    lo, hi = _exp_bounds(a, at)
    _warn_raw_exponents(a, at)
    return Float(lo, hi, log=True)


def _build_qloguniform(a: dict[str, Any], at: str) -> Param:
    lo, hi = _exp_bounds(a, at)
    _warn_raw_exponents(a, at)
    return Float(lo, hi, log=True, q=_q(a, at), rounding="floor", clip=False)


def _scale(a: dict[str, Any], at: str) -> float:
    if a["scale"] <= 0:
        raise invalid(f"{at}.scale", "must be > 0", a["scale"])
    return float(a["scale"])


def _build_normal(a: dict[str, Any], at: str) -> Param:
    return Normal(a["loc"], _scale(a, at))


def _build_qnormal(a: dict[str, Any], at: str) -> Param:
    return Normal(a["loc"], _scale(a, at), q=_q(a, at), rounding="floor")


def _build_lognormal(a: dict[str, Any], at: str) -> Param:
    return Normal(a["loc"], _scale(a, at), log=True)


def _build_qlognormal(a: dict[str, Any], at: str) -> Param:
    return Normal(a["loc"], _scale(a, at), log=True, q=_q(a, at), rounding="floor")


_BUILDERS = {
    "range": _build_range,
    "linspace": _build_linspace,
    "logspace": _build_logspace,
    "geomspace": _build_geomspace,
    "uniform": _build_uniform,
    "quniform": _build_quniform,
    "loguniform": _build_loguniform,
    "qloguniform": _build_qloguniform,
    "normal": _build_normal,
    "qnormal": _build_qnormal,
    "lognormal": _build_lognormal,
    "qlognormal": _build_qlognormal,
}
