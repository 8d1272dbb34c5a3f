"""An ENAS micro search space (Pham et al. 2018, section 2.4) in PyTorch, sized for
scikit-learn's digits (8x8 images) on 2 CPU cores (``examples/nas/`` runs a search on it).
It lives in the package, not in ``examples/``, so that Ray workers can import the model.

The architecture is one *cell* of ``n_blocks`` blocks, repeated ``n_cells`` times. Block
``b`` picks two inputs among the cell's two inputs (the previous two cells' outputs) and the
``b`` blocks before it, and an operation for each (conv 3x3, conv 5x5, separable conv 3x3,
max pool, avg pool, identity); its output is the sum. A cell outputs the mean of its blocks.
The knob is a Rafiki ``ArchKnob`` of ``4 * n_blocks`` positions
``[in_1, op_1, in_2, op_2] * n_blocks`` (equal operation names share the controller's
embedding).

The *supergraph* holds every candidate operation at every (cell, block, slot) and lives in a
ParamStore; a child runs (and trains) only its sampled operations, so a TRAIN trial changes
only those weights and any other child reuses the ones it shares. Batch norm uses batch
statistics (no running averages, as ENAS), so a child's score depends only on the shared
weights and the data.

``MicroDigits`` has Rafiki's ``BaseModel`` method names; the policies it honours:
EARLY_STOP (``trial_epochs`` instead of ``epochs``), DOWNSCALE (``search_channels``
instead of ``channels``), QUICK_EVAL (the first ``quick_eval_size`` validation images),
SKIP_TRAIN (load the shared weights, do not train), SHARE_PARAMS (accept shared weights).
"""

from __future__ import annotations

__all__ = ["OPS", "MicroDigits", "Supergraph", "arch_knob", "load_digits_split"]

from typing import Any

import numpy as np
import torch
from torch import nn

from rafiki_ray.knobs import ArchKnob, FixedKnob, PolicyKnob
from rafiki_ray.models.model import BaseModel
from rafiki_ray.sharing import params_to_torch, torch_to_params

