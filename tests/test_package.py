"""Package-level promises: a light import, every advertised name resolves, typed."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

import rafiki_ray

SUBPACKAGES = ["rafiki_ray", "rafiki_ray.spaces", "rafiki_ray.searchers", "rafiki_ray.schedulers",
               "rafiki_ray.sharing", "rafiki_ray.testing"]


def test_import_is_light():
    """``import rafiki_ray`` loads neither torch, tensorflow nor ray."""
    code = (
        "import sys, json, rafiki_ray, rafiki_ray.spaces;"
        "print(json.dumps([m for m in ('torch', 'tensorflow', 'ray') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_exported_name_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_unknown_attribute_is_an_attribute_error():
    searchers = importlib.import_module("rafiki_ray.searchers")
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        searchers.Nope  # noqa: B018


def test_py_typed_is_shipped():
    assert os.path.exists(os.path.join(os.path.dirname(rafiki_ray.__file__), "py.typed"))
