"""Stage 1 of the pipeline: where is the photo's content destroyed?

The detector (helpers/models/detector.py) runs tile by tile on the luminance at a working size: the aging
operators draw damage relative to the photo (a crack is 1-5 px on a 256 px print), so a big scan is first
shrunk until its short side is `DETECT_SIDE`, and the probabilities are scaled back up. Pixels above the
threshold stored with the checkpoint form the mask: `fill_threshold`, the one that repairs validation
photos best (`calibrate_threshold`, run when the detector is bundled), else the training loop's
`val_threshold` (best pixel F1 over every kind of damage, which large regions such as the mat dominate).
"""

from __future__ import annotations

import cv2
import numpy as np

from .tiling import tiled_forward

DETECT_SIDE = 512  # short side at which the detector looks at a photo (trained on 256 px photos)
DEFAULT_THRESHOLD = 0.5  # when a checkpoint carries no threshold of its own


CALIBRATION_OPERATORS = ("scratches", "cracks", "dust", "creases", "torn_corners", "grain", "jpeg")
CANDIDATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def threshold_of(metadata: dict) -> float:
    """The probability above which a pixel is damaged, as chosen on validation photos (see the module doc)."""
    if "fill_threshold" in metadata:
        return float(metadata["fill_threshold"])
    return float((metadata.get("losses") or {}).get("val_threshold", DEFAULT_THRESHOLD))


def calibrate_threshold(detector, photos: list[np.ndarray], *, seed: int = 0, base=None,
                        mirror: bool = True) -> tuple[float, dict]:
    """The threshold whose mask, filled, gains the most PSNR on `photos` (gray 8-bit, never trained on)
    aged with each local damage operator, and with grain and JPEG, where every detection is a false
    alarm that costs: (threshold, mean gain in dB per candidate threshold). `base` (aged luma -> bool
    mask), when given, is joined to the mask first: the speck finder's threshold is chosen for what it
    adds to the damage detector's mask."""
    from .. import metrics
    from ..aging import apply_operator
    from .fill import fill, widen

    gains = {threshold: [] for threshold in CANDIDATES}
    for index, clean in enumerate(photos):
        for operator in CALIBRATION_OPERATORS:
            aged = apply_operator(clean, operator, 0.6, seed=seed + index).image.astype(np.float32) / 255
            probability = damage_probability(detector, aged, tile=1024, overlap=128, mirror=mirror)
            given = np.zeros(aged.shape, bool) if base is None else base(aged)
            before = metrics.psnr(clean, aged)
            for threshold in CANDIDATES:
                repaired = fill(aged[None], widen(given | (probability > threshold), 1))[0]
                gains[threshold].append(metrics.psnr(clean, repaired) - before)
    means = {threshold: round(float(np.mean(values)), 4) for threshold, values in gains.items()}
    return max(means, key=means.get), means


def damage_probability(detector, luma: np.ndarray, *, tile: int, overlap: int, mirror: bool = True) -> np.ndarray:
    """H x W probability that each pixel of `luma` (H x W float in [0, 1]) is destroyed; with `mirror`, the
    mean of the photo's and its mirror image's (+1-2 points of F1 on thin damage for the damage detector)."""
    import torch

    height, width = luma.shape
    scale = min(1.0, DETECT_SIDE / min(height, width))
    small = luma if scale == 1.0 else cv2.resize(luma, (max(1, round(width * scale)), max(1, round(height * scale))),
                                                 interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(np.ascontiguousarray(small, np.float32))[None, None].mul(2).sub(1)
    grid = {"multiple": detector.stride, "min_size": getattr(detector, "min_size", 1)}  # a photo of a few px too
    with torch.inference_mode():
        probability = tiled_forward(detector, x, tile=tile, overlap=overlap, **grid)[0][0, 0].sigmoid()
        if mirror:
            mirrored, _ = tiled_forward(detector, x.flip(-1), tile=tile, overlap=overlap, **grid)
            probability = (probability + mirrored[0, 0].flip(-1).sigmoid()) / 2
    probability = probability.numpy()
    if scale < 1.0:
        probability = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    return probability
