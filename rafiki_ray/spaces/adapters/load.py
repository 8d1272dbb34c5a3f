"""``load_space(path)``: read a search space from a file, recognising its format by content.

File types: JSON (``.json``), YAML (``.yaml``/``.yml``), Python (``.py``); any other suffix is
tried as JSON, then YAML. Formats, in the order they are recognised:

1. a serialized :meth:`SearchSpace.to_dict` (every entry a dict with a known ``"type"``);
2. an NNI search space (every entry ``{"_type": ..., "_value": ...}``) -> :func:`from_nni`;
3. a T9k ``AutoTuneExperiment`` (``spec.searchSpace``, a JSON string) -> :func:`from_nni`;
4. an NNI experiment config: ``searchSpace`` / ``search_space`` (a dict or a JSON string), or
   ``searchSpaceFile`` / ``search_space_file`` / v1 ``searchSpacePath`` (a file relative to
   the config) -> :func:`from_nni`;
5. a Polyaxon v0.x polyaxonfile (``hptuning``), an ``hptuning`` section (``matrix``), or a
   bare matrix (every entry a dict of Polyaxon options) -> ``from_polyaxon`` (its ``.space``);
6. Python files are executed as a module (only load files you trust, as with ``import``):
   a Rafiki model file (a class defined there with ``get_knob_config``) -> :func:`from_knobs`;
   a RapidFire-style file defining ``config`` or ``param_config`` -> ``from_rapidfire``.

Anything else raises a ``ValueError`` that names the file and what was looked for. Errors
inside a recognised spec carry the file name in their path
(``exp.yaml:spec.searchSpace.lr._value: loguniform needs 0 < low < high, got [0, 0.1]``).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rafiki_ray._errors import invalid
from rafiki_ray.spaces._limits import MAX_DOCUMENT_DEPTH, check_document
from rafiki_ray.spaces._space import _PARAM_TYPES, SearchSpace
from rafiki_ray.spaces.adapters.nni import from_nni
from rafiki_ray.spaces.adapters.rafiki import from_knobs

__all__ = ["detect_format", "load_space"]

_JSON_SUFFIXES = (".json",)
_YAML_SUFFIXES = (".yaml", ".yml")
_PY_SUFFIXES = (".py",)
#: Polyaxon v0.x matrix options (used only to recognise a bare matrix).
_POLYAXON_OPTIONS = frozenset(
    [
        "values", "pvalues", "range", "linspace", "logspace", "geomspace", "uniform", "quniform",
        "loguniform", "qloguniform", "normal", "qnormal", "lognormal", "qlognormal",
    ]
)
_NNI_SPACE_KEYS = ("searchSpace", "search_space")
_NNI_FILE_KEYS = ("searchSpaceFile", "search_space_file", "searchSpacePath")
_LOOKED_FOR = (
    "a serialized SearchSpace (every entry {'type': ...}), an NNI search space (every entry "
    "{'_type', '_value'}), a T9k AutoTuneExperiment (spec.searchSpace), an NNI experiment "
    "(searchSpace / search_space / searchSpaceFile), a Polyaxon file (hptuning.matrix, matrix, "
    "or a bare matrix of Polyaxon options)"
)


def load_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Read the search space in ``path`` (JSON, YAML or Python), whatever its format."""
    if isinstance(path, str) and not path.strip():
        raise invalid("path", "must name a file, not an empty string", path)
    file = Path(path)
    try:
        is_file = file.is_file()
    except (OSError, ValueError) as exc:  # e.g. a name too long, a NUL byte
        raise invalid("path", f"is not a usable file name ({exc.__class__.__name__})", str(path)) from None
    if not is_file:
        raise FileNotFoundError(f"{file}: no such file")
    if file.suffix.lower() in _PY_SUFFIXES:
        return _from_python(file)
    data = _read_data(file)
    return _from_data(data, file)


def detect_format(data: Any) -> str | None:
    """The name of the format of parsed JSON/YAML ``data``, or ``None`` when unknown.

    One of ``"space_dict"``, ``"nni"``, ``"t9k"``, ``"nni_experiment"``, ``"polyaxon"``.
    """
    if not isinstance(data, Mapping) or not data:
        return None
    values = list(data.values())
    if all(isinstance(v, Mapping) and v.get("type") in _SPACE_TYPES for v in values):
        return "space_dict"
    if all(isinstance(v, Mapping) and "_type" in v for v in values):
        return "nni"
    spec = data.get("spec")
    if isinstance(spec, Mapping) and "searchSpace" in spec:
        return "t9k"  # kind: AutoTuneExperiment (apiVersion tensorstack.dev/v1beta1)
    if any(k in data for k in _NNI_SPACE_KEYS + _NNI_FILE_KEYS):
        return "nni_experiment"
    if "hptuning" in data or isinstance(data.get("matrix"), Mapping):
        return "polyaxon"
    if all(isinstance(v, Mapping) and len(v) == 1 and set(v) <= _POLYAXON_OPTIONS for v in values):
        return "polyaxon"
    return None


