"""helpers.env: Kaggle/CI/local detection, overridable roots, quick mode, device choice."""

from pathlib import Path

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


def test_device_choice():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert env.device().type == expected
    assert env.device("cpu") == torch.device("cpu")


def test_bundled_samples_are_present():
    assert len(list((env.samples_dir() / "clean").glob("*.jpg"))) >= 8
    assert len(list((env.samples_dir() / "old").glob("*.png"))) >= 2
    assert (env.samples_dir() / "LICENSES.md").is_file()


def test_prepare_kaggle_installs_only_on_kaggle(monkeypatch):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert env.prepare_kaggle() is False and calls == []
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert env.prepare_kaggle() is True
    assert calls[0][-2:] == ["-r", str(env.REPO_ROOT / "kaggle" / "requirements.txt")]


def test_amp_mode_follows_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert env.amp_mode() == "none"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))  # T4
    assert env.amp_mode() == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))  # H100
    assert env.amp_mode() == "bf16"
