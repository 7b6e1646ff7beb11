"""The repair pipeline, `restore --model pipeline` (the default): deblock, detect, tone, fill, focus; each
stage with one job, as the study concluded ("multiple different models would be needed to repair different
types of problems") and as Bringing Old Photos Back to Life (Wan et al., CVPR 2020) does.

0. deblock (restore/deblock.py): a photo whose JPEG blocks show is deblocked by a network before the tone,
   fill and focus stages work on it (JPEG is the last thing done to a scan); one never compressed is left
   alone. The detectors look at the photo as it came (see `repair`).
1. detect (restore/detect.py): a segmentation network marks the pixels whose content is destroyed, and a
   second one at full resolution, the speck finder (models/specks.py), adds the dust specks the first
   leaves; with `verify="on"`, the verifier (restore/verify.py) then drops each marked component whose fill
   it judges would do more harm than good (a clock's numerals, a building's cornice).
2. tone (restore/tone.py, restore/guided.py): what the single U-Net does to the photo's tone, fitted as a
   smooth field of per-pixel tone curves (so it cannot blur), and applied only when it is big enough to be
   a real correction and the photo's blacks have lifted as fading lifts them: a photo whose tone is fine
   is left untouched, and unless a wide hole needs its repaint the U-Net is not even run for it. On a
   heavily aged photo, what the U-Net does beyond the curves (sharpening, smoothing grain) is added when
   it is big.
3. fill (restore/fill.py): the marked pixels, widened by a pixel, are inpainted from their toned
   surroundings (OpenCV's Telea or Navier-Stokes, or the learned inpainter), and deep inside wide holes
   (mats, torn corners) by the U-Net's repaint or a smooth guess, a mat that frames the picture by the
   repaint throughout (`fill.frames`); nothing outside them changes. Then the rims (restore/rims.py): a
   wider fill over the faint ends and soft rims of what was found, which a small network (the blender)
   takes pixel by pixel where it judges the picture is better for it (`rims="off"`: the fill as marked).
4. focus (restore/focus.py): a photo whose sharpest edges, read away from the marked damage, are soft (an
   old lens, a bad scan) is deconvolved; a sharp one, or one whose soft focus is intended
   (`focus="off"`), is left alone. It comes last, so the sharp rims of the damage are filled before the
   deconvolution could ring around them (docs/pipeline_experiments.md, 'Reading the blur away from the
   damage').

Its checkpoints are the deblocker's, the detector's, the speck finder's, the verifier's, the blender's and
the U-Net's (`STAGES`), and the inpainter's for the learned fill; each can be replaced by a file of one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import HelpersError, UsageError
from .deblock import MODES as DEBLOCK_MODES, deblock_correction
from .detect import damage_probability, threshold_of
from .fill import METHODS, fill, fill_deep, frames, has_deep, hole_depth, widen, widen_px
from .focus import MODES as FOCUS_MODES, focus_correction, focus_sigma
from .restorers import DEFAULT_CHECKPOINTS, Restorer
from .rims import MODES as RIMS_MODES, rims as fill_rims
from .tone import MODES, luminance, tone_correction
from .verify import verified

# the models whose checkpoints the pipeline loads
STAGES = ("deblocker", "detector", "specks", "verifier", "blender", "unet")
OPTIONAL_STAGES = ("inpainter",)  # loaded only for `fill_method="learned"`
AT_MOST = ("a deblocker, a detector, a specks, a verifier, a blender, a unet and an inpainter checkpoint "
           "at most")  # one each
SPECK_MIRROR = False  # the speck finder looks once
# The verifier is the user's choice, not the default: on the benchmark's photos it lifts every row of false
# alarms (held-out JPEG -0.43 -> -0.25 dB) but costs dust and creases, and on real prints it leaves cracks
# the detectors found on a dark, grainy curtain and a flake over an eyebrow, while it spares a building's
# cornices (docs/pipeline_experiments.md, 'A verifier for the detected components').
VERIFY_MODES = ("off", "on")


def stage_checkpoints(checkpoints=None, *, learned_fill: bool = False) -> dict[str, Path]:
    """Stage name -> checkpoint: the bundled ones, each replaced by a given file of that stage (the model
    named in its metadata says which); the inpainter's only with `learned_fill`."""
    from ..checkpoints import read_metadata

    stages = STAGES + OPTIONAL_STAGES if learned_fill else STAGES
    chosen, replaced = {stage: DEFAULT_CHECKPOINTS[stage] for stage in stages}, {}
    given = [] if checkpoints is None else [checkpoints] if isinstance(checkpoints, (str, Path)) else checkpoints
    for path in map(Path, given):
        model = read_metadata(path).get("model")
        if model in OPTIONAL_STAGES and not learned_fill:
            raise UsageError(f"{path}: an {model} checkpoint is used by the learned fill only: add --fill learned")
        if model not in stages:
            raise UsageError(f"{path}: holds a {model!r} model; the pipeline takes {AT_MOST}")
        if model in replaced:
            raise UsageError(f"{path}: a second {model} checkpoint (the first: {replaced[model]}); the pipeline "
                             "takes one of each")
        chosen[model] = replaced[model] = path
    for stage, path in chosen.items():
        if not path.is_file():
            raise HelpersError(f"{path}: the {stage} checkpoint is missing. Train one with `python -m helpers "
                               f"train --model {stage} --data DIR --out RUN_DIR` and pass --checkpoint "
                               "RUN_DIR/best.safetensors")
    return chosen


