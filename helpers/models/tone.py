"""The tone stage: fading, overexposure, tarnish, toning, vignetting and a stain's tint undone by a smooth
per-pixel tone curve, so it cannot blur a photo.

The network looks at the whole photo shrunk to `TONE_SIZE` (fading is a question about the whole photo)
and predicts, on a coarse grid (a quarter of that size), a piecewise-linear tone curve per grid cell: the
correction added to a pixel of intensity I is the curve's value at I, with the curves interpolated
bilinearly between cells. That is a bilateral grid whose guide is the photo itself (HDRNet, Gharbi et al.
2017): contrast, gamma, gain and a tint's darkening are exact, while the output at a pixel depends only on
that pixel's own value and a smooth map, so detail passes through unblurred and a tile of a huge scan
needs nothing from its neighbours. The last layer starts at zero: an untrained stage is the identity.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .unet import GlobalContext, LayerNorm2d, ResBlock, zeroed

TONE_SIZE = 128  # the photo is seen at this size; the curve grid is TONE_SIZE / 4 cells across


class ToneCurves(nn.Module):
    """x in [-1, 1], B x C x H x W -> x with each pixel passed through its cell's tone curve (same shape)."""

    def __init__(self, channels: int = 1, width: int = 32, knots: int = 9, blocks: int = 3):
        super().__init__()
        self.channels, self.knots = channels, knots
        self.features = nn.Sequential(
            nn.Conv2d(channels + 3, width // 2, 3, stride=2, padding=1), ResBlock(width // 2),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), ResBlock(width))
        self.context = GlobalContext(channels, width, [width] * blocks)
        self.blocks = nn.ModuleList(ResBlock(width) for _ in range(blocks))
        self.head = nn.Sequential(LayerNorm2d(width), nn.SiLU(), zeroed(nn.Conv2d(width, channels * knots, 3,
                                                                                  padding=1)))

    @staticmethod
    def position(small):
        """Where each pixel is (x, y and the distance to the nearest border, in [-1, 1]): vignetting,
        tarnish and an exposure ramp depend on it, and convolutions alone can barely tell."""
        size = small.shape[-1]
        ramp = (torch.arange(size, device=small.device, dtype=small.dtype) + 0.5) / size * 2 - 1
        y, x = ramp[:, None].expand(size, size), ramp[None, :].expand(size, size)
        border = 1 - 2 * torch.minimum(1 - x.abs(), 1 - y.abs())
        return torch.stack([x, y, border])[None].expand(small.shape[0], 3, size, size)

    def curves(self, x):
        """The grid of curves for photo x: B x C x knots x gh x gw, offsets in [-1, 1] units."""
        small = F.interpolate(x, size=(TONE_SIZE, TONE_SIZE), mode="area" if min(x.shape[-2:]) >= TONE_SIZE
                              else "bilinear", align_corners=None if min(x.shape[-2:]) >= TONE_SIZE else False)
        h = self.features(torch.cat([small, self.position(small)], dim=1))
        film = self.context(self.context.pool(small, [h]))
        for block, (scale, shift) in zip(self.blocks, film):
            h = block(h) * (1 + scale) + shift
        coefficients = self.head(h)
        return coefficients.view(x.shape[0], self.channels, self.knots, *coefficients.shape[-2:])

    def apply(self, x, curves, rows: tuple[int, int] | None = None, height: int | None = None):
        return apply_curves(x, curves, rows, height)

    def forward(self, x):
        return self.apply(x, self.curves(x))


def apply_curves(x, curves, rows: tuple[int, int] | None = None, height: int | None = None):
    """x in [-1, 1] (or rows [top, bottom) of a photo `height` tall) through a grid of piecewise-linear tone
    curves (B x C x knots x gh x gw offsets, cell centres spread evenly over the photo); strips of rows keep
    memory bounded on a large scan."""
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
    offset = (table.gather(2, low) * (1 - frac.unsqueeze(2)) + table.gather(2, low + 1) * frac.unsqueeze(2))
    out = x + offset.squeeze(2)
    return out - (out - out.clamp(-1, 1)).detach()  # straight-through clamp, as the U-Net does


def build(channels: int = 1, width: int = 32, knots: int = 9, blocks: int = 3):
    """The registry's entry point (see helpers/models/__init__.py); task "tone", so no discriminator."""
    from . import ModelSpec

    config = {"channels": channels, "width": width, "knots": knots, "blocks": blocks}
    spec = ModelSpec(name="tone", config=config, channels=channels, conditional=False, loss="bce", task="tone")
    return ToneCurves(channels, width, knots, blocks), None, spec
