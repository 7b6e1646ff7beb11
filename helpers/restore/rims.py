"""Stage 3b of the pipeline, after the fill: the rims and ends of found damage that the mask left.

A scratch or speck the detectors found is often marked only in part: its faint ends and soft rims stay
under the threshold, and the fill leaves them as a ghost of the scratch. A wider region (a ring around the
filled pixels, and every pixel either detector gives more than `REACH`) is filled as well, and the blender
network (models/blender.py) chooses pixel by pixel among the photo as it came, the pipeline's fill and
the wider fill. It learned that choice from the benchmark's own measure on aged training photos
(blend_training.py), so it starts from today's choice and departs from it where that paid: on held-out
photos, dust +4.54 -> +4.90 dB, creases +4.42 -> +4.66, torn corners +6.69 -> +7.39, at a cost of 0.01-0.04
dB on the rows where everything found is a false alarm (docs/pipeline_experiments.md, 'A learned blend').
Outside the wider region nothing changes.
"""

from __future__ import annotations

import numpy as np

from .fill import fill, widen
from .tiling import tiled_forward

MODES = ("auto", "off")  # auto: the blender decides the rims; off: the fill as the mask says
REACH = 0.2  # a pixel either detector gives more than this may join the wider fill
RING_AT_256 = 2  # px around the filled pixels the wider fill covers at a 256 px short side; more on bigger photos
BAND = 1024  # rows of a big photo the blender sees at a time (with `overlap` more on each side)


def region(widened: np.ndarray, detected: np.ndarray, speckled: np.ndarray | None) -> np.ndarray:
    """Where the wider fill goes: the filled pixels, a ring around them, and what either detector gives
    more than REACH, grown a little (all in px at a 256 px short side, scaled with the photo)."""
    scale = max(1.0, min(widened.shape) / 256)
    reach = detected > REACH
    if speckled is not None:
        reach |= speckled > REACH
    return widened | widen(widened, round(RING_AT_256 * scale)) | widen(reach, round(scale))


def blend_weights(blender, luma, filled, wide, widened, wider, detected, speckled, *, tile: int, overlap: int):
    """3 x H x W weights of keep, fill and wider fill (models/blender.py), from H x W planes in [0, 1]."""
    import torch

    from ..models.blender import features, weights

    def plane(array):
        return torch.from_numpy(np.ascontiguousarray(array, np.float32))[None, None]

    speckled = np.zeros_like(detected) if speckled is None else speckled
    x = features(plane(luma), plane(filled), plane(wide), plane(widened), plane(wider), plane(detected),
                 plane(speckled))
    with torch.inference_mode():
        logits, _ = tiled_forward(blender, x, tile=tile, overlap=overlap, multiple=blender.stride)
        return weights(logits, plane(widened))[0].numpy()


def rims(blender, planes: np.ndarray, filled: np.ndarray, widened: np.ndarray, detected: np.ndarray,
         speckled: np.ndarray | None, *, method: str = "telea", inpainter=None, tile: int = 1024,
         overlap: int = 128, notes: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(`filled` (C x H x W, `planes` filled inside `widened`) with the rims the blender chooses filled too,
    the region it may have changed). A big photo is blended a band of rows at a time, so no full-size stack
    of features is ever held."""
    from .tone import luminance

    wider = region(widened, detected, speckled)
    notes = {} if notes is None else notes
    notes.update({"ran": False, "changed": 0.0})
    if not (wider & ~widened).any():
        return filled, widened
    wide = fill(planes, wider, method=method, inpainter=inpainter, tile=tile, overlap=overlap)
    luma, filled_luma, wide_luma = luminance(planes), luminance(filled), luminance(wide)
    out = filled.copy()
    height = widened.shape[0]
    for top in range(0, height, BAND):
        rows = slice(top, min(height, top + BAND))
        if not wider[rows].any():
            continue
        seen = slice(max(0, top - overlap), min(height, top + BAND + overlap))
        cut = slice(rows.start - seen.start, rows.stop - seen.start)
        w = blend_weights(blender, luma[seen], filled_luma[seen], wide_luma[seen], widened[seen], wider[seen],
                          detected[seen], None if speckled is None else speckled[seen], tile=tile,
                          overlap=overlap)[:, cut]
        blended = w[0] * planes[:, rows] + w[1] * filled[:, rows] + w[2] * wide[:, rows]
        out[:, rows] = np.where(wider[rows], blended, filled[:, rows])
    notes.update({"ran": True, "changed": round(float((np.abs(out - filled).max(0) > 0.5 / 255).mean()), 5)})
    return out, wider
