"""Shared PyTorch training code of the example image classifiers (``examples/models/Py*.py``).

It lives in the package, not next to the model files: a model file is loaded by path and
pickled by value (:func:`rafiki_ray.models.load_model_class`), so Ray workers could not import a
sibling module of it. Importing this module imports torch; ``rafiki_ray.models`` does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rafiki_ray.models.datasets import Dataset, load_dataset
from rafiki_ray.models.model import BaseModel


class TorchImageClassifier(BaseModel):
    """An image classifier trained with Adam and cross-entropy on shuffled mini-batches.

    Subclasses give ``get_knob_config``, ``_build(n_classes)`` (which sets ``n_classes``) and
    ``_x(X)``; knobs used here: ``seed``, ``max_epochs``, ``learning_rate``, ``batch_size``,
    ``early_stop`` (``max(1, max_epochs // early_stop_divisor)`` epochs) and ``quick_eval``
    (the first quarter of the validation set, at least 50 samples). Randomness comes from a
    ``torch.Generator`` seeded by the ``seed`` knob, never torch's global RNG.
    """

    early_stop_divisor = 5

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.k = dict(knobs)
        self.gen = torch.Generator().manual_seed(int(knobs.get("seed", 0)))
        self.net: nn.Module | None = None
        self.n_classes = 0
        self.epochs_run = 0

    def _build(self, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _x(self, X: Any) -> torch.Tensor:
        raise NotImplementedError

    def _labelled(self, dataset: Any) -> Dataset:
        ds = load_dataset(dataset)
        if ds.y is None:
            raise ValueError(f"dataset: {type(self).__name__} needs labels")
        return ds

    def _fit(self, ds: Dataset) -> None:
        """Train ``self.net`` on ``ds`` for the knobs' number of epochs."""
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}: build the network first")
        X, y = self._x(ds.X), torch.from_numpy(ds.y.astype(np.int64))
        epochs = int(self.k["max_epochs"])
        if self.k.get("early_stop"):
            epochs = max(1, epochs // self.early_stop_divisor)
        opt = torch.optim.Adam(self.net.parameters(), lr=float(self.k["learning_rate"]))
        bs = int(self.k["batch_size"])
        self.epochs_run = epochs
        for epoch in range(epochs):
            self.net.train()
            order = torch.randperm(len(X), generator=self.gen)
            for i in range(0, len(X), bs):
                idx = order[i:i + bs]
                opt.zero_grad()
                nn.functional.cross_entropy(self.net(X[idx]), y[idx]).backward()
                opt.step()
            if epoch + 1 < epochs:
                # in a tune_model trial: score and keep this epoch, so a trial stopped at the
                # time limit keeps it (evaluation draws no random numbers: same training)
                self.checkpoint(epoch=epoch + 1)

    def _probs(self, X: Any) -> np.ndarray:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}: train or load_parameters first")
        self.net.eval()
        with torch.no_grad():
            return torch.softmax(self.net(self._x(X)), dim=1).numpy()

    def evaluate(self, dataset: Any) -> float:
        ds = load_dataset(dataset)
        if self.k.get("quick_eval"):
            ds = ds.subset(max(50, len(ds) // 4))
        return float((self._probs(ds.X).argmax(1) == ds.y).mean())

    def predict(self, queries: list[Any]) -> list[Any]:
        return self._probs(np.asarray(queries, dtype=np.float32)).tolist()

    def dump_parameters(self) -> dict[str, Any]:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}: nothing trained")
        out: dict[str, Any] = {f"w:{k}": v.detach().numpy().copy()
                               for k, v in self.net.state_dict().items()}
        out["n_classes"] = self.n_classes
        return out

    def destroy(self) -> None:
        self.net = None
