"""Pictures of a training run: loss curves and clean/damaged/restored triptychs, as files or live.

The same two figures serve both places: `fit` writes them into the run folder (loss_curves.png,
samples/epoch_XXX.png) and, in a notebook, `LivePlot` shows them through display handles that are
updated in place, so the notebook keeps one loss figure rather than a scroll of stale ones.
Figures are helpers.plots.ImageFigure objects: no pyplot state, no GUI backend, shown inline when a
notebook cell returns one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .io import atomic_write_bytes
from .plots import ImageFigure, figure_png

GENERATOR_CURVES = {"g_adv": "adversarial", "g_l1": "L1 (times lambda in the loss)", "g_mask": "mask BCE"}
DISCRIMINATOR_CURVES = {"d_real": "on real", "d_fake": "on fake"}


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Running mean over `width` steps; GAN losses are too noisy step by step to read a trend."""
    if width <= 1 or len(values) < width:
        return values
    kernel = np.ones(width) / width
    return np.convolve(values, kernel, mode="valid")


def loss_figure(history: list[dict]) -> Figure:
    """Generator losses and discriminator losses per step; train and validation L1 per epoch."""
    steps = [r for r in history if r["kind"] == "step"]
    epochs = [r for r in history if r["kind"] == "epoch"]
    fig = ImageFigure(figsize=(13, 3.4), layout="constrained")
    ax_g, ax_d, ax_v = fig.subplots(1, 3)
    width = max(1, len(steps) // 50)
    for ax, curves, title in ((ax_g, GENERATOR_CURVES, "generator"), (ax_d, DISCRIMINATOR_CURVES, "discriminator")):
        for key, label in curves.items():
            points = [(r["step"], r[key]) for r in steps if key in r]
            if points:
                x, y = np.array(points).T
                ax.plot(x[width - 1:] if len(x) >= width else x, _smooth(y, width), label=label, lw=1)
        ax.set(title=f"{title} loss" + (f" (mean of {width} steps)" if width > 1 else ""), xlabel="step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines:
            ax.legend(fontsize=8)
    # The loss's L1 is measured in the models' [-1, 1] range; halved it is in image units like validation.
    for key, scale, label, style in (("train_g_l1", 0.5, "train L1", "o--"), ("val_l1", 1, "validation L1", "o-"),
                                     ("val_mse", 1, "validation MSE", "s-")):
        points = [(r["epoch"], r[key] * scale) for r in epochs if key in r]
        if points:
            x, y = np.array(points).T
            ax_v.plot(x, y, style, label=label, ms=4)
    ax_v.set(title="loss per epoch (images in [0, 1])", xlabel="epoch")
    ax_v.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs:
        ax_v.set_xlim(0.5, epochs[-1]["epoch"] + 0.5)
    if ax_v.lines:
        ax_v.legend(fontsize=8)
    return fig


def triptych_figure(rows: list[tuple[np.ndarray, ...]], title: str = "",
                    labels: tuple[str, ...] = ("clean", "damaged", "restored")) -> Figure:
    """One row per photo, one column per label (C x H x W float arrays in [0, 1], any sizes)."""
    fig = ImageFigure(figsize=(2.5 * len(labels), 2.6 * len(rows) + 0.3), layout="constrained")
    axes = np.asarray(fig.subplots(len(rows), len(labels), squeeze=False))
    for index, (row, images) in enumerate(zip(axes, rows)):
        for ax, image, label in zip(row, images, labels):
            image = np.clip(np.moveaxis(np.asarray(image), 0, -1), 0, 1)
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image)
            if index == 0:
                ax.set_title(label, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig


def save_loss_curves(path: str | Path, history: list[dict]) -> Path:
    return atomic_write_bytes(path, figure_png(loss_figure(history)), overwrite=True)


def save_triptychs(path: str | Path, triptychs: list, title: str = "") -> Path:
    return atomic_write_bytes(path, figure_png(triptych_figure(triptychs, title)), overwrite=True)


class LivePlot:
    """A `fit` callback for notebooks: one loss figure redrawn in place every `every` steps and at each
    epoch's end, plus that epoch's triptych shown below it (one per epoch, so progress stays visible)."""

    def __init__(self, every: int = 20):
        self.every = every
        self.handle = None

    def __call__(self, history: list[dict], triptychs: list | None) -> None:
        from IPython.display import Image, display

        steps = sum(r["kind"] == "step" for r in history)
        if triptychs is None and steps % self.every:
            return
        image = Image(data=figure_png(loss_figure(history)))
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
        if triptychs:
            display(Image(data=figure_png(triptych_figure(triptychs, f"epoch {history[-1]['epoch']}"))))
