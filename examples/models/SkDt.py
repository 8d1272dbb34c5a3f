"""SkDt: Rafiki's scikit-learn decision-tree image classifier, with its original knob config.

Images are resized to ``max_image_size`` and flattened. Parameters: the fitted tree, pickled
and base64-encoded in one string (as the original did).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from rafiki_ray.knobs import CategoricalKnob, IntegerKnob
from rafiki_ray.models import as_images
from rafiki_ray.models._sklearn_train import SklearnClassifier


class SkDt(SklearnClassifier):
    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {
            "max_depth": IntegerKnob(1, 32),
            "splitter": CategoricalKnob(["best", "random"]),
            "criterion": CategoricalKnob(["gini", "entropy"]),
            "max_image_size": CategoricalKnob([16, 32]),
        }

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.k = dict(knobs)
        self.clf = DecisionTreeClassifier(max_depth=int(knobs["max_depth"]),
                                          splitter=knobs["splitter"],
                                          criterion=knobs["criterion"], random_state=0)

    def _x(self, X: Any) -> np.ndarray:
        ims = as_images(X, int(self.k["max_image_size"]))
        return ims.reshape(len(ims), -1)
