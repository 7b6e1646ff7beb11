"""The repair pipeline (detect, tone, fill): each stage does its one job and nothing else, its checkpoints
come from the one training loop, and the bundled pipeline removes damage that the aging draws."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from helpers import metrics
from helpers.age_folder import prepare_clean
from helpers.aging import apply_operator
from helpers.data import AgedDataset, bundled_samples
from helpers.io import from_float, read_image, to_float
from helpers.models import build_models
from helpers.restore import DEFAULT_CHECKPOINTS, Restorer, restore_image
from helpers.restore.fill import DEEP_FROM, FRAME_RAMP, fill, fill_deep, frames, has_deep, hole_depth, widen, widen_px
from helpers.restore.guided import apply_curves, apply_in_strips, fit_curves, guided_tone
from helpers.models.inpainter import conditioned, prefilled
from helpers import UsageError
from helpers.restore.pipeline import OPTIONAL_STAGES, STAGES, load_pipeline, load_stages, pipeline_restorer, repair
from helpers.restore.tone import (BLACK_FROM, BLACK_TO, DETAIL_FROM, DETAIL_TO, EDGE_FROM, EDGE_SCALE, GATE_FROM,
                                  GATE_TO, HALO_AT_256, lifted, luminance, size_gate, tone_correction)
from helpers.restore.detect import damage_probability
from helpers.restore.verify import components
from helpers.train import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")
BUNDLED = all(DEFAULT_CHECKPOINTS[stage].is_file() for stage in STAGES)


def _photo(index: int = 0, size: int = 128) -> np.ndarray:
    return prepare_clean(read_image(bundled_samples("clean")[index]), size, gray=True)


class _BrightThings(torch.nn.Module):
    """A stand-in detector that marks every pixel brighter than 0.9: the white scratches drawn below."""

    stride = 1

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return ((x + 1) / 2 - 0.9) * 100


class _DarkThings(_BrightThings):
    """A stand-in speck finder that marks every pixel darker than 0.1."""

    def forward(self, x):
        return (0.1 - (x + 1) / 2) * 100


def _reference(change) -> Restorer:
    """A stand-in for the U-Net whose tonal change the tone stage fits: planes -> change(planes)."""
    return Restorer("reference", 1, lambda planes, tile, overlap: (np.clip(change(planes), 0, 1), None), False)


def test_a_fresh_detector_finds_nothing_and_takes_any_size():
    detector, none, spec = build_models("detector")
    assert none is None and spec.task == "detect"
    img = _photo()[:77, :101]
    assert detector(torch.zeros(1, 1, 77, 101)).shape == (1, 1, 77, 101)
    restored, mask = pipeline_restorer(detector.eval(), _reference(lambda x: x), 0.5).run(img[None], 1024, 128)
    assert not mask.any()  # the detector's bias starts it at "nothing is damaged"
    np.testing.assert_array_equal(restored[0], img)


def test_a_fresh_speck_finder_finds_nothing_at_full_resolution_and_any_size():
    finder, none, spec = build_models("specks")
    assert none is None and spec.task == "detect" and finder.stride == 1
    with torch.no_grad():
        logits = finder(torch.zeros(1, 1, 77, 101))
    assert logits.shape == (1, 1, 77, 101) and bool((logits.sigmoid() < 0.05).all())
    for shape in ((1, 1), (5, 7), (8, 64)):  # sides no longer than its widest dilation's reflection padding
        assert damage_probability(finder.eval(), np.zeros(shape, np.float32), tile=0, overlap=0).shape == shape


def test_the_pipeline_fills_what_either_detector_marks():
    img = np.full((64, 64), 0.5, np.float32)
    img[10, 5:40] = 1.0  # a bright scratch for the damage detector
    img[40:43, 30:33] = 0.0  # a dark speck for the speck finder
    same = _reference(lambda x: x)
    both = repair(img[None], _BrightThings(), same, 0.5, specks=_DarkThings(), speck_threshold=0.5)
    alone = repair(img[None], _BrightThings(), same, 0.5)
    assert both["mask"][10, 5:40].all() and both["mask"][40:43, 30:33].all() and both["mask"].sum() == 35 + 9
    assert not alone["mask"][40:43, 30:33].any()
    np.testing.assert_allclose(both["restored"][0][40:43, 30:33], 0.5, atol=0.02)


def test_tone_curves_are_per_pixel_and_strips_equal_the_whole():
    torch.manual_seed(0)
    curves = torch.randn(1, 1, 9, 5, 4) * 0.1  # offsets in [-1, 1] units, 5 x 4 cells
    img = _photo(1, 300)[:, :260]
    x = torch.from_numpy(img)[None, None] * 2 - 1
    whole = apply_curves(x, curves)[0, 0].add(1).div(2).clamp(0, 1).numpy()
    strips = apply_in_strips(x, curves)  # 256-row strips
    np.testing.assert_allclose(strips, whole, atol=1e-6)
    # a curve, not a filter: with the photo's curves fixed, swapping two neighbouring pixels' values swaps
    # their outputs (up to how little the curves move in one pixel), whereas any blur would mix them
    r, c = np.unravel_index(np.argmax(np.abs(np.diff(img, axis=1))), (img.shape[0], img.shape[1] - 1))
    swapped = x.clone()
    swapped[..., r, c], swapped[..., r, c + 1] = x[..., r, c + 1], x[..., r, c]
    out, ref = apply_curves(swapped, curves)[0, 0], apply_curves(x, curves)[0, 0]
    step = abs(ref[r, c] - ref[r, c + 1])
    assert step > 0.1  # an edge: the two values differ enough for the test to tell
    assert abs(out[r, c] - ref[r, c + 1]) < 0.1 * step and abs(out[r, c + 1] - ref[r, c]) < 0.1 * step


def test_guided_curves_reproduce_a_tone_change_but_not_a_blur():
    """Fitted to a faded-then-vignetted photo, the curves undo both; fitted to a blurred photo, they keep
    most of the edges: no tone curve can blur, though a grid of them can flatten local contrast a little."""
    clean = _photo(0, 192).astype(np.float64)
    y, x = np.mgrid[0:192, 0:192] / 191.0
    gain = 1 - 0.4 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)  # a vignette, slow enough for the grid
    aged = (0.5 * clean + 0.3) * gain
    keep = np.ones(clean.shape, bool)
    curves = fit_curves(aged, clean, keep, (7, 7))
    table = torch.from_numpy(curves)[None, None] * 2
    undone = apply_curves(torch.from_numpy(aged.astype(np.float32))[None, None] * 2 - 1, table)[0, 0]
    undone = undone.add(1).div(2).numpy()
    assert metrics.psnr(clean, undone) > metrics.psnr(clean, aged) + 12
    blurred = cv2.GaussianBlur(clean, (0, 0), 2.0)
    curves = torch.from_numpy(fit_curves(clean, blurred, keep, (7, 7)))[None, None] * 2
    curved = apply_curves(torch.from_numpy(clean.astype(np.float32))[None, None] * 2 - 1, curves)[0, 0]
    curved = curved.add(1).div(2).numpy()
    assert metrics.edge_contrast(clean, blurred) < 0.7 and metrics.edge_contrast(clean, curved) > 0.78


def test_the_tone_stage_leaves_a_photo_whose_tone_is_fine_untouched():
    """The U-Net nudges good photos by a few levels (grain, JPEG, vignetting); below GATE_FROM levels away
    from the damage that nudge is dropped entirely, so the photo comes back bit for bit."""
    img = np.minimum(_photo(0, 96), 0.85)
    img[40:43] = 1.0  # a white scratch, which the stand-in detector finds
    x = np.mgrid[0:96, 0:96][1] / 95.0
    nudge = (GATE_FROM - 0.5) / 255 * np.sign(x - 0.5)  # a spurious brightening left, darkening right
    damaged = img > 0.9
    spurious = _reference(lambda planes: planes + nudge - 0.8 * damaged)  # what it does to the scratch must not count
    assert not tone_correction(spurious, img, damaged, tile=1024, overlap=128)[0].any()
    stages = repair(img[None], _BrightThings(), spurious, 0.5)
    assert stages["mask"].sum() == 3 * 96
    np.testing.assert_array_equal(stages["toned"][0], img)
    np.testing.assert_array_equal(stages["restored"][0][~stages["widened"]], img[~stages["widened"]])


def test_the_tone_stage_corrects_a_faded_photo():
    """A faded print moves every pixel by tens of levels: the correction passes the gate whole, and the
    gate grows linearly from GATE_FROM to GATE_TO levels in between."""
    clean = _photo(0, 96)
    faded = (0.5 * clean + 0.35).astype(np.float32)
    undo = _reference(lambda planes: (planes - 0.35) / 0.5)  # the U-Net, were it perfect
    damaged = np.zeros(clean.shape, bool)
    corrected = faded + tone_correction(undo, faded, damaged, tile=1024, overlap=128)[0]
    assert metrics.psnr(clean, corrected) > metrics.psnr(clean, faded) + 15
    middle = np.full(clean.shape, (GATE_FROM + GATE_TO) / 2 / 255, np.float32)
    assert size_gate(middle, damaged) == pytest.approx(0.5) and size_gate(2 * middle, damaged) == 1.0
    assert size_gate(middle, np.ones(clean.shape, bool)) == 0.0  # nothing but damage: nothing to judge tone by


def test_the_rest_of_the_unets_change_is_added_to_a_faded_photo_only_when_it_is_big():
    """Curves cannot sharpen: what the U-Net does beyond them (here an unsharp mask on top of undoing the
    fade) is added whole when its mean size away from the damage reaches DETAIL_TO levels. Under DETAIL_FROM
    only what steepens the photo's strong edges is added; where the U-Net smooths (its blur of a photo that
    only faded) nothing of that smoothing is."""
    clean = _photo(0, 96)
    faded = (0.5 * clean + 0.35).astype(np.float32)
    damaged = np.zeros(clean.shape, bool)
    detail = clean - cv2.GaussianBlur(clean, (0, 0), 1.5)
    size = 255 * np.abs(detail).mean()
    strong = np.abs(faded - cv2.GaussianBlur(faded, (0, 0), EDGE_SCALE)) > EDGE_FROM
    assert 0.02 < strong.mean() < 0.5
    for level, sign in ((DETAIL_TO + 1, 1), (DETAIL_FROM - 1, 1), (DETAIL_FROM - 1, -1)):
        gain = sign * level / size
        reference = _reference(lambda planes: (planes - 0.35) / 0.5 + gain * detail)
        wanted = np.clip((faded - 0.35) / 0.5 + gain * detail, 0, 1)
        curves_only = guided_tone(reference, faded, damaged, tile=1024, overlap=128)[0]
        corrected = faded + tone_correction(reference, faded, damaged, tile=1024, overlap=128)[0]
        if level > DETAIL_TO:
            assert 255 * np.abs(corrected - wanted).mean() < 1.0 < 255 * np.abs(curves_only - wanted).mean()
            continue
        np.testing.assert_allclose(corrected[~strong], curves_only[~strong], atol=1e-6)  # strong edges only
        if sign > 0:  # the U-Net's sharpening is taken there
            assert (np.abs(corrected - curves_only) > 1e-4)[strong].mean() > 0.5
            assert np.abs(corrected - wanted)[strong].mean() < np.abs(curves_only - wanted)[strong].mean()
        else:  # its blur is not: the result is no softer than the curves' alone
            assert metrics.edge_contrast(clean, corrected) >= metrics.edge_contrast(clean, curves_only)


def test_along_a_frame_the_rest_of_the_unets_change_is_added_whole():
    """A small rest that smooths is left out (the test above), except within HALO_AT_256 px of a frame, where
    it is a tarnish halo's edge: there the correction is the U-Net's whole change."""
    clean = _photo(0, 96)
    faded = (0.5 * clean + 0.35).astype(np.float32)
    damaged = np.zeros(clean.shape, bool)
    detail = clean - cv2.GaussianBlur(clean, (0, 0), 1.5)
    gain = -(DETAIL_FROM - 1) / (255 * np.abs(detail).mean())  # a small smoothing
    reference = _reference(lambda planes: (planes - 0.35) / 0.5 + gain * detail)
    whole = np.clip((faded - 0.35) / 0.5 + gain * detail, 0, 1)
    frame = np.zeros(clean.shape, bool)
    frame[:, :4] = True
    near = np.zeros(clean.shape, bool)
    near[:, :4 + int(HALO_AT_256)] = True
    plain = faded + tone_correction(reference, faded, damaged, tile=1024, overlap=128)[0]
    framed = faded + tone_correction(reference, faded, damaged, tile=1024, overlap=128, frame=frame)[0]
    assert 255 * np.abs(framed - whole)[near].mean() < 0.05 and 255 * np.abs(plain - whole)[near].mean() > 0.5
    far = np.zeros(clean.shape, bool)
    far[:, 4 + int(HALO_AT_256) + 2:] = True
    np.testing.assert_array_equal(framed[far], plain[far])
    y, x = np.mgrid[:96, :96]
    mat = ((x + 0.5 - 48) / 36) ** 2 + ((y + 0.5 - 48) / 36) ** 2 > 1  # an oval mat: the pipeline finds the frame
    stages = repair(faded[None], _BrightThings(), reference, 0.5, damage=mat)
    ring = ~stages["widened"] & (cv2.distanceTransform((~stages["widened"]).astype(np.uint8), cv2.DIST_L2, 3) < 8)
    assert 255 * np.abs(stages["toned"][0] - whole)[ring].mean() < 0.05


def test_the_tone_gate_wants_lifted_blacks_before_it_corrects():
    """A matte or low-key photo looks faded to the U-Net, but fading lifts the blacks: the same stretch is
    applied to a print whose black point rose past BLACK_TO levels, and dropped below BLACK_FROM, whatever
    its size; a dark speck on the lifted print (damage) does not count as its black."""
    clean = _photo(0, 96)
    clean = np.clip((clean - np.percentile(clean, 0.5)) / (clean.max() - np.percentile(clean, 0.5)), 0, 1)
    stretch = _reference(lambda planes: (planes - 0.5) * 1.6 + 0.5)
    damaged = np.zeros(clean.shape, bool)
    for black, kept in ((BLACK_FROM - 5, 0.0), (BLACK_TO + 5, 1.0)):
        low = black / 255
        print_ = (low + clean * (0.75 - low)).astype(np.float32)  # black point `black`, whites at 0.75
        assert 255 * np.percentile(print_, 0.5) == pytest.approx(black, abs=1.5)
        whole = tone_correction(stretch, print_, damaged, tile=1024, overlap=128, mode="on")[0]
        assert np.abs(whole).mean() * 255 > GATE_TO  # big enough for the size alone
        correction = tone_correction(stretch, print_, damaged, tile=1024, overlap=128)[0]
        np.testing.assert_allclose(correction, kept * whole, atol=1e-6)
    specked = print_.copy()
    specked[::8, ::8] = 0.02  # dark specks on 1.6 % of the pixels, all found by the detector
    found = specked < 0.05
    assert lifted(specked, found) == 1.0 and lifted(specked, np.zeros_like(found)) == 0.0


def _unneeded() -> Restorer:
    def run(planes, tile, overlap):
        raise AssertionError("the U-Net ran, though nothing could come of it")
    return Restorer("reference", 1, run, False)


def test_a_photo_whose_blacks_never_lifted_is_repaired_without_running_the_unet():
    """The gate would drop any correction of a photo with deep blacks, and a thin scratch is no hole wide
    enough for the U-Net's repaint: so the U-Net is not run, and the result is the same bytes as when it is."""
    img = _photo(0, 96)
    img = (np.clip((img - np.percentile(img, 0.5)) / (img.max() - np.percentile(img, 0.5)), 0, 1) * 0.85)
    img = img.astype(np.float32)
    img[40] = 1.0  # a 1-px white scratch, which the stand-in detector finds
    assert 255 * np.percentile(img, 0.5) < BLACK_FROM
    nudge = _reference(lambda planes: planes * 1.3 - 0.1)  # a big change the gate must drop
    ran = repair(img[None], _BrightThings(), nudge, 0.5)
    skipped = repair(img[None], _BrightThings(), _unneeded(), 0.5)
    assert ran["widened"].sum() == skipped["widened"].sum() == 3 * 96
    np.testing.assert_array_equal(skipped["restored"], ran["restored"])
    np.testing.assert_array_equal(skipped["toned"][0], img)
    with pytest.raises(AssertionError, match="the U-Net ran"):  # a faded print, or --tone on: it must run
        repair(img[None] * 0.5 + 0.35, _BrightThings(), _unneeded(), 0.5)
    with pytest.raises(AssertionError, match="the U-Net ran"):
        repair(img[None], _BrightThings(), _unneeded(), 0.5, tone="on")
    wide = img.copy()
    wide[60:76] = 1.0  # a 16-px band, like a torn corner or a flake: its inside needs the repaint
    with pytest.raises(AssertionError, match="the U-Net ran"):
        repair(wide[None], _BrightThings(), _unneeded(), 0.5)


