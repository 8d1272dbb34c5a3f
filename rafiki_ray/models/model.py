"""Rafiki's model contract (Wang et al., "Rafiki: Machine Learning as an Analytics Service
System", VLDB 2018; ``rafiki/model/model.py``) and the parameter files of trained trials.

A model class declares its knobs once (:meth:`BaseModel.get_knob_config`), is built with one
value per knob (policy knobs arrive as booleans), trains on a dataset (a path in Rafiki's
formats or an in-memory ``(X, y)``, see :mod:`rafiki_ray.models.datasets`), evaluates to a
float (higher is better), predicts JSON-serialisable answers and dumps its parameters as a
flat dict of strings, numbers and numpy arrays.
"""

from __future__ import annotations

import abc
import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type

__all__ = [
    "BaseModel",
    "check_parameters",
    "load_model_class",
    "load_parameters",
    "model_class_path",
    "save_parameters",
]


#: the instance attribute through which a tune_model trial receives ``checkpoint`` calls
_CHECKPOINT_HOOK = "_rafiki_checkpoint_hook"


class BaseModel(abc.ABC):
    """Base of every Rafiki model (the original's contract, method for method).

    Subclasses implement :meth:`get_knob_config` (static), ``__init__(**knobs)``,
    :meth:`train`, :meth:`evaluate`, :meth:`predict`, :meth:`dump_parameters` and
    :meth:`load_parameters`; :meth:`destroy` and :meth:`teardown` are optional.

    Policies (``PolicyKnob``) are booleans the advisor sets per trial: ``SHARE_PARAMS`` (start
    from ``shared_params`` in :meth:`train`), ``EARLY_STOP`` (a short training),
    ``SKIP_TRAIN`` (keep the loaded / shared parameters, do not train), ``QUICK_EVAL``
    (evaluate on a subset) and ``DOWNSCALE`` (a smaller model).
    """

    def __init__(self, **knobs: Any) -> None:
        self.knobs = dict(knobs)

    @staticmethod
    @abc.abstractmethod
    def get_knob_config() -> dict[str, Any]:
        """``{name: knob}`` (``FixedKnob``, ``CategoricalKnob``, ``IntegerKnob``, ...)."""

    @abc.abstractmethod
    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        """Train on ``dataset``; ``shared_params`` is another trial's dumped parameters (or
        ``None``) when the advisor shares parameters."""

    @abc.abstractmethod
    def evaluate(self, dataset: Any) -> float:
        """A score on ``dataset``, higher is better."""

    @abc.abstractmethod
    def predict(self, queries: list[Any]) -> list[Any]:
        """One JSON-serialisable answer per query (class probabilities for classifiers)."""

    @abc.abstractmethod
    def dump_parameters(self) -> dict[str, Any]:
        """``{str: str | int | float | numpy.ndarray}``."""

    @abc.abstractmethod
    def load_parameters(self, params: dict[str, Any]) -> None:
        """Restore what :meth:`dump_parameters` returned."""

    def destroy(self) -> None:
        """Free this instance's resources (called once a trial is done)."""

    def checkpoint(self, **metrics: Any) -> None:
        """Make the training so far count; call it from :meth:`train` between epochs.

        Inside a ``tune_model`` trial, the model is evaluated on the validation data (when
        the trial evaluates at all), its parameters are dumped, and both are reported to Tune
        with ``metrics`` (e.g. ``epoch=3``) and ``partial=True``. A trial that the time
        budget stops before it finishes (after the grace period) keeps its last checkpoint:
        its score and parameters appear in the result table and can be deployed. Tune
        schedulers see each checkpoint as one training iteration. Outside a trial (local
        use, :func:`~rafiki_ray.models.check_model`) it does nothing.
        """
        hook = self.__dict__.get(_CHECKPOINT_HOOK)
        if hook is not None:
            hook(self, metrics)

    @staticmethod
    def teardown() -> None:
        """Free class-wide resources (called once a worker is done)."""


def check_parameters(params: Any, path: str = "dump_parameters()") -> dict[str, Any]:
    """Validate a dumped parameter set: a dict of ``str`` keys to ``str``, ``int``,
    ``float`` or numeric numpy arrays; raises ``TypeError`` naming the key otherwise."""
    if not isinstance(params, Mapping):
        raise invalid_type(path, "must return a dict of str to str/int/float/numpy array",
                           type(params).__name__)
    from rafiki_ray.sharing.param_store import _checked_entries

    return _checked_entries(
        params, path, object_rule="object arrays cannot be stored",
        value_rule="must be a str, int, float or numpy array (convert tensors to numpy)",
        plain_names=True)


def save_parameters(path: str | os.PathLike[str], params: Mapping[str, Any]) -> None:
    """Write a parameter set to ``path`` (an ``.npz`` file, no pickle) atomically."""
    checked = check_parameters(params)
    arrays = {}
    scalars = {}
    for key, value in checked.items():
        if isinstance(value, np.ndarray):
            arrays[key] = value
        else:
            scalars[key] = value.item() if isinstance(value, np.generic) else value
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            names = {f"a{i}": k for i, k in enumerate(arrays)}
            np.savez(f, __keys__=np.array(json.dumps(names)),
                     __scalars__=np.array(json.dumps(scalars)),
                     **{n: arrays[k] for n, k in names.items()})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_parameters(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a parameter set written by :func:`save_parameters` (keys in the dumped order is
    not guaranteed: arrays first, then scalars)."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        if "__keys__" not in z.files:
            raise invalid(str(path), "is not a rafiki_ray parameter file", z.files)
        names = json.loads(str(z["__keys__"]))
        out: dict[str, Any] = {key: z[n] for n, key in names.items()}
        out.update(json.loads(str(z["__scalars__"])))
    return out


def load_model_class(file_path: str | os.PathLike[str], class_name: str) -> type:
    """Import ``class_name`` from a model file, as Rafiki's ``create_model(model_file_path,
    model_class)`` did. The file's module is pickled *by value*, so Ray workers that cannot
    import it (it is not on their path) still receive the class."""
    import importlib.util
    import sys

    path = os.path.abspath(os.fspath(file_path))
    if not os.path.isfile(path):
        raise invalid("file_path", "no such model file", path)
    mod_name = "rafiki_model_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise invalid("file_path", "is not a Python file", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise invalid("class_name", f"is not a class in {path}", class_name)
    _pickle_by_value(module)
    cls.__rafiki_file__ = path  # type: ignore[attr-defined]
    return cls


def _pickle_by_value(module: Any) -> None:
    """Ray pickles with its vendored cloudpickle; register with it (and with cloudpickle)."""
    for name in ("ray.cloudpickle", "cloudpickle"):
        try:
            cp = __import__(name, fromlist=["register_pickle_by_value"])
        except ImportError:  # pragma: no cover - depends on the environment
            continue
        cp.register_pickle_by_value(module)


def model_class_path(cls: type) -> str:
    """``"file:<path>:<Class>"`` for classes from :func:`load_model_class`, else
    ``"<module>:<qualname>"``."""
    f = getattr(cls, "__rafiki_file__", None)
    if f:
        return f"file:{f}:{cls.__qualname__}"
    return f"{cls.__module__}:{cls.__qualname__}"


def import_model_class(spec: str) -> type:
    """Inverse of :func:`model_class_path`."""
    import importlib

    if spec.startswith("file:"):
        path, _, name = spec[len("file:"):].rpartition(":")
        return load_model_class(path, name)
    module, _, qual = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj
