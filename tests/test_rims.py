"""The rims stage (restore/rims.py, models/blender.py, blend_training.py): where the wider fill may go, that
the blender's choice is what the pipeline returns there and nothing changes past it, and that its loss is
the benchmark's measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import UsageError
from helpers.blend_training import PLANES, CropMemory, blend_losses, crop_db
from helpers.io import from_float
from helpers.models import build_models
from helpers.models.blender import CHOICES, FEATURES, PRIOR, features, weights
from helpers.restore import Restorer, restore_image
from helpers.restore import rims as rims_module
from helpers.restore.fill import fill, widen
from helpers.restore.pipeline import load_pipeline, pipeline_restorer
from helpers.restore.rims import REACH, region, rims

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Choose(torch.nn.Module):
    """A stand-in blender that always prefers one choice (0 keep, 1 fill, 2 wider fill) by a wide margin."""

    stride = 1

    def __init__(self, choice: int):
        super().__init__()
        self.choice = choice
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        assert x.shape[1] == FEATURES
        logits = torch.zeros(x.shape[0], CHOICES, *x.shape[-2:])
        logits[:, self.choice] = 10 * PRIOR
        return logits


def _scene():
    """A gray ramp with a white scratch whose core is marked and whose faint ends the detector gives 0.3."""
    y, x = np.mgrid[0:64, 0:80].astype(np.float32)
    planes = (0.3 + 0.3 * x / 79)[None].copy()
    planes[0, 30, 10:70] = 1.0
    detected = np.zeros((64, 80), np.float32)
    detected[30, 25:55] = 0.9  # the core, found
    detected[30, 10:25] = detected[30, 55:70] = 0.3  # the ends, under the threshold
    widened = widen(detected > 0.5, 1)
    return planes, detected, widened


def test_the_wider_region_holds_the_fill_a_ring_and_what_either_detector_gives_a_little():
    planes, detected, widened = _scene()
    speckled = np.zeros_like(detected)
    speckled[5, 5] = REACH + 0.1
    wider = region(widened, detected, speckled)
    assert (wider >= widened).all() and wider[30, 10] and wider[5, 5]
    assert wider[31 + 2, 40] and not wider[31 + 3, 40]  # a 2 px ring past the widened mask at 256 px
    assert not region(widened, detected, None)[5, 5]
    big = np.kron(widened, np.ones((8, 8), bool))  # 512 px: the ring is twice as wide
    wider = region(big, np.zeros(big.shape, np.float32), None)
    assert wider[32 * 8 - 1 + 4, 320] and not wider[32 * 8 - 1 + 5, 320]


@pytest.mark.parametrize("choice", [0, 1, 2])
def test_the_blend_takes_what_the_blender_chooses_inside_the_region_and_nothing_past_it(choice):
    planes, detected, widened = _scene()
    filled = fill(planes, widened)
    notes = {}
    out, reach = rims(_Choose(choice), planes, filled, widened, detected, None, notes=notes)
    wide = fill(planes, reach)
    rim = reach & ~widened
    expected = (planes, filled, wide)[choice]
    assert np.allclose(out[:, rim], expected[:, rim], atol=1e-4)
    assert np.array_equal(out[:, ~reach], planes[:, ~reach])
    assert reach[30, 12] and notes["ran"]
    if choice == 0:  # what the detectors marked stays filled: keep is no choice there
        assert np.abs(out - filled)[:, widened].max() < 0.05 * np.abs(wide - filled)[:, widened].max() + 1e-6
        assert notes["changed"] < widened.mean()
    else:
        assert np.allclose(out[:, widened], expected[:, widened], atol=1e-4)
    if choice == 2:  # the faint ends of the scratch are gone too
        assert notes["changed"] > 0 and out[0, 30, 12] < 0.5


@pytest.mark.parametrize("band, overlap", [(7, 3), (2, 5)])
def test_a_big_photo_is_blended_in_bands_to_the_same_result(monkeypatch, band, overlap):
    """Each band must see the rows around it as the fill left them, not as an earlier band blended them."""

    class _Smooth(_Choose):  # its choice follows the fill's luma around each pixel, so it sees the bands' rows
        def forward(self, x):
            logits = torch.zeros(x.shape[0], CHOICES, *x.shape[-2:])
            logits[:, 2] = 40 * torch.nn.functional.avg_pool2d(x[:, 1:2], 5, stride=1, padding=2)[:, 0]
            return logits

    planes, detected, widened = _scene()
    filled = fill(planes, widened)
    whole, _ = rims(_Smooth(2), planes, filled.copy(), widened, detected, None, overlap=overlap)
    monkeypatch.setattr(rims_module, "BAND", band)
    monkeypatch.setattr(rims_module, "WHOLE_UP_TO", band)
    banded, _ = rims(_Smooth(2), planes, filled.copy(), widened, detected, None, overlap=overlap)
    assert not np.array_equal(whole, filled) and np.allclose(whole, banded, atol=1e-6)


def test_nothing_past_the_mask_leaves_the_fill_as_it_was():
    planes, detected, widened = _scene()
    filled = fill(planes, widened)
    out, reach = rims(_Choose(2), planes, filled, np.zeros_like(widened), np.zeros_like(detected), None,
                      notes=(notes := {}))
    assert out is filled and not reach.any() and notes == {"ran": False, "changed": 0.0}


def test_a_fresh_blender_starts_from_todays_choice():
    blender, discriminator, spec = build_models("blender")
    assert discriminator is None and spec.task == "blend"
    planes = [torch.rand(2, 1, 40, 48) for _ in range(3)] + [torch.ones(2, 1, 40, 48).bernoulli_(0.5) for _ in range(2)]
    x = features(*planes, torch.rand(2, 1, 40, 48), torch.rand(2, 1, 40, 48))
    w = weights(blender(x), planes[3])
    assert w.shape == (2, CHOICES, 40, 48) and torch.allclose(w.sum(1), torch.ones(2, 40, 48))
    today = torch.where(planes[3] > 0.5, w[:, 1:2], w[:, :1])
    assert today.min() > 0.9  # the prior: fill inside the mask, keep outside
    eager = torch.zeros(2, CHOICES, 40, 48)
    eager[:, 0] = 100.0  # however much the network wants to keep a marked pixel, it cannot
    assert weights(eager, planes[3])[:, :1][planes[3] > 0.5].max() < 1e-6
    with pytest.raises(UsageError, match="gray"):
        build_models("blender", channels=3)


def test_the_loss_is_the_crops_mean_db_and_today_is_the_fill_as_marked():
    clean = torch.full((2, 1, 16, 16), 0.5)
    assert crop_db(clean + 1 / 255, clean).tolist() == pytest.approx([10 * np.log10(1 + 0.1)] * 2, rel=1e-4)
    crops = torch.zeros(3, len(PLANES), 16, 16, dtype=torch.uint8)
    crops[:, 0] = 200  # the photo: a bright scratch everywhere
    crops[:, 1] = crops[:, 2] = crops[:, 3] = 100  # clean; both fills right
    crops[:, 4, :, :8] = crops[:, 5] = 255  # the mask holds half the crop, the region all of it
    loss, today, out = blend_losses(_Choose(2), crops)
    assert torch.allclose(out, crops[:, 1:2].float() / 255, atol=1e-4)
    assert loss.item() == pytest.approx(10 * np.log10(0.1), abs=0.01)  # the wider fill everywhere: perfect
    assert today.item() == pytest.approx(10 * np.log10(100 ** 2 / 2 + 0.1), abs=0.01)


def test_the_memory_draws_seeded_minibatches_of_recent_crops():
    first, second = CropMemory(0), CropMemory(0)
    crops = torch.arange(20 * len(PLANES) * 4, dtype=torch.int64).reshape(20, len(PLANES), 2, 2).to(torch.uint8)
    for memory in (first, second):
        assert list(memory.draws()) == []
        memory.add(crops)
        memory.add(crops[:0])
    a, b = list(first.draws()), list(second.draws())
    assert len(a) > 1 and all(torch.equal(x, y) for x, y in zip(a, b))


def test_the_pipeline_blends_rims_only_for_the_detectors_own_mask():
    from tests.test_pipeline import _BrightThings

    planes, _, _ = _scene()
    photo = from_float(planes[0])
    unchanged = Restorer("reference", 1, lambda p, tile, overlap: (p, None), False)
    results = {}
    for mode in ("auto", "off"):
        notes = {}
        restorer = pipeline_restorer(_BrightThings(), unchanged, 0.5, tone="off", focus="off", blender=_Choose(2),
                                     rims=mode)
        results[mode], _ = restore_image(photo, restorer, notes=notes)
        assert notes["rims"]["ran"] == (mode == "auto")
        assert restorer.metadata["rims"] == mode
    assert (results["off"][30, 10:70] < 200).all()  # the fill as marked takes the scratch out
    moved = np.nonzero(results["auto"] != results["off"])[0]
    assert len(moved) and moved.min() >= 30 - 1 - 2 and moved.max() <= 30 + 1 + 2  # within the rims' ring
    drawn = np.zeros(planes.shape[1:], bool)
    drawn[30, 10:70] = True
    notes = {}
    restore_image(photo, pipeline_restorer(_BrightThings(), unchanged, 0.5, tone="off", focus="off",
                                           blender=_Choose(2)), damage=drawn, notes=notes)
    assert not notes["rims"]["ran"]  # the user's mask is filled exactly as drawn


def test_an_unknown_rims_mode_is_refused():
    with pytest.raises(UsageError, match="rims"):
        load_pipeline(device="cpu", rims="sometimes")
