"""The rules of live control (RapidFire IC ops, formats.md section 4) and the trial-side API.

Run states: ``ongoing``, ``stopped``, ``completed``, ``failed``, ``deleted``. Operations:

* ``stop``: ongoing -> stopped (the run halts at its next chunk boundary, keeping its
  checkpoint);
* ``resume``: stopped -> ongoing, from the run's last checkpoint;
* ``delete``: any state but deleted -> deleted; its metrics are dropped and it takes no more
  operations;
* ``clone``: a new run from the parent's config with edits, cold, or warm from the parent's
  weights at the parent's chunk (cold when the parent has no checkpoint yet).

Completed runs ignore stop/resume (recorded as ``ignored``); failed runs accept only delete;
anything else that breaks a rule is ``refused`` with the reason. A trial learns what to start
from with :func:`start_checkpoint`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type

__all__ = [
    "CONTROL_KEY",
    "OPS",
    "STATES",
    "apply_edits",
    "decide",
    "parse_edits",
    "start_checkpoint",
]

#: Key of the trial config entry that carries the run id and where to start from.
CONTROL_KEY = "__rafiki_run"
OPS = ("stop", "resume", "delete", "clone")
STATES = ("ongoing", "stopped", "completed", "failed", "deleted")


def decide(op: str, state: str | None) -> tuple[str, str]:
    """``(outcome, reason)`` for ``op`` on a run in ``state``; outcome is apply/ignore/refuse."""
    if op not in OPS:
        return "refuse", f"unknown operation {op!r}; one of {list(OPS)}"
    if state is None:
        return "refuse", "no such run"
    if state == "deleted":
        return "refuse", "the run is deleted and takes no more operations"
    if state == "failed" and op != "delete":
        return "refuse", "a failed run accepts only delete"
    if state == "completed" and op in ("stop", "resume"):
        return "ignore", f"a completed run ignores {op}"
    if op == "stop" and state != "ongoing":
        return "refuse", f"only an ongoing run can be stopped; the run is {state}"
    if op == "resume" and state != "stopped":
        return "refuse", f"only a stopped run can be resumed; the run is {state}"
    return "apply", ""


def parse_edits(items: list[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` (CLI ``--set``) or a dict -> ``{"a.b": 1, "c": "x"}``.

    Values are read as JSON when they parse (``1``, ``1e-3``, ``true``, ``[1, 2]``, ``"s"``),
    else kept as strings.
    """
    import json

    if items is None:
        return {}
    if isinstance(items, Mapping):
        out = dict(items)
    else:
        if isinstance(items, (str, bytes)):
            raise invalid_type("set", "must be a list of key=value strings", items)
        out = {}
        for item in items:
            if not isinstance(item, str) or "=" not in item:
                raise invalid("set", "each edit must be key=value", item)
            key, _, raw = item.partition("=")
            try:
                out[key.strip()] = json.loads(raw)
            except ValueError:
                out[key.strip()] = raw
    for key in out:
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise invalid("set", "keys are dotted paths like train.optimizer.args.lr", key)
        if key.split(".")[0] == CONTROL_KEY:
            raise invalid("set", f"{CONTROL_KEY} is managed by rafiki_ray", key)
    return out


def apply_edits(config: Mapping[str, Any], edits: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted ``key = value`` set (new keys allowed)."""
    out = copy.deepcopy(dict(config))
    for key, value in edits.items():
        node: Any = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise invalid(f"set.{key}", f"{'.'.join(parts[:i + 1])} is not a dict", nxt)
            node = nxt
        node[parts[-1]] = copy.deepcopy(value)
    return out


def start_checkpoint(config: Mapping[str, Any]) -> tuple[Any, str | None]:
    """What a trial starts from: ``(checkpoint, kind)``.

    ``kind`` is ``"tune"`` (Tune restored the trial: pause/resume, crash restore),
    ``"resume"`` (a stopped run resumed by control: restore everything), ``"warm"`` (a warm
    clone: take the weights and the chunk position only) or None (start cold).
    """
    from ray import tune

    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        return ckpt, "tune"
    run = config.get(CONTROL_KEY) or {}
    for kind in ("resume", "warm"):
        path = run.get(f"{kind}_from")
        if path:
            return tune.Checkpoint(path), kind
    return None, None
