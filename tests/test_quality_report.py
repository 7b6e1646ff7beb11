"""The README's quality table is the one benchmarks/quality.py prints from benchmarks/quality.json, so the
figures people read are the measured ones (rerun `python benchmarks/quality.py --markdown` after a rerun)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quality_script():
    spec = importlib.util.spec_from_file_location("quality_benchmark", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_quality_table_is_the_measured_one():
    result = json.loads((ROOT / "benchmarks" / "quality.json").read_text())
    table = _quality_script().markdown(result)
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")
    overall = result["methods"]["unet"]["overall"]
    assert f"{overall['identity_psnr']:.2f} → {overall['psnr']:.2f}" in table


def test_bundled_metadata_carries_the_same_measurement():
    result = json.loads((ROOT / "benchmarks" / "quality.json").read_text())
    bundled = json.loads((ROOT / "helpers" / "weights" / "unet_default.json").read_text())
    assert bundled["quality"]["weights_sha256"] == result["methods"]["unet"]["weights_sha256"]
    assert bundled["quality"]["overall"] == result["methods"]["unet"]["overall"]
