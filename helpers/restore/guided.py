"""Tone by example: fit a grid of smooth tone curves that map a photo onto a reference restoration of it
(bilateral guided upsampling, Chen et al. 2016), so only the reference's *tonal* change is kept.

A grid of piecewise-linear curves, interpolated bilinearly between cells, each pixel passed through its
own: the output at a pixel depends only on that pixel's value and a smooth map, so detail passes through
unblurred. The curves are fitted small and applied to the full-size luminance in strips of rows, so a
4000 x 3000 scan needs a few tens of MB.

The reference is the bundled U-Net, run on the photo shrunk to `WORK_SIDE`: it learned fading, exposure,
toning and tarnish well over twelve training stages, but it also smooths grain, softens edges and
retouches damage. A tone curve per grid cell cannot do any of that: fitted by least squares to the
U-Net's output (destroyed pixels left out), it takes over the global and slowly varying corrections and
drops the rest, and applied to the full-size photo it cannot blur it.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

WORK_SIDE = 384  # the reference runs on the photo shrunk so its short side is at most this
FIT_SIDE = 128  # the curves are fitted on the photo and the reference shrunk to this: tone varies slowly
CELLS_ACROSS = 9  # grid cells along the short side
KNOTS = 9
# Per pixel of a cell: neighbouring cells agree, curves bend slowly. Measured on 10 held-out and 10
# training-like photos (docs/pipeline_experiments.md, 'Tone curves: smoothness'): from 0.3 / 0.3 to
# 0.1 / 0.01 the daguerreotype preset gains +0.9 dB, the five presets +0.25, fading loses 0.13 on the
# training-like photos. Spatial freedom is also what lets curves flatten local contrast (fitted to a
# blur, they keep an edge contrast of 0.81 against 0.88), so it stays at 0.1.
SMOOTH_SPACE, SMOOTH_TONE, RIDGE = 0.1, 0.01, 0.001
STRIP_ROWS = 256  # rows of a scan passed through the curves at a time


def _bilinear(coordinate: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper cell index and the upper weight of pixel centres at `coordinate` (0..1), as
    grid_sample(align_corners=False, padding_mode='border') reads a grid of `cells`."""
    position = coordinate * cells - 0.5
    low = np.floor(position)
    frac = position - low
    return np.clip(low, 0, cells - 1).astype(int), np.clip(low + 1, 0, cells - 1).astype(int), frac


@lru_cache(maxsize=8)
def _penalty(gh: int, gw: int) -> np.ndarray:
    """Smoothness of a curve grid as a quadratic form: neighbouring cells agree (first differences), each
    curve bends slowly (second differences along the knots, so a straight line costs nothing)."""
    unknowns = gh * gw * KNOTS
    grid = np.arange(unknowns).reshape(gh, gw, KNOTS)
    rows = []
    for weight, terms in ((SMOOTH_SPACE, [(grid[1:], 1.0), (grid[:-1], -1.0)]),
                          (SMOOTH_SPACE, [(grid[:, 1:], 1.0), (grid[:, :-1], -1.0)]),
                          (SMOOTH_TONE, [(grid[..., 2:], 1.0), (grid[..., 1:-1], -2.0), (grid[..., :-2], 1.0)])):
        count = terms[0][0].size
        block = np.zeros((count, unknowns))
        for cells, coefficient in terms:
            block[np.arange(count), cells.ravel()] = coefficient * np.sqrt(weight)
        rows.append(block)
    difference = np.concatenate(rows)
    penalty = difference.T @ difference
    penalty[np.diag_indices(unknowns)] += RIDGE  # pins curves that no pixel informs to the identity
    penalty.flags.writeable = False
    return penalty


