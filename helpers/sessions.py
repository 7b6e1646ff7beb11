"""Continuing a training run across time-limited sessions (Kaggle kernel versions).

Every Kaggle kernel version starts with an empty /kaggle/working; what the previous version wrote there is
its output, which the next version sees only when the kernel lists itself in `kernel_sources`, read-only,
somewhere under /kaggle/input. So a run is found by its name (`runs/<name>/last.safetensors`) in the
working folder and anywhere among the inputs; the furthest checkpoint wins and, when it is an input's, its
run folder is copied into the working folder, where `fit(resume=True)` continues it exactly and this
version's output again holds the whole run for the next one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import env
from .checkpoints import read_metadata


def _progress(run_dir: Path) -> tuple[int, int]:
    meta = read_metadata(run_dir / "last.safetensors")  # the JSON header only: nothing is unpickled
    return meta["epoch"], meta["step"]


def continue_run(name: str, *, verbose: bool = True) -> tuple[Path, bool]:
    """(working run folder of run `name`, whether to resume it) after bringing in the furthest checkpoint
    of that run from the inputs (a previous version's output) when it is ahead of the working folder's."""
    run_dir = env.working_root() / "runs" / name
    root = env.input_root()
    found = [p.parent for p in sorted(root.glob(f"**/runs/{name}/last.safetensors"))] if root.is_dir() else []
    if (run_dir / "last.safetensors").is_file():
        found.insert(0, run_dir)  # first: on a tie the working copy, which may hold more than the input's
    if not found:
        if verbose:
            print(f"run {name}: no checkpoint in {run_dir} or under {root}; starting from scratch")
        return run_dir, False
    best = max(found, key=_progress)  # max keeps the first of equals
    if best != run_dir:
        shutil.copytree(best, run_dir, dirs_exist_ok=True)
    if verbose:
        epoch, step = _progress(run_dir)
        origin = "" if best == run_dir else f" (copied from {best})"
        print(f"run {name}: resuming after epoch {epoch}, step {step}, from {run_dir}{origin}")
    return run_dir, True
