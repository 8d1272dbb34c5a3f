"""RapidFire config groups -> concrete runs (+ a scheduler): dict, GridSearch, RandomSearch,
SuccessiveHalving, or a Python list mixing them (seed 002, "Config Group Generators").

``GridSearch``/``RandomSearch``/``List``/``Range`` are the adapters' own
(:mod:`rafiki_ray.spaces.adapters.rapidfire`); :func:`plan` only concatenates their runs and,
for :class:`SuccessiveHalving`, builds :class:`rafiki_ray.schedulers.SuccessiveHalving` on the
``chunks_done`` clock (one unit per data chunk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces.adapters.rapidfire import (
    GridSearch,
    List,
    RandomSearch,
    Range,
    expand_runs,
)

__all__ = ["GridSearch", "List", "Plan", "RandomSearch", "Range", "SuccessiveHalving", "plan"]


def _walk(x: Any, path: str):
    yield path, x
    if isinstance(x, Mapping):
        for k, v in x.items():
            yield from _walk(v, f"{path}.{k}")


class SuccessiveHalving:
    """``SuccessiveHalving(cfg, num_runs, min_epochs, max_epochs, reduction_factor, metric,
    direction, min_early_stopping_rate=0)`` (seed 002; Jamieson & Talwalkar 2016, the
    early-stopping rate ``s`` of Li et al. 2020's ASHA).

    ``cfg`` holds at least one ``Range`` and no ``List``; ``num_runs`` configurations are drawn
    (as RandomSearch, seeded) and start together; the first check is after
    ``min_epochs * reduction_factor**s`` epochs, each later rung ``reduction_factor`` times
    further, the last at ``max_epochs``, which overrides ``train.epochs``; each check keeps
    ``floor(n / reduction_factor)`` runs by ``metric`` in ``direction`` (``"min"``/``"max"``).
    """

    def __init__(self, cfg: Mapping[str, Any], num_runs: int, min_epochs: int, max_epochs: int,
                 reduction_factor: int, metric: str, direction: str,
                 min_early_stopping_rate: int = 0, *, seed: int | None = 42) -> None:
        name = "SuccessiveHalving"
        if not isinstance(cfg, Mapping):
            raise invalid_type(f"{name}.cfg", "must be a config dict", cfg)
        ranges = [p for p, v in _walk(cfg, "cfg") if isinstance(v, Range)]
        lists = [p for p, v in _walk(cfg, "cfg") if isinstance(v, List)]
        if lists:
            raise invalid(f"{name}.{lists[0]}", "SuccessiveHalving takes no List (use Range)",
                          "List")
        if not ranges:
            raise invalid(f"{name}.cfg", "needs a Range for at least one knob", dict(cfg))
        for arg, v, lo in (("num_runs", num_runs, 1), ("min_epochs", min_epochs, 1),
                           ("max_epochs", max_epochs, 1), ("reduction_factor",
                                                            reduction_factor, 2),
                           ("min_early_stopping_rate", min_early_stopping_rate, 0)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise invalid_type(f"{name}.{arg}", "must be an int", v)
            if v < lo:
                raise invalid(f"{name}.{arg}", f"must be >= {lo}", v)
        first = min_epochs * reduction_factor ** min_early_stopping_rate
        if first > max_epochs:
            raise invalid(f"{name}.max_epochs", "must be >= min_epochs * reduction_factor ** "
                          f"min_early_stopping_rate = {first}", max_epochs)
        if not isinstance(metric, str) or not metric:
            raise invalid_type(f"{name}.metric", "must be a metric name", metric)
        if direction not in ("min", "max"):
            raise invalid(f"{name}.direction", "must be 'min' or 'max'", direction)
        self.cfg = cfg
        self.num_runs, self.min_epochs, self.max_epochs = num_runs, min_epochs, max_epochs
        self.reduction_factor, self.metric, self.direction = reduction_factor, metric, direction
        self.min_early_stopping_rate = min_early_stopping_rate
        self.first_rung = first
        self._search = RandomSearch(cfg, num_runs=num_runs, seed=seed, path=f"{name}.cfg")

    def __len__(self) -> int:
        return self.num_runs

    def configs(self) -> list[dict[str, Any]]:
        out = self._search.configs()
        for c in out:
            train = c.get("train")
            if isinstance(train, dict):
                train["epochs"] = self.max_epochs
        return out

    def scheduler(self, num_chunks: int, seed: int | None = None) -> Any:
        """The Tune scheduler, on the ``chunks_done`` clock."""
        from rafiki_ray.schedulers import SuccessiveHalving as SHA

        return SHA(min_resource=self.first_rung * num_chunks,
                   max_resource=self.max_epochs * num_chunks,
                   reduction_factor=self.reduction_factor, num_trials=self.num_runs,
                   metric=self.metric, mode=self.direction, time_attr="chunks_done", seed=seed)


@dataclass
class Plan:
    """What ``run_fit`` launches: the run configs and, for SuccessiveHalving, its group."""

    runs: list[dict[str, Any]]
    sha: SuccessiveHalving | None = None
    sources: list[str] = field(default_factory=list)


def plan(config_group: Any, path: str = "config") -> Plan:
    """Expand a config group into runs (1 + 2x2 + 6 = 11 for the seed's mixed list)."""
    if isinstance(config_group, SuccessiveHalving):
        runs = config_group.configs()
        return Plan(runs, config_group, [f"{path}:SuccessiveHalving"] * len(runs))
    if isinstance(config_group, (list, tuple)):
        runs, sources = [], []
        if not config_group:
            raise invalid(path, "must not be an empty list", list(config_group))
        for i, item in enumerate(config_group):
            if isinstance(item, SuccessiveHalving):
                raise invalid(f"{path}[{i}]", "SuccessiveHalving schedules its own runs; launch "
                              "it alone, not in a list", "SuccessiveHalving")
            got = expand_runs(item, f"{path}[{i}]")
            runs += got
            sources += [f"{path}[{i}]:{type(item).__name__}"] * len(got)
        return Plan(runs, None, sources)
    runs = expand_runs(config_group, path)
    return Plan(runs, None, [f"{path}:{type(config_group).__name__}"] * len(runs))
