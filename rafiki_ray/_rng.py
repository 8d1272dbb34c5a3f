"""Seeds and random generators: every component owns one ``numpy.random.Generator``."""

from __future__ import annotations

from typing import Any

import numpy as np

from rafiki_ray._errors import invalid_type

__all__ = ["check_seed", "child_seed", "make_rng", "rng_state", "set_rng_state"]


def check_seed(seed: Any, path: str = "seed") -> int | None:
    """Validate a user seed: ``None`` or a non-negative int (bool is refused)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise invalid_type(path, "must be None or an int", seed)
    if seed < 0:
        raise ValueError(f"{path}: must be >= 0, got {seed!r}")
    return int(seed)


def make_rng(seed: int | None) -> np.random.Generator:
    """A private generator; ``None`` draws entropy from the OS (never the global RNG)."""
    return np.random.default_rng(seed)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """Plain-data (JSON-able) state of a generator."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def child_seed(rng: np.random.Generator) -> int:
    """Derive a seed for a child component from a parent's generator."""
    return int(rng.integers(0, 2**31 - 1))
