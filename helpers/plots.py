"""Figures for notebooks and reports: labelled image grids and the operator-by-strength chart.

Figures are built without pyplot: no global figure list to leak in long loops and no GUI backend
needed on a server (saving uses Agg). Such figures lack pyplot's inline hook, so `ImageFigure` carries
its own `_repr_jpeg_` and a notebook cell that returns one shows the picture. JPEG, not PNG: these are
grids of photographs, and PNG made a stored notebook several MB, all of it in git history.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from .io import atomic_write_bytes


class ImageFigure(Figure):
    def _repr_jpeg_(self) -> bytes:
        return figure_jpeg(self)


def _show(ax, img: np.ndarray) -> None:
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.float32)
    top = 1.0 if img.dtype.kind == "f" else float(np.iinfo(img.dtype).max)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0, vmax=top, interpolation="antialiased")
    else:
        ax.imshow(np.clip(img.astype(np.float32) / top, 0, 1), interpolation="antialiased")


def image_grid(rows: Sequence[Sequence[np.ndarray | None]], row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, *, cell_inches: float = 1.8,
               title: str | None = None) -> Figure:
    """A figure with one image per cell: gray, RGB, float [0, 1], uint8/16 or boolean masks.

    A None cell stays blank. Column labels go above the first row, row labels left of the first column.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig = ImageFigure(figsize=(cell_inches * n_cols + (0.6 if row_labels else 0), cell_inches * n_rows + 0.3),
                 layout="constrained")
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(row) and row[c] is not None:
                _show(ax, row[c])
            if r == 0 and col_labels is not None and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=9)
            if c == 0 and row_labels is not None and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def mask_overlay(img: np.ndarray, mask: np.ndarray, colour=(255, 40, 40), opacity: float = 0.6) -> np.ndarray:
    """The photo as uint8 RGB with the masked pixels painted over in `colour`: what a detector found."""
    from .io import from_float, to_float, to_rgb

    rgb = to_float(to_rgb(img))
    rgb[mask] = rgb[mask] * (1 - opacity) + np.asarray(colour, np.float32) / 255 * opacity
    return from_float(rgb, np.uint8)


def figure_jpeg(fig: Figure, dpi: int = 80, quality: int = 80) -> bytes:
    """The figure as JPEG bytes (notebook display of photo grids)."""
    from PIL import Image

    png = Image.open(io.BytesIO(figure_png(fig, dpi)))
    buffer = io.BytesIO()
    png.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_grid_png(path: str | Path, rows: Sequence[Sequence[np.ndarray | None]],
                  row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None, *,
                  overwrite: bool = False, dpi: int = 100, **grid_options) -> Path:
    """image_grid written atomically as a PNG; refuses an existing file unless overwrite."""
    return atomic_write_bytes(path, figure_png(image_grid(rows, row_labels, col_labels, **grid_options), dpi),
                              overwrite=overwrite)


def operator_strength_grid(img: np.ndarray, strengths: Sequence[float] = (0, 0.25, 0.5, 0.75, 1.0),
                           seed: int = 0, operators: Sequence[str] | None = None, *,
                           with_masks: bool = False) -> Figure:
    """Every aging operator (rows) across strengths (columns) on one image; masks in extra rows if asked."""
    from .aging import OPERATORS, apply_operator

    rows, labels = [], []
    for name in operators or list(OPERATORS):
        results = [apply_operator(img, name, float(s), seed=seed) for s in strengths]
        rows.append([r.image for r in results])
        labels.append(name)
        if with_masks:
            rows.append([r.mask for r in results])
            labels.append(f"{name} mask")
    return image_grid(rows, labels, [f"strength {s:g}" for s in strengths], cell_inches=1.4)
