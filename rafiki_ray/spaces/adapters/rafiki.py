"""Rafiki knob configs -> :class:`SearchSpace` (exact Rafiki semantics, see rafiki_ray.knobs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.knobs import (
    ArchKnob,
    BaseKnob,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    PolicyKnob,
)
from rafiki_ray.spaces._limits import check_document
from rafiki_ray.spaces._params import Arch, Categorical, Fixed, Float, Int, Policy
from rafiki_ray.spaces._space import SearchSpace

__all__ = ["from_knobs"]


def from_knobs(knob_config: Any, path: str = "knob_config") -> SearchSpace:
    """Convert ``{name: knob}`` (or a model class with ``get_knob_config()``)."""
    if hasattr(knob_config, "get_knob_config") and not isinstance(knob_config, Mapping):
        knob_config = knob_config.get_knob_config()
    if not isinstance(knob_config, Mapping):
        raise invalid_type(path, "must be a dict of knobs", knob_config)
    check_document(dict(knob_config), path)
    params: dict[str, Any] = {}
    for name, knob in knob_config.items():
        where = f"{path}.{name}"
        if not isinstance(name, str):
            raise invalid_type(path, "knob names must be strings", name)
        if not isinstance(knob, BaseKnob):
            raise invalid_type(where, "must be a knob (FixedKnob, CategoricalKnob, ...)", knob)
        try:
            if isinstance(knob, FixedKnob):
                params[name] = Fixed(knob.value)
            elif isinstance(knob, CategoricalKnob):
                params[name] = Categorical(tuple(knob.values))
            elif isinstance(knob, IntegerKnob):
                params[name] = Int(knob.value_min, knob.value_max, log=knob.is_exp)
            elif isinstance(knob, FloatKnob):
                params[name] = Float(knob.value_min, knob.value_max, log=knob.is_exp)
            elif isinstance(knob, PolicyKnob):
                params[name] = Policy(knob.policy)
            elif isinstance(knob, ArchKnob):
                params[name] = Arch(tuple(tuple(c) for c in knob.values()))
            else:  # pragma: no cover - a BaseKnob subclass we do not know
                raise invalid(where, "unknown knob type", type(knob).__name__)
        except (ValueError, TypeError) as exc:  # a knob built by hand, or changed after
            if str(exc).startswith(where):
                raise
            raise type(exc)(f"{where}: {exc}") from None
    return SearchSpace(params)
