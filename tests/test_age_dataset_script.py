"""data_prep/age_dataset.py: an ImageFolder Imagenette in, OUT/<split>/{aged,clean,masks}/<wnid>/ and a manifest
per split out, resumable, and exit 1 naming a file it could not read (the script's contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.age_folder import read_manifest
from helpers.io import read_image

REPO = Path(__file__).resolve().parents[1]
WNIDS = ("n01440764", "n02102040")


def _imagenette(root: Path) -> Path:
    for split in ("train", "val"):
        for k, wnid in enumerate(WNIDS):
            for i in range(2):
                rng = np.random.default_rng(100 * k + i + (50 if split == "val" else 0))
                path = root / split / wnid / f"{split}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(path, format="JPEG")
    return root


def _script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "data_prep/age_dataset.py", *map(str, args)], cwd=REPO, text=True,
                          capture_output=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_ages_each_split_by_class_and_resumes(tmp_path):
    source = _imagenette(tmp_path / "imagenette")
    out = tmp_path / "aged"
    done = _script("--imagenette", source, "--out", out, "--size", 32, "--workers", 0, "--json")
    assert done.returncode == 0, done.stderr
    for split in ("train", "val"):
        rows = read_manifest(out / split / "manifest.csv")
        assert sorted(r["file"] for r in rows) == sorted(f"{w}/{split}_{i}.png" for w in WNIDS for i in range(2))
        assert {r["class"] for r in rows} == set(WNIDS)
        for row in rows:
            aged, clean, mask = (read_image(out / split / folder / row["file"]) for folder in ("aged", "clean", "masks"))
            assert aged.shape == clean.shape == mask.shape == (32, 32)  # gray 32x32, as asked
            assert not np.array_equal(aged, clean)  # really aged
    first = {p: p.read_bytes() for p in sorted(out.rglob("*.png"))}
    again = _script("--imagenette", source, "--out", out, "--size", 32, "--workers", 0, "--json")
    assert again.returncode == 0, again.stderr
    assert {p: p.read_bytes() for p in sorted(out.rglob("*.png"))} == first  # resumed: nothing redone
    assert "already done" in again.stderr


def test_an_unreadable_image_is_named_and_exit_1(tmp_path):
    source = _imagenette(tmp_path / "imagenette")
    broken = source / "train" / WNIDS[0] / "broken.JPEG"
    broken.write_bytes(b"not a jpeg")
    done = _script("--imagenette", source, "--out", tmp_path / "aged", "--size", 32, "--workers", 0,
                   "--split", "train", "--json")
    assert done.returncode == 1
    assert str(broken) in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "aged" / "val").exists()  # --split train only
    assert len(read_manifest(tmp_path / "aged/train/manifest.csv")) == 4
    docs = done.stdout.strip()
    assert docs and any(str(broken) in f["input"] for f in json.loads(docs)["failures"])
