"""Stage 2 of the pipeline: undo fading, overexposure, tarnish, toning, vignetting and a stain's tint, and
leave a photo whose tone is fine alone.

The correction is the single U-Net's tonal change, fitted as a smooth field of tone curves (guided.py), so
it cannot blur. The U-Net also "corrects" photos that need nothing: on grain, JPEG or vignetting it moves
pixels by a few levels (on scratches alone the previous tone rule cost 1.3 dB against no tone stage at
all). So the correction is gated by its own size: m = its mean |change| in 0-255 levels over the
pixels the fill leaves alone; below `GATE_FROM` levels it is dropped, above `GATE_TO` kept whole, and in
between scaled linearly. On the validation photos below, m's median was 22 levels under fading and 28
under overexposure, but 0.3-1.4 under grain, JPEG, vignetting, scratches, dust and blur.

The two levels were measured (docs/pipeline_experiments.md): on 16 of the detector run's validation photos
(never the benchmark's) x 10 presets + 16 operators at 0.6, gating at 4 -> 8 levels gained +2.49 dB on the
five issue presets, +1.76 dB over single operators, worst operator -0.60 (vignette); the previous rule (the
min-consensus of a learned tone model and these curves) +1.93, +1.16, -1.07; the curves ungated +2.47,
+1.51, -1.38; no tone stage +0.71, +1.02, -0.61 (sepia). Gates at 3 -> 6 levels: +2.51, +1.72, -0.85;
at 5 -> 10: +2.46, +1.73, -0.53.

The size alone opens on photos whose tone was fine but whose look the U-Net did not learn: on the
benchmark's held-out subjects (low-key, matte, high-key product photos) the spurious correction is often
4-20 levels, and scratches lost 3.7 dB to it. Fading lifts a print's blacks (the silver image loses
density, the paper does not darken), so the gate also asks for that physical sign: the photo's black point
(0.5th percentile of its luma away from the damage) under `BLACK_FROM` levels keeps nothing, over
`BLACK_TO` lets the size decide. Measured over the 16 operators and 9 presets at 0.6
(docs/pipeline_experiments.md, 'Tone, fourth round'): on 55 held-out photos the operator mean rose by
+0.95 dB (scratches +2.5, JPEG +1.4, vignetting +1.4, stains +1.1) and the five presets' by +0.06; on 40
photos like the training ones the operators lost 0.17 dB and the presets 0.40 (mild, sepia and
overexposure lift blacks less). Neither the white point nor clipped highlights, added as cues, did
better on both sets.

What no curve can do, the U-Net's sharpening, its smoothing of grain, the edge of a tarnish halo (its
output minus the fitted curves', "the rest"), is added too when the correction passes the gate and the
rest is big: its mean size away from the damage ramps from `DETAIL_FROM` to `DETAIL_TO` levels. Small, it
is the U-Net's blur of a photo that only faded (fading lost 0.2-0.5 dB with it, sepia 0.2-0.3); big, it is
detail that a heavily aged print lost. Measured on 24 held-out and 24 training-like photos
(docs/pipeline_experiments.md, 'The U-Net's rest'): daguerreotype +6.30 -> +7.95 and +4.08 -> +5.18 dB,
the five issue presets +3.72 -> +4.12 and +2.90 -> +3.15 (SSIM +0.075 -> +0.089 and +0.063 -> +0.072), no
operator lower by more than 0.02 dB. On the 32 real old photos the rest stays under 2.5 levels.

Under the detail gate, the rest holds both the U-Net's smoothing and its sharpening of the photo's own
strong edges: the part with the sign of the photo's detail, where that detail is over ~8 levels
(`edge_sharpening`), is added anyway; the smoothing is left out. Measured on 24 validation photos (deciding) and 24
held-out ones (docs/pipeline_experiments.md, 'The U-Net's sharpening under the detail gate'): the five issue
presets +3.06 -> +3.08 and +4.20 -> +4.20 dB, their edge contrast 0.661 -> 0.674 and 0.739 -> 0.756, SSIM
unchanged within 0.001, fading +0.08 and +0.05 dB, overexposure -0.06 and -0.05.

Along a frame (a daguerreotype's mat, `fill.frames`), where tarnish creeps in from the plate's edge, the
rest is the halo's edge, not a blur: within `HALO_AT_256` px of the frame it is added whole whatever the
detail gate says (docs/pipeline_experiments.md, 'Frames'): daguerreotype +5.08 -> +5.26 dB on validation,
+7.94 -> +8.04 held-out (SSIM 0.720 -> 0.727 and 0.804 -> 0.809) over the frame's fill alone, no other row
moved.

A colour photo's three channels are shifted by the luminance change, which keeps its chroma (Cr and Cb of
YCrCb) as the gray U-Net does.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..aging_primitives import LUMA
from .fill import scale_of
from .guided import guided_tone

GATE_FROM, GATE_TO = 4.0, 8.0  # mean |correction| in 0-255 levels away from the damage: none below, all above
BLACK_FROM, BLACK_TO = 30.0, 50.0  # black point in 0-255 levels: tone fine below, the size decides above
DETAIL_FROM, DETAIL_TO = 3.0, 5.0  # mean |rest of the U-Net's change| in levels away from the damage
EDGE_SCALE, EDGE_FROM = 2.0, 0.03  # px at a 256 px short side, and [0, 1] units: the photo's strong edges
HALO_AT_256 = 16.0  # px from a frame within which the U-Net's rest is taken whole (at a 256 px short side)
MODES = ("auto", "on", "off")  # the gate decides; the whole correction always; none (a look that is intended)


def luminance(planes: np.ndarray) -> np.ndarray:
    """H x W luma of 1 or 3 planes (C x H x W float32)."""
    if planes.shape[0] == 1:
        return planes[0]
    return np.tensordot(LUMA, planes, axes=1).astype(np.float32)


def black_point(luma: np.ndarray, damaged: np.ndarray) -> float | None:
    """The photo's black point in 0-255 levels: the 0.5th percentile of `luma` away from `damaged` (where a
    dark speck says nothing about the photo's tone); None when there is nothing but damage."""
    away = ~damaged
    return 255.0 * float(np.percentile(luma[away], 0.5)) if away.any() else None


