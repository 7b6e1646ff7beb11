"""The README's quality table is the one benchmarks/quality.py prints from benchmarks/quality.json, so the
figures people read are the measured ones (rerun `python benchmarks/quality.py --markdown` after a rerun)."""

from __future__ import annotations

import json

from helpers.evaluation import ISSUE_PRESETS, conditions, evaluate, report
from scripts import REPO, load_script


def test_readme_quality_table_is_the_measured_one():
    result = json.loads((REPO / "benchmarks" / "quality.json").read_text())
    table = load_script("benchmarks/quality.py").markdown(result)
    assert table in (REPO / "README.md").read_text(encoding="utf-8")
    overall = result["methods"]["pipeline"]["overall"]
    assert f"{overall['identity_psnr']:.2f} | {overall['psnr']:.2f}" in table


def test_the_benchmark_measured_the_bundled_weights():
    """Every network in quality.json is identified by its weights' checksum: they must be the bundled ones.
    (The U-Net's own metadata keeps the numbers of the five-preset protocol it was bundled with.)"""
    from helpers.bundle import weights_digest
    from helpers.restore import DEFAULT_CHECKPOINTS

    result = json.loads((REPO / "benchmarks" / "quality.json").read_text())
    bundled = json.loads((REPO / "helpers" / "weights" / "unet_default.json").read_text())
    assert bundled["quality"]["weights_sha256"] == result["methods"]["unet"]["weights_sha256"]
    for stage in ("detector", "unet"):
        assert result["methods"]["pipeline"][stage]["weights_sha256"] == weights_digest(DEFAULT_CHECKPOINTS[stage])


def test_bundled_unet_repairs_the_held_out_samples():
    """The bundled model on the 10 bundled photos (never trained on), each aged with every preset as
    benchmarks/quality.py does: it must beat doing nothing by a margin well under what it measured
    (see the README), so a broken or swapped checkpoint fails here while noise does not."""
    quality = load_script("benchmarks/quality.py")
    from helpers.restore import DEFAULT_CHECKPOINTS, load_restorer

    clean, info = quality.held_out_images(10)
    assert info["bundled_samples"] == 10
    presets = conditions(operators=(), presets=ISSUE_PRESETS)  # it trained on these
    rows = evaluate(load_restorer("unet", DEFAULT_CHECKPOINTS["unet"]), clean, presets, {})
    result = report(rows)
    assert result["overall"]["psnr_gain"] > 2.5  # measured +3.21 dB
    assert result["overall"]["ssim_gain"] > 0.06  # +0.079
    assert result["per_preset"]["daguerreotype"]["psnr_gain"] > 5.0  # +6.56
    assert result["per_preset"]["mild"]["psnr_gain"] > 0.0  # +0.45: photo-wide context sees it is not faded


def test_bundled_pipeline_repairs_the_held_out_samples():
    """The same for the default restorer, the pipeline (measured +1.54 dB overall, +3.58 on the seed preset)."""
    quality = load_script("benchmarks/quality.py")
    from helpers.restore import load_restorer

    clean, _ = quality.held_out_images(10)
    presets = conditions(operators=(), presets=ISSUE_PRESETS)
    result = report(evaluate(load_restorer("pipeline", device="cpu"), clean, presets, {}))
    assert result["overall"]["psnr_gain"] > 1.0 and result["overall"]["ssim_gain"] > 0.03  # +1.54, +0.056
    assert result["per_preset"]["seed"]["psnr_gain"] > 2.5  # +3.58


def test_psnr_means_cover_the_same_photos_for_the_input_and_the_restorer():
    """A photo the aging left as it was has an infinite input PSNR. A restorer that changes it has a finite
    one, which must not enter its mean: the input's mean leaves that photo out, so the restorer was credited
    with a photo the input was not measured on (the benchmark's `faded` row read 1.4 dB too high for the
    pipeline that way, 0.8 for the U-Net)."""
    from helpers.evaluation import summarize

    def row(psnr, identity):
        return {"psnr": psnr, "identity_psnr": identity, "ssim": 0.9, "identity_ssim": 0.8,
                "sharpness": 1.0, "clean_sharpness": 1.0, "identity_sharpness": 1.0, "seconds": 0.1}

    stats = summarize([row(30.0, 20.0), row(26.0, 22.0), row(45.0, float("inf"))])
    assert stats["psnr"] == 28.0 and stats["identity_psnr"] == 21.0 and stats["psnr_gain"] == 7.0
    assert stats["psnr_undamaged"] == 1 and stats["count"] == 3
    assert stats["ssim"] == 0.9  # SSIM is finite on every photo: a change to an untouched one costs there
