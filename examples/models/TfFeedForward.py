"""TfFeedForward: Rafiki's TensorFlow Keras feed-forward image classifier, with its original knob
config (``examples/models/image_classification/TfFeedForward.py``).

EARLY_STOP: ``max(1, max_epochs // 5)`` epochs. Weights are initialised from the ``seed``-derived
initialiser seeds and batches are shuffled by a numpy Generator (TensorFlow's global seed is
never set). Parameters travel as one array per Keras weight (``w0``, ``w1``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rafiki_ray.knobs import CategoricalKnob, PolicyKnob
from rafiki_ray.models import BaseModel, as_images, load_dataset
from rafiki_ray.models._feed_forward import feed_forward_knobs


class TfFeedForward(BaseModel):
    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {
            **feed_forward_knobs(),
            "max_image_size": CategoricalKnob([16, 32, 48]),
            "early_stop": PolicyKnob("EARLY_STOP"),
        }

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.k = dict(knobs)
        self.seed = int(knobs.get("seed", 0))
        self.rng = np.random.default_rng(self.seed)
        self.model: Any = None
        self.n_classes = 0

    def _build(self, n_classes: int) -> Any:
        import tensorflow as tf

        size = int(self.k["max_image_size"])
        init = iter(range(self.seed * 100, self.seed * 100 + 100))
        layers: list[Any] = [tf.keras.Input((size, size)), tf.keras.layers.Flatten()]
        for _ in range(int(self.k["hidden_layer_count"])):
            layers.append(tf.keras.layers.Dense(
                int(self.k["hidden_layer_units"]), activation="relu",
                kernel_initializer=tf.keras.initializers.GlorotUniform(seed=next(init))))
        layers.append(tf.keras.layers.Dense(
            n_classes, activation="softmax",
            kernel_initializer=tf.keras.initializers.GlorotUniform(seed=next(init))))
        model = tf.keras.Sequential(layers)
        model.compile(optimizer=tf.keras.optimizers.Adam(float(self.k["learning_rate"])),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.n_classes = n_classes
        return model

    def _x(self, X: Any) -> np.ndarray:
        return as_images(X, int(self.k["max_image_size"]))

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        ds = load_dataset(dataset)
        if ds.y is None:
            raise ValueError("dataset: TfFeedForward needs labels")
        self.model = self._build(int(ds.y.max()) + 1)
        X, y = self._x(ds.X), ds.y.astype(np.int64)
        epochs = int(self.k["max_epochs"])
        if self.k.get("early_stop"):
            epochs = max(1, epochs // 5)
        for _ in range(epochs):
            order = self.rng.permutation(len(X))
            self.model.fit(X[order], y[order], batch_size=int(self.k["batch_size"]), epochs=1,
                           shuffle=False, verbose=0)

    def _probs(self, X: Any) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("TfFeedForward: train or load_parameters first")
        return np.asarray(self.model(self._x(X), training=False))

    def evaluate(self, dataset: Any) -> float:
        ds = load_dataset(dataset)
        return float((self._probs(ds.X).argmax(1) == ds.y).mean())

    def predict(self, queries: list[Any]) -> list[Any]:
        return self._probs(np.asarray(queries, dtype=np.float32)).tolist()

    def dump_parameters(self) -> dict[str, Any]:
        if self.model is None:
            raise RuntimeError("TfFeedForward: nothing trained")
        out: dict[str, Any] = {f"w{i}": np.asarray(w)
                               for i, w in enumerate(self.model.get_weights())}
        out["n_classes"] = self.n_classes
        return out

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.model = self._build(int(params["n_classes"]))
        n = sum(1 for key in params if key.startswith("w"))
        self.model.set_weights([np.asarray(params[f"w{i}"]) for i in range(n)])

    def destroy(self) -> None:
        self.model = None

    @staticmethod
    def teardown() -> None:
        import tensorflow as tf

        tf.keras.backend.clear_session()
