"""The deblocker: undoes the 8 x 8 blocks and ringing of a JPEG-compressed scan.

Why a model of its own, and why this shape: JPEG's error is made block by block (each 8 x 8 block's
DCT coefficients rounded), so the network works in block space: the photo is unshuffled into one
64-channel vector per block (the JPEG grid starts at the photo's top-left corner), convolutions over
neighbouring blocks estimate what the rounding took, and the vectors are shuffled back into pixels; a
small full-resolution head then smooths what is left across block edges. Working at 1/8 of the size
makes it cheap, and a residual that starts at zero starts as the identity. Trained by regression alone
(`train --model deblocker`, task "deblock") on photos JPEG-compressed at random quality after aging,
with the aged photo as the target, so it learns to undo the compression and nothing else.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .unet import pad_to_multiple

BLOCK = 8  # JPEG's block side


class _Block(nn.Module):
    """Residual: 3 x 3 convolution, ReLU, 3 x 3 convolution."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Deblocker(nn.Module):
    """x in [-1, 1], B x C x H x W -> the photo without its JPEG blocks, same shape (padded at the bottom and
    right to whole blocks inside, which keeps the grid where it is)."""

    stride = BLOCK  # tiles start on the JPEG grid

    def __init__(self, channels: int = 1, width: int = 96, blocks: int = 4, head: int = 16):
        super().__init__()
        self.channels = channels
        depth = channels * BLOCK * BLOCK
        self.stem = nn.Conv2d(depth, width, 3, padding=1)
        self.blocks = nn.Sequential(*(_Block(width) for _ in range(blocks)))
        self.out = nn.Conv2d(width, depth, 3, padding=1)
        self.head = nn.Sequential(nn.Conv2d(2 * channels, head, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(head, channels, 3, padding=1))
        for last in (self.out, self.head[-1]):  # both residuals start at zero: the identity
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x):
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, BLOCK)
        y = x + F.pixel_shuffle(self.out(self.blocks(F.relu(self.stem(F.pixel_unshuffle(x, BLOCK))))), BLOCK)
        return (y + self.head(torch.cat([x, y], dim=1)))[..., :height, :width]


def build(channels: int = 1, width: int = 96, blocks: int = 4, head: int = 16):
    """The registry's entry point (see helpers/models/__init__.py); task "deblock", no discriminator."""
    from . import ModelSpec

    config = {"channels": channels, "width": width, "blocks": blocks, "head": head}
    model = Deblocker(channels, width, blocks, head)
    spec = ModelSpec(name="deblocker", config=config, channels=channels, conditional=False, loss="bce",
                     task="deblock", notes={"stride": model.stride})
    return model, None, spec
