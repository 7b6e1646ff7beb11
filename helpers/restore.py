"""Restore real files: load a restorer, run it tile by tile over scans of any size, write the results.

- `load_restorer("unet" | "seed-dcgan" | "classical", checkpoint)` gives a `Restorer`: a callable on
  gray or color planes (C x H x W float in [0, 1]) that returns restored planes and a damage mask.
- Large scans go through `tiled_forward`: tiles that overlap and are blended with feathered (linear
  ramp) weights, so memory stays bounded (a 4000x3000 scan in well under 2 GB) and seams vanish. Tiles
  start on multiples of the U-Net's stride and its LayerNorm has no image-wide statistics, so a tile
  sees what the whole image would have shown it, except near its border, which the ramp fades out. A
  U-Net with photo-wide context (helpers/models/unet.py) gets it once from the whole photo, shrunk to
  the size it trained at, and every tile uses that same context.
- The seed DCGAN only knows 256x256 inputs, so it restores 256x256 tiles (with overlap) at the scan's own
  resolution, rather than shrinking the photo to 256 and blowing it back up, which would blur it.
- Channels: a gray model restores the luminance (Y of YCrCb) of a color photo and keeps its chroma;
  gray in gives gray out unless `rgb`; 16-bit in gives 16-bit out with `keep_depth`, else 8 bits.
- Tiny images, down to 1x1, are restored: they are padded (replicated) to what the model needs and
  cropped back.
- `restore_files` never writes over an input, replaces an existing output only with `overwrite`,
  writes atomically, mirrors the input folders' relative tree in the output folder, never reads its
  own outputs back (an output folder inside an input folder is skipped), and reports each bad input
  with its reason while going on with the others.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import HelpersError, UsageError
from .cli import Report, info
from .env import PACKAGE_ROOT
from .io import DEFAULT_MAX_PIXELS, ImageReadError, ImageWriteError, find_images, from_float, read_image, \
    to_float, to_rgb, write_image

WEIGHTS_DIR = PACKAGE_ROOT / "weights"
DEFAULT_CHECKPOINTS = {"unet": WEIGHTS_DIR / "unet_default.safetensors",
                       "seed-dcgan": WEIGHTS_DIR / "seed_dcgan.safetensors"}
MODELS = ("unet", "seed-dcgan", "classical")
DEFAULT_TILE, DEFAULT_OVERLAP = 1024, 128


@dataclass
class Restorer:
    """What restoring needs to know about a model, whatever it is.

    `run(planes, tile, overlap)` takes C x H x W float32 in [0, 1] (C = `channels`) and returns
    (restored planes, H x W damage probability in [0, 1] or None when the model predicts no mask).
    """

    name: str
    channels: int
    run: Callable[[np.ndarray, int, int], tuple[np.ndarray, np.ndarray | None]]
    has_mask: bool
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- tiled inference

def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    return list(range(0, length - tile, step)) + [length - tile]


def _ramp(length: int, overlap: int, fade_in: bool, fade_out: bool):
    """1-D blending weights of a tile: a linear ramp over `overlap` pixels on sides that have a neighbour."""
    import torch

    weights = torch.ones(length)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    if overlap and fade_in:
        weights[:overlap] = ramp
    if overlap and fade_out:
        weights[-overlap:] = torch.minimum(weights[-overlap:], ramp.flip(0))
    return weights


def tiled_forward(model, x, *, tile: int, overlap: int, multiple: int = 1, min_size: int = 1, describe=None):
    """Run `model` (returning an image, or (image, mask_logits)) over x (1 x C x H x W) in tiles.

    `tile` 0 runs the whole image at once. The image is padded (reflect, or replicate when tiny) to a
    multiple of `multiple` and at least `min_size`, so every tile starts on that grid; outputs are
    blended with linear ramps over `overlap` pixels and cropped back. `describe`, when given and the image
    is split, is called once on the whole image and its result goes to every tile as
    `model(tile, context=...)`: what the model needs to know about the whole photo (a model run on the
    whole image works that out itself). Returns (image, mask_logits|None) on the CPU, in float32.
    """
    import torch
    import torch.nn.functional as F

    height, width = x.shape[-2:]
    pad_h = max(-height % multiple, min_size - height)
    pad_w = max(-width % multiple, min_size - width)
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    full_h, full_w = x.shape[-2:]
    if tile <= 0 or (full_h <= tile and full_w <= tile):
        tile_h, tile_w, overlap = full_h, full_w, 0
    else:
        tile = max(multiple, tile // multiple * multiple)
        tile_h, tile_w = min(tile, full_h), min(tile, full_w)
        overlap = min(overlap // multiple * multiple, tile - multiple)
    device = next(model.parameters()).device
    split = tile_h < full_h or tile_w < full_w
    context = describe(x[..., :height, :width].to(device)) if describe and split else None
    image = torch.zeros(x.shape[1], full_h, full_w)
    mask = None
    weight = torch.zeros(1, full_h, full_w)
    for top in _starts(full_h, tile_h, tile_h - overlap):
        for left in _starts(full_w, tile_w, tile_w - overlap):
            patch = x[..., top:top + tile_h, left:left + tile_w].to(device)
            out = model(patch) if context is None else model(patch, context=context)
            out_image, out_mask = (out[0], out[1]) if isinstance(out, (tuple, list)) else (out, None)
            w = (_ramp(tile_h, overlap, top > 0, top + tile_h < full_h)[:, None]
                 * _ramp(tile_w, overlap, left > 0, left + tile_w < full_w)[None, :])
            region = (slice(None), slice(top, top + tile_h), slice(left, left + tile_w))
            image[region] += out_image[0].float().cpu() * w
            if out_mask is not None:
                if mask is None:
                    mask = torch.zeros(1, full_h, full_w)
                mask[region] += out_mask[0].float().cpu() * w
            weight[region] += w
    image /= weight
    if mask is not None:
        mask /= weight
    return image[None, :, :height, :width], None if mask is None else mask[None, :, :height, :width]


# ---------------------------------------------------------------- restorers

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
    from .classical import restore_gray

    def run(planes: np.ndarray, tile: int, overlap: int):
        restored, mask = restore_gray(planes[0])
        return restored[None], mask

    return Restorer("classical", 1, run, True, {"model": "classical"})


def load_restorer(model: str = "unet", checkpoint: str | Path | None = None, *, trust_pickle: bool = False,
                  device=None) -> Restorer:
    """The restorer named `model`, from `checkpoint` or the bundled default one."""
    if model not in MODELS:
        raise UsageError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    if model == "classical":
        if checkpoint:
            raise UsageError("the classical baseline has no checkpoint; drop --checkpoint")
        return classical_restorer()
    from . import env
    from .checkpoints import load_generator
    from .models import build_models

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
                  rgb: bool = False, keep_depth: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(restored image, damage mask as uint8 0-255 or None) for an array from `io.read_image`."""
    import cv2

    color = img.ndim == 3
    if restorer.channels == 1 and color:  # restore the luminance, keep the chroma
        ycc = cv2.cvtColor(to_float(img), cv2.COLOR_RGB2YCrCb)
        planes = ycc[..., 0][None]
    elif restorer.channels == 1:
        planes = to_float(img)[None]
    else:
        planes = to_float(img).transpose(2, 0, 1) if color else np.repeat(to_float(img)[None], restorer.channels, 0)
    restored, mask = restorer.run(planes, tile, overlap)
    del planes  # a 4000x3000 scan: every float copy is 48 MB per channel, so none is kept longer than needed
    if restorer.channels == 1 and color:
        ycc[..., 0] = restored[0]
        del restored
        out = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
        del ycc
    elif restorer.channels == 1:
        out = restored[0]
    else:
        out = restored.transpose(1, 2, 0) if color else restored.mean(axis=0)
    if rgb:
        out = to_rgb(out)
    dtype = img.dtype if keep_depth and img.dtype == np.uint16 else np.uint8
    out = from_float(np.clip(out, 0, 1, out=out if out.flags.writeable else None), dtype)
    return out, None if mask is None else from_float(mask, np.uint8)


