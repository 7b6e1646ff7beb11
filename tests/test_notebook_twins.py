"""Each notebooks/X.ipynb and its py:percent twin must hold the same cells.

Compares content, not `jupytext --sync` timestamps, which a fresh clone does not preserve.
"""

from pathlib import Path

import jupytext
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_every_notebook_has_a_twin():
    stems = lambda pattern: sorted(p.stem for p in NOTEBOOK_DIR.glob(pattern))
    assert stems("*.ipynb") == stems("*.py")


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_py_twin_matches_notebook(ipynb: Path):
    expected = jupytext.writes(jupytext.read(ipynb), fmt="py:percent")
    actual = ipynb.with_suffix(".py").read_text(encoding="utf-8")
    assert actual == expected, f"{ipynb.name} and its .py twin differ: run jupytext --sync {ipynb}"
