"""The pipeline's first stage: undo a scan's JPEG compression before the stages that change the photo.

JPEG is the last thing that happened to a scanned print, so it is undone first: its 8 x 8 blocks and
ringing are not detail for the focus stage to sharpen or for the tone curves to keep. (The detectors
still look at the photo as it came: they learned damage on photos whose aging included JPEG.) The
deblocker (helpers/models/deblocker.py) runs on the luminance, tile by tile on the JPEG grid, and its
change is added to every plane, as the tone stage's is, which keeps a colour photo's chroma.

A photo is deblocked only when its blocks show (`blocking` over `BLOCKING_FROM`): run on a photo that was
never compressed, the network still smooths it a little, which costs a clean photo dB; no aging operator
but JPEG draws steps on the 8 x 8 grid.
"""

from __future__ import annotations

import numpy as np

from .tiling import tiled_forward

BLOCKING_FROM = 1.0 / 255  # [0, 1] units of `blocking`: a photo under it is left as it is
MODES = ("auto", "off")  # deblock a photo whose blocks show; never


def blocking(luma: np.ndarray) -> float:
    """How much a JPEG's 8 x 8 blocks show: the mean |step| between neighbours across the block grid minus
    within the blocks ([0, 1] units; ~0 for a photo never JPEG-compressed, or whose grid was moved)."""
    luma, excess = np.asarray(luma, np.float32), []
    for axis in (0, 1):
        steps = np.abs(np.diff(luma, axis=axis))
        across = steps[7::8] if axis == 0 else steps[:, 7::8]
        if across.size == 0:  # under 9 px across: no block edge inside the photo
            return 0.0
        inside = (float(steps.sum()) - float(across.sum())) / (steps.size - across.size)
        excess.append(float(across.mean()) - inside)
    return max(float(np.mean(excess)), 0.0)


def deblock_correction(deblocker, luma: np.ndarray, *, tile: int, overlap: int,
                       notes: dict | None = None) -> np.ndarray | None:
    """H x W change that takes the JPEG blocks out of `luma` (H x W float32 in [0, 1]), or None when its
    blocks do not show; `notes`, when given, receives the "blocking" in levels and whether it "ran"."""
    import torch

    amount = blocking(luma)
    if notes is not None:
        notes.update(blocking=round(255.0 * amount, 2), ran=amount >= BLOCKING_FROM)
    if amount < BLOCKING_FROM:
        return None
    luma = torch.from_numpy(np.ascontiguousarray(luma, np.float32))
    with torch.inference_mode():  # in place: a scan's full-size temporaries are 48 MB each
        out = tiled_forward(deblocker, luma[None, None].mul(2).sub(1), tile=tile, overlap=overlap,
                            multiple=deblocker.stride)[0][0, 0]
        return out.add_(1).mul_(0.5).sub_(luma).numpy()