def test_the_user_can_overrule_the_tone_gate_both_ways():
    """`off` drops even a fade's correction (a matte look that is intended); `on` keeps even a nudge the
    gate would drop."""
    clean = _photo(0, 96)
    faded = (0.5 * clean + 0.35).astype(np.float32)
    undo = _reference(lambda planes: (planes - 0.35) / 0.5)
    nudge = _reference(lambda planes: planes + 2 / 255)
    damaged = np.zeros(clean.shape, bool)
    assert not tone_correction(undo, faded, damaged, tile=1024, overlap=128, mode="off")[0].any()
    assert not tone_correction(nudge, clean, damaged, tile=1024, overlap=128)[0].any()
    kept = tone_correction(nudge, clean, damaged, tile=1024, overlap=128, mode="on")[0]
    assert abs(255 * kept.mean() - 2) < 0.5
    with pytest.raises(UsageError, match="tone must be one of"):
        load_pipeline(tone="sometimes")


def test_the_pipeline_says_what_each_stage_decided():
    """Why a photo came back darker, or untouched, is in the notes `restore_image` fills (the restore
    command's report): the black point and the share of the tone correction kept, the blur read, the share
    of pixels found and filled; a restorer without stages adds nothing."""
    clean = _photo(0, 96)
    faded = (0.5 * clean + 0.35).astype(np.float32)
    faded[40] = 1.0  # a white scratch, which the stand-in detector finds
    undo = _reference(lambda planes: (planes - 0.35) / 0.5)
    for tone, kept in (("auto", 1.0), ("off", 0.0)):
        notes = {}
        restore_image(from_float(faded), pipeline_restorer(_BrightThings(), undo, 0.5, tone=tone), notes=notes)
        assert set(notes) == {"deblock", "tone", "focus", "fill", "rims"} and notes["deblock"] == {"ran": False}
        assert notes["rims"] == {"ran": False}  # no blender given
        assert notes["tone"]["mode"] == tone and notes["tone"]["kept"] == kept
        assert notes["tone"]["black_point"] == pytest.approx(255 * np.percentile(faded[faded < 1], 0.5), abs=1)
        assert notes["fill"] == {"found": pytest.approx(1 / 96, abs=1e-5), "dropped": 0.0,
                                 "filled": pytest.approx(3 / 96, abs=1e-5)}
        assert notes["focus"]["ran"] is False and notes["focus"]["blur_px"] < 0.9
    assert notes["tone"]["curves"] is None  # "off", and no hole to repaint: the U-Net never ran
    untouched = {}
    restore_image(from_float(faded), undo, notes=untouched)
    assert untouched == {}


