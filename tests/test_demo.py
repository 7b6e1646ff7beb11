"""`python -m helpers demo`: aged and restored images, grids, an HTML page whose every image exists, metrics
for every image and method; deterministic, refuses to overwrite, and still works without the U-Net."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from helpers import demo
from helpers.__main__ import main
from helpers.aging import PRESETS
from helpers.data import bundled_samples
from helpers.restore import DEFAULT_CHECKPOINTS

METRIC_KEYS = {"psnr", "ssim", "sharpness", "sharpness_ratio", "noise"}


N_SAMPLES = 2  # of the bundled 10: every stage runs, in seconds rather than the full demo's ~30 s


def few_samples(monkeypatch):
    load = demo.load_samples
    monkeypatch.setattr(demo, "load_samples", lambda: dict(list(load().items())[:N_SAMPLES]))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """(output folder, the --json document) of one demo run, shared by the tests that only read it."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "out"
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as printed:
        few_samples(patch)
        assert main(["demo", "--out", str(out), "--json"]) == 0
    return out, json.loads(printed.getvalue())


def referenced_files(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_demo_ages_restores_and_measures(demo_run):
    out, printed = demo_run
    summary = json.loads((out / "summary.json").read_text())
    assert printed.items() >= summary.items()
    n_samples = N_SAMPLES
    methods = [m for m in ("pipeline", "unet") if all(DEFAULT_CHECKPOINTS[c].is_file() for c in
                                                      (("detector", "unet") if m == "pipeline" else (m,)))]
    methods += ["classical"]
    assert len(summary["samples"]) == n_samples and summary["methods"] == methods
    assert summary["presets"] == list(PRESETS) and set(summary["operators_used"]) == set(PRESETS)
    for preset, used in summary["operators_used"].items():
        assert set(used) <= {name for name, *_ in PRESETS[preset]}
        assert all(1 <= count <= n_samples for count in used.values())
    assert len(list((out / "aged").rglob("*.png"))) == 2 * n_samples * len(PRESETS)
    assert len(list((out / "restored").rglob("*.png"))) == len(methods) * n_samples * len(PRESETS)

    for name in ("grid.png", "restored_grid.png"):
        grid = Image.open(out / name)
        assert grid.format == "PNG" and grid.size[0] > 600 and grid.size[1] > 100 * N_SAMPLES  # rows: samples
    for path in bundled_samples("old"):  # real old photos: restored at their own size by every method
        size = Image.open(path).size
        assert all(Image.open(out / "old" / v / f"{path.stem}.png").size == size for v in ["original", *methods])
        if "pipeline" in methods:  # the damage it found, drawn over the original, and what each stage did
            assert Image.open(out / "old" / "pipeline_mask" / f"{path.stem}.png").size == size
            stages = summary["old_photo_stages"][path.stem]
            assert set(stages) == {"deblock", "tone", "focus", "fill", "rims"} and 0 < stages["fill"]["found"] < 0.5

    quality = json.loads((out / "metrics.json").read_text())
    assert quality["methods"] == methods
    assert len(quality["per_image"]) == n_samples * len(PRESETS) * (1 + len(methods))
    assert all(METRIC_KEYS <= set(row) for row in quality["per_image"])
    assert {row["method"] for row in quality["per_image"]} == {"identity", *methods}
    for method in ["identity", *methods]:
        assert set(quality["means"][method]) == {*PRESETS, "overall"}
        assert quality["means"][method]["overall"]["count"] == n_samples * len(PRESETS)
    assert quality["means"]["identity"]["overall"]["psnr"] < 40  # the aged images really are damaged
    default = quality["means"][methods[0]]  # the restorer `restore` uses unless told otherwise
    # beats doing nothing (measured: +1.05 dB, SSIM 0.80 -> 0.83 on these two samples; a seeded run)
    assert default["overall"]["psnr"] > quality["means"]["identity"]["overall"]["psnr"] + 0.5
    assert default["overall"]["ssim"] > quality["means"]["identity"]["overall"]["ssim"]
    assert len(quality["old_photos"]) == len(bundled_samples("old")) * (1 + len(methods))

    page = (out / "index.html").read_text()
    files = referenced_files(page)
    assert {"grid.png", "restored_grid.png", "metrics.json"} <= set(files)
    assert all((out / f).is_file() for f in files) and not re.search(r"(?:src|href)=\"(?:https?:)?//", page)
    assert page.count('type="range"') == len(methods) * (n_samples * len(PRESETS) + len(bundled_samples("old")))
    if "pipeline" in methods:  # one sentence per real photo on what the stages decided
        assert page.count("of the pixels found as damage") == len(bundled_samples("old"))


def test_demo_is_deterministic_and_refuses_to_overwrite(demo_run, monkeypatch, capsys):
    out, _ = demo_run
    few_samples(monkeypatch)
    before = {name: (out / name).read_bytes() for name in ("grid.png", "restored_grid.png", "metrics.json")}
    assert main(["demo", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "grid.png").read_bytes() == before["grid.png"]
    assert main(["demo", "--out", str(out), "--overwrite"]) == 0
    assert {name: (out / name).read_bytes() for name in before} == before  # fixed seed: the same again


def test_demo_without_the_unet_checkpoint_still_ages_and_says_why(monkeypatch, capsys, tmp_path):
    few_samples(monkeypatch)
    for model in ("unet", "detector"):
        monkeypatch.setitem(DEFAULT_CHECKPOINTS, model, tmp_path / "missing.safetensors")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "U-Net restoration skipped" in err and "Pipeline restoration skipped" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"] == ["classical"]
    assert "python -m helpers train" in summary["restoration_skipped"]
    assert "helpers.bundle" in summary["restoration_skipped"]
    assert len(list((out / "aged").rglob("*.png"))) == 2 * N_SAMPLES * len(PRESETS)
    assert not (out / "restored" / "unet").exists() and not (out / "restored" / "pipeline").exists()
    page = (out / "index.html").read_text()
    assert "U-Net restoration skipped" in page and all((out / f).is_file() for f in referenced_files(page))


def test_the_stage_sentence_says_what_was_found_and_what_the_verifier_left():
    from helpers.demo_page import describe_stages

    notes = {"deblock": {"ran": False}, "focus": {"ran": False, "blur_px": 0.5},
             "tone": {"mode": "auto", "black_point": 12.0, "curves": 3.0, "kept": 0.0},
             "fill": {"found": 0.02, "dropped": 0.0, "filled": 0.05}}
    assert "2.00% of the pixels found as damage and filled; tone left as it was" in describe_stages(notes)
    notes["fill"]["dropped"] = 0.005
    sentence = describe_stages(notes)
    assert "2.00% of the pixels found as damage, 1.50% filled (the rest judged not worth a fill)" in sentence
    notes["rims"] = {"ran": True, "changed": 0.0012}
    assert "1.50% filled (the rest judged not worth a fill), 0.12% more at the rims of what was found" in describe_stages(notes)
