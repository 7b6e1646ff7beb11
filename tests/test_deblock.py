"""The pipeline's deblock stage: a network that takes a scan's JPEG blocks out, run only where they show."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import metrics
from helpers.age_folder import prepare_clean
from helpers.aging import OPERATORS, apply_operator
from helpers.data import AgedDataset, Recompressed, bundled_samples
from helpers.io import from_float, read_image
from helpers.models.deblocker import Deblocker
from helpers.restore.deblock import BLOCKING_FROM, blocking, deblock_correction
from helpers.restore.pipeline import repair
from helpers.restore.restorers import DEFAULT_CHECKPOINTS

BUNDLED = pytest.mark.skipif(not DEFAULT_CHECKPOINTS["deblocker"].is_file(),
                             reason="the bundled deblocker is not in helpers/weights")


def _photo(index: int, size: int = 256) -> np.ndarray:
    """A bundled photo, gray 8-bit, as the benchmark ages them."""
    return from_float(prepare_clean(read_image(bundled_samples("clean")[index]), size, gray=True), np.uint8)


@pytest.fixture(scope="module")
def deblocker():
    from helpers.checkpoints import load_generator

    return load_generator(DEFAULT_CHECKPOINTS["deblocker"], "deblocker", device="cpu")[0]


def test_only_jpeg_draws_blocks_the_gate_sees():
    """Every other aging operator at 0.6 stays under the gate on the bundled photos; JPEG at 0.6 is over it."""
    for index in range(3):
        clean = _photo(index)
        assert blocking(clean / 255) < BLOCKING_FROM, index
        for name in OPERATORS:
            aged = apply_operator(clean, name, 0.6, seed=index).image.astype(np.float32) / 255
            assert (blocking(aged) > BLOCKING_FROM) == (name == "jpeg"), (index, name, blocking(aged) * 255)


def test_the_model_keeps_any_size_and_starts_as_the_identity():
    model = Deblocker(width=8, blocks=1, head=4).eval()
    x = torch.rand(1, 1, 37, 50) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(model(x), x)  # both residuals start at zero


def test_tiles_follow_the_jpeg_grid(deblocker):
    """Tiles start on multiples of 8, so a tiled run sees the blocks where a whole run does."""
    from helpers.restore.tiling import tiled_forward

    aged = apply_operator(_photo(0, 200), "jpeg", 0.6, seed=0).image.astype(np.float32) / 255
    x = torch.from_numpy(aged)[None, None] * 2 - 1
    with torch.inference_mode():
        whole = deblocker(x)
        tiled = tiled_forward(deblocker, x, tile=100, overlap=20, multiple=deblocker.stride)[0]
    assert (tiled - whole).abs().mean() < 0.002


def test_recompressed_items_are_the_aged_photo_compressed_and_replay():
    base = AgedDataset(bundled_samples("clean")[:2], size=64, presets=["unscanned"], seed=3, train=True)
    data = Recompressed(base, seed=3, strength=(0.8, 1.0))
    compressed, target, mask = data[1]
    aged, _, base_mask = base[1]
    assert torch.equal(target, aged) and torch.equal(mask, base_mask)
    assert blocking(compressed[0].numpy()) > BLOCKING_FROM > blocking(target[0].numpy())
    assert torch.equal(Recompressed(base, seed=3, strength=(0.8, 1.0))[1][0], compressed)  # same seed, same bytes
    data.set_epoch(1)
    assert base.epoch == 1 and not torch.equal(data[1][1], target)  # a new epoch ages anew


@BUNDLED
def test_the_bundled_deblocker_takes_blocks_out_and_leaves_other_photos_alone(deblocker):
    for index in range(4):
        clean = _photo(index)
        compressed = apply_operator(clean, "jpeg", 0.6, seed=index).image
        luma = compressed.astype(np.float32) / 255
        notes = {}
        change = deblock_correction(deblocker, luma, tile=1024, overlap=128, notes=notes)
        assert notes == {"blocking": round(255 * blocking(luma), 2), "ran": True}, index
        deblocked = np.clip(luma + change, 0.0, 1.0)
        assert metrics.psnr(clean, deblocked) > metrics.psnr(clean, compressed) + 0.3, index
        assert blocking(deblocked) < 0.7 * blocking(luma), index
        grainy = apply_operator(clean, "grain", 0.6, seed=index).image.astype(np.float32) / 255
        assert deblock_correction(deblocker, grainy, tile=1024, overlap=128, notes=notes) is None, index
        assert notes["ran"] is False and notes["blocking"] < 255 * BLOCKING_FROM, index


@BUNDLED
def test_a_colour_jpeg_is_deblocked_in_every_plane_and_keeps_its_chroma(deblocker):
    clean = from_float(prepare_clean(read_image(bundled_samples("clean")[1]), 256, gray=False), np.uint8)
    compressed = apply_operator(clean, "jpeg", 0.6, seed=0).image
    planes = compressed.transpose(2, 0, 1).astype(np.float32) / 255
    out = repair(planes, None, None, 0.5, tone="off", focus="off", damage=np.zeros(clean.shape[:2], bool),
                 deblocker=deblocker)["deblocked"]
    restored = (out.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    assert metrics.psnr(clean, restored) > metrics.psnr(clean, compressed)
    change, unclipped = out - planes, ((out > 0) & (out < 1)).all(0)
    assert np.abs(change).max() > 0.01
    assert np.abs(change[1:] - change[:1])[:, unclipped].max() < 1e-6  # one change for all planes


@BUNDLED
def test_deblock_off_leaves_the_blocks(deblocker):
    compressed = apply_operator(_photo(2), "jpeg", 0.6, seed=0).image.astype(np.float32)[None] / 255
    none = np.zeros(compressed.shape[1:], bool)
    kept = repair(compressed, None, None, 0.5, tone="off", focus="off", damage=none, deblocker=deblocker,
                  deblock="off")["restored"]
    assert np.array_equal(kept, compressed)
    changed = repair(compressed, None, None, 0.5, tone="off", focus="off", damage=none, deblocker=deblocker)["restored"]
    assert blocking(changed[0]) < 0.7 * blocking(compressed[0])


@BUNDLED
def test_the_detectors_look_at_the_photo_as_it_came(deblocker):
    """They learned damage on photos whose aging included JPEG; on deblocked ones they marked more false
    alarms. So deblocking changes what is filled with, never what is found."""
    from helpers.restore.pipeline import load_stages

    stages = load_stages(device="cpu")
    aged = apply_operator(apply_operator(_photo(1), "scratches", 0.6, seed=1).image, "jpeg", 0.8, seed=1).image
    planes = aged.astype(np.float32)[None] / 255
    common = dict(specks=stages["specks"], speck_threshold=stages["speck_threshold"], tone="off", focus="off")
    both = {mode: repair(planes, stages["detector"], stages["reference"], stages["threshold"], deblocker=deblocker,
                         deblock=mode, **common) for mode in ("auto", "off")}
    assert both["auto"]["mask"].any() and np.array_equal(both["auto"]["mask"], both["off"]["mask"])
    assert not np.array_equal(both["auto"]["restored"], both["off"]["restored"])
