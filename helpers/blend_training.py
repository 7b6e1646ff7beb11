"""The training loop's "blend" task: the rims stage's blender (models/blender.py, restore/rims.py) learns,
on 128 px crops around what the frozen, bundled detectors mark on aged photos, which of keep, fill and a
wider fill brings the crop closest to the clean photo.

Its loss is the benchmark's own measure: the mean over crops of 10 log10 of the crop's squared error (in
levels², with a floor of 0.1), so a crop with little damage counts as much as one with a lot. Making a crop
costs the detectors and two fills (~0.1 s), a step a quarter of a second, so, as for the verifier, the crops
of the last MEMORY_BATCHES batches are kept and each batch is followed by STEPS_PER_BATCH steps drawn from
them (the session-46 probe this follows saw each crop about 16 times over 7,800 steps).
"""

from __future__ import annotations

import numpy as np
import torch

from .verify_training import ComponentSource, RecentBatches

CROP = 128
MEMORY_BATCHES, STEPS_PER_BATCH, DRAW_SIZE = 64, 16, 16
FLOOR = 0.1  # levels²: a crop the fill leaves perfect still has a finite score
PLANES = ("photo", "clean", "fill", "wide_fill", "mask", "region", "detected", "speckled")


class CropSource:
    """The bundled detectors as the pipeline runs them, turning aged photos into training crops."""

    def __init__(self, device="cpu"):
        self.detectors = ComponentSource(device)

    def crop(self, aged: np.ndarray, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """PLANES x CROP x CROP uint8 (less on a smaller photo) around a random pixel of the wider region of
        one aged gray photo (H x W in [0, 1]), or None when the detectors mark nothing there."""
        from .restore.fill import fill, widen
        from .restore.pipeline import found_damage
        from .restore.rims import region

        d = self.detectors
        detected, speckled, found, _ = found_damage(aged, d.detector, d.threshold, specks=d.specks,
                                                    speck_threshold=d.speck_threshold)
        mask = widen(found, 1)
        wider = region(mask, detected, speckled)
        if not wider.any():
            return None
        size = min(CROP, *aged.shape)
        filled = fill(aged[None], mask)[0]
        wide = fill(aged[None], wider)[0]
        ys, xs = np.nonzero(wider)
        pick = rng.integers(len(ys))
        top = int(np.clip(ys[pick] - rng.integers(size), 0, aged.shape[0] - size))
        left = int(np.clip(xs[pick] - rng.integers(size), 0, aged.shape[1] - size))
        planes = np.stack([aged, clean, filled, wide, mask, wider, detected, speckled])[:, top:top + size,
                                                                                         left:left + size]
        return np.rint(np.clip(planes, 0.0, 1.0) * 255).astype(np.uint8)

    def batch(self, aged: torch.Tensor, clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """N x PLANES x CROP x CROP uint8 crops of a batch of gray photos B x 1 x H x W in [0, 1]."""
        crops = [self.crop(np.ascontiguousarray(a, np.float32), np.ascontiguousarray(c, np.float32), rng)
                 for a, c in zip(aged[:, 0].numpy(), clean[:, 0].numpy())]
        crops = [c for c in crops if c is not None]
        return torch.from_numpy(np.stack(crops)) if crops else torch.zeros(0, len(PLANES), 1, 1, dtype=torch.uint8)


class CropMemory(RecentBatches):
    """The crops of the last MEMORY_BATCHES batches."""

    def __init__(self, seed: int):
        super().__init__(seed, MEMORY_BATCHES)

    def draws(self):
        """STEPS_PER_BATCH minibatches of up to DRAW_SIZE crops, each mirrored or not at random."""
        for (drawn,) in self.drawn(STEPS_PER_BATCH, DRAW_SIZE):
            yield drawn.flip(-1) if torch.rand((), generator=self.generator) < 0.5 else drawn


def crop_db(out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per crop, 10 log10 of the mean squared error in levels² (B x 1 x H x W in [0, 1] -> B)."""
    return 10 * torch.log10(((out - clean) * 255).square().flatten(1).mean(1) + FLOOR)


def blend_losses(blender, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the blender's mean crop dB, today's: the fill as the mask says, the blend N x 1 x H x W) for
    N x PLANES uint8 crops."""
    from .models.blender import features, weights

    photo, clean, filled, wide, mask, wider, detected, speckled = (crops.float() / 255).split(1, dim=1)
    mask, wider = (mask > 0.5).float(), (wider > 0.5).float()
    w = weights(blender(features(photo, filled, wide, mask, wider, detected, speckled)), mask)
    out = torch.where(wider > 0.5, w[:, :1] * photo + w[:, 1:2] * filled + w[:, 2:] * wide, photo)
    return crop_db(out, clean).mean(), crop_db(torch.where(mask > 0.5, filled, photo), clean).mean(), out