def test_fill_changes_only_the_widened_mask_and_repairs_a_scratch():
    clean = _photo(2)
    scratched = clean.copy()
    cv2.line(scratched, (5, 20), (120, 100), 0.98, 2)
    mask = np.abs(scratched - clean) > 0.03
    for method in ("telea", "ns"):
        out = fill(scratched[None], widen(mask, 1), method=method)[0]
        outside = ~widen(mask, 1)
        assert np.array_equal(out[outside], scratched[outside])
        assert metrics.psnr(clean, out) > metrics.psnr(clean, scratched) + 8
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_the_widening_grows_with_the_photo_and_is_read_by_the_verifier_alike():
    assert [widen_px(shape) for shape in ((64, 90), (256, 256), (3, 300, 400), (768, 1024), (3000, 4000))] == \
        [1, 1, 1, 3, 12]
    big = np.full((768, 1024), 0.5, np.float32)
    found = np.zeros(big.shape, bool)
    found[400, 500] = True
    rim = widen(found, 3)
    big[rim], big[found] = 0.7, 1.0  # a speck found at its core, with a 3 px soft rim around it
    filled = components(big, found.astype(np.float32), None, found)[3]
    # the verifier's own Telea fill reaches as far as the pipeline's at this size: the rim, and nothing past it
    changed = np.abs(filled - big) > 1e-6
    assert changed[rim].all() and not changed[~rim].any()


