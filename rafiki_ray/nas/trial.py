"""Run one trial of a Rafiki-style model under the ``"_rafiki"`` directive, with the shared
weights in a :class:`~rafiki_ray.sharing.ParamStore` (the contract ``tune_model`` honours
too; here for plain Tune users, so ENAS runs without ``tune_model``).

Worker order as Rafiki's (``rafiki/worker/train.py``): fetch the shared parameters named by
``params_type`` (``None``: none) -> build the model from the knobs -> ``train(dataset,
shared_params=...)``, or with the SKIP_TRAIN policy only ``load_parameters(shared)`` ->
``evaluate`` if ``to_eval`` (else the score is NaN) -> publish ``dump_parameters()`` if
``to_cache_params`` -> ``destroy()``. The model class needs Rafiki's ``BaseModel`` method
names (``get_knob_config``, ``__init__(**knobs)``, ``train``, ``evaluate``,
``dump_parameters``, ``load_parameters``, ``destroy``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces import Policy, SearchSpace, from_knobs

__all__ = ["DEFAULT_DIRECTIVE", "directive_trainable", "run_directive"]

#: The directive of a config without the ``"_rafiki"`` key.
DEFAULT_DIRECTIVE: dict[str, Any] = {
    "phase": "SEARCH", "params_type": None, "to_eval": True, "to_cache_params": False,
}


def _policy_keys(space: SearchSpace) -> dict[str, str]:
    return {p.policy: key for key, p in space.items() if isinstance(p, Policy)}


def run_directive(
    model_cls: type,
    config: Mapping[str, Any],
    *,
    train_data: Any,
    eval_data: Any,
    store: Any = None,
    trial_id: str | None = None,
) -> dict[str, Any]:
    """One trial of ``model_cls`` under ``config["_rafiki"]``; returns the metrics
    (``score``, ``phase``, ``published``, ``shared_loaded`` and ``cpu_s``, the process CPU
    seconds of the trial's work)."""
    t0 = time.process_time()
    d = dict(DEFAULT_DIRECTIVE)
    if "_rafiki" in config:
        if not isinstance(config["_rafiki"], Mapping):
            raise invalid_type("config._rafiki", "must be a dict", config["_rafiki"])
        d.update(config["_rafiki"])
    knobs = {k: v for k, v in config.items() if k != "_rafiki"}
    policies = _policy_keys(from_knobs(model_cls.get_knob_config()))
    skip = "SKIP_TRAIN" in policies and bool(knobs.get(policies["SKIP_TRAIN"]))
    if (d["params_type"] is not None or d["to_cache_params"]) and store is None:
        raise invalid("store", f"is needed for params_type={d['params_type']!r} / "
                      f"to_cache_params={d['to_cache_params']!r}", None)
    shared = store.fetch(d["params_type"], trial_id=trial_id) if d["params_type"] else None
    model = model_cls(**knobs)
    try:
        if skip:
            if shared is not None:
                model.load_parameters(shared)
        else:
            model.train(train_data, shared_params=shared)
        score = float(model.evaluate(eval_data)) if d["to_eval"] else math.nan
        published = False
        if d["to_cache_params"]:
            store.publish(model.dump_parameters(), trial_id=trial_id,
                          score=None if math.isnan(score) else score)
            published = True
    finally:
        model.destroy()
    return {"score": score, "phase": d["phase"], "published": published,
            "shared_loaded": shared is not None, "cpu_s": time.process_time() - t0}


def directive_trainable(
    model_cls: type,
    *,
    train_data: Any,
    eval_data: Any,
    store_name: str | None = None,
) -> Callable[[dict[str, Any]], None]:
    """A Tune function trainable running :func:`run_directive` in each trial and reporting
    its metrics (``score`` is the model's ``evaluate``; NaN when ``to_eval`` is false).
    ``store_name`` names the experiment's ParamStore (created on first use, ``mode="max"``)."""

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        from rafiki_ray.sharing import ParamStore

        store = ParamStore.get_or_create(store_name) if store_name else None
        tid = tune.get_context().get_trial_id()
        tune.report(run_directive(model_cls, config, train_data=train_data,
                                  eval_data=eval_data, store=store, trial_id=tid))

    trainable.__name__ = f"{model_cls.__name__}_trial"
    return trainable