_SPACE_TYPES = frozenset(_PARAM_TYPES) | {"space"}


def _read_data(file: Path) -> Any:
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(
            str(file), f"is not UTF-8 text ({exc.reason} at byte {exc.start}); is it a binary file?"
        ) from None
    suffix = file.suffix.lower()
    if suffix in _JSON_SUFFIXES:
        data = _parse_json(text, file)
    elif suffix in _YAML_SUFFIXES:
        data = _parse_yaml(text, file)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = _parse_yaml(text, file)
        except RecursionError:
            raise _too_deep(file) from None
    check_document(data, str(file))
    return data


def _too_deep(file: Path) -> ValueError:
    return invalid(
        str(file), f"nests deeper than {MAX_DOCUMENT_DEPTH} levels (rafiki_ray.spaces.MAX_DOCUMENT_DEPTH)"
    )


def _parse_json(text: str, file: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise invalid(str(file), f"is not valid JSON ({exc.msg} at {where})") from None
    except RecursionError:
        raise _too_deep(file) from None


def _parse_yaml(text: str, file: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise invalid(str(file), f"is not valid YAML or JSON ({exc})") from None
    except RecursionError:
        raise _too_deep(file) from None


def _from_data(data: Any, file: Path) -> SearchSpace:
    kind = detect_format(data)
    where = str(file)
    if kind == "space_dict":
        return SearchSpace.from_dict(data, path=where)
    if kind == "nni":
        return from_nni(data, path=where)
    if kind == "t9k":
        return from_nni(data["spec"]["searchSpace"], path=f"{where}:spec.searchSpace")
    if kind == "nni_experiment":
        return _nni_experiment(data, file)
    if kind == "polyaxon":
        from rafiki_ray.spaces.adapters.polyaxon import from_polyaxon

        # from_polyaxon names paths from the hptuning section down (it adds ".matrix" itself)
        result = from_polyaxon(data, path=f"{where}:hptuning" if "hptuning" in data else where)
        return getattr(result, "space", result)
    keys = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
    raise invalid(where, f"is in no known search-space format; looked for {_LOOKED_FOR}", keys)


def _nni_experiment(data: Mapping[str, Any], file: Path) -> SearchSpace:
    for key in _NNI_SPACE_KEYS:
        if data.get(key) is not None:
            return from_nni(data[key], path=f"{file}:{key}")
    for key in _NNI_FILE_KEYS:
        if data.get(key) is not None:
            ref = data[key]
            where = f"{file}:{key}"
            if not isinstance(ref, str):
                raise invalid(where, "must be a file path", ref)
            if not ref.strip():
                raise invalid(where, "must name a file, not an empty string", ref)
            if ref.lstrip().startswith(("{", "[")):
                raise invalid(
                    where,
                    "holds inline JSON, not a file path; put the search space itself under "
                    "'searchSpace'",
                    ref,
                )
            try:
                target = (file.parent / ref).resolve()
                found = target.is_file()
            except (OSError, ValueError) as exc:  # a name too long, a NUL byte, ...
                raise invalid(where, f"is not a usable file name ({exc.__class__.__name__})", ref) from None
            if not found:
                raise invalid(where, f"names no file ({target})", ref)
            return from_nni(_read_data(target), path=str(target))
    raise invalid(str(file), f"has none of {list(_NNI_SPACE_KEYS + _NNI_FILE_KEYS)} set")


def _from_python(file: Path) -> SearchSpace:
    module = _exec_module(file)
    where = str(file)
    models = [
        obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and obj.__module__ == module.__name__
        and callable(getattr(obj, "get_knob_config", None))
    ]
    configs = [n for n in ("config", "param_config") if n in vars(module)]
    if models and configs:
        raise invalid(
            where,
            "is ambiguous: it defines both a Rafiki model and a RapidFire config",
            [m.__name__ for m in models] + configs,
        )
    if len(models) > 1:
        names = [m.__name__ for m in models]
        raise invalid(where, "defines several Rafiki models; load one with from_knobs", names)
    if models:
        return from_knobs(models[0].get_knob_config(), path=f"{where}:{models[0].__name__}.get_knob_config()")
    if len(configs) > 1:
        raise invalid(where, "defines both 'config' and 'param_config'; keep one", configs)
    if configs:
        from rafiki_ray.spaces.adapters.rapidfire import from_rapidfire

        result = from_rapidfire(getattr(module, configs[0]), path=f"{where}:{configs[0]}")
        return getattr(result, "space", result)
    raise invalid(
        where,
        "is in no known search-space format; looked for a Rafiki model (a class with "
        "get_knob_config) or a RapidFire config (a module-level 'config' or 'param_config')",
        sorted(n for n in vars(module) if not n.startswith("__")),
    )


def _exec_module(file: Path) -> Any:
    name = f"_rafiki_ray_loaded_{file.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        raise invalid(str(file), "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up while it runs
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module