def test_pipeline_fills_what_its_detector_finds_in_color_and_keeps_the_rest():
    rgb = prepare_clean(read_image(bundled_samples("clean")[3]), 128, gray=False)
    rgb = np.minimum(rgb, 0.85)  # nothing in the photo itself is as bright as the scratch
    scratched = rgb.copy()
    cv2.line(scratched, (0, 64), (127, 70), (1.0, 1.0, 1.0), 1)
    restorer = pipeline_restorer(_BrightThings(), _reference(lambda x: x), 0.5)
    restored, mask = restore_image(from_float(scratched), restorer)
    assert restored.shape == rgb.shape and mask.shape == rgb.shape[:2]
    found = mask > 127
    assert found.sum() >= 120  # the scratch, about one pixel per column
    assert metrics.psnr(from_float(rgb), restored) > metrics.psnr(from_float(rgb), from_float(scratched)) + 5
    far = ~widen(found, 2)
    assert np.abs(restored[far].astype(int) - from_float(scratched)[far].astype(int)).max() <= 1


def test_deep_fill_leaves_thin_holes_to_telea_and_takes_the_unets_repaint_or_a_smooth_guess_deep_inside():
    """A 3 px scratch is Telea's alone; a 40 px corner hole's interior follows the U-Net where it repainted
    (left half) and a smoothed fill where it left the damage (right half); nothing outside a hole moves,
    and a colour photo gets one shift on all channels."""
    luma = _photo()
    mask = np.zeros_like(luma, dtype=bool)
    mask[60:63, :] = True  # thin: its centre is 1.5 px from the border, short of DEEP_FROM
    mask[:40, :40] = True  # wide: a torn corner
    planes = np.stack([luma, luma * 0.9, luma * 0.8])
    filled = fill(planes, mask)
    repaint = luma.copy()
    repaint[:40, :20] = (luma[:40, :20] + 0.5) % 1.0  # the U-Net repainted the corner's left half, not the rest
    out = fill_deep(filled, mask, luma, repaint)
    thin = mask.copy()
    thin[:40, :40] = False  # the scratch alone
    assert has_deep(mask) and has_deep(mask, hole_depth(mask)) and not has_deep(thin)
    assert out.dtype == filled.dtype and out.shape == filled.shape
    np.testing.assert_array_equal(out[:, ~mask], planes[:, ~mask])
    np.testing.assert_array_equal(out[:, 60:63, 50:], filled[:, 60:63, 50:])
    assert 1.5 < DEEP_FROM
    shift = out - filled
    unclipped = ((out > 0) & (out < 1)).all(axis=0)
    np.testing.assert_allclose(shift[0][unclipped], shift[2][unclipped], atol=1e-6)  # chroma kept
    base = luminance(filled)
    deep_left, deep_right = (slice(8, 32), slice(8, 14)), (slice(8, 32), slice(26, 32))
    np.testing.assert_allclose(luminance(out)[deep_left], repaint[deep_left], atol=1e-5)
    smooth = cv2.GaussianBlur(base, (0, 0), 6.0)[deep_right]  # where the U-Net kept the damage: a smooth guess
    np.testing.assert_allclose(luminance(out)[deep_right], smooth, atol=1e-4)
    assert np.abs(base[deep_right] - smooth).mean() > 0.01  # and that differs from Telea's streaks
    assert fill_deep(filled, np.zeros_like(mask), luma, repaint) is filled


