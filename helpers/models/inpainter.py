"""The learned fill: a mask-conditioned network that refines OpenCV's Telea fill (`restore --fill learned`).

Input: the photo with its holes already filled by Telea, and the mask, as C + 1 channels in [-1, 1];
output: the photo with only the masked pixels changed (the composite is part of the model, so nothing
outside the mask can move). Its last layer starts small, so an untrained inpainter is Telea give or take
a level or two, and training on clean photos with holes cut by the aging operators' own damage masks (L1
inside them) moves it only where that helps. Telea looks a few pixels around each hole; the network
sees ~100 px (depth 3), enough, in principle, to continue texture and edges across a scratch.

A first version drew the holes from mid-grey on its own; after 7 CPU epochs it was 2.6 dB behind Telea on
the held-out holes, so the fill now starts from Telea. Trained 40 epochs on a GPU, it then matched Telea
to 0.01 dB and no better: with L1 in thin holes there is nothing left to learn, and wide holes need a
generative loss that PSNR does not reward (docs/pipeline_experiments.md). So it is an option, not
bundled. It shares the detector's trunk, so it tiles a large scan the same way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .unet import LayerNorm2d, TrunkNet

INIT_SCALE = 0.1  # the last layer's initial weights, relative to PyTorch's default


def prefilled(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """image (B x C x H x W in [-1, 1]) with the pixels under `hole` (B x 1 x H x W, 0/1) filled by Telea."""
    from ..restore.fill import fill

    planes = ((image.detach().float().cpu() + 1) / 2).numpy()
    masks = hole.detach().cpu().numpy()[:, 0] > 0.5
    filled = np.stack([fill(p, m, method="telea") for p, m in zip(planes, masks)])
    return torch.from_numpy(filled).to(image.device, image.dtype) * 2 - 1


def conditioned(base: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The inpainter's input: the Telea-filled image and the hole as one more channel, both in [-1, 1]."""
    return torch.cat([base, hole * 2 - 1], dim=1)


class Inpainter(TrunkNet):
    """conditioned(prefilled(image, hole), hole) (B x (C+1) x H x W, any H, W) -> the image, refined
    inside the hole only."""

    def __init__(self, channels: int = 1, width: int = 24, depth: int = 3, max_width: int = 96,
                 bottleneck_blocks: int = 2):
        super().__init__(channels + 1, width, depth, max_width, bottleneck_blocks)
        self.channels = channels
        self.head = nn.Sequential(LayerNorm2d(self.widths[0]), nn.SiLU(),
                                  nn.Conv2d(self.widths[0], 4 * channels, 3, padding=1))
        # Small, not zero: a zero last layer leaves the trunk without gradient, and the correction stayed at
        # zero for 3 epochs (docs/pipeline_experiments.md); a tenth of the default start is ~0.01 of noise.
        with torch.no_grad():
            self.head[-1].weight.mul_(INIT_SCALE)
            self.head[-1].bias.zero_()

    def forward(self, x):
        correction = self.head_output(x)
        base, hole = x[:, :self.channels], (x[:, self.channels:] + 1) / 2
        return (base + hole * correction).clamp(-1, 1)  # the known pixels pass through exactly


def build(channels: int = 1, width: int = 24, depth: int = 3, max_width: int = 96, bottleneck_blocks: int = 2):
    """The registry's entry point (see helpers/models/__init__.py); task "inpaint", no discriminator."""
    from . import ModelSpec

    config = {"channels": channels, "width": width, "depth": depth, "max_width": max_width,
              "bottleneck_blocks": bottleneck_blocks}
    inpainter = Inpainter(channels, width, depth, max_width, bottleneck_blocks)
    spec = ModelSpec(name="inpainter", config=config, channels=channels, conditional=False, loss="bce",
                     task="inpaint", notes={"stride": inpainter.stride, "starts_from": "telea",
                                               "input_channels": channels + 1})
    return inpainter, None, spec
