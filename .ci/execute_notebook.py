"""Rebuild a notebook's .ipynb from its py:percent twin and run it in quick mode, storing outputs.

Usage: python .ci/execute_notebook.py notebooks/01_dataset_aging.py [more.py ...]
The stored outputs are what nbval compares against in CI, so they must come from REPAIR_QUICK=1.
"""

import os
import sys
from pathlib import Path

import jupytext
import nbclient


def execute(py_path: Path) -> None:
    notebook = jupytext.read(py_path)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    os.environ["REPAIR_QUICK"] = "1"
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(py_path.parent)}})
    client.execute()
    ipynb = py_path.with_suffix(".ipynb")
    jupytext.write(notebook, ipynb)
    # Re-write the twin from the executed notebook so both carry identical metadata.
    jupytext.write(jupytext.read(ipynb), py_path, fmt="py:percent")
    print(f"executed {py_path} -> {ipynb}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        execute(Path(arg))