def test_a_frame_is_the_unets_repaint_throughout_and_a_torn_corner_is_not():
    """A mat around an oval (deep, all along the edges) follows the U-Net's repaint from FRAME_RAMP px in, even
    where it changed the pixels too little for the deep fill to trust it; a torn corner as deep keeps the
    smoothed fill, even joined by wide cracks to every edge; a thin scratch is no frame, nor part of one it
    runs into."""
    luma = _photo()
    h, w = luma.shape
    y, x = np.mgrid[:h, :w]
    mat = ((x + 0.5 - w / 2) / (0.4 * w)) ** 2 + ((y + 0.5 - h / 2) / (0.4 * h)) ** 2 > 1
    corner = np.zeros_like(mat)
    corner[:50, :50] = True
    repaint = np.clip(luma + 0.05, 0.0, 1.0)  # a change under TRUSTED_CHANGE: the deep fill half trusts it
    depth = hole_depth(mat)
    body = frames(mat, depth)
    assert body[mat].mean() > 0.99 and not body[~mat].any()
    scratched = mat.copy()
    scratched[40:43, 5:60] = True  # a scratch run into the mat: Telea's, not the frame's
    assert frames(scratched)[mat].mean() > 0.99 and not frames(scratched)[41, 30:60].any()
    corner_depth = hole_depth(corner)
    assert corner_depth.max() > 20 and not frames(corner, corner_depth).any()
    cracked = corner.copy()
    cracked[40:47, :] = cracked[:, 40:47] = True  # wide cracks from the corner to all four edges
    assert not frames(cracked).any()
    scratch = np.zeros_like(mat)
    scratch[60:63, :] = True
    assert not frames(scratch, hole_depth(scratch)).any()
    for mask, is_frame in ((mat, True), (corner, False)):
        filled = fill(luma[None], mask)
        out = luminance(fill_deep(filled, mask, luma, repaint))
        np.testing.assert_array_equal(luminance(fill_deep(filled, mask, luma, repaint, depth=hole_depth(mask))), out)
        inside = hole_depth(mask) >= FRAME_RAMP + DEEP_FROM + 4
        error = np.abs(out[inside] - repaint[inside]).max()
        assert error < 1e-5 if is_frame else error > 0.01
        np.testing.assert_array_equal(out[~mask], luma[~mask])


