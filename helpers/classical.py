"""The classical baseline every learned restorer must beat: OpenCV only, no training.

Three steps, in the order a retoucher would take them:
1. find scratches and dust: thin bright or dark structures stand out in a morphological top-hat /
   black-hat with a small kernel; the response is thresholded against the image's own noise level,
   and only long thin components (scratches) and tiny specks (dust) are kept;
2. fill them with `cv2.inpaint` (Telea);
3. remove grain with non-local means (strength from the estimated noise level), stretch the levels
   of a faded print (0.5 and 99.5 percentiles to black and white), and lift local contrast with CLAHE.
It works on one gray plane; helpers/restore/ feeds it the luminance of color photos. Processing is in
8 bits, and the *change* is added back to the float input, so 16-bit scans keep their precision
wherever nothing was repaired.
"""

from __future__ import annotations

import cv2
import numpy as np

from .metrics import noise_sigma


def _kernel_size(shape: tuple[int, int]) -> int:
    """Scratches are a few pixels wide on a 256 px photo and wider on a big scan: scale the kernel."""
    size = max(5, int(round(min(shape) / 40)))
    return size + 1 - size % 2


def detect_damage(gray8: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Boolean mask of likely scratches and dust specks in a uint8 gray image."""
    size = _kernel_size(gray8.shape)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    response = np.maximum(cv2.morphologyEx(gray8, cv2.MORPH_TOPHAT, kernel),
                          cv2.morphologyEx(gray8, cv2.MORPH_BLACKHAT, kernel)).astype(np.float32)
    if threshold is None:  # well above grain: 4 noise sigmas, and at least 25 gray levels
        threshold = max(25.0, 4.0 * 255.0 * noise_sigma(gray8))
    candidates = (response > threshold).astype(np.uint8)
    # Keep what looks like damage, not like features of the picture (eyes, nostrils, buttons are small
    # dark blobs too): long thin components (scratches, however many cross) and specks a few pixels big.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    radius = cv2.distanceTransform(candidates, cv2.DIST_L2, 3)
    widest = np.zeros(count, np.float32)
    np.maximum.at(widest, labels.ravel(), radius.ravel())
    length = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    scratch = (widest <= size / 2) & (length >= 6 * size)
    speck = stats[:, cv2.CC_STAT_AREA] <= max(4, (size // 2) ** 2 // 2)
    keep = scratch | speck
    keep[0] = False  # background
    mask = keep[labels]
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def restore_gray(gray: np.ndarray, *, inpaint_radius: int = 3, clahe_clip: float = 1.5,
                 denoise: bool = True, equalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(restored, damage mask) for one gray plane in float [0, 1]; the mask is float {0, 1}."""
    gray = np.clip(np.asarray(gray, np.float32), 0.0, 1.0)
    gray8 = np.rint(gray * 255.0).astype(np.uint8)
    if min(gray8.shape) < 3:  # nothing to detect or denoise in a sliver
        return gray.copy(), np.zeros(gray.shape, np.float32)
    mask = detect_damage(gray8)
    result = cv2.inpaint(gray8, mask.astype(np.uint8) * 255, inpaint_radius, cv2.INPAINT_TELEA) if mask.any() \
        else gray8.copy()
    if denoise:
        strength = float(np.clip(1.2 * 255.0 * noise_sigma(result), 3.0, 15.0))
        result = cv2.fastNlMeansDenoising(result, None, h=strength, templateWindowSize=7, searchWindowSize=21)
    if equalize:
        low, high = np.percentile(result, (0.5, 99.5))
        if high - low >= 8:  # a flat image has no levels to stretch
            result = np.clip((result.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255)
            result = np.rint(result).astype(np.uint8)
        tiles = max(1, min(8, min(gray8.shape) // 32))
        result = cv2.createCLAHE(clipLimit=clahe_clip, tileGridSize=(tiles, tiles)).apply(result)
    change = (result.astype(np.float32) - gray8.astype(np.float32)) / 255.0
    return np.clip(gray + change, 0.0, 1.0), mask.astype(np.float32)
