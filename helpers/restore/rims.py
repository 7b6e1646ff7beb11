"""Stage 3b of the pipeline, after the fill: the rims and ends of found damage that the mask left.

A scratch or speck the detectors found is often marked only in part: its faint ends and soft rims stay
under the threshold, and the fill leaves them as a ghost of the scratch. A wider region (a ring around the
filled pixels, and every pixel either detector gives more than `REACH`) is filled as well, and the blender
network (models/blender.py) chooses pixel by pixel among the photo as it came, the pipeline's fill and
the wider fill; inside the mask it can only fill, wider or not. It learned that choice from the
benchmark's own measure on aged training photos (blend_training.py): on the held-out photos, dust +4.54 ->
+4.68 dB, creases +4.42 -> +4.56, torn corners +6.69 -> +7.35, and no row where everything found is a false
alarm moves by more than 0.01 dB (docs/pipeline_experiments.md, 'The rims stage'). Outside the wider
region nothing changes.
"""

from __future__ import annotations

import numpy as np

from .fill import fill, widen
from .tiling import tiled_forward

MODES = ("auto", "off")  # auto: the blender decides the rims; off: the fill as the mask says
REACH = 0.2  # a pixel either detector gives more than this may join the wider fill
RING_AT_256 = 2  # px around the filled pixels the wider fill covers at a 256 px short side; more on bigger photos
BAND = 128  # rows of a big photo the blender sees at a time (with `overlap` more on each side)
WHOLE_UP_TO = 1536  # rows: a photo no taller is blended in one pass (bands cost a pass over each overlap)


def region(widened: np.ndarray, detected: np.ndarray, speckled: np.ndarray | None) -> np.ndarray:
    """Where the wider fill goes: the filled pixels, a ring around them, and what either detector gives
    more than REACH, grown a little (all in px at a 256 px short side, scaled with the photo)."""
    scale = max(1.0, min(widened.shape) / 256)
    reach = detected > REACH
    if speckled is not None:
        reach |= speckled > REACH
    return widen(widened, round(RING_AT_256 * scale)) | widen(reach, round(scale))  # a dilation holds its mask


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
    the region it may have changed). `filled` is written in place unless it is `planes` itself. A big photo
    is blended a band of rows at a time and the wider fill is kept in 16 bits (as OpenCV fills it), so a
    4000 x 3000 scan stays under 2 GB."""
    from .tone import luminance

    wider = region(widened, detected, speckled)
    notes = {} if notes is None else notes
    notes.update({"ran": False, "changed": 0.0})
    if not (wider & ~widened).any():
        return filled, widened
    wide = np.empty(planes.shape, np.uint16)
    for index in range(len(planes)):
        wide[index] = np.rint(fill(planes[index:index + 1], wider, method=method, inpainter=inpainter, tile=tile,
                                   overlap=overlap)[0] * 65535)
    out = filled.copy() if filled is planes else filled
    height, changed, pending = widened.shape[0], 0, []
    band = height if height <= WHOLE_UP_TO else BAND
    for top in range(0, height, band):
        rows = slice(top, min(height, top + band))
        if not wider[rows].any():
            continue
        seen = slice(max(0, top - overlap), min(height, top + band + overlap))
        cut = slice(rows.start - seen.start, rows.stop - seen.start)
        band_wide = wide[:, seen].astype(np.float32) / 65535
        w = blend_weights(blender, luminance(planes[:, seen]), luminance(out[:, seen]), luminance(band_wide),
                          widened[seen], wider[seen], detected[seen], None if speckled is None else speckled[seen],
                          tile=tile, overlap=overlap)[:, cut]
        blended = np.where(wider[rows], w[0] * planes[:, rows] + w[1] * out[:, rows] + w[2] * band_wide[:, cut],
                           out[:, rows])
        changed += int((np.abs(blended - out[:, rows]).max(0) > 0.5 / 255).sum())
        pending.append((rows, blended))
        while pending and pending[0][0].stop <= top + band - overlap:  # no later band sees these rows
            done, result = pending.pop(0)
            out[:, done] = result
    for rows, blended in pending:  # every band saw the rows around it as the fill left them
        out[:, rows] = blended
    notes.update({"ran": True, "changed": round(changed / widened.size, 5)})
    return out, wider
