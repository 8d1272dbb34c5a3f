"""Append-only rows kept as one growing array, so that a searcher's model data is a view and
not a list converted to an array at every suggestion (O(1) amortised per observation instead
of O(n) Python work per suggestion: issue 17's soak, TPE at 2,000 trials)."""

from __future__ import annotations

import numpy as np

__all__ = ["Rows"]


class Rows:
    """Rows of ``width`` values of one dtype; capacity doubles as rows arrive."""

    __slots__ = ("_buf", "_n")

    def __init__(self, width: int, dtype: type | np.dtype) -> None:
        self._buf = np.empty((16, width), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, row: np.ndarray | float) -> None:
        if self._n == len(self._buf):
            grown = np.empty((2 * len(self._buf), self._buf.shape[1]), dtype=self._buf.dtype)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n] = row
        self._n += 1

    def insert(self, i: int, row: np.ndarray | float) -> None:
        """Insert ``row`` before row ``i`` (moves the rows after it: a C copy)."""
        self.append(row)
        if i < self._n - 1:
            last = self._buf[self._n - 1].copy()
            self._buf[i + 1 : self._n] = self._buf[i : self._n - 1].copy()
            self._buf[i] = last

    def set(self, i: int, row: np.ndarray | float) -> None:
        self._buf[i] = row

    def view(self) -> np.ndarray:
        """The rows so far (a view: copy it before the next append if it must stay)."""
        return self._buf[: self._n]
