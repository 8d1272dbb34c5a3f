"""Weight sharing is real: the micro supergraph of ``examples/nas`` in a real ParamStore,
trials run by :func:`rafiki_ray.nas.trial.run_directive` as a Tune trial runs them."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

from rafiki_ray.nas.trial import run_directive
from rafiki_ray.spaces import from_knobs
from tests.nas._micro import load_micro, tiny

micro = load_micro()
TRAIN = {"phase": "TRAIN", "params_type": "GLOBAL_RECENT", "to_eval": False,
         "to_cache_params": True}
EVAL = {"phase": "EVAL", "params_type": "GLOBAL_RECENT", "to_eval": True,
        "to_cache_params": False}
# child A: convolutions only (every op has weights); child B shares block 0's first op
ARCH_A = [0, "conv3x3", 1, "conv5x5", 2, "sepconv3x3", 0, "conv3x3", 3, "conv5x5", 1, "conv3x3"]
ARCH_B = [0, "conv3x3", 1, "maxpool", 1, "conv5x5", 2, "identity", 0, "sepconv3x3", 2, "avgpool"]


@pytest.fixture
def data():
    (Xt, yt), (Xv, yv) = micro.load_digits_split()
    return (Xt[:400], yt[:400]), (Xv, yv)


@pytest.fixture
def store(ray_session):
    from rafiki_ray.sharing import ParamStore

    s = ParamStore.create(f"nas-test-{uuid.uuid4().hex[:8]}")
    yield s
    s.shutdown()


def _config(arch, **policies):
    base = from_knobs(micro.MicroDigits.get_knob_config()).sample(np.random.default_rng(0))
    return tiny(dict(base, cell_arch=list(arch), downscale=True, **policies))


def test_eval_trial_scores_what_the_trainer_reported(data, store):
    train, val = data
    cfg = _config(ARCH_A, early_stop=True)
    # the trainer evaluates too (to_eval on) so that there is a score to compare with
    trained = run_directive(micro.MicroDigits, dict(cfg, _rafiki=dict(TRAIN, to_eval=True)),
                            train_data=train, eval_data=val, store=store, trial_id="A")
    assert trained["published"] and not trained["shared_loaded"]
    assert 0.2 < trained["score"] <= 1.0  # 1 epoch on 400 images learns something
    ev = run_directive(micro.MicroDigits, dict(_config(ARCH_A, skip_train=True), _rafiki=EVAL),
                       train_data=train, eval_data=val, store=store, trial_id="E")
    assert ev["shared_loaded"] and not ev["published"]
    assert ev["score"] == trained["score"]
    # without the shared weights (no sharing) the same child scores as an untrained net
    fresh = run_directive(micro.MicroDigits,
                          dict(_config(ARCH_A, skip_train=True),
                               _rafiki=dict(EVAL, params_type=None)),
                          train_data=train, eval_data=val, store=store, trial_id="F")
    assert fresh["score"] < trained["score"]
    # a TRAIN trial under Rafiki's directive reports NaN
    nan = run_directive(micro.MicroDigits, dict(cfg, _rafiki=TRAIN), train_data=train,
                        eval_data=val, store=store, trial_id="A2")
    assert math.isnan(nan["score"]) and nan["published"]


def test_a_different_child_reuses_the_shared_operations(data, store):
    train, val = data
    p0 = micro.MicroDigits(**_config(ARCH_A)).dump_parameters()
    run_directive(micro.MicroDigits, dict(_config(ARCH_A, early_stop=True), _rafiki=TRAIN),
                  train_data=train, eval_data=val, store=store, trial_id="A")
    p1 = store.fetch("GLOBAL_RECENT")
    used_a = micro.Supergraph.used_ops(ARCH_A, 2)
    used_b = micro.Supergraph.used_ops(ARCH_B, 2)

    def changed(a, b, prefixes):
        keys = [k for k in a if any(k.startswith(u) for u in prefixes)]
        assert keys
        return [not np.array_equal(a[k], b[k]) for k in keys]

    assert all(changed(p0, p1, used_a))  # A trained only its own operations ...
    others = {k.split(".")[0] + "." + k.split(".")[1] + "." for k in p0 if k.startswith("ops.")}
    untouched = others - used_a
    assert not any(changed(p0, p1, untouched))  # ... the rest of the supergraph is as it was
    # B loads the supergraph: the operation it shares with A carries A's trained weights
    b = micro.MicroDigits(**_config(ARCH_B, early_stop=True))
    b.load_parameters(p1)
    shared_ops = used_a & used_b
    assert shared_ops == {"ops.c0_b0_s0_conv3x3.", "ops.c1_b0_s0_conv3x3."}
    loaded = b.dump_parameters()
    assert not any(changed(p1, loaded, shared_ops))
    run_directive(micro.MicroDigits, dict(_config(ARCH_B, early_stop=True), _rafiki=TRAIN),
                  train_data=train, eval_data=val, store=store, trial_id="B")
    p2 = store.fetch("GLOBAL_RECENT")
    assert all(changed(p1, p2, shared_ops))  # B trained on from A's weights
    assert not any(changed(p1, p2, used_a - used_b))  # A's other operations are kept


def test_missing_store_is_a_clear_error(data):
    train, val = data
    with pytest.raises(ValueError, match="store"):
        run_directive(micro.MicroDigits, dict(_config(ARCH_A), _rafiki=TRAIN),
                      train_data=train, eval_data=val, store=None)


def test_micro_digits_is_a_rafiki_model_that_passes_check_model(data):
    """The supergraph model is a BaseModel and passes the developer harness end to end."""
    from rafiki_ray.models import BaseModel, check_model

    assert issubclass(micro.MicroDigits, BaseModel)
    train, val = data
    report = check_model(micro.MicroDigits, train, val,
                         knobs={"cell_arch": ARCH_A, "epochs": 1, "n_cells": 1}, seed=0)
    assert not report.problems, report.problems
