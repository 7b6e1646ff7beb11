"""Stage what Kaggle needs: the project source as a dataset and one kernel folder per notebook.

    python kaggle/stage.py [--user KAGGLE_USER] [--out kaggle/build]
    kaggle datasets create -p kaggle/build/old-photo-repair-src      # once; later: datasets version
    kaggle kernels push -p kaggle/build/01_dataset_aging             # one per notebook

Each notebook's first cell puts /kaggle/input/old-photo-repair-src on sys.path, so `import helpers`,
the bundled samples and the bundled weights all come from that dataset; nothing is pip-installed
except what Kaggle's image lacks (kaggle/requirements.txt, installed by `helpers.env.prepare_kaggle()`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

KAGGLE_DIR = Path(__file__).resolve().parent
REPO = KAGGLE_DIR.parent
SOURCE_SLUG = "old-photo-repair-src"
SHIPPED = ["helpers", "samples", "data_prep", "kaggle/requirements.txt", "requirements.txt", "pyproject.toml",
           "README.md", "LICENSE"]


def stage_source(out: Path, user: str) -> Path:
    target = out / SOURCE_SLUG
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    tracked = subprocess.run(["git", "ls-files", *SHIPPED], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    for rel in tracked:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target / rel)
    meta = {"title": "Old photo repair: source", "id": f"{user}/{SOURCE_SLUG}",
            "licenses": [{"name": "other"}]}
    (target / "dataset-metadata.json").write_text(json.dumps(meta, indent=2))
    return target


def stage_kernels(out: Path, user: str) -> list[Path]:
    staged = []
    for meta_path in sorted(KAGGLE_DIR.glob("*/kernel-metadata.json")):
        meta = json.loads(meta_path.read_text())
        meta["id"] = meta["id"].replace("{user}", user)
        meta["dataset_sources"] = [s.replace("{user}", user) for s in meta["dataset_sources"]]
        target = out / meta_path.parent.name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy2(REPO / "notebooks" / meta["code_file"], target / meta["code_file"])
        (target / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
        staged.append(target)
    return staged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="your-kaggle-name")
    parser.add_argument("--out", type=Path, default=KAGGLE_DIR / "build")
    args = parser.parse_args()
    print(stage_source(args.out, args.user))
    for path in stage_kernels(args.out, args.user):
        print(path)


if __name__ == "__main__":
    main()
