"""Kaggle rehearsed offline: a simulated /kaggle tree, the staged source dataset as the official client would
upload it and Kaggle unpack it, a three-photo Imagenette, no internet. Each notebook runs top to bottom in
quick mode; a training run stopped by its session budget continues in the next kernel version."""

from __future__ import annotations

import ast
import dataclasses
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jupytext
import nbclient
import pytest
import torch
from fake_kaggle import FakeKaggle, unpack_dataset
from scripts import load_script
from test_kaggle import _kaggle_cli
from tiny_gan import SyntheticPairs, build

from helpers import models
from helpers.checkpoints import load_checkpoint
from helpers.sessions import continue_run
from helpers.train import TrainConfig, fit

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.py"))
MOUNTS = ("{slug}", "datasets/{owner}/{slug}")  # the two layouts Kaggle mounts inputs in
NO_INTERNET = '''"""Loaded by the simulated Kaggle kernel: internet off, only this machine can be reached."""
import socket

_LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo


def _refuse(host):
    raise OSError(101, f"Network is unreachable (simulated Kaggle kernel, internet off): {host}")


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
        _refuse(address[0])
    return _connect(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host not in _LOCAL and host is not None:
        _refuse(host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
'''


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def uploaded_source(tmp_path_factory):
    """The source dataset's files as `kaggle datasets create --dir-mode zip` uploads them."""
    tmp = tmp_path_factory.mktemp("upload")
    (tmp / "wheelhouse").mkdir()
    source = load_script("kaggle/stage.py").stage_source(tmp / "build", "alice", wheels_from=tmp / "wheelhouse")
    server = FakeKaggle()
    with pytest.MonkeyPatch.context() as monkeypatch:
        server.install(monkeypatch, tmp / "home")
        _kaggle_cli("datasets", "create", "-p", str(source), "--dir-mode", "zip")
    return server.uploaded()


def _kaggle_tree(root: Path, uploaded: dict[str, bytes], layout: str) -> Path:
    """root/input as a kernel sees it: the source dataset and a three-photo Imagenette, read-only."""
    inputs = root / "input"
    mount = lambda owner, slug: inputs / layout.format(owner=owner, slug=slug)
    unpack_dataset(uploaded, mount("alice", "old-photo-repair-src"))
    photos = sorted((REPO / "samples" / "clean").glob("*.jpg"))[:3]
    imagenette = mount("aniladepu", "imagenette") / "imagenette"
    for photo, folder in zip(photos, ("train/n01440764", "train/n02102040", "val/n01440764")):
        (imagenette / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(photo, imagenette / folder / f"{photo.stem}.JPEG")
    _read_only(inputs)
    return inputs


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_simulated_kaggle_offline(notebook, uploaded_source, tmp_path, monkeypatch):
    layout = MOUNTS[NOTEBOOKS.index(notebook) % 2]  # alternate, so both layouts are run through
    inputs = _kaggle_tree(tmp_path, uploaded_source, layout)
    working, home, site = tmp_path / "working", tmp_path / "home", tmp_path / "site"
    for folder in (working / "tmp", home, site):
        folder.mkdir(parents=True)
    (site / "sitecustomize.py").write_text(NO_INTERNET)
    before = _files(tmp_path)
    for name, value in {"KAGGLE_KERNEL_RUN_TYPE": "Batch", "REPAIR_QUICK": "1", "REPAIR_INPUT_ROOT": str(inputs),
                        "REPAIR_WORKING_ROOT": str(working), "TMPDIR": str(working / "tmp"), "HOME": str(home),
                        "PYTHONPATH": str(site), "PIP_NO_INDEX": "1", "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)
    cells = jupytext.read(notebook)
    cells.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = nbclient.NotebookClient(cells, timeout=1200, kernel_name="python3",
                                     resources={"metadata": {"path": str(working)}})
    client.execute()
    first = next(c for c in cells.cells if c.cell_type == "code")
    printed = "".join(o.get("text", "") for o in first.outputs)
    described = ast.literal_eval(printed.strip().splitlines()[-1])  # the cell ends with print(env.describe())
    assert Path(described["helpers"]).is_relative_to(inputs), "helpers must come from the attached dataset"
    assert described["platform"] == "kaggle"
    written = _files(tmp_path) - before
    outside = [p for p in written if not (p.is_relative_to(working) or p.is_relative_to(home))]
    assert outside == [], f"{notebook.name} wrote outside the working folder"


def test_the_first_cell_says_which_attachment_is_missing(tmp_path, monkeypatch):
    """Without Imagenette attached, notebook 01 stops in its first cell naming the data set to add."""
    inputs = tmp_path / "input"
    (inputs / "something-else").mkdir(parents=True)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("REPAIR_INPUT_ROOT", str(inputs))
    first = next(c for c in jupytext.read(REPO / "notebooks" / "01_dataset_aging.py").cells if c.cell_type == "code")
    result = subprocess.run([sys.executable, "-c", first.source], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "MissingInput" in result.stderr and "aniladepu/imagenette" in result.stderr
    assert "old-photo-repair-src" in result.stderr, "the source did not come from the inputs either"


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(models.BUILDERS, "tiny", build)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_continues_from_the_previous_kernel_version(tiny, tmp_path, monkeypatch, capsys):
    """Stopped after one epoch by its session budget, the run's output is mounted the way Kaggle mounts a
    kernel's previous version; the next version resumes it to exactly the losses of an uninterrupted run."""
    config = lambda: TrainConfig(model="tiny", epochs=2, batch_size=2, session_epochs=1, log_every=1000,
                                 progress=False, device="cpu", samples=1)
    data, val = SyntheticPairs(6), SyntheticPairs(2, seed=1)
    straight = fit(dataclasses.replace(config(), session_epochs=None), data, val, tmp_path / "straight")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("REPAIR_INPUT_ROOT", str(tmp_path / "input"))
    for version in (1, 2):
        monkeypatch.setenv("REPAIR_WORKING_ROOT", str(tmp_path / f"working{version}"))
        run_dir, resume = continue_run("tiny_run")
        assert resume == (version == 2)
        result = fit(config(), data, val, run_dir, resume=resume)
        if version == 1:
            assert result["status"].startswith("paused after 1 epochs") and result["epochs"] == 1
            previous = tmp_path / "input" / "notebooks" / "alice" / "old-photo-repair-02-dcgan-training"
            shutil.copytree(tmp_path / "working1", previous)  # the version's output, now an input
            shutil.rmtree(tmp_path / "working1")
    assert "run tiny_run: resuming after epoch 1, step 3" in capsys.readouterr().out
    assert result["status"] == "finished" and result["epochs"] == 2
    steps = lambda history: [r for r in history if r["kind"] == "step"]
    assert steps(result["history"]) == steps(straight["history"])
    weights = [load_checkpoint(folder / "last.safetensors", ["generator"])[0]["generator"]
               for folder in (tmp_path / "straight", run_dir)]
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0)
