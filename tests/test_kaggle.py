"""kaggle/: every notebook has kernel metadata naming it, staging produces push-ready folders, and the
official `kaggle` client (network replaced, tests/fake_kaggle.py) uploads them as Kaggle needs them."""

import io
import json
import sys
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from fake_kaggle import FakeKaggle
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNELS = sorted(p.parent for p in (REPO / "kaggle").glob("*/kernel-metadata.json"))
REQUIRED = {"id", "title", "code_file", "language", "kernel_type", "is_private", "enable_gpu",
            "enable_internet", "dataset_sources", "competition_sources", "kernel_sources"}
IMAGENETTE = "aniladepu/imagenette"
T4_X2 = "NvidiaTeslaT4"  # the client's name for "GPU T4 x2" (kaggle kernels push --help, kaggle 2.2)
# What each notebook needs on Kaggle (the table): GPU, internet, data sets, kernel outputs.
NEEDS = {
    "01_dataset_aging": (False, False, {IMAGENETTE}, set()),
    "02_dcgan_training": (True, False, {IMAGENETTE}, {"{user}/old-photo-repair-02-dcgan-training"}),
    "03_stylegan_inversion": (True, False, {"{user}/stylegan2-ffhq-weights"}, set()),
    "04_objective_evaluation": (True, False, {IMAGENETTE}, set()),
    "05_subjective_evaluation_loc": (False, True, set(), set()),
}


def _meta(name: str) -> dict:
    return json.loads((REPO / "kaggle" / name / "kernel-metadata.json").read_text())


def test_every_notebook_has_a_kernel_folder_and_every_kernel_folder_a_notebook():
    assert sorted(k.name for k in KERNELS) == sorted(NEEDS)
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(NEEDS), "kaggle/ lists a notebook that does not exist"


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_kernel_metadata_asks_for_what_the_notebook_needs(name):
    from slugify import slugify  # what the kaggle client compares the id with

    meta = _meta(name)
    assert REQUIRED <= set(meta)
    assert meta["code_file"] == f"{name}.ipynb" and meta["kernel_type"] == "notebook"
    assert meta["id"].split("/", 1)[1] == slugify(meta["title"]), "Kaggle derives the slug from the title"
    gpu, internet, datasets, kernels = NEEDS[name]
    assert meta["enable_gpu"] is gpu and meta["enable_internet"] is internet
    assert meta.get("machine_shape") == (T4_X2 if gpu else None)
    assert set(meta["dataset_sources"]) == {"{user}/old-photo-repair-src"} | datasets
    assert set(meta["kernel_sources"]) == kernels


def _kaggle_cli(*args: str) -> str:
    """Run the official client's command line as a user would; its printed output."""
    from kaggle import cli

    printed = io.StringIO()
    argv, sys.argv = sys.argv, ["kaggle", *args]
    try:
        with redirect_stdout(printed):
            cli.main()
    finally:
        sys.argv = argv
    return printed.getvalue()


@pytest.fixture
def fake_kaggle(monkeypatch, tmp_path):
    server = FakeKaggle()
    server.install(monkeypatch, tmp_path / "home")
    return server


@pytest.fixture
def wheels(tmp_path):
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    (folder / "torchsummary-1.5.1-py3-none-any.whl").write_bytes(b"a wheel")
    return folder


def test_the_dataset_uploads_whole_with_the_documented_command(fake_kaggle, wheels, tmp_path):
    stage = load_script("kaggle/stage.py")
    src = stage.stage_source(tmp_path / "build", "alice", wheels_from=wheels)
    printed = _kaggle_cli("datasets", "create", "-p", str(src), "--dir-mode", "zip")
    assert "Skipping folder" not in printed
    uploaded = fake_kaggle.uploaded()
    assert {"helpers.zip", "samples.zip", "wheels.zip", "kaggle.zip", "LICENSE", "README.md"} <= set(uploaded)
    with zipfile.ZipFile(io.BytesIO(uploaded["helpers.zip"])) as package:
        names = set(package.namelist())
    assert {"__init__.py", "env.py", "train.py", "sessions.py", "weights/detector.safetensors"} <= names
    with zipfile.ZipFile(io.BytesIO(uploaded["wheels.zip"])) as shipped:
        assert shipped.namelist() == ["torchsummary-1.5.1-py3-none-any.whl"]
    (created,) = fake_kaggle.requests_named("CreateDataset")
    assert (created["ownerSlug"], created["slug"]) == ("alice", "old-photo-repair-src")
    assert created["licenseName"] == "other" and "MIT License" in created["description"]
    assert "CC BY 4.0" in created["description"], "the samples' licences travel with the dataset"
    assert sorted(f["token"] for f in created["files"]) == sorted(fake_kaggle.names)


def test_the_default_dir_mode_would_skip_the_package(fake_kaggle, wheels, tmp_path):
    """Why the README's command says --dir-mode zip: without it the client leaves every folder behind."""
    src = load_script("kaggle/stage.py").stage_source(tmp_path / "build", "alice", wheels_from=wheels)
    printed = _kaggle_cli("datasets", "create", "-p", str(src))
    assert "Skipping folder: helpers" in printed
    assert "helpers.zip" not in fake_kaggle.uploaded()


def test_every_staged_kernel_pushes_with_its_gpu_machine_and_sources(fake_kaggle, tmp_path):
    stage = load_script("kaggle/stage.py")
    folders = stage.stage_kernels(tmp_path / "build", "alice")
    assert sorted(f.name for f in folders) == sorted(NEEDS)
    for folder in folders:
        printed = _kaggle_cli("kernels", "push", "-p", str(folder))
        assert "does not resolve to the specified id" not in printed
    pushed = {body["slug"]: body for body in fake_kaggle.requests_named("SaveKernel")}
    for name, (gpu, internet, datasets, kernels) in NEEDS.items():
        body = pushed[_meta(name)["id"].replace("{user}", "alice")]
        assert body.get("enableGpu", False) is gpu and body.get("enableInternet", False) is internet
        assert body.get("machineShape") == (T4_X2 if gpu else None)
        assert set(body["datasetDataSources"]) == {"alice/old-photo-repair-src"} | {d.replace("{user}", "alice") for d in datasets}
        assert set(body.get("kernelDataSources", [])) == {k.replace("{user}", "alice") for k in kernels}
        first_code = next(c for c in json.loads(body["text"])["cells"] if c["cell_type"] == "code")
        assert "helpers/env.py" in first_code["source"], "the first code cell finds the attached source"