def test_the_inpainter_starts_as_telea_changes_only_the_hole_and_learns():
    """The composite is part of the model: known pixels pass through bit for bit, before and after
    training; untrained it returns (nearly) Telea's fill; 300 steps on four bands of one photo beat Telea on them."""
    torch.manual_seed(0)
    inpainter, _, _ = build_models("inpainter", width=8, max_width=16)
    clean = torch.from_numpy(_photo()[None, None]) * 2 - 1
    hole = torch.zeros_like(clean)
    hole[..., 40:44, :] = 1  # a 4 px band across the photo
    telea = prefilled(clean, hole)
    with torch.no_grad():
        filled = inpainter(conditioned(telea, hole))
    assert torch.equal(filled * (1 - hole), clean * (1 - hole))
    assert (filled - telea).abs().mean() < 0.02  # untrained, it is Telea give or take a level or two
    optimizer = torch.optim.Adam(inpainter.parameters(), lr=3e-3)
    for step in range(300):
        band = torch.zeros_like(clean)
        row = (40, 70, 12, 100)[step % 4]  # the test band among them: it learns the holes it is shown
        band[..., row:row + 4, :] = 1
        loss = ((inpainter(conditioned(prefilled(clean, band), band)) - clean).abs() * band).sum() / band.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        filled = inpainter(conditioned(telea, hole))
    assert torch.equal(filled * (1 - hole), clean * (1 - hole))
    inside = hole.bool()
    assert (filled - clean).abs()[inside].mean() < (telea - clean).abs()[inside].mean()


