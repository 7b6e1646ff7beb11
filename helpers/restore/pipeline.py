"""The repair pipeline, `restore --model pipeline` (the default): detect, tone, fill; each a small model
with one job, as the study concluded ("multiple different models would be needed to repair different
types of problems") and as Bringing Old Photos Back to Life (Wan et al., CVPR 2020) does.

1. detect (restore/detect.py): a segmentation network marks the pixels whose content is destroyed.
2. tone (restore/tone.py, restore/guided.py): two independent estimates of the tonal damage, each a
   smooth field of per-pixel tone curves (so neither can blur): the tone model's own curves, and curves
   fitted to what the single U-Net does to the photo's tone. A pixel is corrected only as far as both
   agree (the smaller correction when they point the same way, none when they disagree): on a photo whose
   tone is fine, their spurious corrections rarely agree, and that is what keeps it untouched.
3. fill (restore/fill.py): the marked pixels, widened by a pixel, are inpainted from their toned
   surroundings; nothing outside them changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import HelpersError, UsageError
from .detect import damage_probability, threshold_of
from .fill import METHODS, fill, widen
from .guided import guided_tone
from .restorers import DEFAULT_CHECKPOINTS, Restorer
from .tone import luminance, tone_correct

STAGES = ("detector", "tone")
REFERENCE = "unet"  # the tone stage's second opinion
WIDEN_AT_256 = 1  # px the mask grows at a 256 px short side; more on bigger photos


def stage_checkpoints(checkpoints=None) -> dict[str, Path]:
    """Stage name -> checkpoint: the bundled ones, each replaced by a given file of that stage (the model
    named in its metadata says which)."""
    from ..checkpoints import read_metadata

    chosen = {stage: DEFAULT_CHECKPOINTS[stage] for stage in STAGES}
    given = [] if checkpoints is None else [checkpoints] if isinstance(checkpoints, (str, Path)) else checkpoints
    for path in map(Path, given):
        model = read_metadata(path).get("model")
        if model not in STAGES:
            raise UsageError(f"{path}: holds a {model!r} model; the pipeline takes {' and '.join(STAGES)} "
                             "checkpoints")
        chosen[model] = path
    for stage, path in chosen.items():
        if not path.is_file():
            raise HelpersError(f"{path}: the {stage} checkpoint is missing. Train one with `python -m helpers "
                               f"train --model {stage} --data DIR --out RUN_DIR` and pass --checkpoint "
                               "RUN_DIR/best.safetensors")
    return chosen


def load_stages(checkpoints=None, *, device=None) -> dict:
    """The pipeline's models: {"detector", "tone", "reference" (the U-Net), "threshold", "metadata"}."""
    from .. import env
    from ..checkpoints import load_generator
    from .restorers import load_restorer

    paths = stage_checkpoints(checkpoints)
    device = device or env.device()
    detector, detector_meta = load_generator(paths["detector"], "detector", device=device)
    tone, tone_meta = load_generator(paths["tone"], "tone", device=device)
    reference = load_restorer(REFERENCE, device=device)
    checkpoints = {stage: str(path) for stage, path in paths.items()} | {REFERENCE: reference.metadata["checkpoint"]}
    return {"detector": detector, "tone": tone, "reference": reference, "threshold": threshold_of(detector_meta),
            "metadata": {"checkpoint": checkpoints, "detector": detector_meta, "tone": tone_meta}}


def load_pipeline(checkpoints=None, *, device=None, fill_method: str = "telea") -> Restorer:
    """The pipeline restorer from the bundled stages, or from the given stage checkpoints."""
    if fill_method not in METHODS:
        raise UsageError(f"fill method must be one of {', '.join(METHODS)}, not {fill_method!r}")
    stages = load_stages(checkpoints, device=device)
    return pipeline_restorer(stages["detector"], stages["tone"], stages["threshold"], reference=stages["reference"],
                             fill_method=fill_method, metadata=stages["metadata"])


def agreed(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per pixel, the smaller of two corrections when they have the same sign, else none."""
    return np.where(np.sign(first) == np.sign(second), np.sign(first) * np.minimum(np.abs(first), np.abs(second)),
                    0.0).astype(np.float32)


def repair(planes: np.ndarray, detector, tone, threshold: float, *, reference: Restorer | None = None,
           fill_method: str = "telea", tile: int = 1024, overlap: int = 128) -> dict[str, np.ndarray]:
    """Every stage's result for C x H x W planes in [0, 1]: "mask" (detected), "widened" (what is filled),
    "toned" (all planes after the tone stage) and "restored" (toned, then filled inside "widened")."""
    luma = luminance(planes)
    mask = damage_probability(detector, luma, tile=tile, overlap=overlap) > threshold
    grow = max(WIDEN_AT_256, round(WIDEN_AT_256 * min(luma.shape) / 256))
    widened = widen(mask, grow)
    correction = tone_correct(tone, luma) - luma
    if reference is not None:
        correction = agreed(correction, guided_tone(reference, luma, widened, tile=tile, overlap=overlap) - luma)
    toned = planes + correction[None]  # the same shift on every channel keeps a colour photo's chroma
    np.clip(toned, 0.0, 1.0, out=toned)
    return {"mask": mask, "widened": widened, "toned": toned,
            "restored": fill(toned, widened, method=fill_method)}


def pipeline_restorer(detector, tone, threshold: float, *, reference: Restorer | None = None,
                      fill_method: str = "telea", metadata: dict | None = None) -> Restorer:
    """A Restorer around stage models already in memory (tests, notebooks). Without a `reference`
    restorer the tone model's curves are applied alone."""

    def run(planes: np.ndarray, tile: int, overlap: int):
        stages = repair(planes, detector, tone, threshold, reference=reference, fill_method=fill_method,
                        tile=tile, overlap=overlap)
        return stages["restored"], stages["mask"].astype(np.float32)

    return Restorer("pipeline", 0, run, True, (metadata or {}) | {"model": "pipeline", "threshold": threshold,
                                                                  "fill": fill_method})
