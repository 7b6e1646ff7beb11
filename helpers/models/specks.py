"""The speck finder: a second detector, at full resolution, for dust specks only (hairs, thin lines, stay
the damage detector's).

Why a model of its own: the damage detector draws its mask at half size through a pixel shuffle, and its
training (BCE + Dice over the batch, mats and torn corners included) is dominated by large regions; it
left contrasty 3-5 px specks on a hand or a dark shirt at probability ~0 and found dust with F1 0.48 on
the benchmark's held-out photos (docs/pipeline_experiments.md). Specks are local: whether a blob is a
speck or part of the picture shows within a few tens of pixels. So this net never shrinks the photo, sees
~37 px (dilated residual blocks), and is trained on clean photos with dust and the scanning operators
(grain, JPEG, blur, paper) that must not be taken for it (`--presets specks`). The pipeline fills the
union of both detectors' masks.
"""

from __future__ import annotations

import torch.nn as nn

from .unet import LayerNorm2d


class _Block(nn.Module):
    """Residual: per-pixel LayerNorm, a dilated 3 x 3 convolution, SiLU, a 1 x 1 convolution."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(LayerNorm2d(width), nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation,
                                                                padding_mode="reflect"),
                                  nn.SiLU(), nn.Conv2d(width, width, 1))

    def forward(self, x):
        return x + self.body(x)


class SpeckDetector(nn.Module):
    """x in [-1, 1], B x C x H x W with any H, W -> speck logits B x 1 x H x W, at full resolution."""

    stride = 1  # nothing is shrunk: any size goes through as it is

    def __init__(self, channels: int = 1, width: int = 16, dilations: tuple[int, ...] = (1, 2, 4, 8, 1)):
        super().__init__()
        self.channels = channels
        self.min_size = max(dilations) + 1  # reflection padding needs a side longer than the widest dilation
        self.stem = nn.Conv2d(channels, width, 3, padding=1, padding_mode="reflect")
        self.blocks = nn.Sequential(*(_Block(width, d) for d in dilations))
        self.head = nn.Sequential(LayerNorm2d(width), nn.SiLU(), nn.Conv2d(width, 1, 3, padding=1, padding_mode="reflect"))
        nn.init.constant_(self.head[-1].bias, -4.0)  # specks are rare: start by predicting few

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def build(channels: int = 1, width: int = 16, dilations: tuple[int, ...] | list[int] = (1, 2, 4, 8, 1)):
    """The registry's entry point (see helpers/models/__init__.py); task "detect", so no discriminator."""
    from . import ModelSpec

    dilations = tuple(int(d) for d in dilations)
    config = {"channels": channels, "width": width, "dilations": list(dilations)}
    model = SpeckDetector(channels, width, dilations)
    spec = ModelSpec(name="specks", config=config, channels=channels, conditional=False, loss="bce",
                     task="detect", notes={"stride": model.stride, "receptive_field_px": 3 + 2 * sum(dilations) + 2})
    return model, None, spec
