"""``check_model``: the developer harness of the original (``rafiki.model.dev.test_model_class``).

Runs one trial locally, in this process (no Ray), and explains every contract violation it
finds instead of stopping at the first: an invalid knob config, a constructor that rejects the
knobs, ``train`` failing, ``evaluate`` not returning a finite float, parameters that are not a
dict of strings, numbers and arrays (not serialisable), dump/load not round-tripping (another
instance with the loaded parameters evaluates or predicts differently), ``predict`` not
returning one JSON-serialisable answer per query, and ``destroy`` / ``teardown`` failing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid_type

__all__ = ["ModelCheck", "check_model"]

logger = logging.getLogger(__name__)


@dataclass
class ModelCheck:
    """The outcome: ``problems`` (one sentence each), the knobs used, score and predictions."""

    problems: list[str] = field(default_factory=list)
    knobs: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    predictions: list[Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"model OK (score {self.score}, knobs {self.knobs})"
        return "model contract violations:\n" + "\n".join(f"- {p}" for p in self.problems)


def _error(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _queries_from(val: Any, n: int) -> list[Any]:
    from rafiki_ray.models.datasets import load_dataset

    ds = load_dataset(val, path="val")
    return [x.tolist() for x in ds.X[:n]]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                rtol=1e-5, atol=1e-6, equal_nan=True))
    except (TypeError, ValueError):
        return a == b


def check_model(
    model_class: Any,
    train: Any,
    val: Any,
    *,
    knobs: Mapping[str, Any] | None = None,
    queries: list[Any] | None = None,
    seed: int | None = 0,
    raise_errors: bool = True,
) -> ModelCheck:
    """Run one local trial of ``model_class`` and list every contract violation.

    Args:
        model_class: the model class to check.
        train, val: datasets (paths in Rafiki's formats or ``(X, y)``).
        knobs: knob values to use (missing ones are sampled with ``seed``; policies False).
        queries: what to predict on (default: the first 5 samples of ``val`` as lists).
        raise_errors: raise ``ValueError`` listing every problem (default) instead of
            returning a :class:`ModelCheck` whose ``problems`` are not empty.
    """
    report = ModelCheck()
    p = report.problems
    if not isinstance(model_class, type):
        raise invalid_type("model_class", "must be a class", model_class)
    name = model_class.__name__
    # 1. knob config
    config = None
    gkc = model_class.__dict__.get("get_knob_config")
    if gkc is None and not any("get_knob_config" in c.__dict__ for c in model_class.__mro__):
        p.append(f"{name}.get_knob_config is missing")
    else:
        if gkc is not None and not isinstance(gkc, staticmethod):
            p.append(f"{name}.get_knob_config must be a @staticmethod")
        try:
            config = model_class.get_knob_config()
        except Exception as exc:  # noqa: BLE001 - the harness reports any model error
            p.append(f"{name}.get_knob_config() failed: {_error(exc)}")
    space = None
    if config is not None:
        from rafiki_ray.spaces import from_knobs

        try:
            space = from_knobs(config, f"{name}.get_knob_config()")
        except (ValueError, TypeError) as exc:
            p.append(f"invalid knob config: {exc}")
    missing = [m for m in ("train", "evaluate", "predict", "dump_parameters", "load_parameters")
               if not callable(getattr(model_class, m, None))]
    p.extend(f"{name}.{m} is missing" for m in missing)
    if space is None or missing:
        return _finish(report, raise_errors)
    values = space.sample(np.random.default_rng(seed))
    values.update(dict(knobs or {}))
    report.knobs = values
    # 2. construct, train, evaluate
    try:
        model = model_class(**values)
    except Exception as exc:  # noqa: BLE001 - the harness reports any model error
        p.append(f"{name}(**knobs) failed: {_error(exc)}")
        return _finish(report, raise_errors)
    try:
        model.train(train, shared_params=None)
    except Exception as exc:  # noqa: BLE001 - the harness reports any model error
        p.append(f"train(dataset, shared_params=None) failed: {_error(exc)}")
        return _finish(report, raise_errors)
    score = _evaluate(model, val, p)
    report.score = score
    # 3. predict
    try:
        qs = queries if queries is not None else _queries_from(val, 5)
    except (ValueError, TypeError) as exc:
        qs = None
        p.append(f"cannot build queries from val (pass queries=): {exc}")
    preds = _predict(model, qs, p) if qs is not None else None
    report.predictions = preds
    # 4. parameters: serialisable, round trip
    params = None
    try:
        params = model.dump_parameters()
    except Exception as exc:  # noqa: BLE001 - the harness reports any model error
        p.append(f"dump_parameters() failed: {_error(exc)}")
    if params is not None:
        from rafiki_ray.models.model import load_parameters, save_parameters

        loaded = None
        try:
            with tempfile.TemporaryDirectory() as d:
                save_parameters(os.path.join(d, "p.npz"), params)
                loaded = load_parameters(os.path.join(d, "p.npz"))
        except (ValueError, TypeError) as exc:
            p.append(f"parameters are not serialisable: {exc}")
        if loaded is not None:
            _round_trip(model_class, values, loaded, val, score, qs, preds, p)
    # 5. destroy, teardown
    for what, fn in (("destroy()", getattr(model, "destroy", None)),
                     ("teardown()", getattr(model_class, "teardown", None))):
        if fn is None:
            continue
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the harness reports any model error
            p.append(f"{what} failed: {_error(exc)}")
    return _finish(report, raise_errors)


def _evaluate(model: Any, val: Any, p: list[str], what: str = "evaluate(dataset)"
              ) -> float | None:
    try:
        score = model.evaluate(val)
    except Exception as exc:  # noqa: BLE001 - the harness reports any model error
        p.append(f"{what} failed: {_error(exc)}")
        return None
    if isinstance(score, (bool, np.bool_)) or not isinstance(score, (float, np.floating)):
        p.append(f"{what} must return a float, got {type(score).__name__} {score!r}")
        try:
            return float(score)
        except (TypeError, ValueError):
            return None
    if not math.isfinite(float(score)):
        p.append(f"{what} must return a finite float, got {score!r}")
    return float(score)


def _predict(model: Any, queries: list[Any], p: list[str], what: str = "predict(queries)"
             ) -> list[Any] | None:
    try:
        preds = model.predict(queries)
    except Exception as exc:  # noqa: BLE001 - the harness reports any model error
        p.append(f"{what} failed: {_error(exc)}")
        return None
    if not isinstance(preds, list):
        p.append(f"{what} must return a list, got {type(preds).__name__}")
        return None
    if len(preds) != len(queries):
        p.append(f"{what} must return one answer per query: {len(queries)} queries, "
                 f"{len(preds)} answers")
    try:
        json.dumps(preds)
    except (TypeError, ValueError) as exc:
        p.append(f"{what} answers must be JSON-serialisable (plain lists, numbers, strings; "
                 f"call .tolist() on arrays): {exc}")
    return preds


def _round_trip(model_class: type, values: dict[str, Any], params: dict[str, Any], val: Any,
                score: float | None, queries: list[Any] | None, preds: list[Any] | None,
                p: list[str]) -> None:
    try:
        clone = model_class(**values)
        clone.load_parameters(params)
    except Exception as exc:  # noqa: BLE001 - the harness reports any model error
        p.append(f"load_parameters(dump_parameters()) failed: {_error(exc)}")
        return
    try:
        s2 = _evaluate(clone, val, [], "evaluate after load_parameters")
        if score is not None and s2 is not None and not _same(score, s2):
            p.append(f"dump/load does not round-trip: evaluate gave {score!r} before and "
                     f"{s2!r} after load_parameters")
        if queries is not None and preds is not None:
            p2 = _predict(clone, queries, [], "predict after load_parameters")
            if p2 is not None and not _same(preds, p2):
                p.append("dump/load does not round-trip: predict answers differ after "
                         "load_parameters")
    finally:
        try:
            clone.destroy()
        except Exception:  # reported for the first instance already
            logger.debug("destroy() of the round-trip clone failed", exc_info=True)


def _finish(report: ModelCheck, raise_errors: bool) -> ModelCheck:
    if raise_errors and report.problems:
        raise ValueError(str(report))
    return report