OPS = ("conv3x3", "conv5x5", "sepconv3x3", "maxpool", "avgpool", "identity")
POLICY_KNOBS = {p.lower(): p for p in
                ("SHARE_PARAMS", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL", "DOWNSCALE")}


def load_digits_split(seed: int = 0, n_train: int = 1200) -> tuple[tuple, tuple]:
    """Digits as ``((X_train, y_train), (X_val, y_val))``, images ``(N, 1, 8, 8)`` in [0, 1]."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(seed).permutation(len(X))
    tr, va = order[:n_train], order[n_train:]
    return (X[tr], y[tr].astype(np.int64)), (X[va], y[va].astype(np.int64))


def arch_knob(n_blocks: int) -> ArchKnob:
    items: list[list[Any]] = []
    for b in range(n_blocks):
        inputs = list(range(b + 2))
        items += [inputs, list(OPS), inputs, list(OPS)]
    return ArchKnob(items)


def _op(name: str, c: int) -> nn.Module:
    bn = lambda: nn.BatchNorm2d(c, affine=False, track_running_stats=False)
    if name == "conv3x3":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, bias=False), bn())
    if name == "conv5x5":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 5, padding=2, bias=False), bn())
    if name == "sepconv3x3":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
                             nn.Conv2d(c, c, 1, bias=False), bn())
    if name == "maxpool":
        return nn.MaxPool2d(3, stride=1, padding=1)
    if name == "avgpool":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return nn.Identity()


class Supergraph(nn.Module):
    """Every candidate operation at every (cell, block, slot); ``forward(x, arch)`` runs one
    child (a flat list of ``4 * n_blocks`` choices)."""

    def __init__(self, *, channels: int, n_cells: int, n_blocks: int, n_classes: int = 10):
        super().__init__()
        self.n_cells, self.n_blocks = n_cells, n_blocks
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels, track_running_stats=False))
        self.ops = nn.ModuleDict({
            f"c{k}_b{b}_s{s}_{name}": _op(name, channels)
            for k in range(n_cells) for b in range(n_blocks) for s in (0, 1) for name in OPS
        })
        self.head = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor, arch: list[Any]) -> torch.Tensor:
        prev2 = prev = self.stem(x)
        for k in range(self.n_cells):
            states = [prev2, prev]
            for b in range(self.n_blocks):
                in1, op1, in2, op2 = arch[4 * b: 4 * b + 4]
                states.append(self.ops[f"c{k}_b{b}_s0_{op1}"](states[in1])
                              + self.ops[f"c{k}_b{b}_s1_{op2}"](states[in2]))
            prev2, prev = prev, torch.stack(states[2:]).mean(0)
        return self.head(prev.mean(dim=(2, 3)))

    @staticmethod
    def used_ops(arch: list[Any], n_cells: int) -> set[str]:
        """Module-name prefixes of the operations a child runs."""
        out = set()
        for k in range(n_cells):
            for b in range(len(arch) // 4):
                out.add(f"ops.c{k}_b{b}_s0_{arch[4 * b + 1]}.")
                out.add(f"ops.c{k}_b{b}_s1_{arch[4 * b + 3]}.")
        return out


class MicroDigits(BaseModel):
    """A Rafiki :class:`~rafiki_ray.models.BaseModel` over the micro space on digits."""

    N_BLOCKS = 3

    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {
            "cell_arch": arch_knob(MicroDigits.N_BLOCKS),
            "n_cells": FixedKnob(2),
            "channels": FixedKnob(16),
            "search_channels": FixedKnob(8),
            "epochs": FixedKnob(8),
            "trial_epochs": FixedKnob(1),
            "batch_size": FixedKnob(64),
            "lr": FixedKnob(0.01),
            "quick_eval_size": FixedKnob(200),
            "seed": FixedKnob(0),
            **{k: PolicyKnob(p) for k, p in POLICY_KNOBS.items()},
        }

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.arch = list(knobs["cell_arch"])
        down = bool(knobs.get("downscale"))
        self.gen = torch.Generator().manual_seed(int(knobs["seed"]))
        with torch.random.fork_rng(devices=[]):  # init from the knob's seed, global RNG kept
            torch.manual_seed(int(knobs["seed"]))
            self.net = Supergraph(
                channels=int(knobs["search_channels"] if down else knobs["channels"]),
                n_cells=int(knobs["n_cells"]), n_blocks=len(self.arch) // 4,
            )

    def train(self, dataset: tuple, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        if shared_params is not None:
            self.load_parameters(shared_params)
        if self.knobs.get("skip_train"):
            return
        X, y = (torch.as_tensor(a) for a in dataset)
        epochs = int(self.knobs["trial_epochs"] if self.knobs.get("early_stop")
                     else self.knobs["epochs"])
        used = [p for n, p in self.net.named_parameters()
                if not n.startswith("ops.") or any(n.startswith(u) for u in
                                                   Supergraph.used_ops(self.arch, self.net.n_cells))]
        opt = torch.optim.Adam(used, lr=float(self.knobs["lr"]))
        bs = int(self.knobs["batch_size"])
        self.net.train()
        for _ in range(epochs):
            order = torch.randperm(len(X), generator=self.gen)
            for i in range(0, len(X), bs):
                idx = order[i:i + bs]
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(self.net(X[idx], self.arch), y[idx])
                loss.backward()
                opt.step()

    def _logits(self, X: np.ndarray) -> torch.Tensor:
        self.net.eval()
        with torch.no_grad():
            return torch.cat([self.net(torch.as_tensor(X[i:i + 256]), self.arch)
                              for i in range(0, len(X), 256)])

    def evaluate(self, dataset: tuple) -> float:
        X, y = dataset
        if self.knobs.get("quick_eval"):
            n = int(self.knobs["quick_eval_size"])
            X, y = X[:n], y[:n]
        pred = self._logits(X).argmax(1).numpy()
        return float((pred == np.asarray(y)).mean())

    def predict(self, queries: list[Any]) -> list[int]:
        X = np.asarray(queries, dtype=np.float32).reshape(-1, 1, 8, 8)
        return [int(i) for i in self._logits(X).argmax(1)]

    def dump_parameters(self) -> dict[str, Any]:
        return torch_to_params(self.net)

    def load_parameters(self, params: dict[str, Any]) -> None:
        params_to_torch(params, self.net)

    def destroy(self) -> None:
        self.net = None  # type: ignore[assignment]
