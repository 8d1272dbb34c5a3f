"""``MLSpec``: what a config-driven PyTorch run does (RapidFire's ``MLSpec``, seed 002).

A spec gives ``create_model(cfg) -> torch.nn.Module`` and ``compute_forward(model, batch, cfg)
-> {"loss": tensor, "logits": tensor, "labels": tensor}`` (``logits`` and ``labels`` are
needed only for the named metrics), optionally ``row_prep(batch, cfg) -> batch`` applied to
every batch before ``compute_forward``, and custom metrics ``{name: fn(outputs, cfg) ->
float}`` where ``outputs`` holds the evaluation set's concatenated ``logits`` and ``labels``
and the mean ``loss``. ``cfg`` is the parsed run config (see :func:`parse_config`); user knobs
are ``cfg["user_knobs"]``. Pass the functions to the constructor, or subclass and override.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.runs._config import topk_of

__all__ = ["MLSpec", "named_metric"]

_RESERVED_METRICS = ("loss", "train_loss", "epoch", "chunks_done", "lr", "run_id")


class MLSpec:
    """The functions of a run; see the module docstring."""

    def __init__(
        self,
        *,
        create_model: Callable[[dict], Any] | None = None,
        compute_forward: Callable[[Any, Any, dict], Mapping[str, Any]] | None = None,
        row_prep: Callable[[Any, dict], Any] | None = None,
        metrics: Mapping[str, Callable[[dict, dict], float]] | None = None,
    ) -> None:
        for name, fn in (("create_model", create_model), ("compute_forward", compute_forward),
                         ("row_prep", row_prep)):
            if fn is not None and not callable(fn):
                raise invalid_type(f"MLSpec.{name}", "must be callable", fn)
        if create_model is None and type(self).create_model is MLSpec.create_model:
            raise invalid("MLSpec.create_model", "is required (pass it or override it)")
        if compute_forward is None and type(self).compute_forward is MLSpec.compute_forward:
            raise invalid("MLSpec.compute_forward", "is required (pass it or override it)")
        self._create_model, self._compute_forward, self._row_prep = (
            create_model, compute_forward, row_prep)
        metrics = dict(metrics or {})
        for key, fn in metrics.items():
            if not isinstance(key, str) or key in _RESERVED_METRICS or topk_of(key):
                raise invalid("MLSpec.metrics", f"names must be str, not one of "
                              f"{list(_RESERVED_METRICS)} or top[k]_accuracy", key)
            if not callable(fn):
                raise invalid_type(f"MLSpec.metrics.{key}", "must be callable", fn)
        self.metrics = metrics

    def create_model(self, cfg: dict) -> Any:
        return self._create_model(cfg)  # type: ignore[misc]

    def compute_forward(self, model: Any, batch: Any, cfg: dict) -> Mapping[str, Any]:
        return self._compute_forward(model, batch, cfg)  # type: ignore[misc]

    def row_prep(self, batch: Any, cfg: dict) -> Any:
        return batch if self._row_prep is None else self._row_prep(batch, cfg)


def named_metric(name: str, logits: Any, labels: Any) -> float:
    """``top[k]_accuracy``: the fraction of rows whose label is among the k largest logits.

    A 1-D ``logits`` (binary classification, one score) counts ``(logit > 0) == label``.
    """
    import torch

    k = topk_of(name)
    if k is None:
        raise invalid("named_metrics", "unknown named metric", name)
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels)
    if logits.ndim == 1:
        return float(((logits > 0).long() == labels.long()).float().mean())
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return float((top == labels.view(-1, 1)).any(dim=1).float().mean())
