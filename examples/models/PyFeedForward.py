"""PyFeedForward: a PyTorch feed-forward image classifier honouring all five Rafiki policies.

Knobs mirror Rafiki's ``TfFeedForward`` (hidden layers, units, log-scaled learning rate, batch
size, image size; our image sizes suit 8x8 digits) plus every policy:

* SHARE_PARAMS: start from ``shared_params`` (every array whose shape fits this network);
* EARLY_STOP: train ``max(1, max_epochs // 5)`` epochs instead of ``max_epochs``;
* SKIP_TRAIN: ``train`` only loads ``shared_params`` (if any), no gradient step;
* QUICK_EVAL: evaluate on the first quarter of the validation set (at least 50 samples);
* DOWNSCALE: one hidden layer of half the units.

Randomness comes from a ``torch.Generator`` seeded by the ``seed`` knob, never torch's global RNG
(the training loop is :class:`rafiki_ray.models._torch_train.TorchImageClassifier`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rafiki_ray.knobs import CategoricalKnob, FixedKnob, PolicyKnob
from rafiki_ray.models import as_images
from rafiki_ray.models._feed_forward import feed_forward_knobs
from rafiki_ray.models._torch_train import TorchImageClassifier


def _init(net: nn.Module, g: torch.Generator) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / np.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)


class PyFeedForward(TorchImageClassifier):
    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {
            **feed_forward_knobs(),
            "max_image_size": CategoricalKnob([8, 16]),
            "seed": FixedKnob(0),
            "share_params": PolicyKnob("SHARE_PARAMS"),
            "early_stop": PolicyKnob("EARLY_STOP"),
            "skip_train": PolicyKnob("SKIP_TRAIN"),
            "quick_eval": PolicyKnob("QUICK_EVAL"),
            "downscale": PolicyKnob("DOWNSCALE"),
        }

    def _build(self, n_classes: int) -> nn.Module:
        size = int(self.k["max_image_size"])
        units, layers = int(self.k["hidden_layer_units"]), int(self.k["hidden_layer_count"])
        if self.k.get("downscale"):
            units, layers = max(2, units // 2), 1
        mods: list[nn.Module] = [nn.Flatten()]
        width = size * size
        for _ in range(layers):
            mods += [nn.Linear(width, units), nn.ReLU()]
            width = units
        mods.append(nn.Linear(width, n_classes))
        net = nn.Sequential(*mods)
        _init(net, self.gen)
        self.n_classes = n_classes
        return net

    def _x(self, X: Any) -> torch.Tensor:
        return torch.from_numpy(as_images(X, int(self.k["max_image_size"])))

    def _load_matching(self, params: dict[str, Any]) -> int:
        if self.net is None:
            raise RuntimeError("PyFeedForward: build the network first")
        state = self.net.state_dict()
        n = 0
        for key, value in params.items():
            if key.startswith("w:") and key[2:] in state:
                arr = np.asarray(value)
                if tuple(arr.shape) == tuple(state[key[2:]].shape):
                    state[key[2:]] = torch.from_numpy(arr.copy())
                    n += 1
        self.net.load_state_dict(state)
        return n

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        ds = self._labelled(dataset)
        self.net = self._build(int(ds.y.max()) + 1)
        self.shared_loaded = 0
        if shared_params and (self.k.get("share_params") or self.k.get("skip_train")):
            self.shared_loaded = self._load_matching(shared_params)
        if self.k.get("skip_train"):
            return
        self._fit(ds)

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.net = self._build(int(params["n_classes"]))
        self._load_matching(params)

