"""Datasets in Rafiki's formats and in memory.

* Image classification (``IMAGE_CLASSIFICATION``): a ``.zip`` holding the images and an
  ``images.csv`` with columns ``path`` (inside the zip) and ``class`` (an int), as Rafiki's
  ``dataset_utils.load_dataset_of_image_files`` reads it.
* Tabular (``TABULAR_CLASSIFICATION`` / ``REGRESSION``): a ``.csv`` with a header; the target
  is the column named by ``target`` (default: the last column), the features are the others.
* In memory: ``(X, y)`` (numpy arrays or lists of equal length; ``y`` may be ``None``).

:func:`load_dataset` turns any of these into a :class:`Dataset`; :func:`as_images` shapes
feature rows into square images scaled to [0, 1] and resized, as image models need.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type

__all__ = [
    "Dataset",
    "as_images",
    "load_dataset",
    "write_image_dataset",
    "write_tabular_dataset",
]

_IMAGES_CSV = "images.csv"


@dataclass(frozen=True)
class Dataset:
    """Features ``X`` (one row or image per sample), labels ``y`` (or ``None``), the format it
    came from (``"image"``, ``"tabular"`` or ``"memory"``) and the feature names (tabular)."""

    X: np.ndarray
    y: np.ndarray | None
    kind: str
    feature_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_classes(self) -> int | None:
        """``max(y) + 1`` for integer labels, else ``None``."""
        if self.y is None or not np.issubdtype(self.y.dtype, np.integer) or not len(self.y):
            return None
        return int(self.y.max()) + 1

    def subset(self, n: int) -> Dataset:
        """The first ``n`` samples (QUICK_EVAL)."""
        return Dataset(self.X[:n], None if self.y is None else self.y[:n], self.kind,
                       self.feature_names)


def load_dataset(data: Any, *, target: str | None = None, path: str = "dataset") -> Dataset:
    """A :class:`Dataset` from a ``.zip`` of images, a tabular ``.csv``, ``(X, y)`` or a
    :class:`Dataset`; ``ValueError`` / ``TypeError`` naming what is wrong otherwise."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        p = os.fspath(data)
        if not os.path.isfile(p):
            raise invalid(path, "no such file", p)
        low = p.lower()
        if low.endswith(".zip"):
            return _load_images(p, path)
        if low.endswith(".csv"):
            return _load_tabular(p, target, path)
        raise invalid(path, "must be a .zip of images or a .csv table", p)
    if isinstance(data, tuple) and len(data) == 2:
        return _from_arrays(data[0], data[1], path)
    raise invalid_type(path, "must be a path (.zip or .csv), an (X, y) tuple or a Dataset",
                       type(data).__name__)


def _from_arrays(X: Any, y: Any, path: str) -> Dataset:
    try:
        Xa = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise invalid(f"{path}[0]", f"must be an array of numbers ({exc})", type(X).__name__)
    if Xa.dtype.kind not in "biuf":
        raise invalid_type(f"{path}[0]", "must hold numbers", str(Xa.dtype))
    if Xa.ndim < 1 or Xa.shape[0] == 0:
        raise invalid(f"{path}[0]", "must hold at least one sample", Xa.shape)
    ya = None
    if y is not None:
        ya = np.asarray(y)
        if ya.ndim != 1 or ya.dtype.kind not in "biufU":
            raise invalid(f"{path}[1]", "must be a 1-D array of labels or targets", ya.shape)
        if len(ya) != len(Xa):
            raise invalid(path, "X and y must have the same length", (len(Xa), len(ya)))
    return Dataset(Xa, ya, "memory")


def _load_images(p: str, path: str) -> Dataset:
    from PIL import Image

    try:
        zf = zipfile.ZipFile(p)
    except zipfile.BadZipFile as exc:
        raise invalid(path, "is not a zip file", p) from exc
    with zf:
        names = {n.split("/")[-1] if n.endswith(_IMAGES_CSV) else n: n for n in zf.namelist()}
        if _IMAGES_CSV not in names:
            raise invalid(path, f"zip has no {_IMAGES_CSV} (columns path, class)", p)
        rows = list(csv.DictReader(io.StringIO(zf.read(names[_IMAGES_CSV]).decode())))
        if not rows or not {"path", "class"} <= set(rows[0]):
            raise invalid(f"{path}:{_IMAGES_CSV}", "needs columns 'path' and 'class'",
                          list(rows[0]) if rows else [])
        base = names[_IMAGES_CSV][: -len(_IMAGES_CSV)]
        images, labels = [], []
        for i, row in enumerate(rows):
            member = base + row["path"]
            if member not in zf.namelist():
                raise invalid(f"{path}:{_IMAGES_CSV}[{i}].path", "is not in the zip", row["path"])
            with Image.open(io.BytesIO(zf.read(member))) as im:
                images.append(np.asarray(im.convert("L"), dtype=np.uint8))
            try:
                labels.append(int(row["class"]))
            except ValueError:
                raise invalid(f"{path}:{_IMAGES_CSV}[{i}].class", "must be an int",
                              row["class"]) from None
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        side = max(max(s) for s in shapes)
        images = [_resize(im.astype(float), side) for im in images]
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64), "image")


