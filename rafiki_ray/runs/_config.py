"""One RapidFire run config: validation and the torch objects it names.

Sections (RapidFire "Config Knobs and AutoML", seed 002): ``train`` (required: ``epochs``,
``batch_size``, ``optimizer {name, args}``; optional ``lr_scheduler {name, args}``),
``named_metrics`` (``top1_accuracy``, ``top[k]_accuracy``; also accepted inside ``train``, as
the docs' prose places it), ``user_knobs`` (free-form), and the two hint sections
``dev_knob {demo_mode}`` and ``fsdp_layer_cls``, which are validated and ignored here (single-
process training) with a logged warning. Any other top-level key is an error naming it.

``optimizer.name`` is any ``torch.optim.Optimizer`` class, ``lr_scheduler.name`` any
``torch.optim.lr_scheduler`` class (exact name, else a unique case-insensitive match, so the
docs' ``RMSProp`` finds ``RMSprop``). Their ``args`` are checked against the class signature
and by building the object once on a dummy parameter, so a bad value fails at parse time with
the path of the config key.
"""

from __future__ import annotations

import copy
import inspect
import logging
import re
from collections.abc import Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type

__all__ = [
    "RESERVED_SECTIONS",
    "build_lr_scheduler",
    "build_optimizer",
    "metric_names",
    "parse_config",
    "topk_of",
]

logger = logging.getLogger(__name__)

RESERVED_SECTIONS = ("train", "named_metrics", "user_knobs", "dev_knob", "fsdp_layer_cls")
_TRAIN_KEYS = ("epochs", "batch_size", "optimizer", "lr_scheduler", "named_metrics")
_TOPK = re.compile(r"^top([1-9][0-9]*)_accuracy$")
#: Schedulers that take other schedulers or need more than a config can hold.
_UNSUPPORTED_SCHEDULERS = ("SequentialLR", "ChainedScheduler", "LRScheduler", "_LRScheduler")


def topk_of(name: str) -> int | None:
    """``k`` of a ``top[k]_accuracy`` name, else None."""
    m = _TOPK.match(name) if isinstance(name, str) else None
    return int(m.group(1)) if m else None


def _int(x: Any, path: str, minimum: int = 1) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise invalid_type(path, "must be an int", x)
    if x < minimum:
        raise invalid(path, f"must be >= {minimum}", x)
    return x


def _find_class(module: Any, base: type, name: Any, path: str, exclude: tuple = ()) -> type:
    if not isinstance(name, str):
        raise invalid_type(path, "must be a class name (str)", name)

    def ok(n: str) -> bool:
        obj = getattr(module, n, None)
        return (inspect.isclass(obj) and issubclass(obj, base) and obj is not base
                and not n.startswith("_") and n not in exclude)

    if name in exclude:
        raise invalid(path, "is not supported in a config (it needs objects, not values)", name)
    if ok(name):
        return getattr(module, name)
    matches = [n for n in dir(module) if n.lower() == name.lower() and ok(n)]
    if len(matches) == 1:
        return getattr(module, matches[0])
    known = sorted(n for n in dir(module) if ok(n))
    raise invalid(path, f"unknown name; one of {known}", name)


def _check_args(cls: type, args: Any, path: str, skip: int) -> dict[str, Any]:
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise invalid_type(path, "must be a dict of constructor arguments", args)
    params = list(inspect.signature(cls.__init__).parameters.values())[1 + skip:]
    names = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    for key in args:
        if not isinstance(key, str):
            raise invalid_type(path, "argument names must be strings", key)
        if key not in names and not takes_kwargs:
            raise invalid(f"{path}.{key}", f"{cls.__name__} takes no such argument; "
                          f"it takes {sorted(names)}", args[key])
    missing = [p.name for p in params if p.default is p.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in args]
    if missing:
        raise invalid(path, f"{cls.__name__} needs the arguments {missing}", dict(args))
    return dict(args)


def _dummy_optimizer(cls: type, args: dict[str, Any], path: str) -> Any:
    import torch

    p = torch.nn.Parameter(torch.zeros(1))
    try:
        return cls([p], **args)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise invalid(path, f"{cls.__name__} refuses these arguments ({exc})", args) from None


def _check_name_args(spec: Any, path: str, what: str) -> None:
    """``spec`` is a dict with a ``name`` (``what``) and optional ``args``, nothing else."""
    if not isinstance(spec, Mapping):
        raise invalid_type(path, "must be a dict {name, args}", spec)
    extra = set(spec) - {"name", "args"}
    if extra:
        raise invalid(path, "takes only 'name' and 'args'", sorted(map(str, extra)))
    if "name" not in spec:
        raise invalid(path, f"needs 'name' ({what})", dict(spec))


