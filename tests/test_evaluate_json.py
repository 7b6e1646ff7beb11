"""`evaluate --json` is strict JSON whatever the scores (identical images, flat photos), its means say what
they leave out, and its folders are checked: one folder on both sides is a usage error, and a --restored
folder inside --clean (the layout `restore` allows) is not scored as clean photos."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from helpers.__main__ import main
from helpers.cli import Report


def _strict(text: str):
    """json.loads that refuses NaN and Infinity, as every JSON parser but Python's does."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def _save(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def _photo(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 40), dtype=np.uint8)


def _evaluate(capsys, *args):
    code = main(["evaluate", *map(str, args), "--json"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_identical_and_flat_images_give_strict_json_and_honest_means(tmp_path, capsys):
    for name, img in {"same": _photo(1), "flat": np.full((32, 40), 128, np.uint8)}.items():
        _save(tmp_path / "clean" / f"{name}.png", img)
        _save(tmp_path / "restored" / f"{name}.png", img)  # restored == clean: no error at all
    _save(tmp_path / "clean/noisy.png", _photo(2))
    _save(tmp_path / "restored/noisy.png", np.clip(_photo(2) + 9, 0, 255).astype(np.uint8))
    code, out, err = _evaluate(capsys, "--clean", tmp_path / "clean", "--restored", tmp_path / "restored")
    assert code == 0, err
    doc = _strict(out)
    rows = {row["image"]: row for row in doc["images"]}
    assert rows["same"]["psnr"] == rows["flat"]["psnr"] == 100.0  # capped, as torchmetrics-style reports do
    assert rows["flat"]["sharpness_ratio"] is None and "flat" in rows["flat"]["undefined"]["sharpness_ratio"]
    assert doc["mean"]["psnr"] == pytest.approx((200.0 + rows["noisy"]["psnr"]) / 3)  # nothing left out
    assert doc["mean"]["sharpness_ratio"] == pytest.approx(np.mean([rows[k]["sharpness_ratio"]
                                                                    for k in ("same", "noisy")]))
    assert doc["left_out_of_mean"] == {"sharpness_ratio": ["flat"]}
    assert "left out" in err and "flat" in err


def test_report_json_never_holds_nan_or_infinity():
    report = Report({"a": math.nan, "b": [math.inf, 1.5], "c": {"d": -math.inf}})
    assert _strict(report.to_json())["b"] == [None, 1.5]


def test_the_same_folder_on_both_sides_is_a_usage_error(tmp_path, capsys):
    _save(tmp_path / "photos/x.png", _photo(1))
    code, out, err = _evaluate(capsys, "--clean", tmp_path / "photos", "--restored", tmp_path / "photos/.")
    assert code == 2 and "same folder" in err


def test_a_restored_folder_inside_the_clean_folder_is_not_scored_as_clean(tmp_path, capsys):
    clean = tmp_path / "photos"
    for name in ("a", "b"):
        _save(clean / f"{name}.png", _photo(ord(name)))
        _save(clean / "restored" / f"{name}.png", np.clip(_photo(ord(name)) + 5, 0, 255).astype(np.uint8))
    code, out, err = _evaluate(capsys, "--clean", clean, "--restored", clean / "restored")
    doc = _strict(out)
    assert code == 0 and doc["failures"] == [], err
    assert sorted(row["image"] for row in doc["images"]) == ["a", "b"]
