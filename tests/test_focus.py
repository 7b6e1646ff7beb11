"""The pipeline's focus stage: it reads a photo's blur off its edges, undoes it, and leaves sharp photos alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import metrics
from helpers.age_folder import prepare_clean
from helpers.aging import age_image, apply_operator
from helpers.data import bundled_samples
from helpers.io import from_float, read_image
from helpers.restore.focus import (BLUR_FROM, blocking, blur_width, deblur, focus_correction, focus_sigma,
                                  noise_level)
from helpers.restore.fill import widen
from helpers.restore.pipeline import repair


def _photo(index: int, size: int = 256) -> np.ndarray:
    return prepare_clean(read_image(bundled_samples("clean")[index]), size, gray=True).astype(np.float32)


def _edges(size: int = 128) -> np.ndarray:
    """Squares of several contrasts on gray: ideal step edges."""
    image = np.full((size, size), 0.5, np.float32)
    for index, level in enumerate((0.1, 0.9, 0.25, 0.75)):
        top, left = 16 + 56 * (index // 2), 16 + 56 * (index % 2)
        image[top:top + 40, left:left + 40] = level
    return image


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5, 2.5, 4.0])
def test_the_blur_of_step_edges_is_read_off_them(sigma):
    """A sampled step reads ~0.8 px by itself (the Sobel's span); a blur adds to it in quadrature."""
    blurred = cv2.GaussianBlur(_edges(), (0, 0), sigma)
    assert blur_width(blurred) == pytest.approx(np.hypot(sigma, 0.8), rel=0.05)


def test_unblurred_step_edges_read_as_sharp():
    """A drawing of ideal edges (a document, a graphic) is not taken for a soft photo."""
    assert blur_width(_edges()) < BLUR_FROM


def test_a_photo_with_too_few_edges_reads_as_sharp():
    assert blur_width(np.full((64, 64), 0.4, np.float32)) == 0.0
    assert focus_sigma(np.full((64, 64), 0.4, np.float32))[0] is None


def test_sharp_photos_are_left_alone_and_blurred_ones_are_sharpened():
    for index in range(4):
        clean = _photo(index)
        sigma, width = focus_sigma(clean)
        assert sigma is None and width < BLUR_FROM, (index, width)
        blurred = cv2.GaussianBlur(clean, (0, 0), 1.5)
        sigma, width = focus_sigma(blurred)
        assert sigma is not None and width > BLUR_FROM, (index, width)
        restored = np.clip(blurred + focus_correction(blurred, sigma), 0.0, 1.0)
        assert metrics.psnr(clean, restored) > metrics.psnr(clean, blurred) + 1.0, index
        assert metrics.edge_contrast(clean, restored) > metrics.edge_contrast(clean, blurred) + 0.1, index


def test_grain_and_scratches_never_read_as_blur():
    """Damage adds sharp crests: it can hide a blur but must not invent one."""
    for index in range(4):
        clean = from_float(_photo(index), np.uint8)
        for operator in ("grain", "jpeg", "scratches", "dust", "paper_texture"):
            aged = apply_operator(clean, operator, 1.0, seed=index).image.astype(np.float32) / 255
            assert blur_width(aged) < BLUR_FROM, (index, operator)


@pytest.mark.parametrize("operator", ["scratches", "dust"])
def test_damage_drawn_after_a_blur_hides_it_unless_its_mask_is_left_out(operator):
    """A scratch or a speck lies on the print after the lens blurred it: its sharp rims make a soft photo
    read sharp (0.3-0.45 px), and read away from the marked damage the photo shows its blur again."""
    for index in range(3):
        blurred = cv2.GaussianBlur(_photo(index), (0, 0), 1.5)
        aged = apply_operator(from_float(blurred, np.uint8), operator, 1.0, seed=index)
        photo, marked = aged.image.astype(np.float32) / 255, widen(aged.mask, 1)
        assert blur_width(photo) < BLUR_FROM, (index, operator)
        assert blur_width(photo, marked) == pytest.approx(blur_width(blurred), rel=0.1), (index, operator)
        notes = repair(photo[None], None, None, 0.5, tone="off", damage=aged.mask)["notes"]
        assert notes["focus"]["ran"] and notes["focus"]["blur_px"] > BLUR_FROM, (index, operator)


def test_a_photo_that_is_all_damage_reads_as_sharp():
    photo = cv2.GaussianBlur(_edges(), (0, 0), 1.5)
    assert blur_width(photo, np.ones(photo.shape, bool)) == 0.0


def test_deblur_undoes_a_known_blur_and_keeps_the_size():
    clean = _photo(0, 96)[:, :80]
    blurred = cv2.GaussianBlur(clean, (0, 0), 1.2, borderType=cv2.BORDER_REFLECT)
    sharpened = deblur(blurred, 1.2)
    assert sharpened.shape == clean.shape and sharpened.dtype == np.float32
    assert np.abs(sharpened - clean).mean() < 0.6 * np.abs(blurred - clean).mean()


def test_the_pipeline_sharpens_a_blurred_photo_and_only_that(monkeypatch):
    """Through `repair` with no damage found and the tone stage off: the focus stage alone."""
    clean = _photo(1)
    blurred = cv2.GaussianBlur(clean, (0, 0), 1.5)
    none = np.zeros(clean.shape, bool)
    outputs = {focus: repair(blurred[None], None, None, 0.5, tone="off", damage=none, focus=focus)["restored"][0]
               for focus in ("off", "auto")}
    assert np.array_equal(outputs["off"], blurred)
    assert metrics.psnr(clean, outputs["auto"]) > metrics.psnr(clean, blurred) + 1.0
    sharp = repair(clean[None], None, None, 0.5, tone="off", damage=none)["restored"][0]
    assert np.array_equal(sharp, clean)


def test_a_colour_photo_is_deblurred_plane_by_plane_so_its_colour_edges_sharpen_too():
    clean = cv2.resize(read_image(bundled_samples("clean")[2]), (192, 192), interpolation=cv2.INTER_AREA)
    assert clean.ndim == 3
    blurred = cv2.GaussianBlur(clean, (0, 0), 1.5)
    planes = blurred.transpose(2, 0, 1).astype(np.float32) / 255
    restored = repair(planes, None, None, 0.5, tone="off", damage=np.zeros(clean.shape[:2], bool))["restored"]
    restored = (restored.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    chroma = [cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., 1] for image in (clean, blurred, restored)]
    assert metrics.edge_contrast(chroma[0], chroma[2]) > metrics.edge_contrast(chroma[0], chroma[1]) + 0.1
    for channel in range(3):
        assert metrics.psnr(clean[..., channel], restored[..., channel]) > \
            metrics.psnr(clean[..., channel], blurred[..., channel]) + 1.0, channel


def test_jpeg_blocks_count_as_noise_so_a_blurred_jpeg_is_sharpened_not_blocked():
    """Deblurring a JPEG sharpens its blocks too; counted as noise, they hold the filter back where they are."""
    gains, blind = [], []
    for index in range(6):
        clean = from_float(_photo(index), np.uint8)
        soft = age_image(clean, operators={"blur": 0.6}, seed=index).image
        blocky = age_image(clean, operators={"blur": 0.6, "jpeg": 0.6}, seed=index).image
        assert blocking(soft.astype(np.float32) / 255) < 0.5 / 255 < blocking(blocky.astype(np.float32) / 255)
        aged = blocky.astype(np.float32) / 255
        sigma, _ = focus_sigma(aged)
        before = metrics.psnr(clean, blocky)
        restored = np.clip(aged + focus_correction(aged, sigma), 0.0, 1.0)
        gains.append(metrics.psnr(clean, from_float(restored, np.uint8)) - before)
        unaware = np.clip(deblur(aged, sigma, noise=noise_level(aged)), 0.0, 1.0)
        blind.append(metrics.psnr(clean, from_float(unaware, np.uint8)) - before)
    assert min(gains) > 0.0 and np.mean(gains) > np.mean(blind) + 0.2, (gains, blind)
