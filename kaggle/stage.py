"""Stage what Kaggle needs: the project source as a dataset and one kernel folder per notebook.

    python kaggle/stage.py --user NAME --out kaggle/build
    kaggle datasets create -p kaggle/build/old-photo-repair-src --dir-mode zip
    kaggle kernels push -p kaggle/build/01_dataset_aging          # and 02 ... 05, one push per notebook

`--dir-mode zip` is what makes the dataset whole: the client's default (`skip`) uploads only the top-level
files and prints "Skipping folder: helpers". With `zip` it uploads each folder as one archive, which Kaggle
unpacks back into that folder. A later source update is
`kaggle datasets version -p kaggle/build/old-photo-repair-src --dir-mode zip -m "what changed"`.

The dataset holds the tracked files of SHIPPED and `wheels/`: the wheels of kaggle/requirements.txt for
Kaggle's Python, so `helpers.env.prepare_kaggle()` installs what the image lacks with `pip --no-index`
and no kernel needs internet for it. Each notebook's first cell finds the dataset under /kaggle/input
whatever the mount layout (see helpers/env.py). Each kernel folder gets its notebook and its
kernel-metadata.json with `{user}` replaced.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

KAGGLE_DIR = Path(__file__).resolve().parent
REPO = KAGGLE_DIR.parent
SOURCE_SLUG = "old-photo-repair-src"
SHIPPED = ["helpers", "samples", "data_prep", "kaggle/requirements.txt", "requirements.txt", "pyproject.toml",
           "README.md", "LICENSE"]
KAGGLE_PYTHONS = ("3.11", "3.12")  # Kaggle's image runs one of these; pure wheels are shared between them
KAGGLE_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64")


def _requirements() -> list[str]:
    lines = (KAGGLE_DIR / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def download_wheels(target: Path) -> None:
    """The wheels of kaggle/requirements.txt for Kaggle's Linux Python (needs internet, here, once)."""
    platforms = [arg for platform in KAGGLE_PLATFORMS for arg in ("--platform", platform)]
    for python in KAGGLE_PYTHONS:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--implementation", "cp", "--python-version", python, *platforms, "-d", str(target),
                        *_requirements()], check=True)


def _description() -> str:
    """The licence text Kaggle shows for a dataset whose licence is "other" (MIT is not among its names)."""
    return ("Source of the old-photo-repair project (the `helpers` package, its bundled weights and samples, "
            "and the wheels its notebooks install offline).\n\n## Licenses\nCode and bundled weights: MIT "
            "(below). Sample images: each under its own license, listed in samples/LICENSES.md (below). "
            "Wheels in wheels/: each under its own project's license, stated inside the wheel.\n\n"
            + (REPO / "LICENSE").read_text(encoding="utf-8") + "\n"
            + (REPO / "samples" / "LICENSES.md").read_text(encoding="utf-8"))


def stage_source(out: Path, user: str, wheels_from: Path | None = None) -> Path:
    """out/old-photo-repair-src: the tracked source, wheels/ (copied from `wheels_from`, else downloaded)
    and dataset-metadata.json."""
    target = out / SOURCE_SLUG
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    tracked = subprocess.run(["git", "ls-files", *SHIPPED], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    for rel in tracked:
        if (REPO / rel).is_file():  # a tracked file deleted in the working tree is not shipped
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target / rel)
    if wheels_from is not None:
        shutil.copytree(wheels_from, target / "wheels")
    else:
        download_wheels(target / "wheels")
    meta = {"title": "Old photo repair: source", "id": f"{user}/{SOURCE_SLUG}",
            "subtitle": "The helpers package, weights, samples and wheels for the notebooks",
            "description": _description(), "licenses": [{"name": "other"}]}
    (target / "dataset-metadata.json").write_text(json.dumps(meta, indent=2))
    return target


def stage_kernels(out: Path, user: str) -> list[Path]:
    """One push-ready folder per kaggle/NN_name/kernel-metadata.json: the notebook and its metadata."""
    staged = []
    for meta_path in sorted(KAGGLE_DIR.glob("*/kernel-metadata.json")):
        meta = json.loads(meta_path.read_text())
        for key in ("id", "dataset_sources", "kernel_sources"):
            meta[key] = (meta[key].replace("{user}", user) if isinstance(meta[key], str)
                         else [source.replace("{user}", user) for source in meta[key]])
        notebook = REPO / "notebooks" / meta["code_file"]
        if not notebook.is_file():
            raise FileNotFoundError(f"{meta_path}: its notebook {notebook} does not exist")
        target = out / meta_path.parent.name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy2(notebook, target / meta["code_file"])
        (target / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
        staged.append(target)
    return staged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", required=True, help="your Kaggle user name")
    parser.add_argument("--out", type=Path, default=KAGGLE_DIR / "build")
    parser.add_argument("--wheels-from", type=Path, help="a folder of the wheels already downloaded (offline)")
    args = parser.parse_args()
    print(stage_source(args.out, args.user, args.wheels_from))
    for path in stage_kernels(args.out, args.user):
        print(path)


if __name__ == "__main__":
    main()