def load_stages(checkpoints=None, *, device=None, learned_fill: bool = False) -> dict:
    """The pipeline's models: {"deblocker", "detector", "specks" (the speck finder), "verifier" (the component
    verifier), "blender" (the rims stage's), "reference" (the U-Net restorer, whose tonal change the tone
    stage fits), "inpainter" (None unless `learned_fill`), "threshold", "speck_threshold",
    "verifier_threshold", "metadata"}."""
    from .. import env
    from ..checkpoints import load_generator
    from .restorers import load_restorer

    paths = stage_checkpoints(checkpoints, learned_fill=learned_fill)
    device = device or env.device()
    deblocker = load_generator(paths["deblocker"], "deblocker", device=device)[0]
    detector, detector_meta = load_generator(paths["detector"], "detector", device=device)
    specks, specks_meta = load_generator(paths["specks"], "specks", device=device)
    verifier, verifier_meta = load_generator(paths["verifier"], "verifier", device=device)
    blender = load_generator(paths["blender"], "blender", device=device)[0]
    reference = load_restorer("unet", paths["unet"], device=device)
    if reference.channels != 1:  # the tone stage fits its change to the luminance
        raise UsageError(f"{paths['unet']}: a {reference.channels}-channel U-Net; the pipeline's tone stage needs "
                         "a gray one")
    inpainter = load_generator(paths["inpainter"], "inpainter", device=device)[0] if learned_fill else None
    return {"deblocker": deblocker, "detector": detector, "specks": specks, "verifier": verifier, "blender": blender,
            "reference": reference, "inpainter": inpainter, "threshold": threshold_of(detector_meta),
            "speck_threshold": threshold_of(specks_meta), "verifier_threshold": threshold_of(verifier_meta),
            "metadata": {"checkpoint": {stage: str(path) for stage, path in paths.items()},
                         "detector": detector_meta, "specks": specks_meta, "verifier": verifier_meta}}


def load_pipeline(checkpoints=None, *, device=None, fill_method: str = "telea", tone: str = "auto",
                  focus: str = "auto", deblock: str = "auto", verify: str = "off", rims: str = "auto") -> Restorer:
    """The pipeline restorer from the bundled stages, or from the given stage checkpoints; with `verify`
    "on", only the detected components the verifier keeps are filled (see VERIFY_MODES); with `rims` "off",
    no wider fill around what was found (restore/rims.py)."""
    for name, value, choices in (("fill method", fill_method, METHODS), ("tone", tone, MODES),
                                 ("focus", focus, FOCUS_MODES), ("deblock", deblock, DEBLOCK_MODES),
                                 ("verify", verify, VERIFY_MODES), ("rims", rims, RIMS_MODES)):
        if value not in choices:
            raise UsageError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    stages = load_stages(checkpoints, device=device, learned_fill=fill_method == "learned")
    return pipeline_restorer(stages["detector"], stages["reference"], stages["threshold"], fill_method=fill_method,
                             inpainter=stages["inpainter"], tone=tone, metadata=stages["metadata"],
                             specks=stages["specks"], speck_threshold=stages["speck_threshold"], focus=focus,
                             deblocker=stages["deblocker"], deblock=deblock,
                             verifier=stages["verifier"] if verify == "on" else None,
                             verifier_threshold=stages["verifier_threshold"], blender=stages["blender"], rims=rims)


