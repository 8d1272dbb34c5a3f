"""Config groups: the seed's mixed list (1 + 2x2 + 6 = 11 runs) and SuccessiveHalving's rules."""

from __future__ import annotations

import pytest

from rafiki_ray.runs import GridSearch, List, RandomSearch, Range, SuccessiveHalving, plan, runs_of


class ViTLayer:  # stands for transformers' ViTLayer in the seed's example
    pass


def _cfg(model_type, batch_size, lr, wd, epochs=1):
    return {"user_knobs": {"model_type": model_type},
            "train": {"epochs": epochs, "batch_size": batch_size,
                      "optimizer": {"name": "Adam", "args": {"lr": lr, "weight_decay": wd}}},
            "named_metrics": ["top1_accuracy", "top5_accuracy"]}


def seed_mixed_list():
    return [
        {**_cfg("vit", 256, 1e-4, 1e-6), "fsdp_layer_cls": {ViTLayer}},
        GridSearch({**_cfg("vit", 128, List([1e-4, 1e-5]), List([1e-6, 1e-5])),
                    "fsdp_layer_cls": {ViTLayer}}),
        RandomSearch(_cfg("resnet", List([64, 128, 256]), Range(1e-4, 9e-4, dtype="float"),
                          Range(1e-4, 1e-5, dtype="float")), num_runs=6),
    ]


def test_seed_mixed_list_launches_eleven_runs():
    p = plan(seed_mixed_list())
    assert len(p.runs) == 11 and p.sha is None
    assert [s.split(":")[1] for s in p.sources] == ["dict"] + ["GridSearch"] * 4 + [
        "RandomSearch"] * 6
    parsed = runs_of(seed_mixed_list())
    grid = {(r["train"]["optimizer"]["args"]["lr"], r["train"]["optimizer"]["args"][
        "weight_decay"]) for r in parsed[1:5]}
    assert grid == {(1e-4, 1e-6), (1e-4, 1e-5), (1e-5, 1e-6), (1e-5, 1e-5)}
    for r in parsed[5:]:
        assert r["train"]["batch_size"] in (64, 128, 256)
        assert 1e-4 <= r["train"]["optimizer"]["args"]["lr"] <= 9e-4
        assert 1e-5 <= r["train"]["optimizer"]["args"]["weight_decay"] <= 1e-4
    assert len({str(r) for r in parsed[5:]}) == 6


def test_random_search_is_seeded():
    a = runs_of(RandomSearch(_cfg("x", 8, Range(1e-4, 1e-2), 0.0), num_runs=3, seed=1))
    b = runs_of(RandomSearch(_cfg("x", 8, Range(1e-4, 1e-2), 0.0), num_runs=3, seed=1))
    c = runs_of(RandomSearch(_cfg("x", 8, Range(1e-4, 1e-2), 0.0), num_runs=3, seed=2))
    assert a == b and a != c


def test_successive_halving_group():
    sha = SuccessiveHalving(_cfg("x", 8, Range(1e-5, 9e-5, dtype="float"),
                                 Range(1e-4, 1e-3, dtype="float"), epochs=10),
                            num_runs=8, min_epochs=1, max_epochs=8, reduction_factor=2,
                            metric="top5_accuracy", direction="max")
    p = plan(sha)
    assert len(p.runs) == 8 and p.sha is sha
    assert all(r["train"]["epochs"] == 8 for r in p.runs)  # max_epochs overrides epochs
    sched = sha.scheduler(num_chunks=3)
    assert sched.milestones == [3, 6, 12, 24] and sched.rung_sizes() == [8, 4, 2, 1]
    s1 = SuccessiveHalving(_cfg("x", 8, Range(0.1, 0.2), 0.0), 9, 1, 9, 3, "loss", "min",
                           min_early_stopping_rate=1)
    assert s1.scheduler(num_chunks=1).milestones == [3, 9]


@pytest.mark.parametrize("kwargs,match", [
    ({"cfg": _cfg("x", List([8, 16]), Range(0.1, 0.2), 0.0)}, (
        r"cfg\.train\.batch_size: SuccessiveHalving takes no List")),
    ({"cfg": _cfg("x", 8, 0.1, 0.0)}, "needs a Range"),
    ({"direction": "up"}, "direction: must be 'min' or 'max'"),
    ({"reduction_factor": 1}, "reduction_factor: must be >= 2"),
    ({"num_runs": 0}, "num_runs: must be >= 1"),
    ({"min_epochs": 4, "max_epochs": 3}, "max_epochs: must be >="),
    ({"min_early_stopping_rate": 3, "max_epochs": 4}, "max_epochs: must be >="),
    ({"metric": None}, "metric: must be a metric name"),
])
def test_successive_halving_rules(kwargs, match):
    args = {"cfg": _cfg("x", 8, Range(0.1, 0.2), 0.0), "num_runs": 4, "min_epochs": 1,
            "max_epochs": 4, "reduction_factor": 2, "metric": "loss", "direction": "min"}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        SuccessiveHalving(**args)


def test_list_errors():
    sha = SuccessiveHalving(_cfg("x", 8, Range(0.1, 0.2), 0.0), 2, 1, 2, 2, "loss", "min")
    with pytest.raises(ValueError, match=r"config\[1\]: SuccessiveHalving schedules its own"):
        plan([_cfg("x", 8, 0.1, 0.0), sha])
    with pytest.raises(ValueError, match=r"config\[0\]: holds List/Range"):
        plan([_cfg("x", List([8, 16]), 0.1, 0.0)])
    with pytest.raises(ValueError, match=r"config\[1\]\.train\.optimizer\.args\.momentum"):
        runs_of([_cfg("x", 8, 0.1, 0.0), {**_cfg("x", 8, 0.1, 0.0), "train": {
            "epochs": 1, "batch_size": 8,
            "optimizer": {"name": "Adam", "args": {"momentum": 0.9}}}}])
