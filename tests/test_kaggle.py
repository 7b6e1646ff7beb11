"""kaggle/: every notebook has kernel metadata naming it, and staging produces push-ready folders."""

import json
from pathlib import Path

import pytest
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
REQUIRED = {"id", "title", "code_file", "language", "kernel_type", "is_private", "enable_gpu",
            "enable_internet", "dataset_sources", "competition_sources", "kernel_sources"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_kernel_metadata(notebook):
    meta = json.loads((REPO / "kaggle" / notebook.stem / "kernel-metadata.json").read_text())
    assert REQUIRED <= set(meta)
    assert meta["code_file"] == notebook.name and meta["kernel_type"] == "notebook"
    slug = meta["id"].split("/", 1)[1]
    assert slug == meta["title"].lower().replace(":", "").replace(" ", "-"), "Kaggle derives the slug from the title"
    assert "{user}/old-photo-repair-src" in meta["dataset_sources"]


def test_stage_builds_source_dataset_and_kernels(tmp_path):
    stage = load_script("kaggle/stage.py")
    src = stage.stage_source(tmp_path, "alice")
    assert (src / "helpers" / "__init__.py").is_file() and (src / "samples" / "LICENSES.md").is_file()
    assert (src / "kaggle" / "requirements.txt").is_file(), "the notebooks install it on Kaggle"
    assert json.loads((src / "dataset-metadata.json").read_text())["id"] == "alice/old-photo-repair-src"
    kernels = stage.stage_kernels(tmp_path, "alice")
    assert len(kernels) == len(NOTEBOOKS)
    for folder in kernels:
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        assert meta["id"].startswith("alice/") and (folder / meta["code_file"]).is_file()
