"""The training loop's "verify" task: the component verifier learns from what filling each detected
component did to an aged photo.

For every aged photo of a batch the frozen, bundled detectors mark their mask as the pipeline does; each
connected component gets its features (restore/verify.py) and its `fill_benefit` against the clean photo.
The verifier is trained with BCE on "the fill helped" (benefit > 0), each component weighted by the square
root of how much it helped or hurt: a speck that decides a dB on a photo with little damage should count,
and a mat's huge benefit should not drown it (weights by |benefit| itself, or normalised per photo, kept
fewer of the false-alarm rows on validation photos, docs/pipeline_experiments.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .restore.verify import components, fill_benefit

# Finding the components costs the detectors ~0.1 s a photo, a step of the verifier a millisecond. One step
# per batch (8 epochs, 500 steps) left it well short of a verifier fitted to the same kind of components
# over 2,700 steps of 1,024 drawn from thousands of photos (validation: operators +2.44 against +2.70 dB),
# and 8 steps on each batch's own components fitted those 16 photos (validation loss 0.53 -> 0.66). So the
# components of the last `MEMORY_BATCHES` batches are kept, and each step draws `DRAWS` minibatches from them.
MEMORY_BATCHES, DRAWS, DRAW_SIZE = 24, 4, 1024


class RecentBatches:
    """The tensors of the last `keep` batches (each batch one or more tensors of equal length), and random
    minibatches drawn from them by a seeded generator: the verifier's and the rims blender's tasks, whose
    examples cost the detectors far more than a step. Not saved with a checkpoint: a resumed run starts
    it empty."""

    def __init__(self, seed: int, keep: int):
        from collections import deque

        self.batches = deque(maxlen=keep)
        self.generator = torch.Generator().manual_seed(seed)

    def add(self, *tensors: torch.Tensor) -> None:
        if len(tensors[0]):
            self.batches.append(tensors)

    def drawn(self, count: int, size: int, least: int = 1):
        """`count` minibatches (a tuple of tensors, as added) of up to `size` examples; none while fewer than
        `least` are kept."""
        if sum(len(batch[0]) for batch in self.batches) < least:
            return
        kept = [torch.cat(parts) for parts in zip(*self.batches)]
        for _ in range(count):
            pick = torch.randint(len(kept[0]), (min(size, len(kept[0])),), generator=self.generator)
            yield tuple(tensor[pick] for tensor in kept)


class ComponentMemory(RecentBatches):
    """The components (features, benefits) of the last MEMORY_BATCHES batches."""

    def __init__(self, seed: int):
        super().__init__(seed, MEMORY_BATCHES)

    def draws(self):
        """DRAWS minibatches (features, benefits) of up to DRAW_SIZE components; none while fewer than two
        components are kept (a batch norm needs two)."""
        return self.drawn(DRAWS, DRAW_SIZE, least=2)


class ComponentSource:
    """The bundled damage detector and speck finder with their thresholds, as `restore.pipeline` uses them,
    turning (aged, clean) batches into component features and fill benefits."""

    def __init__(self, device: str | torch.device = "cpu"):
        from .checkpoints import load_generator
        from .restore.detect import threshold_of
        from .restore.restorers import DEFAULT_CHECKPOINTS

        self.detector, detector_meta = load_generator(DEFAULT_CHECKPOINTS["detector"], "detector", device=device)
        self.specks, specks_meta = load_generator(DEFAULT_CHECKPOINTS["specks"], "specks", device=device)
        self.threshold, self.speck_threshold = threshold_of(detector_meta), threshold_of(specks_meta)

    def components(self, luma: np.ndarray, clean: np.ndarray | None = None):
        """(labels, count, features, benefits or None) of one aged gray photo (H x W in [0, 1])."""
        from .restore.pipeline import found_damage

        marks = found_damage(luma, self.detector, self.threshold, specks=self.specks,
                             speck_threshold=self.speck_threshold)
        labels, count, table, filled = components(luma, *marks)
        benefit = None if clean is None else fill_benefit(labels, count, luma, filled, clean)
        return labels, count, table, benefit

    def batch(self, aged: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features N x F, benefits N) of every component in a batch of gray photos B x 1 x H x W in [0, 1]."""
        tables, benefits = [], []
        for photo, target in zip(aged[:, 0].numpy(), clean[:, 0].numpy()):
            _, _, table, benefit = self.components(np.ascontiguousarray(photo, np.float32), target)
            tables.append(table)
            benefits.append(benefit)
        return torch.from_numpy(np.concatenate(tables)), torch.from_numpy(np.concatenate(benefits)).float()


def verify_loss(logits: torch.Tensor, benefit: torch.Tensor) -> torch.Tensor:
    """BCE on "the fill helped", each component weighted by sqrt(|benefit|) (normalised to a mean of 1)."""
    weight = benefit.abs().sqrt()
    weight = weight / weight.mean().clamp_min(1e-9)
    return F.binary_cross_entropy_with_logits(logits[:, 0], (benefit > 0).float(), weight=weight)


def kept_benefit(logits: torch.Tensor, benefit: torch.Tensor) -> dict[str, float]:
    """What the verifier's choice (keep at probability 0.5) gains, as the share of what a perfect choice
    would gain over filling every component: 0 fills all, 1 is the oracle, below 0 worse than filling all."""
    everything = benefit.sum().item()
    oracle = benefit.clamp_min(0).sum().item()
    kept = benefit[logits[:, 0] >= 0].sum().item()
    return {"kept_share_of_oracle": (kept - everything) / max(oracle - everything, 1e-9),
            "dropped": (logits[:, 0] < 0).float().mean().item()}


def calibrate_threshold(verifier, photos: list[np.ndarray], *, seed: int = 0) -> tuple[float, dict]:
    """The probability above which a component is filled that gains the most PSNR on `photos` (gray 8-bit,
    never trained on), aged as the detectors' thresholds are calibrated (restore/detect.py: each local damage
    operator, and grain and JPEG, where every find is a false alarm), the bundled detectors marking what
    the verifier judges: (threshold, mean gain in dB per candidate threshold)."""
    from . import metrics
    from .aging import apply_operator
    from .restore.detect import CALIBRATION_OPERATORS, CANDIDATES
    from .restore.fill import fill, widen

    source = ComponentSource()
    gains = {threshold: [] for threshold in CANDIDATES}
    for index, clean in enumerate(photos):
        for operator in CALIBRATION_OPERATORS:
            aged = apply_operator(clean, operator, 0.6, seed=seed + index).image.astype(np.float32) / 255
            labels, count, table, _ = source.components(aged)
            with torch.inference_mode():
                judged = verifier(torch.from_numpy(table)).sigmoid()[:, 0].numpy() if count > 1 else np.zeros(0)
            before = metrics.psnr(clean, aged)
            for threshold in CANDIDATES:
                kept = np.concatenate([[False], judged >= threshold])[labels]
                repaired = fill(aged[None], widen(kept, 1))[0]
                gains[threshold].append(metrics.psnr(clean, repaired) - before)
    means = {threshold: round(float(np.mean(values)), 4) for threshold, values in gains.items()}
    return max(means, key=means.get), means
