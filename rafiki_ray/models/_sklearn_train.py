"""Shared scikit-learn wrapper code of the example classifiers (``examples/models/Sk*.py``).

It lives in the package, not next to the model files: a model file is loaded by path and
pickled by value (:func:`rafiki_ray.models.load_model_class`), so Ray workers could not import a
sibling module of it.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

import numpy as np

from rafiki_ray.models.datasets import load_dataset
from rafiki_ray.models.model import BaseModel


class SklearnClassifier(BaseModel):
    """A fitted scikit-learn classifier ``self.clf`` on flattened images.

    Subclasses set ``self.clf`` in ``__init__`` and give ``get_knob_config`` and ``_x(X)``
    (images to a 2-D feature array); ``_fit`` may be overridden (e.g. to silence warnings).
    Parameters: the fitted estimator, pickled and base64-encoded in one string (as Rafiki's
    originals did).
    """

    clf: Any

    def _x(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def _fit(self, X: np.ndarray, y: Any) -> None:
        self.clf.fit(X, y)

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        ds = load_dataset(dataset)
        self._fit(self._x(ds.X), ds.y)

    def evaluate(self, dataset: Any) -> float:
        ds = load_dataset(dataset)
        return float((self.clf.predict(self._x(ds.X)) == ds.y).mean())

    def predict(self, queries: list[Any]) -> list[Any]:
        return self.clf.predict_proba(self._x(np.asarray(queries, dtype=np.float32))).tolist()

    def dump_parameters(self) -> dict[str, Any]:
        return {"clf_base64": base64.b64encode(pickle.dumps(self.clf)).decode("ascii")}

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.clf = pickle.loads(base64.b64decode(params["clf_base64"]))
