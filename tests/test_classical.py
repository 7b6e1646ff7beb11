"""The OpenCV baseline: it finds thin scratches and dust (not real objects), fills them, removes grain,
and leaves pixels it did not touch exactly as they were."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers.classical import detect_damage, restore_gray
from helpers.metrics import noise_sigma


def _scene(size=128) -> np.ndarray:
    """A smooth gradient with one large dark square: a real object, not damage."""
    y, x = np.mgrid[0:size, 0:size]
    img = (60 + 100 * x / (size - 1) + 20 * y / (size - 1)).astype(np.float32)
    img[80:120, 10:50] = 30
    return img.astype(np.uint8)


def _damaged(clean: np.ndarray) -> np.ndarray:
    damaged = clean.copy()
    cv2.line(damaged, (5, 5), (120, 70), 250, 1)  # a bright scratch
    cv2.line(damaged, (100, 10), (70, 120), 5, 2)  # a dark one
    cv2.circle(damaged, (30, 30), 1, 255, -1)  # a speck of dust
    return damaged


def test_scratches_and_dust_are_found_but_not_a_real_object():
    clean = _scene()
    damaged = _damaged(clean)
    mask = detect_damage(damaged)
    truth = np.abs(damaged.astype(int) - clean) > 40
    assert mask[truth].mean() > 0.9  # nearly every damaged pixel is found
    assert not mask[85:115, 15:45].any()  # the inside of the dark square is left alone
    assert mask.mean() < 0.15


def test_inpainting_brings_damaged_pixels_back_near_the_clean_values():
    clean = _scene()
    damaged = _damaged(clean)
    restored, mask = restore_gray(damaged / 255.0, denoise=False, equalize=False)
    truth = np.abs(damaged.astype(int) - clean) > 40
    error_before = np.abs(damaged / 255.0 - clean / 255.0)[truth].mean()
    error_after = np.abs(restored - clean / 255.0)[truth].mean()
    assert error_after < 0.25 * error_before
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}


def test_untouched_pixels_keep_their_full_precision():
    """Processing is 8-bit, but only the change is applied: a 16-bit scan keeps its fine levels."""
    fine = np.linspace(0.2, 0.8, 96 * 96, dtype=np.float32).reshape(96, 96)
    damaged = fine.copy()
    damaged[40, 5:90] = 1.0
    restored, mask = restore_gray(damaged, denoise=False, equalize=False)
    untouched = mask == 0
    assert untouched.mean() > 0.9
    np.testing.assert_array_equal(restored[untouched], fine[untouched])


def test_denoising_lowers_the_noise_level():
    rng = np.random.default_rng(0)
    noisy = np.clip(0.5 + rng.normal(0, 0.04, (96, 96)), 0, 1).astype(np.float32)
    restored, _ = restore_gray(noisy, equalize=False)
    assert noise_sigma(restored) < 0.5 * noise_sigma(noisy)


def test_contrast_of_a_faded_photo_is_lifted():
    faded = (0.45 + 0.1 * _scene() / 255.0).astype(np.float32)
    restored, _ = restore_gray(faded, denoise=False)
    assert restored.std() > 1.5 * faded.std()


@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (5, 2)])
def test_slivers_are_returned_unchanged(shape):
    img = np.full(shape, 0.3, np.float32)
    restored, mask = restore_gray(img)
    np.testing.assert_array_equal(restored, img)
    assert mask.shape == shape and not mask.any()
