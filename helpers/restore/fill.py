"""Stage 2 of the pipeline: fill the destroyed pixels, and only those.

OpenCV's inpainting (Telea's fast marching, or Navier-Stokes) propagates the surrounding picture into the
mask; the learned fill (helpers/models/inpainter.py) refines Telea's result with a network trained on
holes cut by the aging operators' masks. The mask is first widened a little (the anti-aliased rim of a scratch is damaged
too, though below the detector's threshold); every pixel outside the widened mask is returned exactly as
it came in.
"""

from __future__ import annotations

import cv2
import numpy as np

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS, "learned": None}


def widen(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The boolean mask grown by `pixels` in every direction."""
    if pixels <= 0 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def learned_fill(planes: np.ndarray, mask: np.ndarray, inpainter, *, tile: int = 1024, overlap: int = 128) -> np.ndarray:
    """`fill` by the inpainter network, which refines Telea's fill: plane by plane (it is trained on gray
    photos), tile by tile."""
    import torch

    from ..models.inpainter import conditioned
    from .tiling import tiled_forward

    hole = torch.from_numpy(mask.astype(np.float32))[None, None]
    base = fill(planes, mask, method="telea")
    out = np.empty_like(planes)
    for index, plane in enumerate(planes):
        x = conditioned(torch.from_numpy(np.ascontiguousarray(base[index], np.float32))[None, None] * 2 - 1, hole)
        with torch.inference_mode():
            filled, _ = tiled_forward(inpainter, x, tile=tile, overlap=overlap, multiple=inpainter.stride)
        out[index] = np.where(mask, (filled[0, 0].numpy() + 1) / 2, plane).clip(0.0, 1.0)
    return out


def fill(planes: np.ndarray, mask: np.ndarray, *, method: str = "telea", radius: int = 3, inpainter=None,
         tile: int = 1024, overlap: int = 128) -> np.ndarray:
    """C x H x W float32 planes in [0, 1] with the pixels under `mask` (H x W bool) inpainted; `method`
    "learned" needs the `inpainter` network."""
    if method not in METHODS:
        raise ValueError(f"fill method must be one of {', '.join(METHODS)}, not {method!r}")
    if not mask.any():
        return planes
    if method == "learned":
        if inpainter is None:
            raise ValueError("the learned fill needs an inpainter network")
        return learned_fill(planes, mask, inpainter, tile=tile, overlap=overlap)
    mask8 = mask.astype(np.uint8)
    out = np.empty_like(planes)
    for index, plane in enumerate(planes):
        # 16 bits, one plane at a time: finer than 8-bit colour, and cv2.inpaint's float32 path returns
        # values far outside the input's range (measured: -0.89 to 1.77 for a [0, 1] ramp)
        plane16 = np.rint(np.clip(plane, 0.0, 1.0) * 65535.0).astype(np.uint16)
        filled = cv2.inpaint(plane16, mask8, radius, METHODS[method]).astype(np.float32) / 65535.0
        out[index] = np.where(mask, filled, plane)
    return out
