"""Where we run (Kaggle, CI or a local machine), where inputs and outputs live, quick mode, device.

Everything is read from environment variables at call time, so tests can simulate Kaggle by setting
`KAGGLE_KERNEL_RUN_TYPE` and the root overrides without reloading modules.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = Path(__file__).resolve().parent

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def platform() -> str:
    """'kaggle', 'ci' or 'local'."""
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "kaggle"
    if _flag("CI") or os.environ.get("GITHUB_ACTIONS"):
        return "ci"
    return "local"


def on_kaggle() -> bool:
    return platform() == "kaggle"


def quick_mode() -> bool:
    """Tiny data and few steps (CI, nbval), switched on by REPAIR_QUICK=1."""
    return _flag("REPAIR_QUICK")


def input_root() -> Path:
    """Read-only inputs: REPAIR_INPUT_ROOT, else /kaggle/input on Kaggle, else ./data."""
    if os.environ.get("REPAIR_INPUT_ROOT"):
        return Path(os.environ["REPAIR_INPUT_ROOT"])
    return Path("/kaggle/input") if on_kaggle() else Path.cwd() / "data"


def working_root() -> Path:
    """Writable outputs: REPAIR_WORKING_ROOT, else /kaggle/working on Kaggle, else ./outputs."""
    if os.environ.get("REPAIR_WORKING_ROOT"):
        return Path(os.environ["REPAIR_WORKING_ROOT"])
    return Path("/kaggle/working") if on_kaggle() else Path.cwd() / "outputs"


def samples_dir() -> Path:
    """The small bundled images (clean photos in clean/, real old photographs in old/)."""
    return Path(os.environ.get("REPAIR_SAMPLES", REPO_ROOT / "samples"))


def shared_data_dir() -> Path | None:
    """../shared/data of a development checkout, or None on a user's clone (never required)."""
    candidate = Path(os.environ.get("REPAIR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


def device(prefer: str | None = None):
    """The best available torch device (cuda, then mps, then cpu) unless `prefer` names one."""
    import torch

    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def amp_mode() -> str:
    """Mixed precision for training here: bf16 on GPUs that compute in it (Ampere and newer), fp16 with the
    grad scaler on older ones such as Kaggle's T4 and P100 (torch may report bf16 there only as emulated,
    which is slow), none on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return "none"
    return "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp16"


def describe() -> dict:
    """A JSON-friendly summary for logs and notebook headers."""
    return {
        "platform": platform(),
        "quick_mode": quick_mode(),
        "input_root": str(input_root()),
        "working_root": str(working_root()),
        "samples": str(samples_dir()),
    }


def prepare_kaggle() -> bool:
    """On Kaggle, pip-install what its Python image lacks (kaggle/requirements.txt, unpinned so Kaggle's
    own torch stays); elsewhere do nothing. Returns whether it installed anything."""
    requirements = REPO_ROOT / "kaggle" / "requirements.txt"
    if not on_kaggle() or not requirements.is_file():
        return False
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
    return True
