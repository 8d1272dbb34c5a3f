"""One search-space model (:class:`SearchSpace`) and the adapters from every source format."""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports
from rafiki_ray.spaces._encoding import Dim, Encoder
from rafiki_ray.spaces._limits import MAX_DOCUMENT_DEPTH, MAX_NESTING
from rafiki_ray.spaces._params import (
    POLICIES,
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
from rafiki_ray.spaces._space import SearchSpace, as_space
from rafiki_ray.spaces.adapters.rafiki import from_knobs

_LAZY = {
    "from_nni": "rafiki_ray.spaces.adapters.nni",
    "from_polyaxon": "rafiki_ray.spaces.adapters.polyaxon",
    "PolyaxonMatrix": "rafiki_ray.spaces.adapters.polyaxon",
    "from_rapidfire": "rafiki_ray.spaces.adapters.rapidfire",
    "List": "rafiki_ray.spaces.adapters.rapidfire",
    "Range": "rafiki_ray.spaces.adapters.rapidfire",
    "GridSearch": "rafiki_ray.spaces.adapters.rapidfire",
    "RandomSearch": "rafiki_ray.spaces.adapters.rapidfire",
    "load_space": "rafiki_ray.spaces.adapters.load",
    "perturb": "rafiki_ray.spaces._perturb",
    "RafikiDomain": "rafiki_ray.spaces._space",
}

__all__ = [
    "SearchSpace",
    "as_space",
    "Param",
    "Float",
    "Int",
    "Normal",
    "Categorical",
    "Fixed",
    "Policy",
    "Arch",
    "Subset",
    "Option",
    "Conditional",
    "POLICIES",
    "MAX_NESTING",
    "MAX_DOCUMENT_DEPTH",
    "Dim",
    "Encoder",
    "from_knobs",
    *_LAZY,
]

__getattr__: Any = lazy_exports(__name__, _LAZY)
