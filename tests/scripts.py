"""Import a repository script that is not part of a package (benchmarks/*.py, kaggle/stage.py) by path."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@cache
def load_script(relative_path: str):
    """The module of REPO/relative_path, executed once per test session."""
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