def test_learned_fill_changes_only_the_mask_and_tiles_like_the_whole(tmp_path):
    torch.manual_seed(0)
    inpainter, _, _ = build_models("inpainter", width=8, max_width=16)
    torch.nn.init.normal_(inpainter.head[-1].weight, std=0.05)  # draw something other than grey
    planes = np.stack([_photo(), _photo()[::-1].copy()])
    mask = np.zeros(planes.shape[1:], bool)
    mask[30:34, 10:120] = True
    whole = fill(planes, mask, method="learned", inpainter=inpainter, tile=0)
    tiled = fill(planes, mask, method="learned", inpainter=inpainter, tile=64, overlap=16)
    assert np.array_equal(whole[:, ~mask], planes[:, ~mask]) and np.array_equal(tiled[:, ~mask], planes[:, ~mask])
    assert not np.allclose(whole[:, mask], planes[:, mask])
    seams = np.abs(tiled - whole)[:, mask]  # tiles see (almost) what the whole photo shows them
    assert seams.mean() < 0.25 * np.abs(whole - planes)[:, mask].mean() and seams.max() < 0.1, seams.max()
    with pytest.raises(ValueError, match="inpainter"):
        fill(planes, mask, method="learned")


@pytest.mark.parametrize("model", STAGES + OPTIONAL_STAGES)
def test_stages_train_with_the_one_loop_and_load_into_the_pipeline(tmp_path, model):
    photos = bundled_samples("clean")
    data = AgedDataset(photos[:3], size=64, presets=["local"], train=True)
    val = AgedDataset(photos[3:5], size=64, presets=["local"])
    options = {"model_config": {"width": 8, "max_width": 16}} if model == "unet" else {}
    config = TrainConfig(model=model, epochs=1, batch_size=2, lr=1e-3, progress=False, device="cpu", samples=1,
                         **options)
    summary = fit(config, data, val, tmp_path / model)
    epoch = summary["history"][-1]
    assert epoch["kind"] == "epoch"
    if model in ("detector", "specks"):
        assert np.isfinite(epoch["val_loss"])
        assert {"val_threshold", "val_precision", "val_recall", "val_f1"} <= set(epoch)
        assert 0 < epoch["val_threshold"] < 1
    elif model == "inpainter":
        assert np.isfinite(epoch["val_loss"]) and 0 < epoch["val_psnr_in_hole"] < 100
    elif model == "verifier":
        assert np.isfinite(epoch["val_loss"]) and 0 <= epoch["val_dropped"] <= 1
        assert np.isfinite(epoch["val_kept_share_of_oracle"])
    elif model == "blender":
        assert np.isfinite(epoch["val_loss"]) and epoch["val_gain_db"] == pytest.approx(
            epoch["val_today"] - epoch["val_loss"])
    else:
        assert np.isfinite(epoch["val_l1"])
    restorer = load_pipeline([tmp_path / model / "best.safetensors"], device="cpu",
                             fill_method="learned" if model == "inpainter" else "telea")
    assert restorer.metadata["checkpoint"][model].endswith("best.safetensors")
    restored, _ = restore_image(from_float(_photo()), restorer)
    assert restored.shape == (128, 128)


def test_the_detectors_cost_weight_prices_its_pixels(tmp_path):
    data = AgedDataset(bundled_samples("clean")[:2], size=64, presets=["local"], train=True)
    first = {}
    for weight in (0.0, 10.0):
        config = TrainConfig(model="detector", epochs=1, batch_size=2, progress=False, device="cpu", samples=1,
                             cost_weight=weight)
        first[weight] = fit(config, data, None, tmp_path / str(weight))["history"][0]
    assert first[0.0]["dice"] == pytest.approx(first[10.0]["dice"])  # same seed, same first step
    assert first[10.0]["bce"] > 1.5 * first[0.0]["bce"]  # every pixel weighs 1 + 10 x its cost, most more than 1


