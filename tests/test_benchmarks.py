"""Each benchmark script runs end to end in a quick mode and writes the JSON its README tables come from.

Smoke runs, not measurements: they check that the script still runs against today's helpers, and that its
JSON is strict and has the numbers (positive timings, every method, the targets). Each runs in its own
process with one thread, as the scripts are meant to be run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.restore import DEFAULT_CHECKPOINTS

REPO = Path(__file__).resolve().parents[1]


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def _bench(script: str, *args, timeout: float = 300) -> dict:
    out = Path(args[args.index("--out") + 1])
    done = subprocess.run([sys.executable, f"benchmarks/{script}", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    return _strict(out.read_text())


def test_aging_benchmark(tmp_path):
    doc = _bench("aging.py", "--images", 4, "--workers", 2, "--repeats", 1, "--out", tmp_path / "aging.json")
    assert doc["images"] == 4 and doc["repeats"] == 1
    for pipelines in (doc["single_process"], doc["workers_2"]):
        assert pipelines["baseline"]["images_per_s"] > 0 and pipelines["baseline"]["cpu_ms_per_image"] > 0
        assert set(pipelines["presets"]) == set(__import__("helpers.aging").aging.PRESETS)
        assert all(row["images_per_s"] > 0 for row in pipelines["presets"].values())
    assert set(doc["seed_preset_meets_targets"]) == {"wall_clock", "cpu_time"}


def test_inversion_benchmark(tmp_path):
    doc = _bench("inversion.py", "--quick", "--threads", 1, "--out", tmp_path / "inversion.json")
    quick = doc["cpu_quick"]
    assert all(quick["step"][space]["median_s"] > 0 for space in ("W", "W+", "W++"))
    assert quick["full"]["steps"] == [10, 10, 10] and quick["full"]["seconds"] > 0
    assert quick["full"]["final_losses"]["W++"] < 0.1  # the inversion really fitted something
    assert doc["targets"] == {"ratio_wpp_to_w_max": 1.5, "cpu_256_full_seconds_max": 60}


@pytest.mark.skipif(not all(DEFAULT_CHECKPOINTS[m].is_file() for m in ("unet", "detector")),
                    reason="the bundled U-Net and detector checkpoints are not in helpers/weights")
def test_quality_benchmark(tmp_path):
    doc = _bench("quality.py", "--quick", "--out", tmp_path / "quality.json")
    assert doc["images"]["count"] == 1
    assert {"pipeline", "unet", "classical"} <= set(doc["methods"])
    assert doc["methods"]["seed-dcgan"] == {"skipped": "--seed-images 0"}
    overall = doc["methods"]["pipeline"]["overall"]
    assert overall["count"] == len(doc["conditions"]["presets"])  # one image, every preset, no operators
    assert overall["psnr"] > overall["identity_psnr"]  # the bundled pipeline beats doing nothing
    assert isinstance(doc["targets"]["all"], bool)


@pytest.mark.slow  # ~80 s here: two fresh processes each run a 2.3 GB seed-DCGAN step at its fixed 256 px
def test_train_speed_benchmark(tmp_path):
    doc = _bench("train_speed.py", "--batch-sizes", 1, "--steps", 1, "--device", "cpu",
                 "--out", tmp_path / "train_speed.json")
    (row,) = doc["rows"]
    assert row["model"] == "seed-dcgan" and row["batch_size"] == 1 and row["device"] == "cpu"
    assert row["train_images_per_s"] > 0 and row["infer_s_per_image"] > 0 and row["train_peak_rss_mb"] > 100
    assert row["train_speed_vs_baseline"] == pytest.approx(1.0)


@pytest.mark.slow  # 1-2 min here: seven fresh processes, one of them a 2.3 GB seed-DCGAN training step
@pytest.mark.skipif(not all(DEFAULT_CHECKPOINTS[m].is_file() for m in ("unet", "detector")),
                    reason="the bundled U-Net and detector checkpoints are not in helpers/weights")
def test_restorer_vs_seed_benchmark(tmp_path):
    doc = _bench("restorer_vs_seed.py", "--quick", "--threads", 1, "--out", tmp_path / "restorer_vs_seed.json",
                 timeout=600)
    assert [(r["model"], r["batch_size"]) for r in doc["rows"]] == [("seed-dcgan", 1), ("unet", 1)]
    assert all(r["train_images_per_s"] > 0 and r["infer_s_per_image"] > 0 for r in doc["rows"])
    (ratio,) = doc["ratios"]
    assert ratio["train_speedup"] > 0 and ratio["infer_speedup"] > 0 and 0 < ratio["train_memory_ratio"]
    assert doc["scan"]["size"] == doc["pipeline"]["scan"]["size"] == "320x240"
    assert doc["pipeline"]["infer_s_per_image"] > 0 and doc["pipeline"]["infer_speedup_vs_seed"] > 0
    assert doc["pipeline"]["infer_s_per_image_tone_fine"] > 0
    assert 0 < doc["checkpoint"]["checkpoint_fp16_mb"] < 10  # the fp16 U-Net, as bundled
    assert set(doc["targets_met"]) >= {"infer_speedup >= 20", "pipeline infer_speedup >= 20"}
    assert all(isinstance(v, bool) for v in doc["targets_met"].values())
