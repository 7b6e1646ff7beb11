"""Quality numbers agree with torchmetrics and with what they claim to measure; tables and the
`evaluate` command pair files by relative path and score the identity baseline."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import metrics
from helpers.__main__ import main


def _photo(h=64, w=80, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2)
    return (img - img.min()) / (img.max() - img.min())


def _noisy(img, sigma, seed=1):
    return np.clip(img + np.random.default_rng(seed).normal(0, sigma, img.shape), 0, 1).astype(np.float32)


def test_psnr_and_ssim_match_torchmetrics():
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    clean = _photo()
    noisy = _noisy(clean, 0.05)
    t_clean, t_noisy = (torch.from_numpy(x)[None, None].double() for x in (clean, noisy))
    assert metrics.psnr(clean, noisy) == pytest.approx(peak_signal_noise_ratio(t_noisy, t_clean, data_range=1.0).item(),
                                                       abs=1e-3)
    reference = structural_similarity_index_measure(t_noisy, t_clean, data_range=1.0).item()
    assert abs(metrics.ssim(clean, noisy) - reference) < 2e-3  # borders are padded slightly differently


def test_psnr_of_a_known_error_and_of_identical_images():
    clean = _photo()
    assert metrics.psnr(clean, clean) == math.inf
    assert metrics.psnr(np.full((8, 8), 0.5), np.full((8, 8), 0.6)) == pytest.approx(20.0)
    assert metrics.ssim(clean, clean) == pytest.approx(1.0)


def test_8_and_16_bit_files_of_the_same_picture_score_the_same():
    clean, noisy = _photo(), _noisy(_photo(), 0.03)
    as8 = [np.rint(x * 255).astype(np.uint8) for x in (clean, noisy)]
    as16 = [np.rint(x * 65535).astype(np.uint16) for x in (clean, noisy)]
    assert metrics.psnr(*as8) == pytest.approx(metrics.psnr(*as16), abs=0.05)
    assert metrics.ssim(*as8) == pytest.approx(metrics.ssim(*as16), abs=2e-3)


def test_more_damage_scores_worse():
    clean = _photo()
    light, heavy = _noisy(clean, 0.02), _noisy(clean, 0.1)
    assert metrics.psnr(clean, heavy) < metrics.psnr(clean, light)
    assert metrics.ssim(clean, heavy) < metrics.ssim(clean, light)


def test_color_against_gray_is_compared_in_gray_and_sizes_must_match():
    gray = _photo()
    color = np.repeat(gray[..., None], 3, axis=2)
    assert metrics.psnr(color, gray) > 60
    with pytest.raises(ValueError, match="sizes differ"):
        metrics.psnr(gray, gray[:-1])


def test_sharpness_falls_with_blur():
    img = _photo(seed=3)
    blurred = cv2.GaussianBlur(img, (0, 0), 1.5)
    assert metrics.sharpness(blurred) < 0.5 * metrics.sharpness(img)
    assert metrics.compare(img, blurred)["sharpness_ratio"] < 0.5
    assert metrics.compare(img, img)["sharpness_ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize("sigma", [0.02, 0.05])
def test_noise_estimate_recovers_the_added_noise(sigma):
    flat = np.full((128, 128), 0.5, np.float32)
    assert metrics.noise_sigma(_noisy(flat, sigma)) == pytest.approx(sigma, rel=0.1)
    assert metrics.noise_sigma(flat) == 0.0


def test_tables_average_per_group_and_leave_infinities_out():
    rows = [{"preset": "seed", "psnr": 20.0, "ssim": 0.5}, {"preset": "seed", "psnr": math.inf, "ssim": 0.7},
            {"preset": "mild", "psnr": 30.0, "ssim": 0.9}]
    table = metrics.mean_rows(rows, "preset")
    assert table == [{"preset": "seed", "count": 2, "psnr": 20.0, "ssim": pytest.approx(0.6)},
                     {"preset": "mild", "count": 1, "psnr": 30.0, "ssim": 0.9}]
    text = metrics.format_table(table, ["preset", "psnr"])
    assert text.splitlines()[0] == "| preset | psnr |" and "| seed | 20.000 |" in text


def test_lpips_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert metrics.lpips_weights() is None
    with pytest.raises(RuntimeError, match="never downloaded"):
        metrics.Lpips()


def _save(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


def test_evaluate_pairs_files_by_relative_path_and_scores_the_identity_baseline(tmp_path, capsys):
    for name in ("a/one", "two"):
        clean = _photo(seed=len(name))
        _save(tmp_path / "clean" / f"{name}.jpg", clean)  # a different suffix from the restored files
        _save(tmp_path / "damaged" / f"{name}.png", _noisy(clean, 0.1))
        _save(tmp_path / "restored" / f"{name}.png", _noisy(clean, 0.02))
    _save(tmp_path / "clean" / "three.png", _photo(seed=9))  # nothing restored for it
    code = main(["evaluate", "--clean", str(tmp_path / "clean"), "--restored", str(tmp_path / "restored"),
                 "--damaged", str(tmp_path / "damaged"), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 1 and [f["input"].endswith("three.png") for f in doc["failures"]] == [True]
    assert sorted(row["image"] for row in doc["images"]) == ["a/one", "two"]
    for row in doc["images"]:
        assert row["psnr_gain"] > 5 and row["ssim_gain"] > 0.1
    assert doc["count"] == 2 and doc["mean"]["psnr"] > doc["mean"]["identity_psnr"]
    assert "mean of 2" in captured.err


def test_evaluate_reports_a_size_mismatch_and_a_missing_folder(tmp_path, capsys):
    _save(tmp_path / "clean/x.png", _photo())
    _save(tmp_path / "restored/x.png", _photo(h=32))
    code = main(["evaluate", "--clean", str(tmp_path / "clean"), "--restored", str(tmp_path / "restored"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and "sizes differ" in doc["failures"][0]["reason"]
    assert main(["evaluate", "--clean", str(tmp_path / "nope"), "--restored", str(tmp_path / "restored")]) == 2
