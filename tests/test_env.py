"""helpers.env: Kaggle/CI/local detection, overridable roots, quick mode, device choice."""

from pathlib import Path

import pytest
import torch

from helpers import env


def test_local_defaults(monkeypatch, tmp_path):
    for name in ("KAGGLE_KERNEL_RUN_TYPE", "CI", "GITHUB_ACTIONS", "REPAIR_INPUT_ROOT", "REPAIR_WORKING_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert env.platform() == "local"
    assert env.input_root() == tmp_path / "data"
    assert env.working_root() == tmp_path / "outputs"


def test_kaggle_is_detected_and_roots_follow(monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.delenv("REPAIR_INPUT_ROOT", raising=False)
    monkeypatch.delenv("REPAIR_WORKING_ROOT", raising=False)
    assert env.platform() == "kaggle" and env.on_kaggle()
    assert env.input_root() == Path("/kaggle/input")
    assert env.working_root() == Path("/kaggle/working")


def test_roots_are_overridable_to_simulate_kaggle(monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("REPAIR_INPUT_ROOT", str(tmp_path / "in"))
    monkeypatch.setenv("REPAIR_WORKING_ROOT", str(tmp_path / "out"))
    assert env.input_root() == tmp_path / "in" and env.working_root() == tmp_path / "out"


def test_ci_and_quick_mode(monkeypatch):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("CI", "true")
    assert env.platform() == "ci"
    monkeypatch.setenv("REPAIR_QUICK", "1")
    assert env.quick_mode()
    monkeypatch.setenv("REPAIR_QUICK", "0")
    assert not env.quick_mode()


def test_device_choice(monkeypatch):
    """cuda when torch sees a GPU, else mps when present, else cpu; an explicit prefer always wins."""
    mps = torch.backends.mps
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(mps, "is_available", lambda: True)
    assert env.device() == torch.device("cuda")  # cuda outranks mps
    assert env.device("cpu") == torch.device("cpu")  # prefer wins over an available GPU
    assert env.device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert env.device() == torch.device("mps")
    assert env.device("cpu") == torch.device("cpu")
    monkeypatch.setattr(mps, "is_available", lambda: False)
    assert env.device() == torch.device("cpu")
    assert env.device("mps") == torch.device("mps")  # named explicitly, even where absent


def test_bundled_samples_are_present():
    assert len(list((env.samples_dir() / "clean").glob("*.jpg"))) >= 8
    assert len(list((env.samples_dir() / "old").glob("*.png"))) >= 2
    assert (env.samples_dir() / "LICENSES.md").is_file()


def _kaggle(monkeypatch, root: Path) -> Path:
    """Simulate a Kaggle kernel whose inputs are under root/input; returns that input root."""
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("REPAIR_INPUT_ROOT", str(root / "input"))
    monkeypatch.setenv("REPAIR_WORKING_ROOT", str(root / "working"))
    return root / "input"


MOUNTS = {"slug": "{slug}", "datasets": "datasets/{owner}/{slug}"}  # Kaggle's two layouts of /kaggle/input


@pytest.mark.parametrize("layout", MOUNTS)
def test_find_input_in_either_mount_layout(layout, tmp_path, monkeypatch):
    inputs = _kaggle(monkeypatch, tmp_path)
    mount = lambda owner, slug: inputs / MOUNTS[layout].format(owner=owner, slug=slug)
    source = mount("alice", "old-photo-repair-src")
    (source / "helpers").mkdir(parents=True)
    (source / "helpers" / "env.py").write_text("")
    imagenette = mount("aniladepu", "imagenette") / "imagenette"  # the dataset nests one folder deeper
    (imagenette / "val" / "n03888257").mkdir(parents=True)
    weights = mount("alice", "stylegan2-ffhq-weights") / "stylegan2-ffhq-config-f.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    assert env.find_input("source") == source
    assert env.find_input("imagenette") == imagenette
    assert env.find_input("stylegan2") == weights
    assert env.find_input("vgg16", required=False) is None


def test_a_missing_input_names_what_to_attach(tmp_path, monkeypatch):
    inputs = _kaggle(monkeypatch, tmp_path)
    with pytest.raises(env.MissingInput, match=r"no imagenette under .*input: attach the dataset aniladepu/imagenette"):
        env.find_input("imagenette")
    (inputs / "other" / "train" / "not-a-class").mkdir(parents=True)
    assert env.find_input("imagenette", required=False) is None


def test_prepare_kaggle_names_every_missing_attachment(tmp_path, monkeypatch):
    _kaggle(monkeypatch, tmp_path)  # this package comes from the checkout, not from the inputs
    with pytest.raises(env.MissingInput) as missing:
        env.prepare_kaggle("imagenette", "stylegan2")
    message = str(missing.value)
    assert "old-photo-repair-src" in message and "aniladepu/imagenette" in message and "stylegan2" in message
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE")
    assert env.prepare_kaggle("imagenette") == []  # elsewhere it does nothing


def test_prepare_kaggle_installs_only_what_is_missing_from_the_wheels(tmp_path, monkeypatch):
    import importlib.metadata
    import subprocess

    inputs = _kaggle(monkeypatch, tmp_path)
    source = inputs / "old-photo-repair-src"
    (source / "kaggle").mkdir(parents=True)
    (source / "kaggle" / "requirements.txt").write_text("# pins\nkornia==0.9.0\nsafetensors==0.8.0\n")
    (source / "wheels").mkdir()
    monkeypatch.setattr(env, "PACKAGE_ROOT", source / "helpers")
    monkeypatch.setattr(env, "REPO_ROOT", source)
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: (_ for _ in ()).throw(
        importlib.metadata.PackageNotFoundError(name)) if name == "kornia" else real_version(name))
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    assert env.prepare_kaggle() == ["kornia==0.9.0"]
    assert calls[0][-4:] == ["--no-index", "--find-links", str(source / "wheels"), "kornia==0.9.0"]


def test_amp_mode_follows_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert env.amp_mode() == "none"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))  # T4
    assert env.amp_mode() == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))  # H100
    assert env.amp_mode() == "bf16"
