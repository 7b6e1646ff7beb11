"""Where we run (Kaggle, CI or a local machine), where inputs and outputs live, quick mode, device.

Everything is read from environment variables at call time, so tests can simulate Kaggle by setting
`KAGGLE_KERNEL_RUN_TYPE` and the root overrides without reloading modules.

Kaggle mounts an attached data source at /kaggle/input/<slug> or, newer, /kaggle/input/datasets/<owner>/<slug>
(notebook outputs likewise), and archives may add a folder level. So an input is never looked up by path:
`find_input` searches the input root for what identifies it (INPUTS) and, when it is absent, names the
attachment to add.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import HelpersError

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
    """A JSON-friendly summary for logs and notebook headers (`helpers`: which copy of the package runs)."""
    return {
        "platform": platform(),
        "helpers": str(PACKAGE_ROOT),
        "quick_mode": quick_mode(),
        "input_root": str(input_root()),
        "working_root": str(working_root()),
        "samples": str(samples_dir()),
    }


class MissingInput(HelpersError):
    """A data source the notebook needs is not attached; the message names the one to add."""


# name: (glob patterns under the input root, how many levels above the match the input is, what to attach)
INPUTS = {
    "source": (("**/helpers/env.py",), 2, "the project's source dataset <you>/old-photo-repair-src "
               "(python kaggle/stage.py, then kaggle datasets create; see the README's 'Run on Kaggle')"),
    "imagenette": (("**/train/n[0-9]*", "**/val/n[0-9]*"), 2, "the dataset aniladepu/imagenette "
                   "(Imagenette: train/ and val/ with one folder per class)"),
    "stylegan2": (("**/stylegan2-ffhq-config-f.pt", "**/ffhq.pkl", "**/stylegan2-ffhq-1024x1024.pkl"), 0,
                  "a dataset holding FFHQ StyleGAN2 weights, e.g. <you>/stylegan2-ffhq-weights with "
                  "stylegan2-ffhq-config-f.pt"),
    "vgg16": (("**/vgg16-397923af.pth",), 0, "torchvision's vgg16-397923af.pth (for LPIPS), e.g. in the "
              "StyleGAN2 weights dataset"),
}


def find_input(name: str, required: bool = True, root: str | Path | None = None) -> Path | None:
    """The attached input `name` (a key of INPUTS) under `root` (default: the input root), in any mount
    layout; None when absent and not `required`, else MissingInput naming what to attach."""
    patterns, up, attach = INPUTS[name]
    root = Path(root) if root is not None else input_root()
    for pattern in patterns:
        for found in sorted(root.glob(pattern)) if root.is_dir() else []:
            return found.parents[up - 1] if up else found
    if required:
        raise MissingInput(f"no {name} under {root}: attach {attach}")
    return None


def kaggle_requirements() -> list[str]:
    """The pinned `name==version` lines of kaggle/requirements.txt: what Kaggle's image may lack."""
    text = (REPO_ROOT / "kaggle" / "requirements.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def prepare_kaggle(*needs: str) -> list[str]:
    """On Kaggle: check that this package and every input in `needs` are attached (one MissingInput naming
    all that are not), and pip-install the requirements Kaggle's image lacks from the source dataset's
    wheels/ (--no-index, so internet may be off; from the index only when a dataset has no wheels/).
    Installed packages are never upgraded, so Kaggle's own torch stays. Elsewhere nothing.
    Returns the requirements it installed."""
    if not on_kaggle():
        return []
    missing = [] if input_root() in PACKAGE_ROOT.parents else [INPUTS["source"][2]]
    missing += [INPUTS[name][2] for name in needs if find_input(name, required=False) is None]
    if missing:
        raise MissingInput(f"not attached under {input_root()}: " + "; ".join(missing))
    from importlib.metadata import PackageNotFoundError, version

    def installed(requirement: str) -> bool:
        try:
            return bool(version(requirement.split("==")[0]))
        except PackageNotFoundError:
            return False

    wanted = [r for r in kaggle_requirements() if not installed(r)]
    if wanted:
        import subprocess
        import sys

        wheels = REPO_ROOT / "wheels"
        offline = ["--no-index", "--find-links", str(wheels)] if wheels.is_dir() else []
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *offline, *wanted], check=True)
    return wanted
