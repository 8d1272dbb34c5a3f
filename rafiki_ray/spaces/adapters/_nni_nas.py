"""NNI v1 classic-NAS ``mutable_layer`` blocks (from NNI annotations), flattened as NNI's
``nas_utils.convert_nas_search_space`` does (NNI v1.x, ``nni/nas_utils.py``): each layer
``L`` of block ``M`` becomes three parameters named with the prefix
``_mutable_layer/M/L/``:

* ``layer_choice``: ``choice`` over the layer's candidate operations (required, non-empty);
* ``optional_input_size``: ``randint [lo, hi + 1)`` from ``optional_input_size`` (an int
  ``k`` means ``[k, k]``; absent or 0 means ``[0, 1)``);
* ``optional_input_chosen_state``: ``randint [0, len(optional_inputs) ** hi)`` (``[0, 1)``
  without optional inputs); the trial decodes it in base ``len(optional_inputs)`` over the
  sorted input names, as NNI's ``_get_layer_and_inputs_from_tuner`` does.

So a trial written for NNI's classic NAS reads its configuration unchanged, and every rafiki
searcher (ENAS included) can search it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type

__all__ = ["MUTABLE_LAYER", "PREFIX", "chosen_inputs", "flatten_mutable_layers", "has_mutable_layers"]

MUTABLE_LAYER = "mutable_layer"
PREFIX = "_mutable_layer"
_LAYER_KEYS = ("layer_choice", "optional_inputs", "optional_input_size")


def has_mutable_layers(spec: Any) -> bool:
    return isinstance(spec, Mapping) and any(
        isinstance(v, Mapping) and v.get("_type") == MUTABLE_LAYER for v in spec.values()
    )


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def flatten_mutable_layers(spec: Mapping[str, Any], path: str = "searchSpace") -> dict[str, Any]:
    """``spec`` with every ``mutable_layer`` entry replaced by NNI's flat parameters."""
    out: dict[str, Any] = {}
    for key, item in spec.items():
        if not (isinstance(item, Mapping) and item.get("_type") == MUTABLE_LAYER):
            out[key] = item
            continue
        where = f"{path}.{key}._value"
        layers = item.get("_value")
        if not isinstance(layers, Mapping) or not layers:
            raise invalid_type(where, "mutable_layer needs a dict {layer_name: {layer_choice, "
                               "optional_inputs, optional_input_size}}", layers)
        for name, layer in layers.items():
            lw = f"{where}.{name}"
            if not isinstance(layer, Mapping):
                raise invalid_type(lw, "must be a dict with 'layer_choice'", layer)
            extra = sorted(str(k) for k in layer if k not in _LAYER_KEYS)
            if extra:
                raise invalid(lw, f"has keys other than {list(_LAYER_KEYS)}: {extra}", dict(layer))
            choice = layer.get("layer_choice")
            if not isinstance(choice, list) or not choice:
                raise invalid(f"{lw}.layer_choice", "needs a non-empty list of operations", choice)
            size = layer.get("optional_input_size")
            if not size:  # NNI: absent, 0 or [] mean no optional input
                lo, hi = 0, 0
            elif _int(size):
                lo, hi = size, size
            elif isinstance(size, list) and len(size) == 2 and all(_int(s) for s in size):
                lo, hi = size
            else:
                raise invalid(f"{lw}.optional_input_size", "must be an int or [low, high] ints",
                              size)
            if not 0 <= lo <= hi:
                raise invalid(f"{lw}.optional_input_size", "needs 0 <= low <= high", size)
            inputs = layer.get("optional_inputs")
            if inputs is not None and not isinstance(inputs, list):
                raise invalid_type(f"{lw}.optional_inputs", "must be a list of input names",
                                   inputs)
            states = len(inputs) ** hi if inputs else 1
            if hi > 0 and not inputs:
                raise invalid(f"{lw}.optional_inputs", "needs inputs when optional_input_size > 0",
                              inputs)
            prefix = f"{PREFIX}/{key}/{name}/"
            out[prefix + "layer_choice"] = {"_type": "choice", "_value": list(choice)}
            out[prefix + "optional_input_size"] = {"_type": "randint", "_value": [lo, hi + 1]}
            out[prefix + "optional_input_chosen_state"] = {"_type": "randint",
                                                           "_value": [0, states]}
    return out


def chosen_inputs(config: Mapping[str, Any], block: str, layer: str,
                  optional_inputs: list[str]) -> tuple[Any, list[str]]:
    """Decode a flat configuration as NNI's trial does: ``(chosen_layer, chosen_inputs)``
    (inputs may repeat; names in sorted order, base ``len(optional_inputs)``)."""
    prefix = f"{PREFIX}/{block}/{layer}/"
    size = int(config[prefix + "optional_input_size"])
    state = int(config[prefix + "optional_input_chosen_state"])
    keys = sorted(optional_inputs)
    out = []
    for _ in range(size):
        out.append(keys[state % len(keys)])
        state //= len(keys)
    return config[prefix + "layer_choice"], out
