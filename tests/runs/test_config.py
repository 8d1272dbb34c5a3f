"""The run-config parser: sections, torch optimizers/schedulers by name, errors naming paths."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rafiki_ray.runs import parse_config
from rafiki_ray.runs._config import build_lr_scheduler, build_optimizer


def cfg(**train):
    base = {"epochs": 2, "batch_size": 16, "optimizer": {"name": "Adam", "args": {"lr": 1e-3}}}
    base.update(train)
    return {"train": base}


def test_seed_example_names_the_bad_optimizer_argument():
    # the seed's first example gives Adam a 'momentum' it does not take
    seed_cfg = {"user_knobs": {"model_type": "vit"},
                "train": {"epochs": 10, "batch_size": 64,
                          "optimizer": {"name": "Adam", "args": {"lr": 1e-4, "momentum": 0.9,
                                                                 "weight_decay": 1e-5}},
                          "lr_scheduler": {"name": "StepLR", "args": {"step_size": 1000}}},
                "named_metrics": ["top1_accuracy", "top5_accuracy"]}
    with pytest.raises(ValueError, match=r"config\.train\.optimizer\.args\.momentum: Adam takes"):
        parse_config(seed_cfg)
    del seed_cfg["train"]["optimizer"]["args"]["momentum"]
    out = parse_config(seed_cfg)
    assert out["named_metrics"] == ["top1_accuracy", "top5_accuracy"]
    assert out["train"]["lr_scheduler"] == {"name": "StepLR", "args": {"step_size": 1000}}
    assert out["user_knobs"] == {"model_type": "vit"}


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop",
                                  "Adamax", "NAdam", "RAdam", "ASGD", "Rprop"])
def test_any_torch_optimizer_by_name(name):
    out = parse_config(cfg(optimizer={"name": name, "args": {"lr": 0.01}}))
    opt = build_optimizer(torch.nn.Linear(2, 1).parameters(), out)
    assert type(opt).__name__ == name and opt.param_groups[0]["lr"] == 0.01


def test_docs_spelling_rmsprop_finds_the_torch_class():
    assert parse_config(cfg(optimizer={"name": "RMSProp", "args": {"lr": 0.1}}))[
        "train"]["optimizer"]["name"] == "RMSprop"


@pytest.mark.parametrize("name,args", [("StepLR", {"step_size": 3}),
                                       ("MultiStepLR", {"milestones": [2, 4]}),
                                       ("ExponentialLR", {"gamma": 0.9}),
                                       ("LinearLR", {"total_iters": 4}),
                                       ("CosineAnnealingLR", {"T_max": 10}),
                                       ("ReduceLROnPlateau", {"patience": 2})])
def test_any_lr_scheduler_by_name(name, args):
    out = parse_config(cfg(lr_scheduler={"name": name, "args": args}))
    opt = build_optimizer(torch.nn.Linear(2, 1).parameters(), out)
    assert type(build_lr_scheduler(opt, out)).__name__ == name


@pytest.mark.parametrize("config,path", [
    ({"train": {"epochs": 1, "batch_size": 1}}, "config.train: needs 'optimizer'"),
    ({"trian": {}}, "config.trian: unknown section"),
    ({**cfg(), "model": 1}, "config.model: unknown section"),
    (cfg(epoch=3), "config.train.epoch: unknown train knob"),
    (cfg(epochs=0), "config.train.epochs: must be >= 1"),
    (cfg(batch_size=2.5), "config.train.batch_size: must be an int"),
    (cfg(optimizer={"name": "Adamm"}), "config.train.optimizer.name: unknown name"),
    (cfg(optimizer={"name": "SGD", "args": {"nesterov": True}}),
     r"config.train.optimizer.args: SGD refuses these arguments \(Nesterov"),
    (cfg(optimizer={"name": "Adam", "args": {"lr": -1.0}}),
     "config.train.optimizer.args: Adam refuses these arguments"),
    (cfg(optimizer={"name": "Adam", "lr": 1}), "config.train.optimizer: takes only"),
    (cfg(lr_scheduler={"name": "StepLR"}), r"config.train.lr_scheduler.args: StepLR needs"),
    (cfg(lr_scheduler={"name": "Nope", "args": {}}),
     "config.train.lr_scheduler.name: unknown name"),
    (cfg(lr_scheduler={"name": "SequentialLR", "args": {}}),
     "config.train.lr_scheduler.name: is not supported"),
    (cfg(lr_scheduler={"name": "StepLR", "args": {"step_size": 2, "gama": 1}}),
     "config.train.lr_scheduler.args.gama: StepLR takes no such argument"),
    ({**cfg(), "named_metrics": ["top0_accuracy"]}, r"config.named_metrics\[0\]: unknown"),
    ({**cfg(), "named_metrics": "top1_accuracy"}, "config.named_metrics: must be a list"),
    ({**cfg(), "named_metrics": ["top1_accuracy", "top1_accuracy"]}, "listed twice"),
    ({**cfg(), "user_knobs": [1]}, "config.user_knobs: must be a dict"),
    ({**cfg(), "dev_knob": {"demo_mode": "x"}}, "config.dev_knob.demo_mode"),
])
def test_errors_name_the_path(config, path):
    with pytest.raises((ValueError, TypeError), match=path):
        parse_config(config)


def test_named_metrics_inside_train_are_accepted_once():
    c = cfg(named_metrics=["top3_accuracy"])
    assert parse_config(c)["named_metrics"] == ["top3_accuracy"]
    with pytest.raises(ValueError, match="given twice"):
        parse_config({**c, "named_metrics": ["top1_accuracy"]})


def test_hints_are_kept_and_ignored():
    class ViTLayer:  # stands for transformers' class in the seed's example
        pass

    out = parse_config({**cfg(), "fsdp_layer_cls": {ViTLayer}, "dev_knob": {"demo_mode": "imdb"}})
    assert out["fsdp_layer_cls"] == {ViTLayer} and out["dev_knob"] == {"demo_mode": "imdb"}


# ---- properties --------------------------------------------------------------------------
OPTIMIZERS = {"SGD": {"lr": st.floats(1e-5, 1.0), "momentum": st.floats(0, 0.99)},
              "Adam": {"lr": st.floats(1e-5, 1.0), "weight_decay": st.floats(0, 0.1)},
              "AdamW": {"lr": st.floats(1e-5, 1.0)},
              "Adagrad": {"lr": st.floats(1e-5, 1.0)},
              "RMSprop": {"lr": st.floats(1e-5, 1.0), "alpha": st.floats(0.5, 0.99)}}
SCHEDULERS = {"StepLR": {"step_size": st.integers(1, 100), "gamma": st.floats(0.1, 1.0)},
              "ExponentialLR": {"gamma": st.floats(0.5, 1.0)},
              "CosineAnnealingLR": {"T_max": st.integers(1, 100)}}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5)
                    | st.floats(allow_nan=False),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c,
                                                                        max_size=3),
                    max_leaves=8)


@st.composite
def valid_configs(draw):
    oname = draw(st.sampled_from(sorted(OPTIMIZERS)))
    oargs = draw(st.fixed_dictionaries({"lr": OPTIMIZERS[oname]["lr"]},
                                       optional={k: v for k, v in OPTIMIZERS[oname].items()
                                                 if k != "lr"}))
    train = {"epochs": draw(st.integers(1, 50)), "batch_size": draw(st.integers(1, 512)),
             "optimizer": {"name": oname, "args": oargs}}
    if draw(st.booleans()):
        sname = draw(st.sampled_from(sorted(SCHEDULERS)))
        args = SCHEDULERS[sname]
        req = {k: v for k, v in args.items() if k != "gamma" or sname == "ExponentialLR"}
        opt = {k: v for k, v in args.items() if k not in req}
        train["lr_scheduler"] = {"name": sname,
                                 "args": draw(st.fixed_dictionaries(req, optional=opt))}
    config = {"train": train}
    ks = draw(st.lists(st.integers(1, 10), unique=True, max_size=3))
    if ks:
        config["named_metrics"] = [f"top{k}_accuracy" for k in ks]
    if draw(st.booleans()):
        config["user_knobs"] = draw(st.dictionaries(st.text(min_size=1, max_size=5), JSON,
                                                    max_size=3))
    return config


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs())
def test_valid_configs_parse_and_round_trip(config):
    original = copy.deepcopy(config)
    out = parse_config(config)
    assert config == original  # input untouched
    assert parse_config(out) == out
    assert out["train"]["optimizer"] == config["train"]["optimizer"]
    assert out["named_metrics"] == config.get("named_metrics", [])


@st.composite
def broken_configs(draw):
    config = draw(valid_configs())
    where = draw(st.sampled_from(["top", "train", "optimizer", "args", "sched", "metrics"]))
    junk = draw(JSON)
    key = draw(st.text(max_size=6))
    if where == "top":
        config[key or "x"] = junk
        if key in ("user_knobs",):
            config["train"]["epochs"] = -1
    elif where == "train":
        config["train"][draw(st.sampled_from(["epochs", "batch_size", "optimizer"]))] = junk
    elif where == "optimizer":
        config["train"]["optimizer"]["name"] = junk
    elif where == "args":
        config["train"]["optimizer"]["args"]["lr"] = draw(
            st.one_of(st.floats(max_value=-1e-9), st.text(max_size=3), st.none(), st.lists(JSON)))
    elif where == "sched":
        config["train"]["lr_scheduler"] = junk if junk is not None else 1
    else:
        config["named_metrics"] = junk if junk != [] else [1]
    return config


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_configs())
def test_bad_configs_raise_only_value_or_type_errors(config):
    try:
        parse_config(config)
    except (ValueError, TypeError) as exc:
        assert ": " in str(exc)  # "{path}: {rule}..."
        assert str(exc).startswith("config")