# ---------------------------------------------------------------- files and folders

def _glob_base(pattern: str) -> Path:
    parts = []
    for part in Path(pattern).parts:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def plan_outputs(sources: list[str], out_dir: Path, report: Report) -> list[tuple[Path, Path]]:
    """(input, output) pairs: each output mirrors its input's path relative to the folder (or glob base)
    it was found under, as .png; names that would collide keep their old suffix (a.jpg -> a.jpg.png)."""
    out_dir = Path(out_dir)
    for source in sources:
        if Path(source).is_dir() and Path(source).resolve() == out_dir.resolve():
            raise UsageError(f"--out {out_dir} is an input folder; choose another folder for the outputs")
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for source in sources:
        images, problems = find_images([source], exclude=[out_dir])
        for item, reason in problems:
            report.fail(item, reason)
        if not images and not problems:
            report.fail(source, f"inside the output folder {out_dir}; skipped so outputs are never read back")
        is_pattern = any(ch in source for ch in "*?[") and not Path(source).exists()
        base = _glob_base(source) if is_pattern else Path(source) if Path(source).is_dir() else None
        for path in images:
            key = _resolved(path)
            if key in seen:
                continue
            seen.add(key)
            found.append((path, path.relative_to(base) if base is not None else Path(path.name)))
    names: dict[Path, int] = {}
    for _, rel in found:
        names[rel.with_suffix(".png")] = names.get(rel.with_suffix(".png"), 0) + 1
    pairs = []
    for path, rel in found:
        name = rel.with_suffix(".png")
        pairs.append((path, out_dir / (name if names[name] == 1 else rel.with_name(rel.name + ".png"))))
    return pairs


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        return path.absolute()


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise HelpersError(f"{out_dir}: cannot write to the output folder ({err.strerror or err})") from None


