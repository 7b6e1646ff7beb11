"""The study's image-to-image DCGAN, layer for layer, kept as the baseline every new model is measured against.

The generator takes a damaged 1x256x256 photo in [-1, 1] and returns a restored one. Its odd shape is
the study's: transposed convolutions *inflate* the image to 64x1036x1036 and max pooling shrinks it back,
which is why it trains slowly and needs 1.5 to 2 GB of activations per image in a batch (peak RSS on a
CPU: 2.3 GB at batch 1, 6.6 GB at batch 4; benchmarks/train_speed.json).
Shapes along the way: 259, 518, 1036, 259 (pool 4), 260, 257 (pool 4, stride 1), 256. 693,696 parameters.

The discriminator is a binary classifier ending in Linear(100, 2) + Softmax, 1,851,426 parameters. The
Softmax layer stays in the module so torchsummary shows the study's table, but training calls
`forward(x, return_logits=True)` and uses cross-entropy on the logits, which is the numerically stable
form of the same loss (log of a softmax that saturated to 0 is -inf; log_softmax of logits is not).

All convolutions have bias=False as in the study; weights start from the DCGAN init N(0, 0.02).
"""

from __future__ import annotations

import torch.nn as nn

IMAGE_SIZE = 256  # fixed: the layer arithmetic above only returns 256 for a 256 input


def _up(cin: int, cout: int, stride: int, padding: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class SeedGenerator(nn.Module):
    def __init__(self, channels: int = 1):
        super().__init__()
        self.main = nn.Sequential(
            *_up(channels, 256, 1, 0),  # 256 x 259 x 259
            *_up(256, 128, 2, 1),  # 128 x 518 x 518
            *_up(128, 64, 2, 1),  # 64 x 1036 x 1036: the memory peak
            nn.MaxPool2d(4),  # 64 x 259 x 259
            *_up(64, 32, 1, 1),  # 32 x 260 x 260
            nn.MaxPool2d(4, stride=1),  # 32 x 257 x 257
            nn.ConvTranspose2d(32, channels, 4, 1, 2, bias=False),  # channels x 256 x 256
            nn.Tanh(),
        )

    def forward(self, x):
        return self.main(x)


def _down(cin: int, cout: int, batch_norm: bool = True) -> list[nn.Module]:
    norm = [nn.BatchNorm2d(cout)] if batch_norm else []
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), *norm, nn.LeakyReLU(0.2, inplace=True)]


class SeedDiscriminator(nn.Module):
    """Sees one image (not the damaged input): 'is this a clean photo?' as two classes (0 fake, 1 real)."""

    def __init__(self, channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            *_down(channels, 32, batch_norm=False),  # 32 x 128 x 128
            *_down(32, 64),  # 64 x 64 x 64
            *_down(64, 128),  # 128 x 32 x 32
            *_down(128, 256),  # 256 x 16 x 16
            nn.MaxPool2d(4),  # 256 x 4 x 4
            *_down(256, 256),  # 256 x 2 x 2
            nn.Flatten(),  # 1024
            nn.Linear(1024, 100), nn.ReLU(True),
            nn.Linear(100, 100), nn.ReLU(True),
            nn.Linear(100, 2),
        )
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x, return_logits: bool = False):
        logits = self.features(x)
        return logits if return_logits else self.softmax(logits)


def dcgan_init(module: nn.Module) -> None:
    """pytorch/examples dcgan: conv weights N(0, 0.02), batch-norm scale N(1, 0.02) and shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(channels: int = 1):
    """The registry's entry point (see helpers/models/__init__.py)."""
    from . import ModelSpec

    generator, discriminator = SeedGenerator(channels), SeedDiscriminator(channels)
    generator.apply(dcgan_init)
    discriminator.apply(dcgan_init)
    spec = ModelSpec(name="seed-dcgan", config={"channels": channels}, channels=channels, conditional=False,
                     loss="ce2", l1_weight=100.0, mask_head=False, image_size=IMAGE_SIZE)
    return generator, discriminator, spec
