"""Tone by example: fit a grid of smooth tone curves that map a photo onto a reference restoration of it
(bilateral guided upsampling, Chen et al. 2016), so only the reference's *tonal* change is kept.

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
SMOOTH_SPACE, SMOOTH_TONE, RIDGE = 0.3, 0.3, 0.001  # per pixel of a cell: neighbours agree, curves bend slowly


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
    solution = np.linalg.solve(normal + per_cell * penalty, rhs)
    return solution.reshape(gh, gw, KNOTS).transpose(2, 0, 1).astype(np.float32)


def guided_tone(reference, luma: np.ndarray, damaged: np.ndarray, *, tile: int, overlap: int) -> np.ndarray:
    """The luma with the reference restorer's tonal correction, fitted as curves and applied at full size."""
    import torch

    from .tone import apply_in_strips

    height, width = luma.shape
    scale = min(1.0, WORK_SIDE / min(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = luma if scale == 1.0 else cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
    keep = ~damaged if scale == 1.0 else cv2.resize(damaged.astype(np.float32), size, interpolation=cv2.INTER_AREA) == 0
    restored = reference.run(small[None].astype(np.float32), tile, overlap)[0][0]
    fit_scale = min(1.0, FIT_SIDE / min(small.shape))
    if fit_scale < 1.0:  # area-averaging both sides of the fit keeps their tone, and a quarter of the work
        fit_size = (max(1, round(small.shape[1] * fit_scale)), max(1, round(small.shape[0] * fit_scale)))
        small, restored = (cv2.resize(x, fit_size, interpolation=cv2.INTER_AREA) for x in (small, restored))
        keep = cv2.resize(keep.astype(np.float32), fit_size, interpolation=cv2.INTER_AREA) == 1
    short = min(small.shape)
    cells = (max(1, round(CELLS_ACROSS * small.shape[0] / short)), max(1, round(CELLS_ACROSS * small.shape[1] / short)))
    curves = fit_curves(small.astype(np.float64), restored.astype(np.float64), keep, cells)
    x = torch.from_numpy(np.ascontiguousarray(luma, np.float32))[None, None].mul(2).sub(1)
    return apply_in_strips(x, torch.from_numpy(curves)[None, None] * 2)  # offsets in [-1, 1] units
