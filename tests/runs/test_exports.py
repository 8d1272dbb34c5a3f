"""rafiki_ray.runs / rafiki_ray.control: every advertised name resolves; importing them (and the
ctl / plot CLI parts) stays light."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["rafiki_ray.runs", "rafiki_ray.control"])
def test_every_exported_name_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_imports_are_light():
    code = ("import sys, json, rafiki_ray.runs, rafiki_ray.control, rafiki_ray.control.cli, "
            "rafiki_ray.plot;"
            "print(json.dumps([m for m in ('torch', 'tensorflow', 'ray', 'matplotlib') "
            "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