def lifted(luma: np.ndarray, damaged: np.ndarray) -> float:
    """0..1: how far the `black_point` has risen from BLACK_FROM towards BLACK_TO levels, the sign of fading
    the gate asks for. Nothing but damage: nothing to judge by, 0."""
    return _lift(black_point(luma, damaged))


def _lift(black: float | None) -> float:
    return 0.0 if black is None else float(np.clip((black - BLACK_FROM) / (BLACK_TO - BLACK_FROM), 0.0, 1.0))


def change_size(change: np.ndarray, damaged: np.ndarray) -> float:
    """The mean size of `change` (H x W, in [0, 1] units) in 0-255 levels over the pixels outside `damaged`
    (the fill owns those, and a change there says nothing about the photo's tone); 0 when there are none."""
    away = ~damaged
    return 255.0 * float(np.abs(change[away]).mean()) if away.any() else 0.0


def _ramp(size: float, low: float, high: float) -> float:
    """0..1 from a `change_size` between `low` and `high` levels (both above 0, so nothing but damage, whose
    size is 0, has nothing to judge by and gives 0)."""
    return float(np.clip((size - low) / (high - low), 0.0, 1.0))


def size_gate(correction: np.ndarray, damaged: np.ndarray) -> float:
    """0..1: the curves' correction between GATE_FROM and GATE_TO levels. The gate keeps
    `size_gate * lifted` of the correction."""
    return _ramp(change_size(correction, damaged), GATE_FROM, GATE_TO)


def detail_gate(rest: np.ndarray, damaged: np.ndarray) -> float:
    """0..1: the rest of the U-Net's change between DETAIL_FROM and DETAIL_TO levels, the share of it added
    to the curves' correction before the gate scales both."""
    return _ramp(change_size(rest, damaged), DETAIL_FROM, DETAIL_TO)