def found_damage(luma: np.ndarray, detector, threshold: float, *, specks=None, speck_threshold: float = 0.5,
                 tile: int = 1024, overlap: int = 128):
    """What the detectors mark on an H x W `luma`: (the damage detector's probability, the speck finder's or
    None, the pixels either marks over its threshold, those both mark). The pipeline fills the third; the
    verifier's features read all four (restore/verify.py), in the pipeline and in its training alike."""
    detected = damage_probability(detector, luma, tile=tile, overlap=overlap)
    found = by_both = detected > threshold
    speckled = None
    if specks is not None:
        speckled = damage_probability(specks, luma, tile=tile, overlap=overlap, mirror=SPECK_MIRROR)
        by_both = found & (speckled > speck_threshold)
        found = found | (speckled > speck_threshold)
    return detected, speckled, found, by_both


def repair(planes: np.ndarray, detector, reference: Restorer, threshold: float, *, fill_method: str = "telea",
           inpainter=None, tone: str = "auto", tile: int = 1024, overlap: int = 128,
           damage: np.ndarray | None = None, specks=None, speck_threshold: float = 0.5,
           focus: str = "auto", deblocker=None, deblock: str = "auto", verifier=None,
           verifier_threshold: float = 0.5, blender=None, rims: str = "auto") -> dict[str, np.ndarray]:
    """Every stage's result for C x H x W planes in [0, 1]: "deblocked" (the planes with their JPEG blocks
    taken out by the `deblocker`, when given, `deblock` "auto" and the blocks show; else the planes), "mask"
    (detected by the detector, joined by the `specks` finder's when given, less the components the
    `verifier`, when given, finds not worth filling (probability under `verifier_threshold`); or `damage`,
    an H x W bool mask the user drew, in its place), "widened" (what is filled, the rims' region with it),
    "toned" (the deblocked planes after the tone stage, `tone` as in `tone.tone_correction`), "restored"
    (toned, filled inside "widened", its rims blended in by the `blender` when given, `rims` "auto" and the
    mask the detectors' own (neither drawn by the user nor thinned by the verifier, whose choices a wider
    fill would undo), then the focus stage's, `focus` "auto" or "off") and "notes", what each stage
    decided, for the user to read:
    per stage, "deblock" {"blocking" in levels, "ran"}, "tone" (see `tone.tone_correction`), "focus"
    {"blur_px", "ran"}, "fill" {"found", "dropped" (by the verifier), "filled": shares of the photo's
    pixels} and "rims" {"ran", "changed": the share of pixels the blend changed beyond the fill}.

    The detectors look at the photo as it came, blocks and all: they were trained on aged photos whose
    JPEG was part of the aging, and on the deblocked photo (smoother than any of those) they marked more
    false alarms (JPEG at 0.6, 24 validation photos: 0.160 % of the pixels against 0.135 %, +0.02 against
    +0.17 dB; docs/pipeline_experiments.md)."""
    luma = luminance(planes)
    found = detected = speckled = None
    if damage is None:
        detected, speckled, found, by_both = found_damage(luma, detector, threshold, specks=specks,
                                                          speck_threshold=speck_threshold, tile=tile, overlap=overlap)
        mask = (found if verifier is None else
                verified(verifier, luma, detected, speckled, found, by_both, verifier_threshold))
    elif damage.shape != luma.shape:
        raise UsageError(f"the damage mask is {damage.shape[1]}x{damage.shape[0]}, the photo "
                         f"{luma.shape[1]}x{luma.shape[0]}")
    else:
        mask = damage.astype(bool, copy=False)
    notes = {"deblock": {"ran": False}, "tone": {}, "rims": {"ran": False}}
    change = (deblock_correction(deblocker, luma, tile=tile, overlap=overlap, notes=notes["deblock"])
              if deblocker is not None and deblock == "auto" else None)
    if change is not None:
        planes = planes + change[None]  # a new array: the caller's planes stay as they were
        np.clip(planes, 0.0, 1.0, out=planes)
        luma = luminance(planes)
    widened = widen(mask, widen_px(luma.shape))
    depth = hole_depth(widened) if widened.any() else None  # how deep each pixel lies in a hole, read three times
    deep = has_deep(widened, depth)
    frame = frames(widened, depth) if deep else None  # a frame is far deeper than `has_deep` asks: most photos skip it
    correction, repaint = tone_correction(reference, luma, widened, tile=tile, overlap=overlap, mode=tone,
                                          repaint=deep, notes=notes["tone"], frame=frame)
    toned = planes + correction[None]  # the same shift on every channel keeps a colour photo's chroma
    sigma, width = focus_sigma(luma, widened) if focus == "auto" else (None, None)
    notes["focus"] = {"blur_px": None if width is None else round(width, 2), "ran": sigma is not None}
    notes["fill"] = {"found": round(float((mask if found is None else found).mean()), 5),
                     "dropped": 0.0 if found is None else round(float((found & ~mask).mean()), 5),
                     "filled": round(float(widened.mean()), 5)}
    np.clip(toned, 0.0, 1.0, out=toned)
    filled = fill(toned, widened, method=fill_method, inpainter=inpainter, tile=tile, overlap=overlap)
    reach = widened
    if blender is not None and rims == "auto" and detected is not None and verifier is None:
        filled, reach = fill_rims(blender, toned, filled, widened, detected, speckled, method=fill_method,
                                  inpainter=inpainter, tile=tile, overlap=overlap, notes=notes["rims"])
    restored = fill_deep(filled, widened, luma, repaint, frame, depth)
    if sigma is not None:  # after the fill: the damage's sharp rims are gone and cannot ring
        restored = restored.copy() if restored is toned else restored
        for plane in restored:
            plane += focus_correction(plane, sigma)
        np.clip(restored, 0.0, 1.0, out=restored)
    return {"deblocked": planes, "mask": mask, "widened": reach, "toned": toned, "restored": restored,
            "notes": notes}


