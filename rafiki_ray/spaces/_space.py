"""``SearchSpace``: an immutable, nested mapping of names to parameters.

Every source format becomes one of these; it converts to a Ray Tune ``param_space`` (Tune's
own domains where they have exactly the same law, a :class:`RafikiDomain` elsewhere), back
from one (:meth:`SearchSpace.from_tune`), to and from plain JSON, samples itself with a seed,
and enumerates itself for grid search when finite.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces._jsonvalue import decode_value
from rafiki_ray.spaces._limits import MAX_NESTING, check_document, value_depth
from rafiki_ray.spaces._params import (
    Arch,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Option,
    Param,
    Policy,
    Subset,
)

__all__ = ["RafikiDomain", "SearchSpace", "as_space"]

_PARAM_TYPES: dict[str, type[Param]] = {
    cls.type_name: cls for cls in (Float, Int, Normal, Categorical, Fixed, Policy, Arch, Subset, Conditional)
}


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class SearchSpace(Mapping[str, Any]):
    """An immutable mapping ``name -> Param | SearchSpace`` (nested dicts are sub-spaces).

    Plain values given in ``params`` become :class:`Fixed` parameters and plain dicts become
    nested sub-spaces, so a Ray-style nested config maps one to one.
    """

    __slots__ = ("_depth", "_params")

    def __init__(self, params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        if params is not None and not isinstance(params, Mapping):
            raise invalid_type("space", "must be a dict of parameters", params)
        merged: dict[str, Any] = dict(params or {})
        merged.update(kwargs)
        out: dict[str, Param | SearchSpace] = {}
        depth = 0
        for key, value in merged.items():
            if not isinstance(key, str):
                raise invalid_type("space", "keys must be strings", key)
            if isinstance(value, (Param, SearchSpace)):
                out[key] = value
            elif isinstance(value, Mapping):
                if value_depth(dict(value), MAX_NESTING) >= MAX_NESTING:
                    raise _too_deep(key)
                out[key] = SearchSpace(value)
            else:
                out[key] = Fixed(value)
            depth = max(depth, _depth(out[key]))
        if depth + 1 > MAX_NESTING:
            raise _too_deep(next(iter(out)) if out else "")
        self._depth = depth + 1
        self._params = MappingProxyType(out)

    # Mapping protocol -------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._params.items())
        return f"SearchSpace({{{inner}}})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return dict(self._params) == dict(other._params)

    def __hash__(self) -> int:
        return hash(tuple(self._params))

    def __reduce__(self) -> tuple[Any, ...]:
        return (SearchSpace, (dict(self._params),))

    # Structure -------------------------------------------------------------------------
    def leaves(self, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Param]]:
        """``(path, param)`` for every top-level parameter, nested sub-spaces flattened.

        Parameters inside a :class:`Conditional` are not listed (they are its options').
        """
        out: list[tuple[tuple[str, ...], Param]] = []
        for key, value in self._params.items():
            if isinstance(value, SearchSpace):
                out.extend(value.leaves(prefix + (key,)))
            else:
                out.append((prefix + (key,), value))
        return out

    def is_empty(self) -> bool:
        return not self.leaves()

    # Sampling --------------------------------------------------------------------------
    def sample(self, seed: int | np.random.Generator | None = None) -> dict[str, Any]:
        """One configuration. ``seed`` is an int, a Generator, or ``None`` (fresh entropy)."""
        rng = _rng(seed)
        out: dict[str, Any] = {}
        for key, value in self._params.items():
            out[key] = value.sample(rng)
        return out

    def samples(self, n: int, seed: int | np.random.Generator | None = None) -> list[dict[str, Any]]:
        rng = _rng(seed)
        return [self.sample(rng) for _ in range(n)]

    def contains(self, config: Any) -> bool:
        """Whether ``config`` could have been produced by this space."""
        try:
            self.validate(config)
        except (ValueError, TypeError):
            return False
        return True

    def validate(self, config: Any, path: str = "config") -> None:
        """Raise a ValueError naming the first key of ``config`` outside this space."""
        if not isinstance(config, Mapping):
            raise invalid_type(path, "must be a dict", config)
        missing = [k for k in self._params if k not in config]
        if missing:
            raise invalid(path, f"is missing {missing}", sorted(config))
        extra = [k for k in config if k not in self._params]
        if extra:
            raise invalid(path, f"has keys not in the space: {extra}", sorted(config))
        for key, p in self._params.items():
            if isinstance(p, SearchSpace):
                p.validate(config[key], f"{path}.{key}")
            elif not p.contains(config[key]):
                raise invalid(f"{path}.{key}", f"is outside {p!r}", config[key])

    # Grid ------------------------------------------------------------------------------
    def is_finite(self) -> bool:
        return self.grid_count() is not None

    def grid_count(self) -> int | None:
        """The number of configurations :meth:`grid` yields, ``None`` when a parameter is not
        finite (or its own grid is too large to list); counted, never listed."""
        total = 1
        for _, p in self.leaves():
            n = p.grid_count()
            if n is None:
                return None
            total *= n
        return total

    def grid_size(self) -> int:
        sizes = []
        for path, p in self.leaves():
            n = p.grid_count()
            if n is None:
                raise invalid("/".join(path), "is not finite, so the space has no grid", p)
            sizes.append(n)
        return math.prod(sizes)

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every configuration, in cartesian-product order (the last key varies fastest)."""
        leaves = self.leaves()
        values = []
        for path, p in leaves:
            vals = p.grid_values()
            if vals is None:
                raise invalid("/".join(path), "is not finite, so the space has no grid", p)
            values.append(vals)
        for combo in itertools.product(*values):
            cfg: dict[str, Any] = {}
            for (path, _), v in zip(leaves, combo):
                _set_path(cfg, path, v)
            yield self._order_like(cfg)

    def _order_like(self, cfg: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in self._params.items():
            out[key] = value._order_like(cfg.get(key, {})) if isinstance(value, SearchSpace) else cfg[key]
        return out

    # Plain data ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self._params.items():
            if isinstance(value, SearchSpace):
                out[key] = {"type": "space", "params": value.to_dict()}
            else:
                out[key] = value.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "space") -> SearchSpace:
        """The inverse of :meth:`to_dict`: every field is checked, errors name its path."""
        if not isinstance(data, Mapping):
            raise invalid_type(path, "must be a dict", data)
        check_document(data, path)
        params: dict[str, Any] = {}
        for key, spec in data.items():
            if not isinstance(key, str):
                raise invalid_type(path, "keys must be strings", key)
            params[key] = _param_from_dict(spec, f"{path}.{key}")
        try:
            return cls(params)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{path}: {exc}") from None

    def to_json(self) -> str:
        """Standard JSON (no bare ``NaN``/``Infinity``): values that JSON lacks (NaN, inf,
        tuples, sets, dicts with non-string keys) use the encoding documented in
        :mod:`rafiki_ray.spaces._jsonvalue`, which :meth:`from_json` reverses exactly."""
        try:
            return json.dumps(self.to_dict(), sort_keys=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise invalid_type(
                "space", f"holds a value that JSON cannot represent ({exc})", self
            ) from None

    @classmethod
    def from_json(cls, text: str | bytes, path: str = "space") -> SearchSpace:
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise invalid(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if not isinstance(text, str):
            raise invalid_type(path, "must be a JSON string", text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise invalid(path, f"is not valid JSON ({exc.msg} at {where})", text) from None
        except RecursionError:
            raise invalid(path, "nests too deeply to parse (see rafiki_ray.spaces.MAX_DOCUMENT_DEPTH)") from None
        return cls.from_dict(data, path)

    # Ray Tune --------------------------------------------------------------------------
    def to_tune(self, *, grid: bool = False) -> dict[str, Any]:
        """A Tune ``param_space``. With ``grid``, finite parameters become ``grid_search``."""
        from ray import tune

        out: dict[str, Any] = {}
        for key, value in self._params.items():
            if isinstance(value, SearchSpace):
                out[key] = value.to_tune(grid=grid)
                continue
            if grid:
                vals = value.grid_values()
                if vals is not None and not isinstance(value, (Fixed, Policy)):
                    out[key] = tune.grid_search(vals)
                    continue
            out[key] = _to_tune_domain(value)
        return out

    @classmethod
    def from_tune(cls, param_space: Mapping[str, Any], path: str = "param_space") -> SearchSpace:
        """Convert a Tune ``param_space`` (Tune's domains, ours, constants, nested dicts)."""
        if not isinstance(param_space, Mapping):
            raise invalid_type(path, "must be a dict", param_space)
        params: dict[str, Any] = {}
        for key, value in param_space.items():
            params[key] = _from_tune_value(value, f"{path}.{key}")
        return cls(params)


def as_space(space: Any, path: str = "space") -> SearchSpace:
    """Accept a ``SearchSpace`` or a Tune ``param_space`` dict and return a ``SearchSpace``."""
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, Mapping):
        return SearchSpace.from_tune(space, path)
    raise invalid_type(path, "must be a SearchSpace or a Tune param_space dict", space)


def _set_path(cfg: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = cfg
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _depth(node: Param | SearchSpace) -> int:
    """Nesting levels below a space entry (see :data:`MAX_NESTING`)."""
    if isinstance(node, SearchSpace):
        return node._depth
    if isinstance(node, Conditional):
        return max(o.space._depth for o in node.options)  # the option's space counts
    if isinstance(node, Fixed):
        return value_depth(node.value, MAX_NESTING)
    if isinstance(node, Categorical):
        return value_depth(list(node.choices), MAX_NESTING)
    if isinstance(node, Subset):
        return value_depth(list(node.candidates), MAX_NESTING)
    if isinstance(node, Arch):
        return value_depth([list(c) for c in node.items], MAX_NESTING)
    return 0


def _too_deep(key: str) -> ValueError:
    return invalid(
        f"space.{key}" if key else "space",
        f"nests deeper than {MAX_NESTING} levels (sub-spaces, the spaces of conditional options, "
        "lists/dicts in values; rafiki_ray.spaces.MAX_NESTING)",
    )


def _list_field(spec: Mapping[str, Any], name: str, path: str) -> list[Any]:
    value = spec[name]
    if not isinstance(value, (list, tuple)):
        raise invalid_type(f"{path}.{name}", "must be a list", value)
    return list(value)


def _param_from_dict(spec: Any, path: str) -> Any:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise invalid(path, "must be a dict with a 'type'", spec)
    kind = spec["type"]
    if kind == "space":
        extra = sorted(str(k) for k in spec if k not in ("type", "params"))
        if extra:
            raise invalid(path, f"has unknown fields {extra}; a space has 'params'", extra)
        if "params" not in spec:
            raise invalid(f"{path}.params", "is missing")
        return SearchSpace.from_dict(spec["params"], path)
    cls = _PARAM_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise invalid(f"{path}.type", f"must be one of {sorted(_PARAM_TYPES) + ['space']}", kind)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    extra = sorted(str(k) for k in spec if k != "type" and k not in fields)
    if extra:
        raise invalid(path, f"has unknown fields {extra}; {kind} has {sorted(fields)}", extra)
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in spec:
            raise invalid(f"{path}.{name}", f"is missing (a {kind} needs {name})")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    try:
        for name in ("choices", "candidates"):
            if name in kwargs:
                kwargs[name] = tuple(decode_value(v) for v in _list_field(spec, name, path))
        if "weights" in kwargs and kwargs["weights"] is not None:
            kwargs["weights"] = tuple(_list_field(spec, "weights", path))
        if "value" in kwargs:
            kwargs["value"] = decode_value(kwargs["value"])
        if cls is Conditional:
            options = []
            for i, o in enumerate(_list_field(spec, "options", path)):
                where = f"{path}.options[{i}]"
                if not isinstance(o, Mapping) or set(o) != {"label", "space"}:
                    raise invalid(where, "must be a dict with 'label' and 'space'", o)
                options.append(Option(decode_value(o["label"]), SearchSpace.from_dict(o["space"], where)))
            kwargs["options"] = tuple(options)
        elif cls is Arch:
            items = []
            for i, c in enumerate(_list_field(spec, "items", path)):
                if not isinstance(c, (list, tuple)):
                    raise invalid_type(f"{path}.items[{i}]", "must be a list of candidates", c)
                items.append(tuple(decode_value(v) for v in c))
            kwargs["items"] = tuple(items)
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------
# Tune domains


def _domain_base() -> type:
    from ray.tune.search.sample import Domain

    return Domain


class _RafikiSampler:
    """A Tune sampler that draws from the wrapped rafiki_ray parameter."""

    def sample(self, domain: Any, config: Any = None, size: int = 1, random_state: Any = None) -> Any:
        rng = _generator_from_tune(random_state)
        items = [domain.param.sample(rng) for _ in range(size)]
        return items if size > 1 else items[0]

    def __str__(self) -> str:
        return "rafiki"


def _generator_from_tune(random_state: Any) -> np.random.Generator:
    """Turn whatever Tune passes as ``random_state`` into a ``numpy.random.Generator``.

    Tune's own domains draw from ``np.random`` when ``random_state`` is ``None`` (its wrapper's
    public ``rng`` property is then the ``np.random`` module), so that ``np.random.seed(0)``
    repeats a run; ours follow: the generator is seeded from the global ``np.random`` state
    (one draw, advancing it as Tune's domains do). A ``RandomState`` seeds it the same way.
    """
    rng = random_state.rng if hasattr(random_state, "legacy_rng") else random_state
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or rng is np.random:
        return np.random.default_rng(int(np.random.randint(0, 2**31 - 1)))
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(int(rng.randint(0, 2**31 - 1)))
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    return np.random.default_rng()


def _make_domain_class() -> type:
    Domain = _domain_base()

    class RafikiDomain(Domain):  # type: ignore[misc, valid-type]
        """A Tune ``Domain`` for parameters Tune has no exact equivalent of."""

        def __init__(self, param: Param) -> None:
            self.param = param  # Policy too: kept as a domain so from_tune round-trips
            self.sampler = _RafikiSampler()

        def is_valid(self, value: Any) -> bool:
            return self.param.contains(value)

        @property
        def domain_str(self) -> str:
            return repr(self.param)

        def __reduce__(self) -> tuple[Any, ...]:
            return (_new_domain, (self.param,))

    return RafikiDomain


_DOMAIN_CLASS: type | None = None


def _domain_class() -> type:
    global _DOMAIN_CLASS
    if _DOMAIN_CLASS is None:
        _DOMAIN_CLASS = _make_domain_class()
    return _DOMAIN_CLASS


def _new_domain(param: Param) -> Any:
    return _domain_class()(param)


def __getattr__(name: str) -> Any:
    if name == "RafikiDomain":
        return _domain_class()
    raise AttributeError(name)


def _to_tune_domain(p: Param) -> Any:
    from ray import tune

    if isinstance(p, Fixed) and not isinstance(p.value, Mapping):
        return p.value  # a constant dict would come back from Tune as a nested sub-space
    if isinstance(p, Float) and p.q is None and p.low < p.high:
        return tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high)
    if isinstance(p, Int) and p.low < p.high:
        if p.q is None:
            return tune.lograndint(p.low, p.high + 1) if p.log else tune.randint(p.low, p.high + 1)
        if p.q > 1 and not p.log and max(abs(p.low), abs(p.high)) < 10**9:
            # same law (uniform over the multiples of q); Tune snaps a bound onto its grid
            # with math.isclose (relative 1e-9), which beyond ~1e9 snaps outwards, past it
            return tune.qrandint(p.low, p.high, p.q)
    if isinstance(p, Normal) and not p.log and p.q is None:
        return tune.randn(p.mu, p.sigma)
    if isinstance(p, Categorical) and p.weights is None and p.emit == "value":
        return tune.choice(list(p.choices))
    return _new_domain(p)


def _from_tune_value(value: Any, path: str) -> Any:
    from ray.tune.search import sample as s

    if isinstance(value, (Param, SearchSpace)):
        return value
    if isinstance(value, Mapping):
        if set(value) == {"grid_search"}:
            vals = value["grid_search"]
            if not isinstance(vals, (list, tuple)) or not vals:
                raise invalid(path, "grid_search needs a non-empty list", vals)
            return Categorical(tuple(vals))
        return SearchSpace.from_tune(value, path)
    if not isinstance(value, s.Domain):
        return Fixed(value)
    if isinstance(value, _domain_class()):
        return value.param
    sampler = value.get_sampler()
    q = None
    if isinstance(sampler, s.Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
    try:
        if isinstance(value, s.Categorical):
            if q is not None:
                raise invalid(path, "a quantized choice is not supported", value)
            return Categorical(tuple(value.categories))
        if isinstance(value, s.Function):
            raise invalid(path, "sample_from functions cannot be converted into a search space", value)
        if isinstance(value, s.Integer):
            log = isinstance(sampler, s.LogUniform)
            if not isinstance(sampler, (s.Uniform, s.LogUniform)):
                raise invalid(path, "integer domains must be uniform or log-uniform", str(sampler))
            if q is None or q == 1:
                return Int(value.lower, value.upper - 1, log=log)
            # q > 1: both bounds inclusive; Int draws the multiples of q inside them, as Tune
            # does, so keep the bounds as given (Int(1, 10, q=3) round-trips unchanged).
            return Int(int(value.lower), int(value.upper), log=log, q=int(q))
        if isinstance(value, s.Float):
            if isinstance(sampler, s.Normal):
                return Normal(sampler.mean, sampler.sd, q=q)
            log = isinstance(sampler, s.LogUniform)
            if not isinstance(sampler, (s.Uniform, s.LogUniform)):
                raise invalid(path, "float domains must be uniform, log-uniform or normal", str(sampler))
            if q is None:
                return Float(value.lower, value.upper, log=log)
            lo = math.ceil(round(value.lower / q, 9)) * q
            hi = math.floor(round(value.upper / q, 9)) * q
            return Float(lo, hi, log=log, q=q)
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path}: {exc}") from None
    raise invalid(path, "unsupported Tune domain", value)