@pytest.mark.skipif(not BUNDLED, reason="the bundled stage checkpoints are not in helpers/weights")
def test_the_bundled_stages_take_at_most_15_mb_together():
    """Issue 21's budget for the pipeline's models, every one the pipeline loads by default."""
    assert sum(DEFAULT_CHECKPOINTS[stage].stat().st_size for stage in STAGES) <= 15 * 2**20


@pytest.mark.skipif(not BUNDLED, reason="the bundled stage checkpoints are not in helpers/weights")
@pytest.mark.parametrize("operator, floor", [("scratches", 1.0), ("cracks", 1.0), ("fading", 2.0)])
def test_bundled_pipeline_repairs_what_the_aging_draws(operator, floor):
    """Gains on four held-out photos (the bundled samples' subjects never trained), below what was measured
    on them (scratches +1.73, cracks, fading: see benchmarks/quality.json for all 55), so a broken stage
    fails here and noise does not."""
    restorer = load_pipeline(device="cpu")
    gains = []
    for index in range(4):
        clean = from_float(_photo(index, 256), np.uint8)
        aged = apply_operator(clean, operator, 0.6, seed=index).image
        restored, _ = restore_image(aged, restorer)
        gains.append(metrics.psnr(clean, restored) - metrics.psnr(clean, aged))
    assert np.mean(gains) > floor, gains


@pytest.mark.skipif(not BUNDLED, reason="the bundled stage checkpoints are not in helpers/weights")
def test_bundled_pipeline_leaves_an_undamaged_photo_nearly_alone():
    restorer = load_pipeline(device="cpu")
    changes = []
    for index in range(4):
        clean = from_float(_photo(index, 256), np.uint8)
        restored, _ = restore_image(clean, restorer)
        changes.append(np.abs(restored.astype(float) - clean).mean())
    assert np.mean(changes) < 3.0, changes  # in 0-255 levels


@pytest.mark.skipif(not BUNDLED, reason="the bundled stage checkpoints are not in helpers/weights")
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (8, 8, 3)])
def test_the_bundled_pipeline_restores_a_photo_of_a_few_pixels(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    restored, mask = restore_image(img, load_pipeline(device="cpu"))
    assert restored.shape == img.shape and mask.shape == shape[:2]


KNOWN_MISSES = {"c.png": "its damage is wide soft creases, not cracks: the detector finds a few pixels (README)"}


@pytest.mark.skipif(not BUNDLED, reason="the bundled stage checkpoints are not in helpers/weights")
def test_on_real_scratched_prints_the_local_repair_stays_inside_the_detected_mask(shared_data):
    """Real damage, not ours. The tone stage may change a whole faded print (a smooth curve per pixel); what
    the pipeline changes beyond that, the repair, must lie inside the detected mask (widened by the fill's
    rim and the rims stage's reach), and must be a real change there (the cracks were bright: filling them
    moves those pixels by many levels)."""
    folder = shared_data / "old_photos" / "bopbtl" / "old_w_scratch"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    stages = load_stages(device="cpu")
    for path in sorted(folder.glob("*.png")):
        planes = to_float(read_image(path)[..., :3]).transpose(2, 0, 1).copy()
        out = repair(planes, stages["detector"], stages["reference"], stages["threshold"], specks=stages["specks"],
                     speck_threshold=stages["speck_threshold"], blender=stages["blender"])
        local = np.abs(out["restored"] - out["toned"]).max(axis=0) * 255
        assert out["mask"].mean() < 0.5 and local[~out["widened"]].max() == 0, path.name
        if path.name in KNOWN_MISSES:
            continue
        assert out["mask"].mean() > 0.001 and local[out["mask"]].mean() > 5, path.name


def test_the_fill_threshold_is_the_one_that_repairs_validation_photos_best():
    from helpers.restore.detect import CANDIDATES, calibrate_threshold

    class _Confident(_BrightThings):  # probabilities 0.55 on bright pixels, 0.05 elsewhere
        def forward(self, x):
            bright = ((x + 1) / 2 > 0.9).float()
            return torch.logit(0.05 + 0.5 * bright)

    photos = [np.minimum(from_float(_photo(i, 96), np.uint8), 200) for i in range(2)]  # no bright picture
    threshold, gains = calibrate_threshold(_Confident(), photos)
    assert set(gains) == set(CANDIDATES) and threshold < 0.55
    assert gains[0.5] > gains[0.6]  # above 0.55 nothing is found, so nothing is repaired
