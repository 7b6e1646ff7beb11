"""Stage 3 of the pipeline: fill the destroyed pixels, and only those.

OpenCV's inpainting (Telea's fast marching, or Navier-Stokes) propagates the surrounding picture into the
mask; the learned fill (helpers/models/inpainter.py) refines Telea's result with a network trained on
holes cut by the aging operators' masks. The mask is first widened a little (the anti-aliased rim of a
scratch is damaged too, though below the detector's threshold); deep inside wide holes `fill_deep` takes
over from the border-continuing fill. Every pixel outside the widened mask is returned exactly as it came in.
"""

from __future__ import annotations

import cv2
import numpy as np

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS, "learned": None}
DEEP_FROM, DEEP_RAMP = 2.0, 4.0  # px into a hole where `fill_deep` starts taking over, and over how many px
TRUSTED_CHANGE = 0.2  # the U-Net's change to a pixel ([0, 1] units) at which its repaint is fully trusted
SMOOTH_SIGMA = 6.0  # px: the smoothed fill deep in a hole the U-Net left alone
FRAME_BORDER, FRAME_DEPTH_AT_256 = 0.75, 25.0  # share of the photo's edge a frame (a mat) runs along; px deep
FRAME_RAMP = 2.0  # px over which a frame's repaint comes in from its rim
FRAME_THIN_AT_256 = 3  # px: what is thinner than twice this and a pixel (a scratch run into the mat) is no frame
WIDEN_AT_256 = 1  # px the mask grows before the fill at a 256 px short side; more on bigger photos


def scale_of(shape: tuple[int, int]) -> float:
    """The photo's scale against the 256 px short side the detectors and the stages were trained at."""
    return max(1.0, min(shape) / 256)


def widen_px(shape: tuple[int, ...]) -> int:
    """How many px the mask of a photo of `shape` (..., H, W) grows before the fill: the fill's reach past a
    scratch's soft edge scales with the photo."""
    return max(WIDEN_AT_256, round(WIDEN_AT_256 * min(shape[-2:]) / 256))


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


