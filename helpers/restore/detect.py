"""Stage 1 of the pipeline: where is the photo's content destroyed?

The detector (helpers/models/detector.py) runs tile by tile on the luminance at a working size: the aging
operators draw damage relative to the photo (a crack is 1-5 px on a 256 px print), so a big scan is first
shrunk until its short side is `DETECT_SIDE`, and the probabilities are scaled back up. Pixels above the
threshold chosen on validation (stored with the checkpoint as `val_threshold`) form the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from .tiling import tiled_forward

DETECT_SIDE = 512  # short side at which the detector looks at a photo (trained on 256 px photos)
DEFAULT_THRESHOLD = 0.5  # when a checkpoint carries no threshold of its own


def threshold_of(metadata: dict) -> float:
    """The probability above which a pixel is damaged, as chosen on validation when the model was trained."""
    return float((metadata.get("losses") or {}).get("val_threshold", DEFAULT_THRESHOLD))


def damage_probability(detector, luma: np.ndarray, *, tile: int, overlap: int) -> np.ndarray:
    """H x W probability that each pixel of `luma` (H x W float in [0, 1]) is destroyed."""
    import torch

    height, width = luma.shape
    scale = min(1.0, DETECT_SIDE / min(height, width))
    small = luma if scale == 1.0 else cv2.resize(luma, (max(1, round(width * scale)), max(1, round(height * scale))),
                                                 interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(np.ascontiguousarray(small, np.float32))[None, None].mul(2).sub(1)
    with torch.inference_mode():
        logits, _ = tiled_forward(detector, x, tile=tile, overlap=overlap, multiple=detector.stride)
    probability = logits[0, 0].sigmoid().numpy()
    if scale < 1.0:
        probability = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    return probability
