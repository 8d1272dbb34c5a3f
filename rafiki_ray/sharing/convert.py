"""Convert PyTorch and Keras weights to and from a parameter set (a dict of numpy arrays).

A parameter set is what :class:`~rafiki_ray.sharing.ParamStore` stores and what Rafiki's
``BaseModel.dump_parameters`` returned: ``{str: numpy array | int | float | bool | str}``.

Copies: ``torch_to_params`` returns arrays that *share memory* with CPU tensors (the only copy is
the one ``ray.put`` makes into the object store); GPU tensors are copied to the host once.
``params_to_torch`` copies each array straight into the existing parameter or buffer (host to
device for GPU modules), with no intermediate tensor. Keras/TensorFlow variables cannot expose
their memory, so ``keras_to_params`` makes one host copy per variable.

torch and tensorflow are imported lazily; ``import rafiki_ray.sharing`` needs neither.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._lazy import require
from rafiki_ray.sharing._copy import PARALLEL_MIN_BYTES, copy_into
from rafiki_ray.sharing.param_store import check_params

__all__ = ["keras_to_params", "params_to_keras", "params_to_torch", "torch_to_params"]


# ---------------------------------------------------------------------------- PyTorch


def _torch_array(torch: Any, key: str, tensor: Any) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: widen losslessly
        tensor = tensor.float()
    if tensor.is_cuda or tensor.device.type != "cpu":
        tensor = tensor.cpu()
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError) as exc:
        raise invalid_type(f"state_dict[{key!r}]", f"cannot convert to numpy ({exc})",
                           tensor.dtype) from exc


def torch_to_params(module_or_state_dict: Any) -> dict[str, np.ndarray]:
    """A ``torch.nn.Module``'s ``state_dict`` (or a state_dict) as numpy arrays.

    CPU tensors are not copied (the arrays share their memory: publish or copy them before the
    next optimiser step if you need a snapshot). CUDA tensors are copied to the host once.
    ``bfloat16`` becomes ``float32`` (numpy has no bfloat16); loading casts it back.
    """
    torch = require("torch", "torch")
    if isinstance(module_or_state_dict, torch.nn.Module):
        state = module_or_state_dict.state_dict()
    elif isinstance(module_or_state_dict, Mapping):
        state = module_or_state_dict
    else:
        raise invalid_type("module_or_state_dict", "must be a torch.nn.Module or a state_dict",
                           type(module_or_state_dict))
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise invalid_type("state_dict key", "must be a str", key)
        if not isinstance(value, torch.Tensor):
            raise invalid_type(f"state_dict[{key!r}]", "must be a torch.Tensor", type(value))
        out[key] = _torch_array(torch, key, value)
    return out


def _torch_pairs(params: Mapping[str, Any], module: Any, strict: bool
                 ) -> list[tuple[str, Any, np.ndarray]]:
    """Checked ``(key, target tensor, array)`` triples (the rules of :func:`params_to_torch`)."""
    torch = require("torch", "torch")
    if not isinstance(module, torch.nn.Module):
        raise invalid_type("module", "must be a torch.nn.Module", type(module))
    params = check_params(params)
    # keep_vars=True: the Parameter objects themselves, so copy_ writes into the module
    targets = module.state_dict(keep_vars=True)
    if strict:
        missing = [k for k in targets if k not in params]
        if missing:
            raise invalid("params", f"missing state_dict key {missing[0]!r} "
                          f"({len(missing)} missing)", sorted(missing)[:5])
        unexpected = [k for k, v in params.items()
                      if isinstance(v, np.ndarray) and k not in targets]
        if unexpected:
            raise invalid("params", f"unexpected key {unexpected[0]!r} not in the module",
                          sorted(unexpected)[:5])
    pairs = []
    for key, target in targets.items():
        if key not in params:
            continue
        value = params[key]
        if not isinstance(value, np.ndarray):
            raise invalid_type(f"params[{key!r}]", "must be a numpy array for a tensor",
                               type(value))
        if tuple(value.shape) != tuple(target.shape):
            raise invalid(f"params[{key!r}]",
                          f"shape does not match the module's {tuple(target.shape)}",
                          tuple(value.shape))
        pairs.append((key, target, value))
    return pairs


def params_to_torch(params: Mapping[str, Any], module: Any, *, strict: bool = True) -> Any:
    """Copy a parameter set into ``module``'s parameters and buffers in place; returns it.

    Every array is copied straight into the existing tensor (on its device, cast to its
    dtype). With ``strict`` every state_dict key must be present and every array in ``params``
    must name a state_dict entry; plain scalars in ``params`` (Rafiki metadata such as an
    epoch) are ignored. A missing or unexpected key or a shape mismatch raises ``ValueError``
    naming the key; a non-array value for a tensor raises ``TypeError`` naming the key.
    """
    import torch

    pairs = _torch_pairs(params, module, strict)
    with torch.no_grad(), warnings.catch_warnings():
        # arrays from the object store are read-only; we only read them
        warnings.filterwarnings("ignore", message=".*not writable.*")
        for _, target, value in pairs:
            if not value.flags.c_contiguous:  # (ascontiguousarray would turn 0-d into 1-d)
                value = np.ascontiguousarray(value)
            view = _cpu_view(torch, target) if value.nbytes >= PARALLEL_MIN_BYTES else None
            if view is not None:  # large CPU tensor: a threaded copy into its memory
                copy_into(view, value)
            else:
                target.copy_(torch.from_numpy(value))
    return module


def _cpu_view(torch: Any, target: Any) -> np.ndarray | None:
    """A writable numpy view of a contiguous CPU tensor (writing it writes the tensor), or None
    (GPU, non-contiguous, bfloat16, or a dtype numpy lacks)."""
    if target.device.type != "cpu" or not target.is_contiguous() or target.dtype == torch.bfloat16:
        return None
    try:
        return target.detach().numpy()
    except (TypeError, RuntimeError):
        return None


def _torch_views(params: Mapping[str, Any], module: Any, *, strict: bool
                 ) -> tuple[dict[str, np.ndarray], list[tuple[Any, np.ndarray]]]:
    """Writable numpy arrays to write ``params`` into ``module`` (checked as
    :func:`params_to_torch`): views of contiguous CPU tensors (writing them writes the module),
    else host arrays, listed in the second return value with their tensor, to copy afterwards."""
    torch = require("torch", "torch")
    views: dict[str, np.ndarray] = {}
    later: list[tuple[Any, np.ndarray]] = []
    for key, target, value in _torch_pairs(params, module, strict):
        view = _cpu_view(torch, target)
        if view is None:
            view = np.empty(value.shape, value.dtype)
            later.append((target, view))
        views[key] = view
    return views, later


# ---------------------------------------------------------------------------- Keras


def _keras_variables(model: Any) -> dict[str, Any]:
    """The model's weights keyed by variable path relative to the model.

    Keras 3 paths start with the model's own name (``"sequential_1/hidden/kernel"``), which
    differs between two instances of one architecture, so that prefix is dropped.
    """
    if not hasattr(model, "weights"):
        raise invalid_type("model", "must be a Keras model or layer", type(model))
    prefix = f"{getattr(model, 'name', '')}/"
    out: dict[str, Any] = {}
    for variable in model.weights:
        key = str(getattr(variable, "path", None) or variable.name)
        key = key.removeprefix(prefix)
        if key in out:
            raise invalid("model", "two weights have the same path; give layers unique names",
                          key)
        out[key] = variable
    return out


def keras_to_params(model: Any) -> dict[str, np.ndarray]:
    """All weights of a Keras model (trainable and not), keyed by path within the model.

    Keys look like ``"hidden/kernel"`` (layer name / variable name). Auto-generated layer names
    (``dense_1``) differ between instances, so name your layers, or load with
    ``params_to_keras(..., match="order")``.
    """
    return {key: np.asarray(var.numpy()) for key, var in _keras_variables(model).items()}


def params_to_keras(
    params: Mapping[str, Any], model: Any, *, strict: bool = True, match: str = "name"
) -> Any:
    """Assign a parameter set to a Keras model's weights in place; returns the model.

    ``match="name"`` pairs keys with weight paths, with the rules of :func:`params_to_torch`
    (missing, unexpected or mis-shaped keys raise ``ValueError`` naming the key; plain scalars
    are ignored). ``match="order"`` pairs the arrays of ``params`` (in insertion order) with
    ``model.weights`` by position, like Keras' ``set_weights``; counts and shapes must agree.
    """
    if match not in ("name", "order"):
        raise invalid("match", "must be 'name' or 'order'", match)
    variables = _keras_variables(model)
    params = check_params(params)
    if match == "order":
        arrays = [(k, v) for k, v in params.items() if isinstance(v, np.ndarray)]
        if len(arrays) != len(variables):
            raise invalid("params", f"has {len(arrays)} arrays for {len(variables)} weights",
                          [k for k, _ in arrays][:5])
        params = {vk: arr for vk, (_, arr) in zip(variables, arrays)}
    if strict:
        missing = [k for k in variables if k not in params]
        if missing:
            raise invalid("params", f"missing weight {missing[0]!r} ({len(missing)} missing)",
                          sorted(missing)[:5])
        unexpected = [k for k, v in params.items()
                      if isinstance(v, np.ndarray) and k not in variables]
        if unexpected:
            raise invalid("params", f"unexpected key {unexpected[0]!r} not in the model",
                          sorted(unexpected)[:5])
    pairs = []
    for key, variable in variables.items():
        if key not in params:
            continue
        value = params[key]
        if not isinstance(value, np.ndarray):
            raise invalid_type(f"params[{key!r}]", "must be a numpy array for a weight",
                               type(value))
        shape = tuple(int(d) for d in variable.shape)
        if tuple(value.shape) != shape:
            raise invalid(f"params[{key!r}]", f"shape does not match the model's {shape}",
                          tuple(value.shape))
        pairs.append((variable, value))
    for variable, value in pairs:
        variable.assign(value)
    return model
