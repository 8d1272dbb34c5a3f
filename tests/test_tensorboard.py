"""HParams plugin data and scalars for PyTorch, TensorFlow and plain function trials, read back
from the event files with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import os

import pytest
from ray import tune

from rafiki_ray.tensorboard import HParamsCallback, flat_hparams


def _train(config):
    lr, fw = config["opt"]["lr"], config["framework"]
    if fw == "torch":
        import torch

        w = torch.zeros(3, requires_grad=True)
        x, y = torch.ones(8, 3), torch.full((8,), 2.0)
        opt = torch.optim.SGD([w], lr=lr)
        for _ in range(3):
            loss = ((x @ w - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tune.report({"loss": float(loss), "acc": float(1 / (1 + loss))})
    elif fw == "tensorflow":
        import tensorflow as tf

        w = tf.Variable(tf.zeros(3))
        x, y = tf.ones((8, 3)), tf.fill((8,), 2.0)
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((tf.linalg.matvec(x, w) - y) ** 2)
            w.assign_sub(lr * tape.gradient(loss, w))
            tune.report({"loss": float(loss), "acc": float(1 / (1 + loss))})
    else:
        v = 4.0
        for _ in range(3):
            v *= 1 - lr
            tune.report({"loss": v, "acc": 1 / (1 + v)})


def _hparams_of(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    ea = EventAccumulator(run_dir)
    ea.Reload()
    content = ea.PluginTagToContent("hparams")
    out = {}
    for tag, blob in content.items():
        data = plugin_data_pb2.HParamsPluginData.FromString(blob)
        out[tag] = data
    return ea, out


@pytest.mark.slow  # TensorFlow in a Ray worker: ~150 s on the shared 2-core machine
def test_hparams_for_torch_tensorflow_and_plain_trials(ray_session, tmp_path):
    pytest.importorskip("tensorflow")
    storage = str(tmp_path)
    exp = os.path.join(storage, "tb")
    cb = HParamsCallback(exp, metrics=["acc"])
    tune.Tuner(_train,
               param_space={"framework": tune.grid_search(["torch", "tensorflow", "plain"]),
                            "opt": {"lr": 0.1, "name": "sgd"}, "tags": [1, 2]},
               tune_config=tune.TuneConfig(metric="acc", mode="max"),
               run_config=tune.RunConfig(storage_path=storage, name="tb", callbacks=[cb],
                                         verbose=0)).fit()
    runs = sorted(os.listdir(os.path.join(exp, "tensorboard")))
    assert len(runs) == 3
    seen = set()
    for run in runs:
        ea, hp = _hparams_of(os.path.join(exp, "tensorboard", run))
        assert set(hp) == {"_hparams_/session_start_info", "_hparams_/experiment",
                           "_hparams_/session_end_info"}
        start = hp["_hparams_/session_start_info"].session_start_info.hparams
        seen.add(start["framework"].string_value)
        assert start["opt/lr"].number_value == pytest.approx(0.1)
        assert start["opt/name"].string_value == "sgd"
        assert start["tags"].string_value == "[1, 2]"
        exp_info = hp["_hparams_/experiment"].experiment
        assert [m.name.tag for m in exp_info.metric_infos][:2] == ["acc", "loss"]
        assert {h.name for h in exp_info.hparam_infos} == {"framework", "opt/lr", "opt/name",
                                                          "tags"}
        assert hp["_hparams_/session_end_info"].session_end_info.status == 1  # success
        scalars = ea.Tags()["scalars"]
        assert {"acc", "loss"} <= set(scalars)
        steps = [e.step for e in ea.Scalars("loss")]
        assert steps == [1, 2, 3]
    assert seen == {"torch", "tensorflow", "plain"}


def test_flat_hparams():
    import numpy as np

    assert flat_hparams({"a": {"b": 1, "c": [1]}, "__x": 1, "d": np.float32(0.5), "e": None}) == {
        "a/b": 1, "a/c": "[1]", "d": 0.5, "e": "null"}
    with pytest.raises(TypeError, match="HParamsCallback.experiment_dir"):
        HParamsCallback(3)
