"""The shared numeric encoding: dims, encode/decode round trips, active masks, priors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rafiki_ray.spaces import (
    Arch,
    Categorical,
    Conditional,
    Encoder,
    Float,
    Int,
    Normal,
    Option,
    Policy,
    SearchSpace,
    Subset,
    from_nni,
)


def _space() -> SearchSpace:
    return SearchSpace({
        "lr": Float(1e-4, 1e-1, log=True),
        "n": Int(1, 10, q=3),
        "z": Normal(0, 2),
        "c": Categorical(("a", "b", "c"), weights=(0.2, 0.3, 0.5)),
        "fixed": 4,
        "pol": Policy("SKIP_TRAIN"),
        "model": Conditional((
            Option("svm", SearchSpace({"C": Float(0.01, 100, log=True), "k": Categorical(("rbf", "lin"))})),
            Option("tree", SearchSpace({"depth": Int(1, 8)})),
            Option("none", SearchSpace({})),
        )),
        "arch": Arch((("conv", "pool"), (0, 1, 2))),
        "inputs": Subset(("i0", "i1", "i2", "i3"), 2, emit="nni"),
        "sub": {"q": Float(0, 1, q=0.25)},
    })


def test_dims_layout():
    enc = Encoder(_space())
    names = [d.name for d in enc.dims]
    assert names == [
        "lr", "n", "z", "c", "model", "model/0/C", "model/0/k", "model/1/depth",
        "arch[0]", "arch[1]", "inputs[0]", "inputs[1]", "inputs[2]", "inputs[3]", "sub/q",
    ]
    kinds = {d.name: d.kind for d in enc.dims}
    assert kinds["n"] == "int" and kinds["c"] == "cat" and kinds["inputs[0]"] == "real"
    model = names.index("model")
    assert enc.dims[names.index("model/1/depth")].parent == model
    assert enc.dims[names.index("model/1/depth")].parent_option == 1
    assert enc.dims[names.index("c")].prior == (0.2, 0.3, 0.5)
    assert enc.cardinalities().tolist() == [0, 0, 0, 3, 3, 0, 2, 0, 2, 3, 0, 0, 0, 0, 0]
    assert enc.dims[names.index("n")].n == 3


def test_encode_decode_round_trip_for_every_type():
    space = _space()
    enc = Encoder(space)
    for seed in range(40):
        cfg = space.sample(seed)
        x, active = enc.encode(cfg)
        assert np.all(np.isfinite(x)) and active[:4].all()  # unconditional dims are active
        numeric = [i for i, d in enumerate(enc.dims) if d.kind != "cat"]
        assert np.all((x[numeric] >= 0) & (x[numeric] <= 1))
        back = enc.decode(x)
        space.validate(back)
        if cfg["model"]["_name"] == "svm":
            assert back["model"]["C"] == pytest.approx(cfg["model"]["C"], rel=1e-9)
            assert back["model"]["k"] == cfg["model"]["k"]
        else:
            assert back["model"] == cfg["model"]
        for key in ("n", "c", "fixed", "pol", "arch", "inputs", "sub"):
            assert back[key] == cfg[key], key
        assert back["lr"] == pytest.approx(cfg["lr"], rel=1e-9)
        assert back["z"] == pytest.approx(cfg["z"], rel=1e-6)


def test_active_mask_follows_the_conditional():
    enc = Encoder(_space())
    names = [d.name for d in enc.dims]
    cfg = _space().sample(0)
    cfg["model"] = {"_name": "tree", "depth": 3}
    x, active = enc.encode(cfg)
    assert active[names.index("model/1/depth")] and not active[names.index("model/0/C")]
    assert x[names.index("model/0/C")] == 0.5 and x[names.index("model/0/k")] == 0  # neutral
    np.testing.assert_array_equal(enc.active_mask(x), active)
    cfg["model"] = {"_name": "none"}
    x, active = enc.encode(cfg)
    assert not active[names.index("model/1/depth")] and active[names.index("model")]


def test_decode_clips_snaps_and_checks_shape():
    space = SearchSpace({"f": Float(0, 10), "c": Categorical((1, 2, 3)), "s": Subset(("a", "b", "c"), 1)})
    enc = Encoder(space)
    assert enc.decode(np.array([1.7, 5.2, 0.1, 0.9, 0.3])) == {"f": 10.0, "c": 3, "s": ["b"]}
    assert enc.decode(np.array([-0.5, -1.0, 0.1, 0.2, 0.3])) == {"f": 0.0, "c": 1, "s": ["c"]}
    np.testing.assert_allclose(enc.round_trip(np.array([0.25, 1.4, 0.9, 0.1, 0.2])), [0.25, 1.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"x: needs shape \(5,\)"):
        enc.decode(np.zeros(3))


def test_numeric_dims_are_uniform_under_the_prior():
    """Log, normal and log-int priors are folded into the map: encoded draws are U(0, 1)."""
    space = SearchSpace({"lr": Float(1e-5, 1, log=True), "z": Normal(3, 0.5), "ln": Normal(0, 1, log=True)})
    enc = Encoder(space)
    rng = np.random.default_rng(0)
    xs = np.array([enc.sample_vector(rng) for _ in range(2000)])
    for j in range(3):
        assert stats.kstest(xs[:, j], "uniform").pvalue > 1e-3


def test_nni_layer_and_input_choice_encode():
    space = from_nni({
        "conv": {"_type": "layer_choice", "_value": ["c3", "c5"]},
        "skip": {"_type": "input_choice", "_value": {"candidates": ["a", "b", "c"], "n_chosen": 2}},
        "q": {"_type": "qlognormal", "_value": [0, 1, 0.5]},
    })
    enc = Encoder(space)
    cfg = {"conv": {"_value": "c5", "_idx": 1}, "skip": {"_value": ["a", "c"], "_idx": [0, 2]}, "q": 1.5}
    x, active = enc.encode(cfg)
    assert x.tolist()[:4] == [1.0, 1.0, 0.0, 1.0] and active.all()
    assert enc.decode(x) == cfg


def test_encoder_accepts_tune_param_space():
    from ray import tune

    enc = Encoder({"a": tune.uniform(0, 1), "b": tune.choice(["x", "y"])})
    assert [d.kind for d in enc.dims] == ["real", "cat"]
    assert enc.decode(np.array([0.5, 1.0])) == {"a": 0.5, "b": "y"}
