"""Restorers: what restoring needs to know about a model, whatever it is, and one image through one.

- `load_restorer("pipeline" | "unet" | "seed-dcgan" | "classical", checkpoint)` gives a `Restorer`: a
  callable on gray or color planes (C x H x W float in [0, 1]) that returns restored planes and a mask.
- The seed DCGAN only knows 256x256 inputs, so it restores 256x256 tiles (with overlap) at the scan's own
  resolution, rather than shrinking the photo to 256 and blowing it back up, which would blur it.
- Channels: a gray model restores the luminance (Y of YCrCb) of a color photo and keeps its chroma; the
  pipeline takes the planes as they are (`channels` 0); gray in gives gray out unless `rgb`; 16-bit in
  gives 16-bit out with `keep_depth`, else 8 bits.
- Tiny images, down to 1x1, are restored: they are padded (replicated) to what the model needs and
  cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import HelpersError, UsageError
from ..env import PACKAGE_ROOT
from ..io import from_float, to_float, to_rgb
from .tiling import tiled_forward

WEIGHTS_DIR = PACKAGE_ROOT / "weights"
DEFAULT_CHECKPOINTS = {"unet": WEIGHTS_DIR / "unet_default.safetensors",
                       "seed-dcgan": WEIGHTS_DIR / "seed_dcgan.safetensors",
                       "detector": WEIGHTS_DIR / "detector.safetensors",
                       "specks": WEIGHTS_DIR / "specks.safetensors",
                       "inpainter": WEIGHTS_DIR / "inpainter.safetensors",
                       "deblocker": WEIGHTS_DIR / "deblocker.safetensors",
                       "verifier": WEIGHTS_DIR / "verifier.safetensors",
                       "blender": WEIGHTS_DIR / "blender.safetensors"}
MODELS = ("pipeline", "unet", "seed-dcgan", "classical")
DEFAULT_TILE, DEFAULT_OVERLAP = 1024, 128


@dataclass
class Restorer:
    """What restoring needs to know about a model, whatever it is.

    `run(planes, tile, overlap)` takes C x H x W float32 in [0, 1] (C = `channels`, or the image's own
    1 or 3 when `channels` is 0) and returns (restored planes, H x W damage mask or probability in [0, 1],
    or None when the model predicts no mask). A restorer that `takes_mask` (the pipeline) also accepts
    `run(planes, tile, overlap, damage)`: an H x W bool mask of the damage to repair instead of the one it
    would find. One that `takes_notes` also accepts `notes`, a dict it fills with what it decided for this
    photo (the pipeline: what each stage did, so a user can see why a photo was toned or left alone).
    """

    name: str
    channels: int
    run: Callable[..., tuple[np.ndarray, np.ndarray | None]]
    has_mask: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    takes_mask: bool = False
    takes_notes: bool = False


def _network_restorer(name: str, generator, spec, metadata: dict) -> Restorer:
    import torch

    multiple = int(spec.notes.get("stride", 1))
    fixed = spec.image_size  # the seed DCGAN: 256x256 tiles only

    def run(planes: np.ndarray, tile: int, overlap: int):
        x = torch.tensor(planes, dtype=torch.float32)[None].mul_(2).sub_(1)  # a copy: planes stay as given
        with torch.inference_mode():
            if fixed:
                image, logits = tiled_forward(generator, x, tile=fixed, overlap=min(overlap, fixed // 4),
                                              min_size=fixed)
            else:  # a U-Net with photo-wide context sees it from the whole photo, then tile by tile
                image, logits = tiled_forward(generator, x, tile=tile, overlap=overlap, multiple=multiple,
                                              describe=getattr(generator, "describe", None))
            restored = image[0].add_(1).div_(2).clamp_(0, 1).numpy()
            return restored, None if logits is None else logits[0, 0].sigmoid_().numpy()

    return Restorer(name, spec.channels, run, spec.mask_head, metadata)


def restorer_from_model(generator, spec, metadata: dict | None = None) -> Restorer:
    """A Restorer around a generator already in memory (training notebooks, tests)."""
    return _network_restorer(spec.name, generator.eval(), spec, metadata or {})


def classical_restorer() -> Restorer:
    from ..classical import restore_gray

    def run(planes: np.ndarray, tile: int, overlap: int):
        restored, mask = restore_gray(planes[0])
        return restored[None], mask

    return Restorer("classical", 1, run, True, {"model": "classical"})


def load_restorer(model: str = "unet", checkpoint: str | Path | None = None, *, trust_pickle: bool = False,
                  device=None) -> Restorer:
    """The restorer named `model`, from `checkpoint` or the bundled default one."""
    if model not in MODELS:
        raise UsageError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    if model == "pipeline":
        from .pipeline import load_pipeline

        return load_pipeline(checkpoint, device=device)
    if model == "classical":
        if checkpoint:
            raise UsageError("the classical baseline has no checkpoint; drop --checkpoint")
        return classical_restorer()
    from .. import env
    from ..checkpoints import load_generator
    from ..models import build_models

    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINTS[model]
    if not checkpoint and not path.is_file():
        raise HelpersError(
            f"{path}: the bundled {model} checkpoint is missing. Train one with `python -m helpers train "
            f"--model {model} --data DIR --out RUN_DIR` and pass --checkpoint RUN_DIR/best.safetensors")
    generator, metadata = load_generator(path, model, device=device or env.device(), trust_pickle=trust_pickle)
    _, _, spec = build_models(metadata["model"], **metadata.get("model_config", {}))
    return _network_restorer(model, generator, spec, metadata | {"checkpoint": str(path)})


# ---------------------------------------------------------------- one image

def restore_image(img: np.ndarray, restorer: Restorer, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                  rgb: bool = False, keep_depth: bool = False, damage: np.ndarray | None = None,
                  notes: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(restored image, damage mask as uint8 0-255 or None) for an array from `io.read_image`; `damage`
    (H x W bool) replaces what a restorer that `takes_mask` would find; `notes`, when given, receives what a
    restorer that `takes_notes` decided for this photo (nothing from the others)."""
    import cv2

    if damage is not None and not restorer.takes_mask:
        raise UsageError(f"the {restorer.name} model repairs what it finds itself; a damage mask needs the pipeline")

    color = img.ndim == 3
    if restorer.channels == 1 and color:  # restore the luminance, keep the chroma
        ycc = cv2.cvtColor(to_float(img), cv2.COLOR_RGB2YCrCb)
        planes = ycc[..., 0][None]
    elif restorer.channels == 1 or (restorer.channels == 0 and not color):
        planes = to_float(img)[None]
    elif restorer.channels == 0:
        planes = to_float(img).transpose(2, 0, 1)
    else:
        planes = to_float(img).transpose(2, 0, 1) if color else np.repeat(to_float(img)[None], restorer.channels, 0)
    extra = ({} if damage is None else {"damage": damage}) | (
        {"notes": notes} if notes is not None and restorer.takes_notes else {})
    restored, mask = restorer.run(planes, tile, overlap, **extra)
    del planes  # a 4000x3000 scan: every float copy is 48 MB per channel, so none is kept longer than needed
    if restorer.channels == 1 and color:
        ycc[..., 0] = restored[0]
        del restored
        out = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
        del ycc
    elif restorer.channels == 1 or (restorer.channels == 0 and not color):
        out = restored[0]
    else:
        out = restored.transpose(1, 2, 0) if color else restored.mean(axis=0)
    if rgb:
        out = to_rgb(out)
    dtype = img.dtype if keep_depth and img.dtype == np.uint16 else np.uint8
    out = from_float(np.clip(out, 0, 1, out=out if out.flags.writeable else None), dtype)
    return out, None if mask is None else from_float(mask, np.uint8)


