"""A tiny generator/discriminator pair and an in-memory data set, so the training loop, checkpoints and
multi-process tests run in seconds on a CPU (the seed DCGAN takes seconds per step at 256x256)."""

from __future__ import annotations

import torch
import torch.nn as nn

from helpers.models import ModelSpec


class TinyGenerator(nn.Module):
    def __init__(self, channels: int, mask_head: bool):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Dropout(0.2))  # dropout: resume must restore the torch RNG
        self.to_image = nn.Conv2d(8, channels, 3, padding=1)
        self.to_mask = nn.Conv2d(8, 1, 3, padding=1) if mask_head else None

    def forward(self, x):
        h = self.body(x)
        image = torch.tanh(self.to_image(h))
        return (image, self.to_mask(h)) if self.to_mask is not None else image


class TinyDiscriminator(nn.Module):
    def __init__(self, channels: int, two_logits: bool):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 8, 4, 2, 1), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),
                                      nn.Conv2d(8, 2 if two_logits else 1, 3, padding=1))
        self.two_logits = two_logits

    def forward(self, x, return_logits: bool = False):
        logits = self.features(x)
        if not self.two_logits:
            return logits
        logits = logits.mean((2, 3))
        return logits if return_logits else logits.softmax(1)


def build(channels: int = 1, conditional: bool = True, loss: str = "bce", mask_head: bool = False):
    generator = TinyGenerator(channels, mask_head)
    discriminator = TinyDiscriminator(2 * channels if conditional else channels, loss == "ce2")
    spec = ModelSpec(name="tiny", config={"channels": channels, "conditional": conditional, "loss": loss,
                                          "mask_head": mask_head},
                     channels=channels, conditional=conditional, loss=loss, mask_head=mask_head)
    return generator, discriminator, spec


class SyntheticPairs(torch.utils.data.Dataset):
    """Smooth random images with a dark blotch as the damage; fixed by the seed."""

    def __init__(self, count: int = 8, size: int = 16, channels: int = 1, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand(count, channels, size // 4, size // 4, generator=g)
        self.clean = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        self.mask = (torch.rand(count, 1, size, size, generator=g) > 0.85).float()
        self.aged = self.clean * (1 - self.mask) + 0.05 * self.mask

    def __len__(self):
        return len(self.clean)

    def __getitem__(self, index):
        return self.aged[index], self.clean[index], self.mask[index]


class NaNAfterEpoch(SyntheticPairs):
    """Returns NaN images from epoch `bad_epoch` on: a stand-in for a run that diverges."""

    def __init__(self, bad_epoch: int, **kwargs):
        super().__init__(**kwargs)
        self.bad_epoch, self.epoch = bad_epoch, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, index):
        aged, clean, mask = super().__getitem__(index)
        return (aged * float("nan"), clean, mask) if self.epoch >= self.bad_epoch else (aged, clean, mask)
