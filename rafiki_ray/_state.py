"""Explicit component state: plain data written atomically.

A component's ``get_state()`` returns a dict of plain data (JSON types, numpy arrays and
RNG state dicts); :func:`save_state` writes it to a temporary file and renames it over
``path``, so a crash never leaves half a file. The pickle holds only that plain dict,
never an object's ``__dict__``.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any

__all__ = ["load_state", "save_state"]

_FORMAT = "rafiki_ray.state/1"


def save_state(path: str | os.PathLike[str], state: dict[str, Any], *, kind: str) -> None:
    """Atomically write ``state`` (plain data) for a component of class ``kind``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    payload = {"format": _FORMAT, "kind": kind, "state": state}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_state(path: str | os.PathLike[str], *, kind: str) -> dict[str, Any]:
    """Read a state written by :func:`save_state`; refuse one written by another class."""
    with open(os.fspath(path), "rb") as f:
        payload = pickle.load(f)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a rafiki_ray state file, got {type(payload).__name__}")
    if payload["kind"] != kind:
        raise ValueError(
            f"{path}: state was saved by {payload['kind']}, cannot restore into {kind}"
        )
    return payload["state"]
