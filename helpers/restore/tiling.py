"""Tiled inference: a network run over a scan of any size in overlapping tiles blended with feathered
(linear ramp) weights, so memory stays bounded (a 4000x3000 scan in well under 2 GB) and seams vanish.
Tiles start on multiples of the network's stride and its LayerNorm has no image-wide statistics, so a tile
sees what the whole image would have shown it, except near its border, which the ramp fades out.
"""

from __future__ import annotations


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
    multiple of `multiple` and at least `min_size`, so every tile starts on that grid (`tile` and `overlap`
    are rounded up to it, the overlap kept below the tile); outputs are
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
    else:  # rounded up to the grid: rounding down turned --tile 17 --overlap 8 into 16 and no blend at all
        tile = -(-tile // multiple) * multiple
        tile_h, tile_w = min(tile, full_h), min(tile, full_w)
        overlap = min(-(-overlap // multiple) * multiple, tile - multiple)
    device = next(model.parameters()).device
    split = tile_h < full_h or tile_w < full_w
    context = describe(x[..., :height, :width].to(device)) if describe and split else None
    image = mask = None  # as many channels as the model returns (the blender: 3 from 9)
    weight = torch.zeros(1, full_h, full_w)
    for top in _starts(full_h, tile_h, tile_h - overlap):
        for left in _starts(full_w, tile_w, tile_w - overlap):
            patch = x[..., top:top + tile_h, left:left + tile_w].to(device)
            out = model(patch) if context is None else model(patch, context=context)
            out_image, out_mask = (out[0], out[1]) if isinstance(out, (tuple, list)) else (out, None)
            w = (_ramp(tile_h, overlap, top > 0, top + tile_h < full_h)[:, None]
                 * _ramp(tile_w, overlap, left > 0, left + tile_w < full_w)[None, :])
            region = (slice(None), slice(top, top + tile_h), slice(left, left + tile_w))
            if image is None:
                image = torch.zeros(out_image.shape[1], full_h, full_w)
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


