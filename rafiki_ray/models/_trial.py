"""One Rafiki trial as a Tune function trainable (``rafiki/worker/train.py``'s order).

Pull shared parameters per the directive's ``params_type`` → build the model with the knobs →
train (or, with SKIP_TRAIN on, load the shared parameters) → evaluate if ``to_eval`` (else
score NaN) → dump parameters → publish them to the ParamStore if ``to_cache_params`` → report
``score`` and ``phase`` with a checkpoint holding ``params.npz`` and ``knobs.json``.

A model that calls :meth:`BaseModel.checkpoint <rafiki_ray.models.BaseModel.checkpoint>`
during ``train`` reports the same (score on the validation data, parameters) with
``partial=True`` at each call, so a trial stopped at the time limit keeps its last one; the
final report has ``partial=False``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.models.advisors import (
    DIRECTIVE_KEY,
    PARAMS_TYPES,
    PHASES,
    default_directive,
)
from rafiki_ray.models.model import _CHECKPOINT_HOOK, save_parameters

__all__ = ["KNOBS_FILE", "PARAMS_FILE", "parse_directive", "run_trial"]

logger = logging.getLogger(__name__)

PARAMS_FILE = "params.npz"
KNOBS_FILE = "knobs.json"


def parse_directive(config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial directive (see the h19/h20 contract) with defaults filled in."""
    out = default_directive()
    raw = config.get(DIRECTIVE_KEY)
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        raise invalid_type(DIRECTIVE_KEY, "must be a dict", raw)
    unknown = set(raw) - set(out)
    if unknown:
        raise invalid(DIRECTIVE_KEY, f"has unknown keys (known: {sorted(out)})", sorted(unknown))
    out.update(raw)
    if out["phase"] not in PHASES:
        raise invalid(f"{DIRECTIVE_KEY}.phase", f"must be one of {list(PHASES)}", out["phase"])
    if out["params_type"] not in PARAMS_TYPES:
        raise invalid(f"{DIRECTIVE_KEY}.params_type", f"must be one of {list(PARAMS_TYPES)}",
                      out["params_type"])
    for key in ("to_eval", "to_cache_params"):
        if not isinstance(out[key], bool):
            raise invalid_type(f"{DIRECTIVE_KEY}.{key}", "must be a bool", out[key])
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def run_trial(config: dict[str, Any], *, model_class: type, train: Any, val: Any,
              store: Any = None, policies: Mapping[str, str] | None = None) -> None:
    """The Tune trainable behind ``tune_model`` (bind the keywords with
    ``tune.with_parameters``)."""
    from ray import tune

    from rafiki_ray.control.protocol import CONTROL_KEY
    from rafiki_ray.models._control import clone_directive, warm_parameters

    run = config.get(CONTROL_KEY) or {}  # live control (tune_model's clones)
    directive = clone_directive(parse_directive(config), run)
    knobs = {k: _plain(v) for k, v in config.items() if k not in (DIRECTIVE_KEY, CONTROL_KEY)}
    policies = dict(policies or {})
    shared, shared_from, shared_score = None, "", float("nan")
    warm = warm_parameters(run)
    if warm is not None:  # a warm clone: its parent's parameters
        shared, shared_from = warm, str(run.get("clone_of") or "")
    elif directive["params_type"] is not None:
        if store is None:
            raise RuntimeError("the directive asks for shared parameters but no ParamStore "
                               "was given to the trial")
        record = store.record(directive["params_type"])
        if record is not None:
            shared = store.fetch(directive["params_type"])
            shared_from = str(record.get("trial_id") or "")
            shared_score = float("nan") if record.get("score") is None else float(record["score"])
        if shared is not None:  # the store's arrays are read-only views: models get copies
            shared = {k: np.array(v) if isinstance(v, np.ndarray) else v
                      for k, v in shared.items()}
    skip_train = any(knobs.get(name) is True for name, pol in policies.items()
                     if pol == "SKIP_TRAIN")
    model = model_class(**knobs)
    t0 = time.perf_counter()

    def report(score: float, params: dict[str, Any], *, partial: bool, train_s: float,
               extra: Mapping[str, Any] | None = None) -> None:
        metrics = {**(extra or {}),
                   "score": score, "phase": directive["phase"],
                   "params_type": directive["params_type"] or "",
                   "shared_from": shared_from, "shared_score": shared_score,
                   "train_time_s": train_s, "partial": partial}
        with tempfile.TemporaryDirectory() as d:
            save_parameters(os.path.join(d, PARAMS_FILE), params)
            with open(os.path.join(d, KNOBS_FILE), "w") as f:
                json.dump(knobs, f)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    def on_checkpoint(m: Any, extra: Mapping[str, Any]) -> None:
        train_s = time.perf_counter() - t0
        score = float(m.evaluate(val)) if directive["to_eval"] else float("nan")
        report(score, m.dump_parameters(), partial=True, train_s=train_s, extra=extra)

    try:
        if hasattr(model, "__dict__"):  # BaseModel.checkpoint looks the hook up there
            model.__dict__[_CHECKPOINT_HOOK] = on_checkpoint
        if skip_train:
            if shared is not None:
                model.load_parameters(shared)
        else:
            model.train(train, shared_params=shared)
        getattr(model, "__dict__", {}).pop(_CHECKPOINT_HOOK, None)
        train_s = time.perf_counter() - t0
        score = float(model.evaluate(val)) if directive["to_eval"] else float("nan")
        params = model.dump_parameters()
        if directive["to_cache_params"] and store is not None:
            store.publish(params, score=score if math.isfinite(score) else None)
        report(score, params, partial=False, train_s=train_s)
    finally:
        model.destroy()
