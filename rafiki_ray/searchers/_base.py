"""``RafikiSearcher``: what every rafiki_ray searcher shares.

A subclass implements one method, :meth:`RafikiSearcher._propose`, and may keep extra plain
state through :meth:`_get_extra_state` / :meth:`_set_extra_state`. The base handles the rest
of Tune's ``Searcher`` protocol:

* metric and mode from the constructor or from ``set_search_properties``; the space from the
  constructor (a :class:`~rafiki_ray.spaces.SearchSpace` or a Tune ``param_space``) or from
  the Tuner's ``param_space``;
* ``points_to_evaluate`` (full or partial configs; missing keys are sampled), warm start from
  ``add_evaluated_point``, Tune results and pandas DataFrames (:meth:`warm_start`);
* observations kept as configs plus a *loss* (lower is better: ``-metric`` when maximising);
  failed, missing and NaN results are kept but never fed to a model, ``±inf`` is clipped to
  the worst/best finite loss seen (:meth:`model_data`);
* pending trials with a constant liar (``constant_liar_type`` ``"min" | "max" | "mean"`` of
  the observed losses, as NNI's and T9k's tuners; ``None`` disables it);
* explicit plain-data state (:meth:`get_state` / :meth:`set_state`, ``save`` / ``restore``)
  holding metric, mode and space, because ``Tuner.restore`` does not call
  ``set_search_properties`` again.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from ray.tune.search import Searcher

from rafiki_ray import _args
from rafiki_ray._args import check_number
from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed, make_rng, rng_state, set_rng_state
from rafiki_ray._state import load_state, save_state
from rafiki_ray.searchers._rows import Rows
from rafiki_ray.spaces._encoding import Encoder
from rafiki_ray.spaces._space import SearchSpace, as_space

__all__ = ["LIAR_TYPES", "RafikiSearcher"]

logger = logging.getLogger(__name__)

LIAR_TYPES = ("min", "max", "mean")
_OK, _FAILED = "ok", "failed"


def _check_mode(mode: Any, path: str = "mode") -> str | None:
    if mode is None:
        return None
    if mode not in ("min", "max"):
        raise invalid(path, "must be 'min' or 'max'", mode)
    return str(mode)


def _unflatten(flat: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(sep)
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class RafikiSearcher(Searcher, abc.ABC):
    """Base class of rafiki_ray searchers (subclass of ``ray.tune.search.Searcher``).

    Args:
        space: a ``SearchSpace`` or a Tune ``param_space`` dict; ``None`` to take the Tuner's.
        metric: the metric to optimise (or from ``TuneConfig(metric=...)``).
        mode: ``"min"`` or ``"max"``.
        seed: seeds the searcher's own ``numpy.random.Generator``.
        points_to_evaluate: configurations (full or partial) to try first, in order.
        constant_liar_type: the loss assumed for pending trials (``"min"``, ``"max"``,
            ``"mean"`` of observed losses) or ``None`` to ignore pending trials.
        max_concurrent: at most this many pending trials (``None``: no limit of our own).
    """

    #: Source argument names (NNI classArgs, Polyaxon, Ray) -> keyword, for ``from_args``
    #: (:mod:`rafiki_ray._args`); subclasses extend it.
    ALIASES: ClassVar[dict[str, str | None]] = {"optimize_mode": "mode", "random_state": "seed"}

    def __init__(
        self,
        space: Any = None,
        *,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        constant_liar_type: str | None = "min",
        max_concurrent: int | None = None,
    ) -> None:
        mode = _check_mode(mode)
        if metric is not None and not isinstance(metric, str):
            raise invalid_type("metric", "must be a str", metric)
        super().__init__(metric=metric, mode=mode)
        self._seed = check_seed(seed)
        self._rng = make_rng(self._seed)
        if constant_liar_type is not None and constant_liar_type not in LIAR_TYPES:
            raise invalid("constant_liar_type", f"must be one of {list(LIAR_TYPES)} or None", constant_liar_type)
        self._liar = constant_liar_type
        self._max_concurrent = check_number("max_concurrent", max_concurrent, integer=True,
                                            low=1, none_ok=True)
        if points_to_evaluate is not None and (
            isinstance(points_to_evaluate, Mapping) or not isinstance(points_to_evaluate, Sequence)
        ):
            raise invalid_type("points_to_evaluate", "must be a list of dicts", points_to_evaluate)
        self._queued: list[dict[str, Any]] = [dict(p) for p in (points_to_evaluate or [])]
        self._space: SearchSpace | None = None
        self._encoder: Encoder | None = None
        # observations: dicts {"config", "loss", "status", "trial_id"}; x/active cached apart
        self._obs: list[dict[str, Any]] = []
        self._obs_x: list[np.ndarray] = []
        self._obs_active: list[np.ndarray] = []
        self._rows: tuple[list[np.ndarray], Rows, Rows, Rows] | None = None  # _obs_arrays
        self._pending: dict[str, dict[str, Any]] = {}
        # pending trials whose max_concurrent slot a pausing scheduler freed (see slots())
        self._unslotted: set[str] = set()
        if space is not None:
            self._set_space(as_space(space, "space"))

    # ------------------------------------------------------------------ subclass API
    @abc.abstractmethod
    def _propose(self, trial_id: str) -> dict[str, Any]:
        """Return the next configuration (a dict the space contains)."""

    def _get_extra_state(self) -> dict[str, Any]:
        """Plain data a subclass must persist beyond observations and RNG."""
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_get_extra_state`."""

    def _on_space(self) -> None:
        """Hook: the space (and encoder) has just been set."""

    # ------------------------------------------------------------------ properties
    @property
    def space(self) -> SearchSpace | None:
        return self._space

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            raise RuntimeError(f"{type(self).__name__}: no search space set yet")
        return self._encoder

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @property
    def n_observations(self) -> int:
        return len(self._obs)

    # ------------------------------------------------------------------ Tune protocol
    def _set_space(self, space: SearchSpace) -> None:
        if space.is_empty():
            raise invalid("space", "has no parameter to search", space.to_dict())
        self._space = space
        self._encoder = Encoder(space)
        for i, p in enumerate(self._queued):
            self._queued[i] = self._complete_point(p, f"points_to_evaluate[{i}]")
        self._on_space()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if self._space is not None and config:
            return False
        mode = _check_mode(mode)
        if metric is not None and not isinstance(metric, str):
            raise invalid_type("metric", "must be a str", metric)
        # Tune calls this in the driver before any trial starts: the earliest point where a
        # missing metric or mode is known to stay missing
        self._require_metric_mode(metric or self._metric, mode or self._mode)
        if config:
            self._set_space(as_space(config, "param_space"))
        if metric is not None:
            self._metric = metric
        if mode is not None:
            self._mode = mode
        return True

    def _require_metric_mode(self, metric: str | None, mode: str | None) -> None:
        name = type(self).__name__
        if metric is None:
            raise invalid(
                "metric",
                f"is not set: pass {name}(metric=...) or tune.TuneConfig(metric=...)",
                None,
            )
        if mode is None:
            raise invalid(
                "mode",
                f"is not set: pass {name}(mode='min'|'max') or tune.TuneConfig(mode=...)",
                None,
            )

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self._max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._space is None:
            raise RuntimeError(
                f"{type(self).__name__}: no search space: pass `space=` or a Tuner `param_space`"
            )
        self._require_metric_mode(self._metric, self._mode)
        if self._slots_full():
            return None
        if self._queued:
            config = self._queued.pop(0)
        else:
            config = self._propose(trial_id)
        self._pending[trial_id] = config
        return _deep_copy(config)

    # ------------------------------------------------------------------ concurrency slots
    def slots(self) -> tuple[set[str], int] | None:
        """``(ids of the pending trials max_concurrent counts, max_concurrent)``, or ``None``
        without a limit.

        This searcher enforces ``max_concurrent`` (its own argument or Tune's
        ``max_concurrent_trials``, which Tune hands over through ``set_max_concurrency``) by
        counting pending trials. A pausing scheduler frees a paused trial's slot with
        :meth:`release_slot` and takes it back with :meth:`claim_slot` before resuming or
        stopping it, so that the limit counts running trials (as ``Slots`` does for Tune's
        own limiters; :mod:`rafiki_ray.schedulers._slots`).
        """
        if self._max_concurrent is None:
            return None
        return set(self._pending) - self._unslotted, int(self._max_concurrent)

    def _slots_full(self) -> bool:
        """Whether the pending trials that hold a slot fill ``max_concurrent``."""
        return self._max_concurrent is not None and \
            len(self._pending) - len(self._unslotted) >= self._max_concurrent

    def release_slot(self, trial_id: str) -> bool:
        """Stop counting the pending trial ``trial_id``; whether it was counted."""
        if trial_id not in self._pending or trial_id in self._unslotted:
            return False
        self._unslotted.add(trial_id)
        return True

    def claim_slot(self, trial_id: str, *, force: bool = False) -> bool:
        """Count ``trial_id`` again; ``False`` when every slot is taken (unless ``force``).
        ``True`` when it is counted already or is not pending here."""
        if trial_id not in self._unslotted:
            return True
        if not force and self._slots_full():
            return False
        self._unslotted.discard(trial_id)
        return True

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._unslotted.discard(trial_id)
        config = self._pending.pop(trial_id, None)
        if config is None:
            # Not suggested by this instance (e.g. restored from a snapshot older than the
            # trial): Tune's result carries the config, flattened as "config/...".
            config = self._config_from_result(result)
            if config is None:
                return
        loss = None if (error or result is None) else self._loss(result.get(self._metric))
        self._record(config, loss, trial_id)

    def _config_from_result(self, result: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not result or self._space is None or self._metric is None:
            return None
        if isinstance(result.get("config"), Mapping):
            config = dict(result["config"])
        else:
            config = _unflatten({k[len("config/"):]: _plain(v) for k, v in result.items() if k.startswith("config/")})
        return config if self._space.contains(config) else None

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        if self._space is None:
            raise RuntimeError(f"{type(self).__name__}: set a space before adding points")
        self._space.validate(parameters, "parameters")
        loss = None if error else self._loss(value)
        self._record(_deep_copy(parameters), loss, None)

    def warm_start(self, results: Any, metric: str | None = None) -> int:
        """Add earlier results: a pandas DataFrame (Tune's ``config/...`` columns, or one
        column per top-level parameter) or a Tune ``ResultGrid``. Returns how many were
        added; rows outside the space raise ``ValueError`` naming the row."""
        import pandas as pd

        metric = metric or self._metric
        if metric is None:
            raise invalid("metric", "is needed to read earlier results", None)
        if self._space is None:
            raise RuntimeError(f"{type(self).__name__}: set a space before warm_start")
        if not isinstance(results, pd.DataFrame):
            if hasattr(results, "get_dataframe"):
                results = results.get_dataframe()
            else:
                raise invalid_type("results", "must be a pandas DataFrame or a Tune ResultGrid", results)
        if metric not in results.columns:
            raise invalid("results", f"has no column {metric!r}", list(results.columns))
        cfg_cols = [c for c in results.columns if c.startswith("config/")]
        n = 0
        for i, row in enumerate(results.to_dict("records")):
            if cfg_cols:
                flat = {c[len("config/"):]: row[c] for c in cfg_cols}
            else:
                flat = {k: row[k] for k in self._space if k in row}
            # Tune flattens nested dicts; rows of other conditional options leave NaN holes.
            config = _unflatten({k: _plain(v) for k, v in flat.items() if not _is_nan(v)})
            self._space.validate(config, f"results[{i}]")
            value = row[metric]
            self._record(config, self._loss(value), None)
            n += 1
        return n

    # ------------------------------------------------------------------ helpers
    def _loss(self, value: Any) -> float | None:
        """Lower is better; ``None`` for missing/NaN/non-numeric values."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None
        if math.isnan(v):
            return None
        return -v if self._mode == "max" else v

    def _record(self, config: dict[str, Any], loss: float | None, trial_id: str | None) -> None:
        x, active = self.encoder.encode(config)
        self._obs.append(
            {"config": config, "loss": loss, "status": _OK if loss is not None else _FAILED, "trial_id": trial_id}
        )
        self._obs_x.append(x)
        self._obs_active.append(active)

    def _obs_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every observation as arrays ``(X, active, loss)`` (``NaN`` loss: failed), in
        observation order; kept up to date incrementally (views: do not modify)."""
        rows = self._rows
        n = len(self._obs_x)
        if rows is None or rows[0] is not self._obs_x or len(rows[1]) > n:
            d = self.encoder.n_dims
            rows = self._rows = (self._obs_x, Rows(d, float), Rows(d, bool), Rows(1, float))
        _, X, A, L = rows
        for i in range(len(X), n):
            X.append(self._obs_x[i])
            A.append(self._obs_active[i])
            loss = self._obs[i]["loss"]
            L.append(np.nan if loss is None else loss)
        return X.view(), A.view(), L.view()[:, 0]

    def _complete_point(self, point: Mapping[str, Any], path: str) -> dict[str, Any]:
        """Fill keys missing from a partial point with samples; validate the result."""
        space = self._require_space()
        if not isinstance(point, Mapping):
            raise invalid_type(path, "must be a dict", point)
        full = _merge(space.sample(self._rng), point)
        space.validate(full, path)
        return full

    def _require_space(self) -> SearchSpace:
        if self._space is None:
            raise RuntimeError(f"{type(self).__name__}: no search space set yet")
        return self._space

    def model_data(self, *, with_pending: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, active, y)`` of finite-loss observations (``±inf`` clipped to the finite range),
        plus pending trials at the constant-liar loss when ``with_pending`` and a liar is set."""
        d = self.encoder.n_dims
        X_all, A_all, L_all = self._obs_arrays()
        ok = ~np.isnan(L_all)
        losses = L_all[ok]
        finite = losses[np.isfinite(losses)]
        if finite.size:
            losses = np.clip(losses, finite.min(), finite.max())
        else:
            ok, losses = np.zeros(len(L_all), dtype=bool), np.zeros(0)
        X = X_all[ok].reshape(-1, d)
        A = A_all[ok].reshape(-1, d)
        if with_pending:
            return self._with_liar(X, A, losses, list(self._pending.values()))
        return X, A, losses

    def _with_liar(
        self, X: np.ndarray, A: np.ndarray, y: np.ndarray, pending: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Append ``pending`` configurations at the constant liar's loss (``min``/``max``/
        ``mean`` of ``y``), after the observations; unchanged without a liar, pending
        configurations or observations."""
        if self._liar is None or not pending or not len(y):
            return X, A, y
        lie = {"min": y.min, "max": y.max, "mean": y.mean}[self._liar]()
        px, pa = zip(*(self.encoder.encode(c) for c in pending))
        X, A = np.vstack([X, np.array(px)]), np.vstack([A, np.array(pa)])
        return X, A, np.concatenate([y, np.full(len(px), lie)])

    def pending_configs(self) -> list[dict[str, Any]]:
        return [_deep_copy(c) for c in self._pending.values()]

    def best(self) -> tuple[dict[str, Any], float] | None:
        """The best observed configuration and its metric value (in the user's sign)."""
        ok = [o for o in self._obs if o["loss"] is not None]
        if not ok:
            return None
        o = min(ok, key=lambda o: o["loss"])
        return _deep_copy(o["config"]), (-o["loss"] if self._mode == "max" else o["loss"])

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "metric": self._metric,
            "mode": self._mode,
            "seed": self._seed,
            "space": self._space.to_dict() if self._space is not None else None,
            "rng": rng_state(self._rng),
            "constant_liar_type": self._liar,
            "max_concurrent": self._max_concurrent,
            "queued": _deep_copy(self._queued),
            "observations": _deep_copy(self._obs),
            "pending": _deep_copy(self._pending),
            "unslotted": sorted(self._unslotted),
            "extra": self._get_extra_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("class") != type(self).__name__:
            raise invalid("state.class", f"was saved by another searcher, not {type(self).__name__}", state.get("class"))
        self._metric, self._mode, self._seed = state["metric"], state["mode"], state["seed"]
        self._liar, self._max_concurrent = state["constant_liar_type"], state["max_concurrent"]
        self._queued = []
        if state["space"] is not None:
            self._space = SearchSpace.from_dict(state["space"])
            self._encoder = Encoder(self._space)
            self._on_space()
        self._queued = _deep_copy(state["queued"])
        self._obs, self._obs_x, self._obs_active = [], [], []
        for o in state["observations"]:
            self._record(o["config"], o["loss"], o["trial_id"])
        self._pending = _deep_copy(state["pending"])
        self._unslotted = set(state.get("unslotted", ())) & set(self._pending)
        self._rng = make_rng(None)
        set_rng_state(self._rng, state["rng"])
        self._set_extra_state(state.get("extra") or {})

    def save(self, checkpoint_path: str) -> None:
        save_state(checkpoint_path, self.get_state(), kind=type(self).__name__)

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(load_state(checkpoint_path, kind=type(self).__name__))

    @classmethod
    def from_args(cls, args: Mapping[str, Any], **kwargs: Any) -> RafikiSearcher:
        """Build from a source's argument names (NNI classArgs, Polyaxon, Ray) through
        the class's ``ALIASES`` table (:func:`rafiki_ray._args.resolve_aliases`): unknown
        names raise an error listing the known ones."""
        return _args.from_args(cls, args, kwargs)


def _is_nan(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _merge(base: dict[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in point.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict) and "_name" not in v:
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _deep_copy(x: Any) -> Any:
    import copy

    return copy.deepcopy(x)
