"""The function trainable of a config-driven run: train chunk by chunk, report, checkpoint.

An epoch is one pass over the training rows, shuffled by the run's own ``torch.Generator``
and split into ``num_chunks`` contiguous chunks. After each chunk the run evaluates on the
evaluation rows and reports (``tune.report``) with a checkpoint of the model, optimizer, LR
scheduler and position, so a run can be paused, stopped, resumed or cloned at any chunk
boundary (RapidFire's chunk granularity). ``chunks_done`` counts chunks over the whole run
(also across control resumes, which start a new Tune trial), ``epoch`` is
``chunks_done / num_chunks``; ``chunks_total`` is where the run ends (so that
:class:`rafiki_ray.schedulers.RoundRobin` does not pause a run at its last chunk).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ray import tune

from rafiki_ray.control.protocol import CONTROL_KEY, start_checkpoint
from rafiki_ray.runs._config import build_lr_scheduler, build_optimizer, parse_config
from rafiki_ray.runs.spec import MLSpec, named_metric

__all__ = ["train_run", "user_config"]

_STATE = "run_state.pt"


def user_config(config: dict[str, Any]) -> dict[str, Any]:
    """The run config without the keys rafiki_ray adds (``__...``)."""
    return {k: v for k, v in config.items() if not k.startswith("__")}


def _rows(data: Any) -> int:
    return len(data[0]) if isinstance(data, (tuple, list)) else len(data)


def _take(data: Any, idx: Any) -> Any:
    if isinstance(data, (tuple, list)):
        return tuple(a[idx] for a in data)
    return data[idx]


def _evaluate(spec: MLSpec, model: Any, data: Any, cfg: dict, batch_size: int) -> dict:
    import torch

    model.eval()
    losses, logits, labels, n = [], [], [], _rows(data)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size))
            out = spec.compute_forward(model, spec.row_prep(_take(data, idx), cfg), cfg)
            losses.append(float(out["loss"]) * len(idx))
            if "logits" in out and "labels" in out:
                logits.append(out["logits"].detach())
                labels.append(out["labels"].detach())
    model.train()
    outputs: dict[str, Any] = {"loss": sum(losses) / max(1, n)}
    if logits:
        outputs["logits"], outputs["labels"] = torch.cat(logits), torch.cat(labels)
    metrics = {"loss": outputs["loss"]}
    for name in cfg["named_metrics"]:
        if "logits" not in outputs:
            raise ValueError(f"named_metrics.{name}: compute_forward must return 'logits' "
                             "and 'labels' for named metrics, got only "
                             f"{sorted(outputs)}")
        metrics[name] = named_metric(name, outputs["logits"], outputs["labels"])
    for name, fn in spec.metrics.items():
        metrics[name] = float(fn(outputs, cfg))
    return metrics


def train_run(config: dict[str, Any], *, spec: MLSpec, train_data: Any, eval_data: Any,
              num_chunks: int, seed: int = 0) -> None:
    """Tune function trainable for one run config (see the module docstring)."""
    import torch

    cfg = parse_config(user_config(config))
    run = config.get(CONTROL_KEY, {})
    run_seed = int(run.get("seed", seed))
    epochs, bs = cfg["train"]["epochs"], cfg["train"]["batch_size"]
    total = epochs * num_chunks
    with torch.random.fork_rng():
        torch.manual_seed(run_seed)
        model = spec.create_model(cfg)
    optimizer = build_optimizer(model.parameters(), cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    done, gen = 0, torch.Generator().manual_seed(run_seed)
    ckpt, kind = start_checkpoint(config)
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(os.path.join(d, _STATE), weights_only=False)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            if kind != "warm":
                raise
            raise ValueError(f"clone --warm: the parent's weights do not fit the edited model; "
                             f"clone cold or keep the architecture knobs ({exc})") from None
        done = state["chunks_done"]
        if kind == "warm":  # a clone: the parent's weights and chunk, its own optimizer
            gen.manual_seed(run_seed + done)
        else:
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
    n = _rows(train_data)
    order = None
    if done % num_chunks:  # resuming mid-epoch: the order is the one saved with the state
        order = state["order"]
    if done >= total:  # e.g. a warm clone of a finished run with the same epochs
        metrics = _evaluate(spec, model, eval_data, cfg, bs)
        metrics.update(chunks_done=done, chunks_total=total, epoch=done / num_chunks,
                       run_id=run.get("id", ""),
                       lr=float(optimizer.param_groups[0]["lr"]))
        tune.report(metrics)
        return
    model.train()
    while done < total:
        if done % num_chunks == 0 or order is None:
            order = torch.randperm(n, generator=gen)
        c = done % num_chunks
        chunk = order[c * n // num_chunks:(c + 1) * n // num_chunks]
        train_losses = []
        for start in range(0, len(chunk), bs):
            batch = spec.row_prep(_take(train_data, chunk[start:start + bs]), cfg)
            out = spec.compute_forward(model, batch, cfg)
            optimizer.zero_grad()
            out["loss"].backward()
            optimizer.step()
            train_losses.append(float(out["loss"]))
        done += 1
        metrics = _evaluate(spec, model, eval_data, cfg, bs)
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(metrics["loss"])
            else:
                scheduler.step()
        metrics.update(train_loss=sum(train_losses) / max(1, len(train_losses)),
                       chunks_done=done, chunks_total=total, epoch=done / num_chunks,
                       lr=float(optimizer.param_groups[0]["lr"]), run_id=run.get("id", ""))
        with tempfile.TemporaryDirectory() as d:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": None if scheduler is None else scheduler.state_dict(),
                        "generator": gen.get_state(), "order": order, "chunks_done": done},
                       os.path.join(d, _STATE))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
