"""NNI v1 classic-NAS ``mutable_layer`` specs: flattened as NNI's convert_nas_search_space,
searchable by ENAS, decoded as NNI's trial decodes them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rafiki_ray.nas import ENASSearch
from rafiki_ray.spaces import Categorical, Int, from_nni
from rafiki_ray.spaces.adapters._nni_nas import chosen_inputs, flatten_mutable_layers

SPEC = {
    "lr": {"_type": "choice", "_value": [0.1, 0.01]},
    "mutable_1": {
        "_type": "mutable_layer",
        "_value": {
            "layer_1": {"layer_choice": ["conv(3)", "conv(5)", "pool"],
                        "optional_inputs": ["x", "y"], "optional_input_size": [0, 2]},
            "layer_2": {"layer_choice": ["sep(3)"], "optional_inputs": ["a", "b", "c"],
                        "optional_input_size": 1},
            "layer_3": {"layer_choice": ["id", "max"]},
        },
    },
}
P = "_mutable_layer/mutable_1/"


def test_flattened_as_nni_does():
    flat = flatten_mutable_layers(SPEC)
    assert flat[P + "layer_1/layer_choice"] == {"_type": "choice",
                                                "_value": ["conv(3)", "conv(5)", "pool"]}
    assert flat[P + "layer_1/optional_input_size"] == {"_type": "randint", "_value": [0, 3]}
    assert flat[P + "layer_1/optional_input_chosen_state"] == {"_type": "randint",
                                                               "_value": [0, 4]}
    assert flat[P + "layer_2/optional_input_size"]["_value"] == [1, 2]
    assert flat[P + "layer_2/optional_input_chosen_state"]["_value"] == [0, 3]
    assert flat[P + "layer_3/optional_input_size"]["_value"] == [0, 1]
    assert flat[P + "layer_3/optional_input_chosen_state"]["_value"] == [0, 1]
    space = from_nni(json.dumps(SPEC))
    assert isinstance(space[P + "layer_1/layer_choice"], Categorical)
    assert isinstance(space[P + "layer_1/optional_input_chosen_state"], Int)
    assert len(space) == 1 + 9


def test_enas_searches_it_and_the_trial_decodes_as_nni():
    space = from_nni(SPEC)
    s = ENASSearch(space, metric="acc", mode="max", seed=0, update_every=2)
    for i in range(8):
        c = s.suggest(f"t{i}")
        assert space.contains(c)
        layer, inputs = chosen_inputs(c, "mutable_1", "layer_1", ["y", "x"])
        assert layer in ("conv(3)", "conv(5)", "pool") and len(inputs) <= 2
        assert set(inputs) <= {"x", "y"}
        _, inputs2 = chosen_inputs(c, "mutable_1", "layer_2", ["a", "b", "c"])
        assert len(inputs2) == 1
        s.on_trial_complete(f"t{i}", {"acc": float(layer == "pool")})
    assert s.controller.n_updates == 4


def test_decoding_is_base_n_over_sorted_names():
    c = {P + "l/layer_choice": "op", P + "l/optional_input_size": 3,
         P + "l/optional_input_chosen_state": 1 + 0 * 3 + 2 * 9}
    assert chosen_inputs(c, "mutable_1", "l", ["c", "a", "b"]) == ("op", ["b", "a", "c"])


@pytest.mark.parametrize("layer, match", [
    ({"layer_choice": []}, "layer_choice"),
    ({}, "layer_choice"),
    ({"layer_choice": ["a"], "optional_input_size": [2, 1], "optional_inputs": ["x"]},
     "optional_input_size"),
    ({"layer_choice": ["a"], "optional_input_size": "2"}, "optional_input_size"),
    ({"layer_choice": ["a"], "optional_input_size": 1}, "optional_inputs"),
    ({"layer_choice": ["a"], "fixed_inputs": ["x"]}, "keys other"),
])
def test_bad_layers_name_the_field(layer, match):
    with pytest.raises(ValueError, match=match):
        from_nni({"m": {"_type": "mutable_layer", "_value": {"l": layer}}})


names = st.text(alphabet="abcxyz_", min_size=1, max_size=4)


@st.composite
def layers(draw):
    inputs = draw(st.lists(names, min_size=0, max_size=3, unique=True))
    layer = {"layer_choice": draw(st.lists(names, min_size=1, max_size=4, unique=True))}
    if inputs:
        layer["optional_inputs"] = inputs
        lo = draw(st.integers(0, 2))
        layer["optional_input_size"] = draw(st.sampled_from([lo, [lo, lo + draw(st.integers(0, 2))]]))
    return layer


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(names, layers(), min_size=1, max_size=3), st.integers(0, 2**16))
def test_generated_specs_build_and_round_trip(layer_map, seed):
    space = from_nni({"m": {"_type": "mutable_layer", "_value": layer_map}})
    cfg = space.sample(np.random.default_rng(seed))
    assert space.contains(cfg)
    for name, layer in layer_map.items():
        op, inputs = chosen_inputs(cfg, "m", name, layer.get("optional_inputs", ["_"]))
        assert op in layer["layer_choice"]
        assert set(inputs) <= set(layer.get("optional_inputs", ["_"]))


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c,
                                                                        max_size=3),
                    max_leaves=8))
def test_bad_input_raises_only_value_or_type_errors(value):
    try:
        from_nni({"m": {"_type": "mutable_layer", "_value": value}})
    except (ValueError, TypeError):
        pass