def hole_depth(mask: np.ndarray) -> np.ndarray:
    """Each pixel's distance to the nearest pixel outside `mask` (0 outside): how deep into a hole it lies.
    `has_deep`, `frames` and `fill_deep` all read it; the pipeline computes it once and hands it to each."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)


def has_deep(mask: np.ndarray, depth: np.ndarray | None = None) -> bool:
    """Whether `mask` has a hole wide enough for `fill_deep` to hand it over to the U-Net's repaint entirely
    (pixels more than DEEP_FROM + DEEP_RAMP inside): a mat, a torn corner, a flake. Dust specks and cracks
    are shallower, and without a repaint their few deep pixels get the smoothed fill."""
    if not mask.any():
        return False
    return bool(((hole_depth(mask) if depth is None else depth) > DEEP_FROM + DEEP_RAMP).any())


def frames(mask: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
    """The holes in `mask` that frame the picture, a cased daguerreotype's mat, whole or in pieces: the wide
    ones (reaching FRAME_DEPTH_AT_256 px in, scaled with the photo; `depth` is the distance to a hole's rim),
    when together they run along at least FRAME_BORDER of the photo's edge pixels. On the benchmark's photos
    a daguerreotype's mat runs along 81-100 % of the edge; the four corners of a smaller one 40-64 % (taken
    as a frame at 0.4, they lost 0.1 dB on validation); torn corners and the heavy preset's other wide holes
    0-35 %; a tarnished rim is 13-23 px deep. Only the frame's thick body, not a scratch run into it. H x W
    bool."""
    found = np.zeros(mask.shape, bool)
    if not mask.any():
        return found
    if depth is None:
        depth = hole_depth(mask)
    scale = scale_of(mask.shape)
    reach = FRAME_DEPTH_AT_256 * scale
    if depth.max() < reach:
        return found
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    deepest = np.zeros(count, np.float32)
    np.maximum.at(deepest, labels.ravel(), depth.ravel())
    wide = deepest >= reach
    wide[0] = False  # the background
    edge = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    if wide[edge].mean() < FRAME_BORDER:
        return found
    # Only the frame's thick body: a scratch that runs into the mat is joined to it, and the U-Net's repaint
    # keeps scratches; an opening leaves it to Telea.
    size = 2 * round(FRAME_THIN_AT_256 * scale) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return wide[labels] & cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, disc).astype(bool)


def fill_deep(filled: np.ndarray, mask: np.ndarray, luma: np.ndarray, repaint: np.ndarray | None,
              frame: np.ndarray | None = None, depth: np.ndarray | None = None) -> np.ndarray:
    """`filled` (C x H x W) with the inside of wide holes replaced. Telea continues a hole's border inward:
    right for a 1-6 px scratch, long streaks across a torn corner or an oval mat tens of pixels deep. From
    DEEP_FROM px inside a hole (fully DEEP_FROM + DEEP_RAMP px in), the fill gives way to the U-Net's
    `repaint` (its output for the photo's `luma`, at any size) where the U-Net changed the pixel (it learned
    mats, tarnish and flakes), and to the smoothed fill where it left the pixel as it was (a torn corner it
    never learned): where the content is gone, a smooth guess is the least-squares one. On the benchmark's 55
    photos: five presets +2.49 -> +2.93 dB, torn corners +2.57 -> +3.08, no PSNR row worse; SSIM
    0.02 lower on daguerreotype and tarnish, where the repaint is soft (docs/pipeline_experiments.md).
    A frame (`frame`, or `frames` of the mask when not given: a mat) is the U-Net's repaint throughout,
    from FRAME_RAMP px in: Telea carries the mat's bright bevel inward, and the U-Net learned mats whether
    it changed a pixel much or not (docs/pipeline_experiments.md, 'Frames': with the tone stage's `halo`,
    daguerreotype +4.75 -> +5.33 dB on validation, +7.76 -> +8.11 held-out, no other row moved).
    The luminance shift is added to every channel, which keeps a colour photo's chroma. Without a `repaint`
    (None: the U-Net was not run, `has_deep` found no wide hole) the smoothed fill takes over alone.
    `depth` is `hole_depth(mask)` where the caller has it already."""
    if not mask.any():
        return filled
    if depth is None:
        depth = hole_depth(mask)
    deep = depth > DEEP_FROM
    if not deep.any():
        return filled
    from .tone import luminance

    # Only the box around the deep pixels, plus the blur's reach: a scan with a few mats or corners does
    # not pay for full-size temporaries.
    reach = int(4 * SMOOTH_SIGMA) + 1
    rows, cols = np.flatnonzero(deep.any(axis=1)), np.flatnonzero(deep.any(axis=0))
    box = (slice(max(rows[0] - reach, 0), rows[-1] + reach + 1), slice(max(cols[0] - reach, 0), cols[-1] + reach + 1))
    weight = np.clip((depth[box] - DEEP_FROM) / DEEP_RAMP, 0.0, 1.0)
    base = luminance(filled[(slice(None), *box)])
    target = cv2.GaussianBlur(base, (0, 0), SMOOTH_SIGMA)
    if repaint is not None:
        if repaint.shape != luma.shape:
            repaint = cv2.resize(repaint, luma.shape[::-1], interpolation=cv2.INTER_LINEAR)
        trust = np.clip(np.abs(repaint[box] - luma[box]) / TRUSTED_CHANGE, 0.0, 1.0)
        target = trust * repaint[box] + (1 - trust) * target
        frame = (frames(mask, depth) if frame is None else frame)[box]
        if frame.any():
            target = np.where(frame, repaint[box], target)
            weight = np.where(frame, np.clip(depth[box] / FRAME_RAMP, 0.0, 1.0), weight)
    out = filled.copy()
    out[(slice(None), *box)] = np.clip(filled[(slice(None), *box)] + (weight * (target - base))[None], 0.0, 1.0)
    return out
