"""The restorer people use: a small residual U-Net with a damage-mask head, and pix2pix's 70x70 PatchGAN.

Why this shape (the study's DCGAN blurred photos and trained at a crawl):
- Residual learning: the generator predicts a *correction* that is added to its input, so undamaged
  detail passes straight through and the output stays as sharp as the scan. The correction layer
  starts at zero, so an untrained model is the identity rather than noise.
- Fully convolutional: any size is padded (reflect) to a multiple of the total stride and cropped back.
- Per-pixel channel LayerNorm instead of BatchNorm/InstanceNorm/GroupNorm: it works at batch size 1
  and, unlike norms that pool statistics over the whole image, gives a tile the same features it has
  inside the full picture, so restoring a large scan tile by tile leaves no seams (helpers/restore/tiling.py).
- Cheap where it matters on a CPU: a pixel unshuffle turns each 2x2 block into 4 channels losslessly
  (as FFDNet does), so no layer runs at full resolution, and the decoder's upsampling convolution
  runs *before* the 2x nearest upsampling; training memory per image is a fraction of the seed's.
- A second head predicts damage-mask logits (trained with BCE against the aging masks), so the network
  says where it thinks the photo was destroyed; `restore --save-mask` writes it out.
- Optional photo-wide context (`context=True`): fading, overexposure and toning are global, and whether a
  photo is faded is a question about the whole photo (where are its blacks?), which convolutions that each
  see a window cannot answer. A soft cumulative histogram of the photo's tones and the encoder's features
  averaged over the photo go through an MLP that gives a scale and shift per channel (FiLM) for the
  bottleneck and every decoder level. The context comes from
  the whole photo at most `CONTEXT_SIZE` px wide (`describe`), and `restore` computes it once and hands it
  to every tile, so tiles still agree. Its last layer starts at zero: an existing checkpoint grown with it
  (`train --init ... --model-option context=true`) starts out computing exactly what it did.

Defaults: width 32, 3 downsamplings after the unshuffle (total stride 16), widths 32-64-128-128,
1.85 M parameters (3.7 MB in fp16). The PatchGAN is pix2pix's n_layers=3 discriminator (receptive
field 70x70) with InstanceNorm for batch size 1 and a base width of 32 instead of 64, which keeps the
training step cheap.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel (ConvNeXt style): no batch or spatial statistics."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        # F.layer_norm on a channels-last view: one fused kernel, about 3x faster than by hand.
        x = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """Pre-activation residual block: (norm, SiLU, conv3x3) twice, plus the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            LayerNorm2d(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            LayerNorm2d(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


def zeroed(layer: nn.Module) -> nn.Module:
    """The layer with zero weights and bias: a new output path that changes nothing until it is trained,
    so a fresh U-Net is the identity and growing a checkpoint keeps its output."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


CONTEXT_SIZE = 256  # the photo-wide context is taken from the whole photo at this size, as in training


class GlobalContext(nn.Module):
    """The photo's tone distribution (a soft cumulative histogram per channel) and the mean of every encoder
    level's features over the photo -> MLP -> (scale, shift) per decoder channel."""

    LEVELS = 16  # tone levels of the cumulative histogram, evenly spaced in [-1, 1]

    def __init__(self, channels: int, features: int, modulated: list[int], hidden: int = 128):
        super().__init__()
        self.modulated = modulated
        self.register_buffer("levels", torch.linspace(-1, 1, 2 * self.LEVELS + 1)[1::2], persistent=False)
        self.mlp = nn.Sequential(nn.Linear(self.LEVELS * channels + features, hidden), nn.SiLU(),
                                 zeroed(nn.Linear(hidden, 2 * sum(modulated))))  # starts as no modulation at all

    def pool(self, image: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """Share of pixels darker than each level (soft, so it is smooth in the image), then feature means.
        Black and white points, which say how faded a photo is, are read directly off the first part."""
        darker = torch.sigmoid((self.levels[:, None, None] - image[:, :, None]) * self.LEVELS).mean(dim=(3, 4))
        return torch.cat([darker.flatten(1), *(f.mean(dim=(2, 3)) for f in features)], dim=1)

    def forward(self, pooled: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        film = self.mlp(pooled)[..., None, None].split([c for c in self.modulated for _ in (0, 1)], dim=1)
        return list(zip(film[0::2], film[1::2]))


def add_trunk(module: nn.Module, channels: int, width: int, depth: int, max_width: int,
              bottleneck_blocks: int) -> list[int]:
    """Give `module` the encoder-decoder every U-Net here shares (the restorer and the damage detector):
    pixel unshuffle and stem, a residual block and a strided conv per level, the bottleneck, and per level
    an upsampling conv and a residual block. Returns the widths per level."""
    widths = [min(width * 2 ** level, max_width) for level in range(depth + 1)]
    # Pixel unshuffle: each 2x2 block of pixels becomes 4 channels, losslessly (as FFDNet does), so
    # the first level works at half resolution, at a quarter of the cost and memory of full size.
    module.unshuffle, module.shuffle = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
    module.stem = nn.Conv2d(4 * channels, widths[0], 3, padding=1)
    module.encoder = nn.ModuleList(ResBlock(w) for w in widths[:-1])
    module.down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
    module.bottleneck = nn.Sequential(*(ResBlock(widths[-1]) for _ in range(bottleneck_blocks)))
    module.up = nn.ModuleList(nn.Conv2d(b, a, 3, padding=1) for a, b in zip(widths, widths[1:]))
    module.decoder = nn.ModuleList(ResBlock(w) for w in widths[:-1])
    return widths


def encode(module: nn.Module, padded):
    """(skip features per level, bottleneck features) of a trunk made by `add_trunk`."""
    h = module.stem(module.unshuffle(padded))
    skips = []
    for block, down in zip(module.encoder, module.down):
        h = block(h)
        skips.append(h)
        h = down(h)
    return skips, module.bottleneck(h)


def decode_level(module: nn.Module, level: int, h, skip):
    """One decoder level, from the deepest (level 0) up: upsample, add the skip, a residual block."""
    return module.decoder[-1 - level](F.interpolate(module.up[-1 - level](h), scale_factor=2.0, mode="nearest") + skip)


class TrunkNet(nn.Module):
    """A plain U-Net trunk (no context, no FiLM) ending in a head at full resolution: the detector's and
    the inpainter's common part. Subclasses build `self.head` (4 x out channels: it feeds the shuffle)."""

    def __init__(self, in_channels: int, width: int, depth: int, max_width: int, bottleneck_blocks: int):
        super().__init__()
        self.depth = depth
        self.widths = add_trunk(self, in_channels, width, depth, max_width, bottleneck_blocks)

    @property
    def stride(self) -> int:
        """Inputs are padded to a multiple of this; tiles of a large scan start on multiples of it."""
        return 2 ** (self.depth + 1)

    def head_output(self, x):
        """The head's output for x at x's size: padded for the trunk, cropped back."""
        height, width = x.shape[-2:]
        skips, h = encode(self, pad_to_multiple(x, self.stride))
        for level, skip in enumerate(reversed(skips)):
            h = decode_level(self, level, h, skip)
        return self.shuffle(self.head(h))[..., :height, :width]


class UNetGenerator(nn.Module):
    """x in [-1, 1], B x C x H x W with any H, W -> (restored in [-1, 1], damage-mask logits B x 1 x H x W)."""

    def __init__(self, channels: int = 1, width: int = 32, depth: int = 3, max_width: int = 128,
                 bottleneck_blocks: int = 2, context: bool = False, gain: bool = False):
        super().__init__()
        self.channels, self.depth = channels, depth
        widths = add_trunk(self, channels, width, depth, max_width, bottleneck_blocks)
        self.head = nn.Sequential(LayerNorm2d(widths[0]), nn.SiLU())
        self.to_correction = zeroed(nn.Conv2d(widths[0], 4 * channels, 3, padding=1))
        self.to_mask = nn.Conv2d(widths[0], 4, 3, padding=1)
        # Local contrast gain: the output is (1 + gain) * input + correction, so restoring a faded photo's
        # contrast (fading is x -> (1 - a) x + a grey) amplifies the detail it still has instead of having
        # to redraw it. A smooth map, at half resolution upsampled; zero at init like the correction.
        self.to_gain = zeroed(nn.Conv2d(widths[0], channels, 3, padding=1)) if gain else None
        # FiLM for the bottleneck, then each decoder level from the deepest up
        self.context = (GlobalContext(channels, sum(widths), [widths[-1], *reversed(widths[:-1])]) if context
                        else None)

    @property
    def stride(self) -> int:
        """Inputs are padded to a multiple of this; tiles of a large scan start on multiples of it."""
        return 2 ** (self.depth + 1)

    def _encode(self, padded):
        return encode(self, padded)

    def describe(self, x):
        """The photo-wide context of x (B x C x H x W, the whole photo), for `forward(tile, context=...)`.
        Photos wider than CONTEXT_SIZE are first shrunk to it (area), the scale the model was trained at."""
        if self.context is None:
            return None
        scale = CONTEXT_SIZE / max(x.shape[-2:])
        if scale < 1:
            x = F.interpolate(x, scale_factor=scale, mode="area")
        padded = pad_to_multiple(x, self.stride)
        skips, h = self._encode(padded)
        return self.context.pool(padded, [*skips, h])

    def forward(self, x, context=None):
        """`context` (from `describe` on the whole photo) is for tiles; without it x is the whole photo."""
        height, width = x.shape[-2:]
        padded = pad_to_multiple(x, self.stride)
        skips, h = self._encode(padded)
        film = []
        if self.context is not None:
            if context is None and max(height, width) > CONTEXT_SIZE:
                context = self.describe(x)
            film = self.context(self.context.pool(padded, [*skips, h]) if context is None else context)
            scale, shift = film[0]
            h = h * (1 + scale) + shift
        for level, skip in enumerate(reversed(skips)):
            h = decode_level(self, level, h, skip)
            if film:
                scale, shift = film[level + 1]
                h = h * (1 + scale) + shift
        h = self.head(h)
        image = padded + self.shuffle(self.to_correction(h))
        if self.to_gain is not None:
            image = image + F.interpolate(self.to_gain(h), scale_factor=2.0, mode="bilinear") * padded
        # Straight-through clamp: the output stays in [-1, 1] and gradients still flow where it clips.
        image = image - (image - image.clamp(-1, 1)).detach()
        return image[..., :height, :width], self.shuffle(self.to_mask(h))[..., :height, :width]


def pad_to_multiple(x, multiple: int):
    """Pad bottom and right to a multiple: reflect, or replicate for images smaller than the pad (1x1)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class PatchDiscriminator(nn.Module):
    """pix2pix's 70x70 PatchGAN: one real/fake logit per overlapping 70x70 patch (any input size >= 70
    gives a map; 256 -> 30x30). Conditional: it sees cat([damaged, candidate]) (2 x channels)."""

    def __init__(self, in_channels: int = 2, width: int = 32):
        super().__init__()

        def block(cin, cout, stride, norm=True):
            layers = [nn.Conv2d(cin, cout, 4, stride, 1, bias=not norm)]
            if norm:
                layers.append(nn.InstanceNorm2d(cout))  # per-sample statistics: fine at batch size 1
            return layers + [nn.LeakyReLU(0.2, inplace=True)]

        self.main = nn.Sequential(
            *block(in_channels, width, 2, norm=False),
            *block(width, width * 2, 2),
            *block(width * 2, width * 4, 2),
            *block(width * 4, width * 8, 1),
            nn.Conv2d(width * 8, 1, 4, 1, 1),
        )

    def forward(self, x):
        return self.main(x)


def _normal_init(module: nn.Module) -> None:
    """pix2pix's init for the discriminator: conv weights N(0, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build(channels: int = 1, width: int = 32, depth: int = 3, max_width: int = 128, bottleneck_blocks: int = 2,
          disc_width: int = 32, context: bool = False, gain: bool = False):
    """The registry's entry point (see helpers/models/__init__.py).

    The generator keeps PyTorch's default (Kaiming) init, which suits its LayerNorm residual blocks,
    with the zero correction layer that makes it start as the identity.
    """
    from . import ModelSpec

    config = {"channels": channels, "width": width, "depth": depth, "max_width": max_width,
              "bottleneck_blocks": bottleneck_blocks, "disc_width": disc_width, "context": bool(context),
              "gain": bool(gain)}
    generator = UNetGenerator(channels, width, depth, max_width, bottleneck_blocks, bool(context), bool(gain))
    discriminator = PatchDiscriminator(2 * channels, disc_width)
    discriminator.apply(_normal_init)
    spec = ModelSpec(name="unet", config=config, channels=channels, conditional=True, loss="bce",
                     l1_weight=100.0, mask_head=True, notes={"stride": generator.stride})
    return generator, discriminator, spec
