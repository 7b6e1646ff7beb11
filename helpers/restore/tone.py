"""Stage 3 of the pipeline: undo fading, overexposure, tarnish, toning, vignetting and a stain's tint with
the tone model's smooth per-pixel curves (helpers/models/tone.py). The curves come from the whole photo
seen small; they are applied to the full-size luminance in strips of rows, so a 4000 x 3000 scan needs a
few tens of MB. A colour photo's three channels are shifted by the luminance change, which keeps its
chroma (Cr and Cb of YCrCb) as the gray U-Net does.
"""

from __future__ import annotations

import numpy as np

from ..aging_primitives import LUMA

STRIP_ROWS = 256


def luminance(planes: np.ndarray) -> np.ndarray:
    """H x W luma of 1 or 3 planes (C x H x W float32)."""
    if planes.shape[0] == 1:
        return planes[0]
    return np.tensordot(LUMA, planes, axes=1).astype(np.float32)


def apply_in_strips(x, curves) -> np.ndarray:
    """Luma x (1 x 1 x H x W in [-1, 1], on the curves' device) through a curve grid, STRIP_ROWS rows at a
    time, as H x W float32 in [0, 1]: a big scan never holds all knots' tables at once."""
    import torch

    from ..models.tone import apply_curves

    height = x.shape[-2]
    out = np.empty(x.shape[-2:], dtype=np.float32)
    with torch.inference_mode():
        for top in range(0, height, STRIP_ROWS):
            rows = (top, min(height, top + STRIP_ROWS))
            strip = apply_curves(x[..., rows[0]:rows[1], :], curves, rows=rows, height=height)
            out[rows[0]:rows[1]] = strip[0, 0].add(1).div(2).clamp(0, 1).float().cpu().numpy()
    return out


def tone_correct(model, luma: np.ndarray) -> np.ndarray:
    """H x W luma through the tone curves the model predicts for it (float32 in [0, 1])."""
    import torch

    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(luma, np.float32))[None, None].to(device).mul(2).sub(1)
    with torch.inference_mode():
        curves = model.curves(x)
    return apply_in_strips(x, curves)
