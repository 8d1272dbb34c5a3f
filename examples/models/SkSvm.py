"""SkSvm: Rafiki's scikit-learn SVM classifier, with its original knob config (``max_iter`` 20,
kernel, gamma, log-scaled C). Inputs are flattened at their own size. Parameters: the fitted
``SVC``, pickled and base64-encoded in one string (as the original did).
"""

from __future__ import annotations

import base64
import pickle
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC

from rafiki_ray.knobs import CategoricalKnob, FixedKnob, FloatKnob
from rafiki_ray.models import BaseModel, as_images, load_dataset


class SkSvm(BaseModel):
    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {
            "max_iter": FixedKnob(20),
            "kernel": CategoricalKnob(["rbf", "linear", "poly"]),
            "gamma": CategoricalKnob(["scale", "auto"]),
            "C": FloatKnob(1e-4, 1e4, is_exp=True),
        }

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.clf = SVC(max_iter=int(knobs["max_iter"]), kernel=knobs["kernel"],
                       gamma=knobs["gamma"], C=float(knobs["C"]), probability=True,
                       random_state=0)

    @staticmethod
    def _x(X: Any) -> np.ndarray:
        ims = as_images(X)
        return ims.reshape(len(ims), -1)

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        ds = load_dataset(dataset)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # sklearn 1.9 deprecates probability=True; kept for the original's behaviour
            warnings.simplefilter("ignore", FutureWarning)
            self.clf.fit(self._x(ds.X), ds.y)

    def evaluate(self, dataset: Any) -> float:
        ds = load_dataset(dataset)
        return float((self.clf.predict(self._x(ds.X)) == ds.y).mean())

    def predict(self, queries: list[Any]) -> list[Any]:
        return self.clf.predict_proba(self._x(np.asarray(queries, dtype=np.float32))).tolist()

    def dump_parameters(self) -> dict[str, Any]:
        return {"clf_base64": base64.b64encode(pickle.dumps(self.clf)).decode("ascii")}

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.clf = pickle.loads(base64.b64decode(params["clf_base64"]))
