"""Degradation models f̂ for robust unsupervised inversion: what happened to the photo, differentiably.

Inversion looks for the clean image x = G(w) whose degradation f̂(x) matches the observation y. Each
model here is an nn.Module with:
- forward(x) = f̂(x): differentiable, x is B x 3 x S x S in about [0, 1] at the generator's resolution;
- target(y): the part of the observation f̂ can explain (destroyed pixels are zeroed, as in f̂);
- simulate(x, seed): the *true* degradation of a clean image, possibly non-differentiable (real JPEG,
  real noise, antialiased resizing), to make synthetic observations for tests and notebooks;
- observation_size(S): the side of the observation for a generator of side S.

The paper's four tasks (upsampling, denoising, deartifacting, inpainting), their composition, and ours:
`old-photo`, grayscale + lost contrast + blur + a damage mask, the usual state of a 19th-century print.
Masks are 1 x 1 x S x S float tensors with 1 where the content was destroyed (the project's convention).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import gaussian_blur2d
from PIL import Image

from . import UsageError


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp and round to 8 bits, as a saved observation would be."""
    return (x.clamp(0, 1) * 255).round() / 255


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    size = 2 * int(3 * sigma) + 1
    return gaussian_blur2d(x, (size, size), (sigma, sigma)) if sigma > 0 else x


def soften(mask: torch.Tensor, edge: float = 1.0) -> torch.Tensor:
    """Soft edges that only grow outwards: destroyed pixels stay 1, their neighbours fade from 1 to 0."""
    return torch.maximum(mask, _blur(mask, edge))


