"""A small PyTorch network on sklearn digits, as a run spec, for the runs/control tests."""

from __future__ import annotations

from typing import Any


def digits_data(n_train: int = 600, n_eval: int = 200) -> tuple[Any, Any]:
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    return (x[:n_train], y[:n_train]), (x[n_train:n_train + n_eval], y[n_train:n_train + n_eval])


def create_model(cfg: dict) -> Any:
    import torch

    hidden = int(cfg["user_knobs"].get("hidden", 32))
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, 10))


def compute_forward(model: Any, batch: Any, cfg: dict) -> dict:
    import torch

    x, y = batch
    delay = float(cfg["user_knobs"].get("delay", 0.0))
    if delay and model.training:  # slows a run down so that live-control tests can reach it
        import time

        time.sleep(delay)
    logits = model(x)
    return {"loss": torch.nn.functional.cross_entropy(logits, y), "logits": logits,
            "labels": y}


def digits_spec() -> Any:
    from rafiki_ray.runs import MLSpec

    return MLSpec(create_model=create_model, compute_forward=compute_forward)


def base_config(lr: Any = 0.05, hidden: Any = 32, epochs: int = 2, delay: float = 0.0) -> dict:
    return {"train": {"epochs": epochs, "batch_size": 64,
                      "optimizer": {"name": "SGD", "args": {"lr": lr, "momentum": 0.9}}},
            "named_metrics": ["top1_accuracy", "top3_accuracy"],
            "user_knobs": {"hidden": hidden, "delay": delay}}