def _section_train(train: Any, path: str) -> dict[str, Any]:
    import torch

    if not isinstance(train, Mapping):
        raise invalid_type(path, "must be a dict", train)
    for key in train:
        if key not in _TRAIN_KEYS:
            raise invalid(f"{path}.{key}", f"unknown train knob; known: {list(_TRAIN_KEYS)}",
                          train[key])
    for key in ("epochs", "batch_size", "optimizer"):
        if key not in train:
            raise invalid(path, f"needs '{key}'", dict(train))
    out = {"epochs": _int(train["epochs"], f"{path}.epochs"),
           "batch_size": _int(train["batch_size"], f"{path}.batch_size")}
    opt = train["optimizer"]
    where = f"{path}.optimizer"
    _check_name_args(opt, where, "a torch.optim class")
    ocls = _find_class(torch.optim, torch.optim.Optimizer, opt["name"], f"{where}.name")
    oargs = _check_args(ocls, opt.get("args"), f"{where}.args", skip=1)
    dummy = _dummy_optimizer(ocls, oargs, f"{where}.args")
    out["optimizer"] = {"name": ocls.__name__, "args": oargs}
    sched = train.get("lr_scheduler")
    if sched is not None:
        where = f"{path}.lr_scheduler"
        _check_name_args(sched, where, "a torch.optim.lr_scheduler class")
        mod = torch.optim.lr_scheduler
        base = getattr(mod, "LRScheduler", None) or mod._LRScheduler
        scls = _try_scheduler_class(mod, base, sched["name"], f"{where}.name")
        sargs = _check_args(scls, sched.get("args"), f"{where}.args", skip=1)
        try:
            scls(dummy, **sargs)
        except (ValueError, TypeError, RuntimeError, KeyError) as exc:
            raise invalid(f"{where}.args", f"{scls.__name__} refuses these arguments ({exc})",
                          sargs) from None
        out["lr_scheduler"] = {"name": scls.__name__, "args": sargs}
    return out


def _try_scheduler_class(mod: Any, base: type, name: Any, path: str) -> type:
    try:
        return _find_class(mod, base, name, path, exclude=_UNSUPPORTED_SCHEDULERS)
    except ValueError:
        # ReduceLROnPlateau does not subclass LRScheduler in every torch version
        if isinstance(name, str) and name.lower() == "reducelronplateau":
            return mod.ReduceLROnPlateau
        raise


def _named_metrics(x: Any, path: str) -> list[str]:
    if isinstance(x, (str, bytes)) or not isinstance(x, (list, tuple)):
        raise invalid_type(path, "must be a list of metric names", x)
    out: list[str] = []
    for i, name in enumerate(x):
        if not isinstance(name, str):
            raise invalid_type(f"{path}[{i}]", "must be a str", name)
        if topk_of(name) is None:
            raise invalid(f"{path}[{i}]", "unknown named metric; use top1_accuracy or "
                          "top[k]_accuracy (k an integer > 1)", name)
        if name in out:
            raise invalid(f"{path}[{i}]", "is listed twice", name)
        out.append(name)
    return out


def parse_config(config: Any, path: str = "config") -> dict[str, Any]:
    """Validate one run config; return a normalised copy (class names canonical).

    ``parse_config(parse_config(c)) == parse_config(c)``. Raises ValueError / TypeError naming
    the offending key's path.
    """
    if not isinstance(config, Mapping):
        raise invalid_type(path, "must be a config dict", config)
    for key in config:
        if key not in RESERVED_SECTIONS:
            raise invalid(f"{path}.{key}" if isinstance(key, str) else path,
                          f"unknown section; sections are {list(RESERVED_SECTIONS)} "
                          "(put your own knobs under 'user_knobs')", key)
    if "train" not in config:
        raise invalid(path, "needs a 'train' section", dict(config))
    out: dict[str, Any] = {"train": _section_train(config["train"], f"{path}.train")}
    in_train = config["train"].get("named_metrics")
    top = config.get("named_metrics")
    if in_train is not None and top is not None:
        raise invalid(f"{path}.train.named_metrics", "named_metrics is given twice (also at "
                      "the top level); keep one", in_train)
    if in_train is not None:
        out["named_metrics"] = _named_metrics(in_train, f"{path}.train.named_metrics")
    elif top is not None:
        out["named_metrics"] = _named_metrics(top, f"{path}.named_metrics")
    else:
        out["named_metrics"] = []
    knobs = config.get("user_knobs", {})
    if not isinstance(knobs, Mapping):
        raise invalid_type(f"{path}.user_knobs", "must be a dict", knobs)
    for key in knobs:
        if not isinstance(key, str):
            raise invalid_type(f"{path}.user_knobs", "knob names must be strings", key)
    out["user_knobs"] = copy.deepcopy(dict(knobs))
    if "dev_knob" in config:
        dev = config["dev_knob"]
        if not isinstance(dev, Mapping) or set(dev) - {"demo_mode"}:
            raise invalid(f"{path}.dev_knob", "must be {'demo_mode': 'imagenet'|'imdb'}", dev)
        if dev.get("demo_mode") not in (None, "imagenet", "imdb"):
            raise invalid(f"{path}.dev_knob.demo_mode", "must be 'imagenet' or 'imdb'",
                          dev.get("demo_mode"))
        logger.warning("%s.dev_knob: demo mode has no effect in rafiki_ray.runs", path)
        out["dev_knob"] = dict(dev)
    if "fsdp_layer_cls" in config:
        logger.warning("%s.fsdp_layer_cls: an FSDP hint; rafiki_ray.runs trains each run in "
                       "one process, so it has no effect", path)
        out["fsdp_layer_cls"] = config["fsdp_layer_cls"]
    return out


def metric_names(config: Mapping[str, Any], custom: tuple[str, ...] = ()) -> list[str]:
    """The metrics a run of ``config`` reports: ``loss``, its named metrics, custom ones."""
    return ["loss", *config.get("named_metrics", []), *custom]


def build_optimizer(params: Any, config: Mapping[str, Any]) -> Any:
    """The ``torch.optim`` optimizer a parsed config names."""
    import torch

    opt = config["train"]["optimizer"]
    return getattr(torch.optim, opt["name"])(params, **opt["args"])


def build_lr_scheduler(optimizer: Any, config: Mapping[str, Any]) -> Any | None:
    """The ``torch.optim.lr_scheduler`` scheduler a parsed config names (or None)."""
    import torch

    sched = config["train"].get("lr_scheduler")
    if sched is None:
        return None
    return getattr(torch.optim.lr_scheduler, sched["name"])(optimizer, **sched["args"])