def fit_curves(source: np.ndarray, target: np.ndarray, weight: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    """knots x gh x gw curve offsets (in [0, 1] units) such that curves(source) ~ target where weight > 0."""
    import torch

    height, width = source.shape
    gh, gw = cells
    unknowns = gh * gw * KNOTS
    y0, y1, fy = _bilinear((np.arange(height) + 0.5) / height, gh)
    x0, x1, fx = _bilinear((np.arange(width) + 0.5) / width, gw)
    level = np.clip(source, 0, 1) * (KNOTS - 1)
    k0 = np.clip(np.floor(level), 0, KNOTS - 2).astype(int)
    fk = level - k0
    index, value = [], []
    for ys, wy in ((y0, 1 - fy), (y1, fy)):
        for xs, wx in ((x0, 1 - fx), (x1, fx)):
            node = (ys[:, None] * gw + xs[None, :]) * KNOTS
            for dk, wk in ((0, 1 - fk), (1, fk)):
                index.append((node + k0 + dk).ravel())
                value.append((wy[:, None] * wx[None, :] * wk).ravel())
    index, value = np.stack(index, 1), np.stack(value, 1)  # pixels x 8
    w = weight.ravel().astype(np.float64)
    residual = (target - source).ravel().astype(np.float64)
    pairs = index[:, :, None] * unknowns + index[:, None, :]
    normal = np.bincount(pairs.ravel(), (w[:, None, None] * value[:, :, None] * value[:, None, :]).ravel(),
                         minlength=unknowns * unknowns).reshape(unknowns, unknowns)
    rhs = np.bincount(index.ravel(), (w[:, None] * value * residual[:, None]).ravel(), minlength=unknowns)
    per_cell = max(w.sum() / (gh * gw), 1.0)
    penalty = _penalty(gh, gw)
    # torch's solver, not numpy's: numpy's OpenBLAS threads spin on after a solve and take the cores from the
    # detector and the U-Net that run next (measured: the pipeline's 256 px photo 0.16 s -> 0.10 s)
    solution = torch.linalg.solve(torch.from_numpy(normal + per_cell * penalty), torch.from_numpy(rhs)).numpy()
    return solution.reshape(gh, gw, KNOTS).transpose(2, 0, 1).astype(np.float32)


def guided_tone(reference, luma: np.ndarray, damaged: np.ndarray, *, tile: int, overlap: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the luma with the reference restorer's tonal correction, fitted as curves and applied at full size;
    the reference's own output at the work size, which the fill uses deep inside wide holes; the rest of
    the reference's change at the work size, its output minus the curves': what no tone curve can do,
    sharpening, smoothing grain, a tarnish halo's edge)."""
    import torch

    height, width = luma.shape
    scale = min(1.0, WORK_SIDE / min(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = luma if scale == 1.0 else cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
    work = small
    keep = ~damaged if scale == 1.0 else cv2.resize(damaged.astype(np.float32), size, interpolation=cv2.INTER_AREA) == 0
    restored = reference.run(small[None].astype(np.float32), tile, overlap)[0][0]
    repaint = restored
    fit_scale = min(1.0, FIT_SIDE / min(small.shape))
    if fit_scale < 1.0:  # area-averaging both sides of the fit keeps their tone, and a quarter of the work
        fit_size = (max(1, round(small.shape[1] * fit_scale)), max(1, round(small.shape[0] * fit_scale)))
        small, restored = (cv2.resize(x, fit_size, interpolation=cv2.INTER_AREA) for x in (small, restored))
        keep = cv2.resize(keep.astype(np.float32), fit_size, interpolation=cv2.INTER_AREA) == 1
    short = min(small.shape)
    cells = (max(1, round(CELLS_ACROSS * small.shape[0] / short)), max(1, round(CELLS_ACROSS * small.shape[1] / short)))
    curves = fit_curves(small.astype(np.float64), restored.astype(np.float64), keep, cells)
    curves = torch.from_numpy(curves)[None, None] * 2  # offsets in [-1, 1] units
    toned = apply_in_strips(torch.from_numpy(np.ascontiguousarray(luma, np.float32))[None, None] * 2 - 1, curves)
    toned_work = toned if scale == 1.0 else apply_in_strips(
        torch.from_numpy(np.ascontiguousarray(work, np.float32))[None, None] * 2 - 1, curves)
    return toned, repaint, repaint - toned_work


def apply_curves(x, curves, rows: tuple[int, int] | None = None, height: int | None = None):
    """x in [-1, 1] (B x C x H x W, or rows [top, bottom) of a photo `height` tall) through a grid of
    piecewise-linear tone curves (B x C x knots x gh x gw offsets in [-1, 1] units, cell centres spread evenly
    over the photo, read as grid_sample(align_corners=False) reads a grid)."""
    import torch
    import torch.nn.functional as F

    batch, channels, h, w = x.shape
    knots = curves.shape[2]
    top, full_h = (rows[0], height) if rows else (0, h)
    ys = (torch.arange(top, top + h, device=x.device, dtype=torch.float32) + 0.5) / full_h * 2 - 1
    xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1).expand(batch, h, w, 2)
    table = F.grid_sample(curves.flatten(1, 2).float(), grid, mode="bilinear", padding_mode="border",
                          align_corners=False).view(batch, channels, knots, h, w)
    position = ((x.float() + 1) / 2).clamp(0, 1) * (knots - 1)
    low = position.floor().clamp(max=knots - 2)
    frac = position - low
    low = low.long().unsqueeze(2)
    offset = table.gather(2, low) * (1 - frac.unsqueeze(2)) + table.gather(2, low + 1) * frac.unsqueeze(2)
    return (x + offset.squeeze(2)).clamp(-1, 1)


def apply_in_strips(x, curves) -> np.ndarray:
    """Luma x (1 x 1 x H x W in [-1, 1], on the curves' device) through a curve grid, STRIP_ROWS rows at a
    time, as H x W float32 in [0, 1]: a big scan never holds all knots' tables at once."""
    import torch

    height = x.shape[-2]
    out = np.empty(x.shape[-2:], dtype=np.float32)
    with torch.inference_mode():
        for top in range(0, height, STRIP_ROWS):
            rows = (top, min(height, top + STRIP_ROWS))
            strip = apply_curves(x[..., rows[0]:rows[1], :], curves, rows=rows, height=height)
            out[rows[0]:rows[1]] = strip[0, 0].add(1).div(2).clamp(0, 1).float().cpu().numpy()
    return out
