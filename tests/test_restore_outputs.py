"""`restore` never loses a result: two inputs never share an output name, the no-overwrite promise holds
when another process writes the same name at the same moment, and 16-bit colour keeps its depth.

The classical baseline restores here: no checkpoint to build, and fast on a shared CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers.__main__ import main
from helpers.io import ImageWriteError, atomic_write_bytes, read_image
from images import gradient

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, *args) -> tuple[int, dict | None, str]:
    code = main(["restore", *map(str, args), "--model", "classical", "--json", "--quiet"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def _photo(path: Path, seed: int, size=(30, 40)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- output names

@pytest.mark.parametrize("overwrite", [False, True])
def test_two_sources_with_one_name_never_share_an_output(tmp_path, capsys, overwrite):
    first, second = _photo(tmp_path / "a/x.png", 1), _photo(tmp_path / "b/x.png", 2)
    out = tmp_path / "out"
    code, doc, err = cli(capsys, first, second, "--out", out, *(["--overwrite"] if overwrite else []))
    assert code == 1, err
    written = [o["output"] for o in doc["outputs"]]
    assert len(written) == len(set(written)) == 1  # the JSON never lists one file as two results
    assert [o["input"] for o in doc["outputs"]] == [str(first)]
    (failure,) = doc["failures"]
    assert failure["input"] == str(second)
    assert str(first) in failure["reason"] and "already exists" not in failure["reason"]
    alone = tmp_path / "alone"
    assert cli(capsys, first, "--out", alone)[0] == 0
    assert np.array_equal(read_image(written[0]), read_image(alone / "x.png"))  # the first result, not the second


def test_a_mask_name_is_never_another_inputs_output(tmp_path, capsys):
    photo, named_like_a_mask = _photo(tmp_path / "in/x.png", 1), _photo(tmp_path / "in/x_mask.png", 2)
    code, doc, err = cli(capsys, photo, named_like_a_mask, "--out", tmp_path / "out", "--save-mask")
    assert code == 1, err
    outputs = [o["output"] for o in doc["outputs"]] + [o["mask"] for o in doc["outputs"]]
    assert len(outputs) == len(set(outputs))
    assert doc["failures"][0]["input"] == str(named_like_a_mask) and str(photo) in doc["failures"][0]["reason"]


def test_different_suffixes_of_one_name_still_get_distinct_outputs(tmp_path, capsys):
    _photo(tmp_path / "in/x.png", 1)
    cv2.imwrite(str(tmp_path / "in/x.jpg"), np.full((30, 40), 90, np.uint8))
    code, doc, err = cli(capsys, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 0, err
    assert sorted(Path(o["output"]).name for o in doc["outputs"]) == ["x.jpg.png", "x.png.png"]


# ---------------------------------------------------------------- atomic no-overwrite

def test_an_output_appearing_after_the_check_is_never_replaced(tmp_path, monkeypatch):
    """Another process writes the name between our exists() check and our rename: the final name must be
    created exclusively, so its file survives and we report the clash."""
    target = tmp_path / "out.png"
    target.write_bytes(b"written by the other run")
    monkeypatch.setattr(Path, "exists", lambda self: False)  # the check ran before the other run wrote
    with pytest.raises(ImageWriteError, match="already exists"):
        atomic_write_bytes(target, b"ours")
    monkeypatch.undo()
    assert target.read_bytes() == b"written by the other run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary file left behind


def test_overwrite_still_replaces_atomically(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_two_concurrent_restores_into_one_folder_write_each_output_once(tmp_path):
    """Real processes started together: every output is claimed by exactly one run; the other names it."""
    src = tmp_path / "in"
    for i in range(6):
        _photo(src / f"p{i}.png", i, size=(300, 400))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "helpers", "restore", str(src), "--out", str(out), "--model", "classical",
               "--json", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    runs = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    docs = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode in (0, 1), stderr
        assert "Traceback" not in stderr
        docs.append(json.loads(stdout))
    claimed = [o["output"] for doc in docs for o in doc["outputs"]]
    assert sorted(claimed) == sorted(str(out / f"p{i}.png") for i in range(6))  # each once, none lost
    for doc in docs:
        assert all("already exists" in f["reason"] for f in doc["failures"])
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}.png" for i in range(6)]


# ---------------------------------------------------------------- depth

def _tiff16(path: Path, channels: int) -> np.ndarray:
    img = gradient(30, 40, top=200).astype(np.uint16) * 257 + 3
    img = img if channels == 3 else img[..., 0]
    cv2.imwrite(str(path), img[..., ::-1] if channels == 3 else img)
    return img


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_tiff_is_read_with_its_depth(tmp_path, channels):
    img = _tiff16(tmp_path / "deep.tif", channels)
    read = read_image(tmp_path / "deep.tif")
    assert read.dtype == np.uint16 and np.array_equal(read, img)


def test_16_bit_tiff_keeps_its_orientation_tag(tmp_path):
    """Pillow cannot write 16-bit RGB, so OpenCV writes the file and the test sets the tag itself."""
    img = _tiff16(tmp_path / "rotated.tif", 3)
    _set_tiff_orientation(tmp_path / "rotated.tif", 6)  # "rotate 90 degrees clockwise to display"
    assert np.array_equal(read_image(tmp_path / "rotated.tif"), np.rot90(img, -1))


def _set_tiff_orientation(path: Path, value: int) -> None:
    """Add or change the Orientation tag (274) of a little-endian TIFF written by OpenCV, in place."""
    import struct

    data = bytearray(path.read_bytes())
    assert data[:2] == b"II"
    ifd = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, ifd)[0]
    entries = [data[ifd + 2 + 12 * i: ifd + 14 + 12 * i] for i in range(count)]
    entries = [e for e in entries if struct.unpack_from("<H", e)[0] != 274]
    entries.append(bytearray(struct.pack("<HHIHH", 274, 3, 1, value, 0)))
    entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
    next_ifd = struct.unpack_from("<I", data, ifd + 2 + 12 * count)[0]
    table = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", next_ifd)
    offset = len(data) + (len(data) % 2)
    data += b"\0" * (offset - len(data)) + table
    struct.pack_into("<I", data, 4, offset)
    path.write_bytes(bytes(data))


def test_keep_depth_keeps_16_bit_color_tiff(tmp_path, capsys):
    _tiff16(tmp_path / "deep.tif", 3)
    code, doc, err = cli(capsys, tmp_path / "deep.tif", "--out", tmp_path / "out", "--keep-depth")
    assert code == 0, err
    restored = read_image(tmp_path / "out/deep.png")
    assert restored.dtype == np.uint16 and restored.shape == (30, 40, 3) and doc["outputs"][0]["dtype"] == "uint16"