def edge_sharpening(rest: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """The part of the U-Net's rest that steepens the photo's own strong edges: where it has the sign of the
    photo's detail (the luma minus its blur over `EDGE_SCALE` px) and that detail is over `EDGE_FROM`; zero
    elsewhere, and so wherever the rest smooths."""
    sigma = EDGE_SCALE * scale_of(luma.shape)
    detail = luma - cv2.GaussianBlur(luma, (0, 0), sigma)
    return np.where((rest * detail > 0) & (np.abs(detail) > EDGE_FROM), rest, 0.0).astype(np.float32)


def halo(frame: np.ndarray) -> np.ndarray | None:
    """The pixels within HALO_AT_256 px (scaled with the photo) of a `frame` (H x W bool, `fill.frames`);
    None without one."""
    if not frame.any():
        return None
    reach = HALO_AT_256 * scale_of(frame.shape)
    return cv2.distanceTransform((~frame).astype(np.uint8), cv2.DIST_L2, 3) <= reach


def tone_correction(reference, luma: np.ndarray, damaged: np.ndarray, *, tile: int, overlap: int,
                    mode: str = "auto", repaint: bool = True, notes: dict | None = None,
                    frame: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(H x W change to add to the luma (float32, [0, 1] units): the reference restorer's tonal correction
    as curves plus `detail_gate` of the rest of its change (and, of the share the gate leaves out, its
    `edge_sharpening`; along a `frame`, its `halo`, all of it), scaled by `size_gate` x `lifted` (mode
    "auto"), whole ("on") or none ("off"); the reference's output at its work size, for `fill.fill_deep`).
    When no correction can come of it (mode "off", or blacks that never lifted) and no `repaint` is asked
    for, the reference is not run at all: a photo whose tone is fine costs the detector and the fill only,
    and gets a zero change and no repaint.

    Why a user may overrule the gate: a matte grade (lifted blacks, lowered whites) is exactly what fading
    does to a print, and no pixel says which it was (docs/pipeline_experiments.md, 'Tone judge'). The gate
    corrects it once the blacks are lifted past `BLACK_TO`, right for an old print; "off" keeps a look that
    was intended, "on" corrects a faded print whose blacks survived.

    `notes`, when given, receives what the stage decided, so a user can see why a photo was (not) toned:
    "black_point" and "curves" (the curves' correction before the gate), in levels, and "kept", the share
    of the correction applied (0 to 1)."""
    black = black_point(luma, damaged) if mode == "auto" or notes is not None else None
    fade = _lift(black) if mode == "auto" else float(mode == "on")
    if notes is not None:
        notes.update(mode=mode, black_point=None if black is None else round(black, 1), curves=None, kept=0.0)
    if not repaint and fade == 0.0:
        return np.zeros_like(luma, dtype=np.float32), None
    toned, reference_output, rest = guided_tone(reference, luma, damaged, tile=tile, overlap=overlap)
    correction = toned - luma
    size = change_size(correction, damaged) if mode == "auto" or notes is not None else None
    keep = fade * _ramp(size, GATE_FROM, GATE_TO) if mode == "auto" else fade  # size_gate, its size read once
    if notes is not None:
        notes.update(curves=round(size, 1), kept=round(keep, 3))
    if keep > 0.0:
        if rest.shape != luma.shape:  # the U-Net ran on the photo shrunk to the work size
            rest = cv2.resize(rest, luma.shape[::-1], interpolation=cv2.INTER_LINEAR)
        take = detail_gate(rest, damaged)
        if take > 0.0:
            correction += take * rest
        if take < 1.0:
            sharpening = edge_sharpening(rest, luma)
            along = None if frame is None else halo(frame)
            if along is not None:
                sharpening = np.where(along, rest, sharpening)
            correction += (1.0 - take) * sharpening
    if keep < 1.0:
        correction *= keep
    return correction, reference_output
