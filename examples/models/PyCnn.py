"""PyCnn: a small PyTorch CNN image classifier (two 3x3 conv blocks, global average pool).

Policies: EARLY_STOP (``max(1, max_epochs // 4)`` epochs), QUICK_EVAL (a quarter of the
validation set, at least 50 samples) and DOWNSCALE (one conv block, half the channels). With
EARLY_STOP and no SHARE_PARAMS, Rafiki's advisor choice is BAYES_OPT with a FINAL_TRAIN phase.
Randomness: a ``torch.Generator`` seeded by the ``seed`` knob. The training loop is
:class:`rafiki_ray.models._torch_train.TorchImageClassifier`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rafiki_ray.knobs import CategoricalKnob, FixedKnob, FloatKnob, IntegerKnob, PolicyKnob
from rafiki_ray.models import as_images
from rafiki_ray.models._torch_train import TorchImageClassifier


class PyCnn(TorchImageClassifier):
    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {
            "max_epochs": FixedKnob(8),
            "channels": IntegerKnob(4, 32, is_exp=True),
            "learning_rate": FloatKnob(1e-4, 1e-1, is_exp=True),
            "batch_size": CategoricalKnob([32, 64, 128]),
            "max_image_size": CategoricalKnob([8, 16]),
            "seed": FixedKnob(0),
            "early_stop": PolicyKnob("EARLY_STOP"),
            "quick_eval": PolicyKnob("QUICK_EVAL"),
            "downscale": PolicyKnob("DOWNSCALE"),
        }

    early_stop_divisor = 4

    def _build(self, n_classes: int) -> nn.Module:
        c = int(self.k["channels"])
        blocks = 2
        if self.k.get("downscale"):
            c, blocks = max(2, c // 2), 1
        mods: list[nn.Module] = []
        cin = 1
        for b in range(blocks):
            cout = c * (2 ** b)
            mods += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            cin = cout
        mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, n_classes)]
        net = nn.Sequential(*mods)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    fan_in = m.weight[0].numel()
                    bound = 1.0 / np.sqrt(fan_in)
                    m.weight.uniform_(-bound, bound, generator=self.gen)
                    m.bias.uniform_(-bound, bound, generator=self.gen)
        self.n_classes = n_classes
        return net

    def _x(self, X: Any) -> torch.Tensor:
        return torch.from_numpy(as_images(X, int(self.k["max_image_size"])))[:, None]

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        ds = self._labelled(dataset)
        self.net = self._build(int(ds.y.max()) + 1)
        self._fit(ds)

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.net = self._build(int(params["n_classes"]))
        self.net.load_state_dict({k[2:]: torch.from_numpy(np.array(v))
                                  for k, v in params.items() if k.startswith("w:")})