def pipeline_restorer(detector, reference: Restorer, threshold: float, *, fill_method: str = "telea",
                      inpainter=None, tone: str = "auto", metadata: dict | None = None, specks=None,
                      speck_threshold: float = 0.5, focus: str = "auto", deblocker=None,
                      deblock: str = "auto", verifier=None, verifier_threshold: float = 0.5, blender=None,
                      rims: str = "auto") -> Restorer:
    """A Restorer around stage models already in memory (tests, notebooks): a detector network (and the
    speck finder, the deblocker, the verifier and the rims stage's blender, optional here), the restorer whose
    tonal change the tone stage fits (the U-Net), and the inpainter for the learned fill."""

    def run(planes: np.ndarray, tile: int, overlap: int, damage: np.ndarray | None = None,
            notes: dict | None = None):
        stages = repair(planes, detector, reference, threshold, fill_method=fill_method, inpainter=inpainter,
                        tone=tone, tile=tile, overlap=overlap, damage=damage, specks=specks,
                        speck_threshold=speck_threshold, focus=focus, deblocker=deblocker, deblock=deblock,
                        verifier=verifier, verifier_threshold=verifier_threshold, blender=blender, rims=rims)
        if notes is not None:
            notes.update(stages["notes"])
        return stages["restored"], stages["mask"].astype(np.float32)

    extra = ({"speck_threshold": speck_threshold} if specks is not None else {}) | (
        {"verify": "on", "verifier_threshold": verifier_threshold} if verifier is not None
        else {"verify": "off"}) | (
        {"deblock": deblock} if deblocker is not None else {}) | (
        {"rims": rims} if blender is not None else {})
    return Restorer("pipeline", 0, run, True, (metadata or {}) | {"model": "pipeline", "threshold": threshold,
                                                                  "fill": fill_method, "tone": tone,
                                                                  "focus": focus} | extra,
                    takes_mask=True, takes_notes=True)
