"""The damage detector: where is a photo's content destroyed (scratches, cracks, dust, creases, foxing,
tears)? A small segmentation U-Net that returns one logit per pixel and nothing else.

Why a model of its own: the restoring U-Net had to learn "where" and "what instead" at once, and its mask
head found 18 % of the damage on photos it never saw. Finding is the hard part (OpenCV's Telea fills the
*true* mask of scratches for +9 dB), so finding gets its own network, trained with BCE + Dice on the aging
masks (Dice keeps 1-px cracks from drowning in the background), and the threshold that turns its
probabilities into a mask is chosen on validation photos and stored with the checkpoint.

It reuses the restoring U-Net's parts (pixel unshuffle, per-pixel LayerNorm residual blocks), so it tiles
a large scan without seams for the same reasons; it has no photo-wide context, since damage is local.
"""

from __future__ import annotations

import torch.nn as nn

from .unet import LayerNorm2d, TrunkNet


class DamageDetector(TrunkNet):
    """x in [-1, 1], B x C x H x W with any H, W -> damage logits B x 1 x H x W."""

    def __init__(self, channels: int = 1, width: int = 24, depth: int = 3, max_width: int = 96,
                 bottleneck_blocks: int = 2):
        super().__init__(channels, width, depth, max_width, bottleneck_blocks)
        self.channels = channels
        self.head = nn.Sequential(LayerNorm2d(self.widths[0]), nn.SiLU(), nn.Conv2d(self.widths[0], 4, 3, padding=1))
        nn.init.constant_(self.head[-1].bias, -4.0)  # damage is rare: start by predicting little of it

    def forward(self, x):
        return self.head_output(x)


def build(channels: int = 1, width: int = 24, depth: int = 3, max_width: int = 96, bottleneck_blocks: int = 2):
    """The registry's entry point (see helpers/models/__init__.py); task "detect", so no discriminator."""
    from . import ModelSpec

    config = {"channels": channels, "width": width, "depth": depth, "max_width": max_width,
              "bottleneck_blocks": bottleneck_blocks}
    detector = DamageDetector(channels, width, depth, max_width, bottleneck_blocks)
    spec = ModelSpec(name="detector", config=config, channels=channels, conditional=False, loss="bce",
                     task="detect", notes={"stride": detector.stride})
    return detector, None, spec