def _load_tabular(p: str, target: str | None, path: str) -> Dataset:
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise invalid(path, "a .csv needs a header and at least one row", p)
    header = rows[0]
    col = len(header) - 1 if target is None else (
        header.index(target) if target in header else -1)
    if col < 0:
        raise invalid("target", f"is not a column of {p}", target)
    feats = [h for j, h in enumerate(header) if j != col]
    X = np.empty((len(rows) - 1, len(feats)))
    ys: list[str] = []
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise invalid(f"{path}[row {i + 1}]", f"must have {len(header)} columns", row)
        vals = [v for j, v in enumerate(row) if j != col]
        try:
            X[i] = [float(v) for v in vals]
        except ValueError:
            raise invalid(f"{path}[row {i + 1}]", "features must be numbers", vals) from None
        ys.append(row[col])
    y = np.asarray(ys)
    for kind in (np.int64, np.float64):
        try:
            conv = y.astype(kind)
        except ValueError:
            continue
        if kind is np.int64 and not np.all([str(int(v)) == s.strip() for v, s in zip(conv, ys)]):
            continue
        y = conv
        break
    return Dataset(X, y, "tabular", tuple(feats))


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    from scipy import ndimage

    if image.shape[:2] == (side, side):
        return image
    factors = (side / image.shape[0], side / image.shape[1]) + (1,) * (image.ndim - 2)
    out = ndimage.zoom(image, factors, order=1)
    return out[:side, :side]


def as_images(X: Any, size: int | None = None) -> np.ndarray:
    """``X`` as float32 images ``(n, size, size)`` in [0, 1]: flat rows of a square length are
    reshaped, values scaled by the maximum when it exceeds 1, images resized (bilinear)."""
    Xa = np.asarray(X, dtype=np.float32)
    if Xa.ndim == 1:
        Xa = Xa[None]
    if Xa.ndim == 2:
        side = round(math.sqrt(Xa.shape[1]))
        if side * side != Xa.shape[1]:
            raise invalid("queries", "rows must have a square number of pixels", Xa.shape)
        Xa = Xa.reshape(len(Xa), side, side)
    if Xa.ndim != 3:
        raise invalid("queries", "must be images (n, h, w) or flat square rows", Xa.shape)
    top = float(Xa.max()) if Xa.size else 1.0
    if top > 1.0:
        Xa = Xa / (255.0 if top > 16.0 else 16.0)
    if size is not None and Xa.shape[1:] != (size, size):
        Xa = np.stack([_resize(im, size) for im in Xa]).astype(np.float32)
    return Xa


def write_image_dataset(path: str | os.PathLike[str], images: Any, labels: Sequence[int]
                        ) -> str:
    """Write Rafiki's image-classification zip (PNG images + ``images.csv``); returns the path.

    ``images`` are ``(n, h, w)`` or flat square rows; values in [0, 1], [0, 16] or [0, 255].
    """
    from PIL import Image

    ims = as_images(images)
    labels = [int(v) for v in labels]
    if len(labels) != len(ims):
        raise invalid("labels", "must have one label per image", (len(ims), len(labels)))
    p = os.fspath(path)
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["path", "class"])
        for i, (im, lab) in enumerate(zip(ims, labels)):
            png = io.BytesIO()
            Image.fromarray(np.round(im * 255).astype(np.uint8), mode="L").save(png, "PNG")
            zf.writestr(f"images/{i}.png", png.getvalue())
            w.writerow([f"images/{i}.png", lab])
        zf.writestr(_IMAGES_CSV, buf.getvalue())
    return p


def write_tabular_dataset(path: str | os.PathLike[str], X: Any, y: Any, *,
                          target: str = "target", feature_names: Sequence[str] | None = None
                          ) -> str:
    """Write a tabular ``.csv`` (features, then the ``target`` column); returns the path."""
    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y)
    if Xa.ndim != 2 or len(ya) != len(Xa):
        raise invalid("X, y", "need a 2-D X and one target per row", (Xa.shape, ya.shape))
    names = list(feature_names) if feature_names is not None else [
        f"f{j}" for j in range(Xa.shape[1])]
    p = os.fspath(path)
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, target])
        for row, t in zip(Xa, ya):
            w.writerow([*(repr(float(v)) for v in row), t.item() if hasattr(t, "item") else t])
    return p
