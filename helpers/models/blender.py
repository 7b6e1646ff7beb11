"""The rims stage's network: pixel by pixel, keep the photo, take the pipeline's fill, or a wider fill?

The detectors' mask often holds only part of a scratch or speck they found: its faint ends and soft rims
stay below the threshold, and the fill leaves them. A wider mask (every pixel either detector gives a
little, and a ring around what it marked) fills them, but fills the picture's own lines as often. So a
small U-Net trunk sees the photo, both fills, what each changes, both regions and both detectors'
probabilities, and returns three logits per pixel; the stage (restore/rims.py) adds them to a prior that
is today's choice (keep outside the mask, fill inside) and blends the three answers by their softmax.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .unet import LayerNorm2d, TrunkNet

FEATURES = 9  # photo, fill, wider fill, their two differences from the photo, both regions, both probabilities
CHOICES = 3  # keep, fill, wider fill
PRIOR = 4.0  # logits between today's choice and the others before the network speaks


def features(photo, fill, wide_fill, mask, region, detected, speckled) -> torch.Tensor:
    """The network's B x FEATURES x H x W input from B x 1 x H x W planes in [0, 1] (masks as 0/1)."""
    return torch.cat([photo * 2 - 1, fill * 2 - 1, wide_fill * 2 - 1, (photo - fill) * 4, (photo - wide_fill) * 4,
                      mask * 2 - 1, region * 2 - 1, detected * 2 - 1, speckled * 2 - 1], 1)


def weights(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """B x CHOICES blend weights: the network's logits on top of today's choice (fill inside `mask`).
    Inside the mask the photo as it came is never a choice: the stage adds to what is filled and never
    takes back what the detectors marked. (Free to, it learned on training photos to leave the speck
    finder's dust, whose gain is on other subjects: validation dust +1.78 -> -0.09 dB.)"""
    prior = torch.cat([(1 - mask) * PRIOR - mask * 1e4, mask * PRIOR, torch.zeros_like(mask)], 1)
    return torch.softmax(logits.float() + prior, 1)


class Blender(TrunkNet):
    """B x FEATURES x H x W (`features`) -> B x CHOICES x H x W logits."""

    def __init__(self, width: int = 16, depth: int = 3, max_width: int = 64, bottleneck_blocks: int = 1):
        super().__init__(FEATURES, width, depth, max_width, bottleneck_blocks)
        self.head = nn.Sequential(LayerNorm2d(self.widths[0]), nn.SiLU(),
                                  nn.Conv2d(self.widths[0], 4 * CHOICES, 3, padding=1))
        with torch.no_grad():  # start from the prior: today's pipeline
            self.head[-1].weight.mul_(0.1)
            self.head[-1].bias.zero_()

    def forward(self, x):
        return self.head_output(x)


def build(channels: int = 1, width: int = 16, depth: int = 3, max_width: int = 64, bottleneck_blocks: int = 1):
    """The registry's entry point (see helpers/models/__init__.py); task "blend", so no discriminator. It
    reads the luma, so it is trained on gray photos (`channels` 1) and blends colour ones' planes alike."""
    from .. import UsageError
    from . import ModelSpec

    if channels != 1:
        raise UsageError("the blender reads gray photos' luma: train it without --rgb")
    config = {"channels": 1, "width": width, "depth": depth, "max_width": max_width,
              "bottleneck_blocks": bottleneck_blocks}
    blender = Blender(width, depth, max_width, bottleneck_blocks)
    spec = ModelSpec(name="blender", config=config, channels=1, conditional=False, loss="bce", task="blend",
                     notes={"stride": blender.stride, "input_channels": FEATURES})
    return blender, None, spec
