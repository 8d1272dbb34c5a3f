"""Converters between PyTorch / Keras weights and parameter sets, and through the ParamStore."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rafiki_ray.sharing import (
    ParamStore,
    keras_to_params,
    params_to_keras,
    params_to_torch,
    torch_to_params,
)


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return torch.tensor(x[:256] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8), torch.tensor(
        y[:256]
    )


def _cnn(seed: int) -> torch.nn.Module:
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # module init only; restored below so the global RNG is untouched
    try:
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.BatchNorm2d(4),  # buffers: running stats and an int64 counter
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * 8 * 8, 10),
        )
    finally:
        torch.random.set_rng_state(gen_state)


def _train(model: torch.nn.Module, steps: int = 5) -> None:
    x, y = _digits()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def _predict(model: torch.nn.Module) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(_digits()[0]).numpy()


def test_torch_round_trip_after_training():
    trained, fresh = _cnn(0), _cnn(1)
    _train(trained)
    params = torch_to_params(trained)
    assert all(isinstance(v, np.ndarray) for v in params.values())
    assert params["1.num_batches_tracked"].dtype == np.int64
    assert not np.allclose(_predict(trained), _predict(fresh))
    before = {k: id(v) for k, v in fresh.state_dict(keep_vars=True).items()}
    params_to_torch(params, fresh)
    np.testing.assert_array_equal(_predict(trained), _predict(fresh))
    # loaded in place: the same Parameter objects (an optimiser built on them stays valid)
    assert {k: id(v) for k, v in fresh.state_dict(keep_vars=True).items()} == before
    assert int(fresh[1].num_batches_tracked) == 5


def test_cpu_tensors_are_not_copied():
    model = _cnn(0)
    params = torch_to_params(model)
    assert np.shares_memory(params["0.weight"], model[0].weight.detach().numpy())
    state = torch_to_params(model.state_dict())
    assert state.keys() == params.keys()


def test_bfloat16_widens_and_loads_back():
    model = _cnn(0).to(torch.bfloat16)
    params = torch_to_params(model)
    assert params["0.weight"].dtype == np.float32
    other = _cnn(1).to(torch.bfloat16)
    params_to_torch(params, other)
    assert torch.equal(other[0].weight, model[0].weight)


def _bad(params, key, value):
    out = dict(params)
    if value is None:
        del out[key]
    else:
        out[key] = value
    return out


@pytest.mark.parametrize(
    "edit, exc, match",
    [
        (lambda p: _bad(p, "4.weight", np.zeros((10, 3))), ValueError,
         r"params\['4.weight'\]: shape does not match the module's \(10, 256\), got \(10, 3\)"),
        (lambda p: _bad(p, "4.bias", None), ValueError, r"missing state_dict key '4.bias'"),
        (lambda p: _bad(p, "head.weight", np.zeros(2)), ValueError, r"unexpected key 'head"),
        (lambda p: _bad(p, "4.bias", [0.0] * 10), TypeError, r"params\['4.bias'\]"),
        (lambda p: _bad(p, "4.bias", 0.5), TypeError,
         r"params\['4.bias'\]: must be a numpy array for a tensor"),
    ],
)
def test_params_to_torch_errors_name_the_key(edit, exc, match):
    model = _cnn(0)
    before = torch_to_params(_cnn(0))
    with pytest.raises(exc, match=match):
        params_to_torch(edit(torch_to_params(_cnn(1))), model)
    # nothing was half-loaded
    for key, value in torch_to_params(model).items():
        np.testing.assert_array_equal(value, before[key])


def test_non_strict_loads_what_matches_and_scalars_are_metadata():
    src, dst = _cnn(0), _cnn(1)
    params = {k: v for k, v in torch_to_params(src).items() if k.startswith("4.")}
    params["epoch"] = 3
    params_to_torch(params, dst, strict=False)
    assert torch.equal(dst[4].weight, src[4].weight)
    assert not torch.equal(dst[0].weight, src[0].weight)


def test_torch_to_params_rejects_non_tensors():
    with pytest.raises(TypeError, match=r"state_dict\['w'\]: must be a torch.Tensor"):
        torch_to_params({"w": np.ones(2)})
    with pytest.raises(TypeError, match="module_or_state_dict"):
        torch_to_params([1, 2])


def test_torch_weights_through_the_store(ray_session):
    store = ParamStore.create(f"conv-{uuid.uuid4().hex[:8]}")
    try:
        trained = _cnn(0)
        _train(trained)
        store.publish(torch_to_params(trained), trial_id="src", score=1.0, step=5)
        expected = _predict(trained)
        _train(trained, steps=1)  # the store holds a snapshot, not the live tensors
        snapshot = store.fetch("GLOBAL_BEST")  # read-only arrays in the object store
        assert not np.array_equal(snapshot["4.weight"], trained[4].weight.detach().numpy())
        model = params_to_torch(snapshot, _cnn(1))
        assert int(model[1].num_batches_tracked) == 5
        np.testing.assert_array_equal(_predict(model), expected)
    finally:
        store.shutdown()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_cuda_round_trip():
    src, dst = _cnn(0).cuda(), _cnn(1).cuda()
    params = torch_to_params(src)
    assert isinstance(params["0.weight"], np.ndarray)
    params_to_torch(params, dst)
    assert dst[0].weight.is_cuda
    assert torch.equal(dst[0].weight, src[0].weight)


# ---------------------------------------------------------------------------- Keras


def _keras_model(keras, seed: int):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(10, name="out"),
            keras.layers.Dense(10),  # auto-named: dense vs dense_1 in another instance
        ]
    )


def test_keras_round_trip_and_errors():
    keras = pytest.importorskip("keras")
    from sklearn.datasets import load_digits

    x = (load_digits().data[:64] / 16.0).astype("float32")
    src, dst = _keras_model(keras, 0), _keras_model(keras, 1)
    src.get_layer("bn").moving_mean.assign(np.full(16, 0.25, dtype="float32"))  # non-trainable

    def out(model):
        return np.asarray(model(x, training=False))

    params = keras_to_params(src)
    assert {"hidden/kernel", "bn/moving_mean", "out/bias"} <= set(params)
    assert not np.allclose(out(src), out(dst))
    with pytest.raises(ValueError, match="missing weight 'dense"):
        params_to_keras(params, dst)  # auto-generated layer names differ between instances
    params_to_keras(params, dst, match="order")
    np.testing.assert_array_equal(out(dst), out(src))
    named = {k: v for k, v in params.items() if not k.startswith("dense")}
    again = _keras_model(keras, 3)
    params_to_keras(named, again, strict=False)
    np.testing.assert_array_equal(again.get_layer("out").kernel.numpy(), params["out/kernel"])
    np.testing.assert_array_equal(again.get_layer("bn").moving_mean.numpy(), 0.25)

    bad = dict(params, **{"out/kernel": np.zeros((16, 3), dtype="float32")})
    with pytest.raises(ValueError, match=r"params\['out/kernel'\]: shape does not match"):
        params_to_keras(bad, dst, match="order")
    with pytest.raises(ValueError, match="missing weight 'out/bias'"):
        params_to_keras({k: v for k, v in params.items() if k != "out/bias"}, dst)
    with pytest.raises(TypeError, match=r"params\['out/bias'\]"):
        params_to_keras(dict(params, **{"out/bias": [0.0] * 10}), dst)
    with pytest.raises(ValueError, match="has 8 arrays for 10 weights"):
        params_to_keras(named, dst, match="order")