def restore_files(sources: list[str], out_dir: str | Path, restorer: Restorer, *, tile: int = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP, save_mask: bool = False, overwrite: bool = False,
                  rgb: bool = False, keep_depth: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                  progress: bool = True, report: Report | None = None) -> Report:
    """Restore every image under `sources` (files, folders, globs) into `out_dir`; see the module doc."""
    from tqdm.auto import tqdm

    report = report or Report()
    out_dir = Path(out_dir)
    if save_mask and not restorer.has_mask:
        raise UsageError(f"--save-mask: the {restorer.name} model predicts no damage mask")
    pairs = plan_outputs(sources, out_dir, report)
    inputs = {_resolved(path) for path, _ in pairs}  # once, not once per write: scans come by thousands
    if pairs:
        _check_writable(out_dir)
    outputs = []
    for path, target in tqdm(pairs, desc="restore", unit="image", disable=not progress):
        mask_target = target.with_name(target.stem + "_mask.png")
        clash = next((t for t in (target, mask_target) if _resolved(t) in inputs), None)
        if clash is not None:
            report.fail(path, f"{clash}: refusing to write over an input file")
            continue
        if not overwrite and (target.exists() or (save_mask and mask_target.exists())):
            existing = target if target.exists() else mask_target
            report.fail(path, f"{existing}: already exists (use --overwrite to replace it)")
            continue
        started = time.perf_counter()
        try:
            img = read_image(path, max_pixels=max_pixels)
            restored, mask = restore_image(img, restorer, tile=tile, overlap=overlap, rgb=rgb,
                                           keep_depth=keep_depth)
            write_image(target, restored, overwrite=overwrite, protected=[path])
            if save_mask:
                write_image(mask_target, mask, overwrite=overwrite, protected=[path])
        except (ImageReadError, ImageWriteError) as err:
            report.fail(path, str(err))
            continue
        except MemoryError:
            report.fail(path, "out of memory (try a smaller --tile)")
            continue
        outputs.append({"input": str(path), "output": str(target), "mask": str(mask_target) if save_mask else None,
                        "size": [int(img.shape[1]), int(img.shape[0])], "dtype": str(restored.dtype),
                        "seconds": round(time.perf_counter() - started, 3)})
    info(f"restored {len(outputs)} of {len(pairs)} image(s) into {out_dir}"
         + (f"; {len(report.failures)} problem(s) listed above" if report.failures else ""))
    report.payload.update({"model": restorer.name, "checkpoint": restorer.metadata.get("checkpoint"),
                           "out": str(out_dir), "tile": tile, "overlap": overlap, "outputs": outputs})
    return report
