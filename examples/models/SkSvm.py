"""SkSvm: Rafiki's scikit-learn SVM classifier, with its original knob config (``max_iter`` 20,
kernel, gamma, log-scaled C). Inputs are flattened at their own size. Parameters: the fitted
``SVC``, pickled and base64-encoded in one string (as the original did).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC

from rafiki_ray.knobs import CategoricalKnob, FixedKnob, FloatKnob
from rafiki_ray.models import as_images
from rafiki_ray.models._sklearn_train import SklearnClassifier


class SkSvm(SklearnClassifier):
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

    def _fit(self, X: np.ndarray, y: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # sklearn 1.9 deprecates probability=True; kept for the original's behaviour
            warnings.simplefilter("ignore", FutureWarning)
            self.clf.fit(X, y)
