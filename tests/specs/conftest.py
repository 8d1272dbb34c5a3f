"""Fixtures of the spec tests: a directory holding the example model scripts and the test
scripts, where spec files are written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "specs"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
SEEDS = Path("/work/shared/seeds")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A code directory with the example model scripts and the test scripts."""
    code = tmp_path / "code"
    code.mkdir()
    for src in [*EXAMPLES.glob("*.py"), *SCRIPTS.glob("*.py")]:
        shutil.copy(src, code / src.name)
    return code


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path
