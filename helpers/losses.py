"""The inversion loss of the paper: LPIPS (VGG) over an image pyramid down to 16 px, plus 0.1 L1 at the
coarsest scale, between f̂(G(w)) and the observation.

LPIPS needs two sets of weights. Its linear heads ship inside torchmetrics (lpips_models/vgg.pth); its
VGG16 backbone is torchvision's ImageNet checkpoint, which is downloaded at run time. Where that file is
neither present nor downloadable (this offline machine, CI), the pyramid uses a documented substitute at
every level instead, L1 + (1 - SSIM), and says so loudly: a warning and a printed line, never silently.
The substitute keeps the same multiscale structure, so coarse shapes still dominate fine texture, but it
is a pixel loss: expect blurrier inversions than with LPIPS.

Where the VGG16 file is looked for, in order: $REPAIR_VGG16_WEIGHTS; torch's hub cache
(~/.cache/torch/hub/checkpoints/vgg16-397923af.pth, where torchvision puts it); the input root
(anywhere under /kaggle/input on Kaggle). On Kaggle, with internet on, it is downloaded into the hub cache.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import env

FALLBACK_MESSAGE = ("LPIPS unavailable (no VGG16 ImageNet weights: set REPAIR_VGG16_WEIGHTS or run with "
                    "internet on Kaggle); the inversion loss falls back to multiscale L1 + SSIM, which "
                    "gives blurrier results than the paper's LPIPS")
_fallback_printed = False


def _vgg16_url() -> str:
    from torchvision.models import VGG16_Weights

    return VGG16_Weights.IMAGENET1K_V1.url


def vgg16_weights(download: bool | None = None) -> Path | None:
    """The torchvision VGG16 checkpoint if one is at hand; `download` defaults to 'on Kaggle only'."""
    name = Path(_vgg16_url()).name
    candidates = [Path(os.environ["REPAIR_VGG16_WEIGHTS"])] if os.environ.get("REPAIR_VGG16_WEIGHTS") else []
    cache = Path(torch.hub.get_dir()) / "checkpoints" / name
    candidates.append(cache)
    attached = env.find_input("vgg16", required=False)  # any mount layout under the input root
    candidates += [attached] if attached is not None else []
    for path in candidates:
        if path.is_file():
            return path
    if download if download is not None else env.on_kaggle():
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(_vgg16_url(), str(cache), progress=False)
            return cache
        except Exception as err:  # no internet, proxy, disk: the caller falls back and says why
            print(f"VGG16 download failed ({err})", file=sys.stderr)
    return None


def lpips_vgg(weights: Path) -> nn.Module:
    """torchmetrics' LPIPS (its shipped linear heads) with the VGG16 backbone read from `weights`."""
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    lpips = _NoTrainLpips(net="vgg", pretrained=True, pnet_rand=True)  # random backbone: no download
    state = torch.load(weights, map_location="cpu", weights_only=True)
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    for slice_ in (lpips.net.slice1, lpips.net.slice2, lpips.net.slice3, lpips.net.slice4, lpips.net.slice5):
        for index, layer in slice_.named_children():
            if isinstance(layer, nn.Conv2d):
                layer.weight.data.copy_(features[f"{index}.weight"])
                layer.bias.data.copy_(features[f"{index}.bias"])
    return lpips.eval().requires_grad_(False)


def ssim_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The offline substitute for LPIPS at one scale: L1 + (1 - SSIM) / 2 (kornia's SSIM loss)."""
    from kornia.losses import ssim_loss

    window = 11 if min(x.shape[-2:]) >= 22 else 5
    return F.l1_loss(x, y) + ssim_loss(x, y, window_size=window)


class MultiscaleLoss(nn.Module):
    """Sum over pyramid levels (halving while the side is above `min_size`) plus l1_weight * L1 at the end."""

    def __init__(self, perceptual: nn.Module | None = None, min_size: int = 16, l1_weight: float = 0.1):
        super().__init__()
        self.perceptual, self.min_size, self.l1_weight = perceptual, min_size, l1_weight
        self.kind = "lpips-vgg" if perceptual is not None else "fallback-l1-ssim"

    def level(self, x, y):
        if self.perceptual is None:
            return ssim_l1(x, y)
        return self.perceptual(x, y, normalize=True).mean()  # normalize: inputs are in [0, 1]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"f̂(x) is {tuple(x.shape)} but the observation is {tuple(y.shape)}")
        total = x.new_zeros(())
        while min(y.shape[-2:]) > self.min_size:
            total = total + self.level(x, y)
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        return total + self.l1_weight * F.l1_loss(x, y)


def make_loss(download: bool | None = None, *, min_size: int = 16, l1_weight: float = 0.1) -> MultiscaleLoss:
    """Multiscale LPIPS when the VGG16 weights are available, else the L1 + SSIM substitute, loudly."""
    global _fallback_printed
    weights = vgg16_weights(download)
    if weights is not None:
        try:
            return MultiscaleLoss(lpips_vgg(weights), min_size, l1_weight)
        except Exception as err:  # a corrupt or foreign file: fall back, naming it
            print(f"{weights}: not usable as VGG16 weights ({err})", file=sys.stderr)
    warnings.warn(FALLBACK_MESSAGE, RuntimeWarning, stacklevel=2)
    if not _fallback_printed:
        print(f"WARNING: {FALLBACK_MESSAGE}", file=sys.stderr)
        _fallback_printed = True
    return MultiscaleLoss(None, min_size, l1_weight)
