"""NNI / T9k search spaces -> :class:`SearchSpace`, with NNI's exact sampling semantics.

An NNI search space maps names to ``{"_type": ..., "_value": [...]}`` (NNI docs,
``hpo/search_space.rst``; code ``nni/common/hpo_utils/{validation,formatting}.py``). A T9k
``AutoTuneExperiment`` stores the same format as a JSON *string* in ``spec.searchSpace``, so
:func:`from_nni` accepts a dict or a JSON string.

``_type`` and ``_value`` -> NNI's law -> the rafiki_ray parameter:

* ``choice [v, ...]`` -> one of the values -> ``Categorical(values)``;
* ``choice`` of dicts that all have ``_name`` -> nested sub-spaces, output
  ``{"k": {"_name": n, **sub}}`` -> ``Conditional(label_key="_name")``;
* ``randint [lo, hi]`` -> an integer in ``[lo, hi)`` -> ``Int(lo, hi - 1)``;
* ``uniform [lo, hi]`` -> ``U(lo, hi)`` -> ``Float(lo, hi)``;
* ``quniform [lo, hi, q]`` -> ``clip(round(U/q)*q, lo, hi)`` -> ``Float(lo, hi, q=q)``;
* ``loguniform [lo, hi]`` -> ``exp(U(ln lo, ln hi))`` -> ``Float(lo, hi, log=True)``;
* ``qloguniform [lo, hi, q]`` -> ``clip(round(loguniform/q)*q, lo, hi)`` ->
  ``Float(lo, hi, log=True, q=q)``;
* ``normal [mu, sigma]`` -> ``N(mu, sigma)`` -> ``Normal(mu, sigma)``;
* ``qnormal [mu, sigma, q]`` -> ``round(N/q)*q``, no clip -> ``Normal(mu, sigma, q=q)``;
* ``lognormal [mu, sigma]`` -> ``exp(N(mu, sigma))`` -> ``Normal(mu, sigma, log=True)``;
* ``qlognormal [mu, sigma, q]`` -> ``round(exp(N)/q)*q``, no clip ->
  ``Normal(mu, sigma, log=True, q=q)``;
* ``layer_choice [v, ...]`` (NAS) -> ``{"_value": v, "_idx": i}`` -> ``Categorical(emit="nni")``;
* ``input_choice`` (NAS) -> ``{"_value": [..], "_idx": [..]}`` -> ``Subset(emit="nni")``.

``input_choice``'s ``_value`` is ``{"candidates": [...], "n_chosen": k}`` (NNI v1 classic NAS,
``nas/pytorch/classic_nas/mutator.py``). Rounding is Python's ``round`` (half to even), as in
NNI's ``deformat_parameters``.

Every rule of NNI's validator is a hard error naming the path, e.g.
``searchSpace.lr._value: loguniform needs 0 < low < high, got [0, 0.1]``.

Where NNI's docs, validator and code disagree, we decided:

* **Violations raise.** NNI's ``validate_search_space`` only logs them by default
  (``raise_exception=False``) and then runs anyway; we refuse the spec, nothing half-built.
* **Nested sub-spaces are validated.** NNI's validator ``continue``\\ s past every choice, so a
  bad parameter inside a nested option is never checked; we check it, with its full path
  (``searchSpace.model._value[1].lr._value``).
* **Choice values may be any JSON value.** The validator says numbers or strings only (and
  only logs); the formatting code and the tuners accept anything, and dicts without ``_name``
  are plain categorical values. We follow the code.
* **Mixed nested choice is refused.** The validator calls a choice nested when *its first*
  option is a dict with ``_name``; the formatting code only when *every* option is. Options
  where some but not all are ``_name`` dicts therefore mean different things to the two; we
  raise instead of guessing. Duplicate ``_name`` labels are refused too (NNI's
  ``format_parameters`` silently maps them to the first).
* **randint takes ints.** The validator requires ints; the formatting code would
  ``ceil(float(x))`` floats. We follow the validator (``bool`` is refused as well).
  randint is modelled as an ordered integer (Tune's ``randint``); NNI's TPE and grid search
  treat it as unordered, which is a searcher's choice, not the space's.
* **q must be > 0.** Neither the docs nor the validator say so; ``q = 0`` divides by zero
  in NNI's code.
* **Unknown ``_type`` lists the allowed ones**, with a "did you mean" hint: T9k's own docs
  misspell ``qlognormal`` as ``qlognoraml``, which NNI rejects too.
* **input_choice needs an int n_chosen** in ``[0, len(candidates)]`` and distinct
  candidates; NNI's ``n_chosen=None`` ("any number") has no equivalent here and is refused.
* **Duplicate JSON keys** in a string spec are refused (``json.loads`` keeps the last one
  silently).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces._limits import check_document
from rafiki_ray.spaces._params import (
    Categorical,
    Conditional,
    Float,
    Int,
    Normal,
    Option,
    Param,
    Subset,
)
from rafiki_ray.spaces._space import SearchSpace

__all__ = ["NAS_TYPES", "NNI_TYPES", "from_nni"]

#: The ten HPO ``_type``\ s of NNI, in the order of its docs.
NNI_TYPES = (
    "choice",
    "randint",
    "uniform",
    "quniform",
    "loguniform",
    "qloguniform",
    "normal",
    "qnormal",
    "lognormal",
    "qlognormal",
)
#: NNI v1 classic-NAS types (values come back as ``{"_value", "_idx"}``).
NAS_TYPES = ("layer_choice", "input_choice")
_ALL_TYPES = NNI_TYPES + NAS_TYPES
_NAME = "_name"


def from_nni(spec: Any, path: str = "searchSpace") -> SearchSpace:
    """Convert an NNI / T9k search space (a dict, or a JSON string as T9k stores it).

    ``path`` prefixes every error message (``searchSpace.lr._value: ...``).
    """
    if isinstance(spec, (bytes, bytearray)):
        try:
            spec = bytes(spec).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise invalid(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if isinstance(spec, str):
        spec = _loads(spec, path)
    check_document(spec, path)
    from rafiki_ray.spaces.adapters._nni_nas import flatten_mutable_layers, has_mutable_layers

    if has_mutable_layers(spec):  # NNI v1 classic NAS (annotations)
        spec = flatten_mutable_layers(spec, path)
    try:
        return _space(spec, path, nested=False)
    except (ValueError, TypeError) as exc:  # a limit of the space model (e.g. nesting)
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path}: {exc}") from None


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _loads(text: str, path: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as exc:
        raise invalid(path, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                      _clip(text)) from None
    except ValueError as exc:  # duplicate key
        raise invalid(path, f"is not a valid search space: {exc}", _clip(text)) from None
    except RecursionError:
        raise invalid(
            path, "nests too deeply to parse (rafiki_ray.spaces.MAX_DOCUMENT_DEPTH)"
        ) from None


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond float range, e.g. 10**400
        return False


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _space(spec: Any, path: str, *, nested: bool) -> SearchSpace:
    """A mapping ``name -> {_type, _value}``; in a nested option ``_name`` is the label."""
    if not isinstance(spec, Mapping):
        raise invalid_type(path, "must be a dict of {name: {'_type': ..., '_value': ...}}", spec)
    params: dict[str, Param] = {}
    for name, item in spec.items():
        if not isinstance(name, str):
            raise invalid_type(path, "parameter names must be strings", name)
        if name == _NAME:
            if nested:
                continue
            raise invalid(f"{path}.{name}", "'_name' only labels the options of a nested choice", item)
        params[name] = _param(item, f"{path}.{name}")
    return SearchSpace(params)


def _param(item: Any, path: str) -> Param:
    if not isinstance(item, Mapping):
        raise invalid_type(path, "must be a dict with '_type' and '_value'", item)
    missing = [k for k in ("_type", "_value") if k not in item]
    if missing:
        raise invalid(path, f"is missing {missing}", dict(item))
    extra = sorted(str(k) for k in item if k not in ("_type", "_value"))
    if extra:
        raise invalid(path, f"has keys other than '_type' and '_value': {extra}", dict(item))
    kind, args = item["_type"], item["_value"]
    if kind not in _ALL_TYPES:
        hint = difflib.get_close_matches(str(kind), _ALL_TYPES, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise invalid(f"{path}._type", f"must be one of {list(_ALL_TYPES)}{more}", kind)
    where = f"{path}._value"
    try:
        if kind == "input_choice":
            return _input_choice(args, where)
        if not isinstance(args, list):
            raise invalid_type(where, f"{kind} needs a list", args)
        if kind == "choice":
            return _choice(args, where)
        if kind == "layer_choice":
            if not args:
                raise invalid(where, "layer_choice needs at least one candidate", args)
            return Categorical(tuple(args), emit="nni")
        return _numeric(kind, args, where)
    except (ValueError, TypeError) as exc:  # a rule of the space model (e.g. int64 bounds)
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{where}: {exc}") from None


def _choice(args: list[Any], where: str) -> Param:
    if not args:
        raise invalid(where, "choice needs at least one value", args)
    named = [isinstance(a, Mapping) and _NAME in a for a in args]
    if not any(named):
        return Categorical(tuple(args))
    if not all(named):
        bad = named.index(False)
        raise invalid(
            f"{where}[{bad}]",
            "a nested choice needs every option to be a dict with '_name'",
            args[bad],
        )
    options: list[Option] = []
    seen: list[Any] = []
    for i, opt in enumerate(args):
        label = opt[_NAME]
        if isinstance(label, (dict, list)):
            raise invalid_type(f"{where}[{i}]._name", "must be a string or number", label)
        if any(type(label) is type(s) and label == s for s in seen):
            raise invalid(f"{where}[{i}]._name", "is used by another option of this choice", label)
        seen.append(label)
        options.append(Option(label, _space(opt, f"{where}[{i}]", nested=True)))
    return Conditional(tuple(options), label_key=_NAME)


def _input_choice(args: Any, where: str) -> Param:
    if not isinstance(args, Mapping):
        raise invalid_type(where, "input_choice needs {'candidates': [...], 'n_chosen': k}", args)
    extra = sorted(str(k) for k in args if k not in ("candidates", "n_chosen"))
    if extra or "candidates" not in args:
        raise invalid(where, "input_choice needs {'candidates': [...], 'n_chosen': k}", dict(args))
    cands = args["candidates"]
    if not isinstance(cands, list) or not cands:
        raise invalid(f"{where}.candidates", "must be a non-empty list", cands)
    if len({json.dumps(c, sort_keys=True) for c in cands}) != len(cands):
        raise invalid(f"{where}.candidates", "must be distinct", cands)
    n = args.get("n_chosen")
    if n is None:
        raise invalid(
            f"{where}.n_chosen",
            "must be an int (NNI's n_chosen=None, any number of inputs, is not supported)",
            n,
        )
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(cands):
        raise invalid(f"{where}.n_chosen", f"must be an int in [0, {len(cands)}]", n)
    return Subset(tuple(cands), n, emit="nni")


def _numeric(kind: str, args: list[Any], where: str) -> Param:
    quantized = kind.startswith("q")
    normal = "normal" in kind
    log = "log" in kind
    names = ("mu", "sigma") if normal else ("low", "high")
    names = names + ("q",) if quantized else names
    if len(args) != len(names):
        raise invalid(where, f"{kind} needs {len(names)} values [{', '.join(names)}]", args)
    if kind == "randint":
        if any(isinstance(a, bool) or not isinstance(a, int) for a in args):
            raise invalid_type(where, "randint needs integers [low, high)", args)
    elif any(isinstance(a, bool) or not isinstance(a, (int, float)) for a in args):
        raise invalid_type(where, f"{kind} needs numbers [{', '.join(names)}]", args)
    if not all(_finite(a) for a in args):
        raise invalid(where, f"{kind} needs finite numbers (within float range)", args)
    q = float(args[2]) if quantized else None
    if q is not None and q <= 0:
        raise invalid(where, f"{kind} needs q > 0", args)
    a, b = args[0], args[1]
    if normal:
        if b <= 0:
            raise invalid(where, f"{kind} needs sigma > 0", args)
        return Normal(float(a), float(b), log=log, q=q)
    if log and not 0 < a < b:
        raise invalid(where, f"{kind} needs 0 < low < high", args)
    if not a < b:
        rule = "low < high (high is exclusive)" if kind == "randint" else "low < high"
        raise invalid(where, f"{kind} needs {rule}", args)
    if kind == "randint":
        return Int(a, b - 1)
    return Float(float(a), float(b), log=log, q=q)
