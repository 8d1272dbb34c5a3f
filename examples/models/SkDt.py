"""SkDt: Rafiki's scikit-learn decision-tree image classifier, with its original knob config.

Images are resized to ``max_image_size`` and flattened. Parameters: the fitted tree, pickled
and base64-encoded in one string (as the original did).
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from rafiki_ray.knobs import CategoricalKnob, IntegerKnob
from rafiki_ray.models import BaseModel, as_images, load_dataset


class SkDt(BaseModel):
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

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        ds = load_dataset(dataset)
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