def _resize_like(mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return mask if mask.shape[-2:] == y.shape[-2:] else F.interpolate(mask, size=y.shape[-2:], mode="area")


class Degradation(nn.Module):
    name = "identity"

    def forward(self, x):
        return x

    def target(self, y):
        return y

    @torch.no_grad()
    def simulate(self, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
        return quantize(self(x))

    def observation_size(self, size: int) -> int:
        return size

    def describe(self) -> dict:
        return {"name": self.name}


class Upsampling(Degradation):
    """f̂ = average pooling by `factor`; the true observation is an antialiased bicubic downscale."""

    name = "upsampling"

    def __init__(self, factor: int = 4):
        super().__init__()
        self.factor = int(factor)

    def forward(self, x):
        return F.avg_pool2d(x, self.factor)

    @torch.no_grad()
    def simulate(self, x, seed=0):
        size = self.observation_size(x.shape[-1])
        return quantize(F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False))

    def observation_size(self, size):
        return size // self.factor

    def describe(self):
        return {"name": self.name, "factor": self.factor}


class Denoising(Degradation):
    """f̂ = identity: the generator's prior and the coarse LPIPS scales, not f̂, reject the noise.
    The true observation has Poisson (shot) noise of `photons` photons at full intensity."""

    name = "denoising"

    def __init__(self, photons: float = 24.0):
        super().__init__()
        self.photons = float(photons)

    @torch.no_grad()
    def simulate(self, x, seed=0):
        gen = torch.Generator().manual_seed(seed)
        counts = torch.poisson(x.clamp(0, 1).cpu() * self.photons, generator=gen)
        return quantize(counts / self.photons).to(x.device)

    def describe(self):
        return {"name": self.name, "photons": self.photons}


class Deartifacting(Degradation):
    """f̂ = kornia's differentiable JPEG at `quality`; the true observation is a real JPEG (Pillow)."""

    name = "deartifacting"

    def __init__(self, quality: int = 12):
        super().__init__()
        self.quality = int(quality)

    def forward(self, x):
        return jpeg_codec_differentiable(x, torch.tensor([float(self.quality)], device=x.device))

    @torch.no_grad()
    def simulate(self, x, seed=0):
        out = []
        for img in x.clamp(0, 1):
            pixels = (img.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=self.quality)
            decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255
            out.append(torch.from_numpy(decoded).permute(2, 0, 1))
        return torch.stack(out).to(x.device)

    def describe(self):
        return {"name": self.name, "quality": self.quality}


class Inpainting(Degradation):
    """f̂ = x * (1 - soft mask): destroyed pixels say nothing, so the generator fills them in."""

    name = "inpainting"

    def __init__(self, mask: torch.Tensor, edge: float = 1.0):
        super().__init__()
        self.register_buffer("mask", soften(mask.float().reshape(1, 1, *mask.shape[-2:]), edge))

    def forward(self, x):
        return x * (1 - _resize_like(self.mask, x))

    def target(self, y):
        return y * (1 - _resize_like(self.mask, y))

    @torch.no_grad()
    def simulate(self, x, seed=0):
        hard = (self.mask >= 1).float()
        return quantize(x * (1 - hard) + hard)  # white scratches, like damage on a print

    def describe(self):
        return {"name": self.name, "destroyed_fraction": round(float((self.mask >= 1).float().mean()), 4)}


class OldPhoto(Degradation):
    """Ours: grayscale, blur, lost contrast and brightness, and a damage mask (from aging or a restorer).

    The print's fading is unknown, so f̂ fits it: the tone a*gray + b that best matches the observation's
    kept pixels is solved in closed form at every step (differentiable). The match then ignores how
    faded the print is, and the restored image keeps the generator's natural contrast.
    """

    name = "old-photo"

    def __init__(self, mask: torch.Tensor | None = None, blur_sigma: float = 1.0, contrast: float = 0.7,
                 edge: float = 1.0):
        super().__init__()
        self.blur_sigma, self.contrast = float(blur_sigma), float(contrast)
        keep = None if mask is None else 1 - soften(mask.float().reshape(1, 1, *mask.shape[-2:]), edge)
        self.register_buffer("keep", keep)
        self.register_buffer("reference", None)  # target(y), set once before inverting

    def _gray(self, x):
        return _blur(rgb_to_grayscale(x), self.blur_sigma)

    def _keep(self, like):
        return torch.ones_like(like[:, :1]) if self.keep is None else _resize_like(self.keep, like)

    def forward(self, x):
        g, keep = self._gray(x), self._keep(x)
        if self.reference is None:  # no observation yet: a fixed fading
            toned = 0.5 + self.contrast * (g - 0.5)
        else:  # weighted least squares of reference ~ a * g + b over the kept pixels
            n = keep.sum()
            mg, mr = (keep * g).sum() / n, (keep * self.reference).sum() / n
            cov = (keep * (g - mg) * (self.reference - mr)).sum()
            a = (cov / ((keep * (g - mg).square()).sum() + 1e-6)).clamp(min=0.05)
            toned = a * (g - mg) + mr
        return (toned * keep).expand(-1, 3, -1, -1)

    def target(self, y):
        keep = self._keep(y)
        self.reference = rgb_to_grayscale(y) * keep
        return self.reference.expand(-1, 3, -1, -1)

    @torch.no_grad()
    def simulate(self, x, seed=0):
        toned = 0.5 + self.contrast * (self._gray(x) - 0.5)
        hard = self._keep(x) > 0.999
        return quantize(torch.where(hard, toned, torch.ones_like(toned)).expand(-1, 3, -1, -1))

    def describe(self):
        keep = None if self.keep is None else round(float((self.keep > 0.999).float().mean()), 4)
        return {"name": self.name, "blur_sigma": self.blur_sigma, "kept_fraction": keep}


class Composition(Degradation):
    """f̂ = the members' f̂ in order (e.g. inpainting then upsampling)."""

    def __init__(self, members: list[Degradation]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.name = "+".join(m.name for m in members)

    def forward(self, x):
        for member in self.members:
            x = member(x)
        return x

    def target(self, y):
        for member in self.members:
            y = member.target(y)
        return y

    @torch.no_grad()
    def simulate(self, x, seed=0):
        for i, member in enumerate(self.members):
            x = member.simulate(x, seed + i)
        return x

    def observation_size(self, size):
        for member in self.members:
            size = member.observation_size(size)
        return size

    def describe(self):
        return {"name": self.name, "members": [m.describe() for m in self.members]}


# name -> (class, keyword of its one numeric setting or None)
DEGRADATIONS = {
    "upsampling": (Upsampling, "factor"),
    "denoising": (Denoising, "photons"),
    "deartifacting": (Deartifacting, "quality"),
    "inpainting": (Inpainting, None),
    "old-photo": (OldPhoto, None),
}


def make_degradation(spec: str, mask: torch.Tensor | None = None) -> Degradation:
    """'upsampling', 'upsampling:8', 'deartifacting:20', 'inpainting+upsampling'... `mask` serves the
    masked models (inpainting needs one; old-photo uses it when given)."""
    members = []
    for part in spec.split("+"):
        name, _, value = part.strip().partition(":")
        if name not in DEGRADATIONS:
            raise UsageError(f"unknown degradation {name!r}; choose from {', '.join(DEGRADATIONS)} "
                             f"(combine with '+', set the level with ':', e.g. upsampling:8)")
        cls, setting = DEGRADATIONS[name]
        kwargs = {}
        if value:
            if setting is None:
                raise UsageError(f"degradation {name!r} takes no ':{value}' setting")
            try:
                kwargs[setting] = float(value) if setting == "photons" else int(value)
            except ValueError:
                raise UsageError(f"{name}: {setting} must be a number, not {value!r}") from None
        if name == "inpainting":
            if mask is None:
                raise UsageError("inpainting needs a damage mask (white = destroyed), e.g. --mask FILE")
            kwargs["mask"] = mask
        if name == "old-photo":
            kwargs["mask"] = mask
        members.append(cls(**kwargs))
    return members[0] if len(members) == 1 else Composition(members)


def old_photo_from_aging(clean: torch.Tensor, preset: str = "daguerreotype", seed: int = 0,
                         **kwargs) -> tuple[OldPhoto, torch.Tensor]:
    """Age a clean 3 x S x S image with helpers.aging: (OldPhoto f̂ with the aging's damage mask, aged image)."""
    from .aging import age_image

    aged = age_image(clean.permute(1, 2, 0).cpu().numpy().astype(np.float32), preset, seed=seed)
    image = torch.from_numpy(np.ascontiguousarray(aged.image, dtype=np.float32))
    image = image[None].expand(3, -1, -1) if image.ndim == 2 else image.permute(2, 0, 1)
    return OldPhoto(torch.from_numpy(aged.mask).float(), **kwargs), image.contiguous()


def random_strokes(size: int, strokes: int = 6, width: float = 0.04, seed: int = 0) -> torch.Tensor:
    """A 1 x 1 x size x size scratch mask (lines from the image borders, as in the paper's benchmark)."""
    import cv2

    rng = np.random.default_rng(seed)
    canvas = np.zeros((size, size), np.uint8)
    thickness = max(1, round(width * size))
    for _ in range(strokes):
        start, end = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(canvas, (int(start[0]), int(start[1])), (int(end[0]), int(end[1])), 1, thickness)
    return torch.from_numpy(canvas).float()[None, None]
