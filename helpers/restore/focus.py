"""The pipeline's focus stage: undo the soft focus of an old lens or a bad scan, and leave a sharp photo alone.

How soft a photo is, is read off its own strongest edges (the re-blur estimate of Hu and de Haan, "Low
cost robust blur estimator", ICIP 2006): blurring an edge of Gaussian width s once more by a known
`REBLUR` px lowers its steepest gradient by sqrt(1 + REBLUR^2 / s^2), so the ratio of the two gradients at
an edge's crest gives s. The photo's blur is a low percentile of s over the strongest edges: the sharpest
part of a photo shows what its lens and scan did, a background out of focus does not. An in-focus edge
reads ~0.45 px (pixel sampling); grain, JPEG blocks, scratches and specks only add sharp crests, so they
can hide a blur but never invent one. The crests of the damage the detectors marked are left out: a
scratch or a speck lies on the print after its lens blurred it, so its rims are sharp whatever the lens did.
Measured on the 55 held-out photos (docs/pipeline_experiments.md, 'Reading the blur away from the
damage'): the photos the old-print, daguerreotype and cracked presets blurred read 0.67, 0.77 and 0.64 px
(median) with the marked damage left out, 0.41, 0.47 and 0.42 with it; no unblurred photo under any of 7
presets reads over 0.70. Under the heavy preset's grain a blur stays hidden either way (0.47).

Above `BLUR_FROM` px the photo is deconvolved with a Gaussian of the blur beyond an in-focus edge's
(`SHARP_EDGE`), by a Wiener filter in the frequency domain over the mirror-padded photo. Its regularisation
is a floor (`NOISE_TO_SIGNAL`) plus the photo's own noise and JPEG blocking over a natural photo's 1 / f^2
spectrum, set low (`SIGNAL_POWER`) so that grain and JPEG blocks under a blur are not sharpened into noise.

Measured (docs/pipeline_experiments.md, 'A focus stage'): on 24 validation photos blurred at 0.6 (s =
1.0-1.9 px) the estimate reads 0.8-2.0 px, and no photo under any other operator, clean or damaged, reads
over 0.75; the 32 real old photos read 0.35-0.74 px and an ideal sampled step 0.84, hence 0.9."""

from __future__ import annotations

import cv2
import numpy as np

from ..metrics import sobel_magnitude
from .deblock import blocking
from .fill import widen

REBLUR = 1.0  # px: the second blur the estimate compares with
EDGE_SHARE = 0.02  # the strongest share of gradient crests the estimate reads
EDGE_PERCENTILE = 20  # of the crests' widths: the photo's sharpest parts
MIN_EDGES = 10  # fewer crests than this: too few edges to judge, no correction
DAMAGE_REACH = 3  # px around the marked damage whose crests are its own rims (Sobel 1 px, re-blur 2)
BLUR_FROM = 0.9  # px: an estimate under this is a sharp photo (an ideal sampled step reads 0.84)
SHARP_EDGE = 0.4  # px: what an in-focus edge reads, left in place
NOISE_TO_SIGNAL = 0.002  # the Wiener filter's regularisation floor: gain at most 1 / (2 sqrt(.)) ~ 11x
SIGNAL_POWER = 3e-5  # spectrum ~ SIGNAL_POWER / f^2: 1/8 of 40 training photos' median, against clumped grain
MODES = ("auto", "off")  # sharpen a photo that reads soft; never (a soft focus that is intended)


def _gradient(luma: np.ndarray) -> np.ndarray:
    """|gradient| per px (float32: a scan's full-size arrays)."""
    return sobel_magnitude(luma, cv2.CV_32F) / 8.0


def blur_width(luma: np.ndarray, damaged: np.ndarray | None = None) -> float:
    """The photo's Gaussian blur in px (H x W float32 in [0, 1]), read at its sharpest strong edges away from
    the `damaged` pixels (H x W bool, optional: the mask the fill will replace) and the `DAMAGE_REACH` px
    around them; 0.0 when it has too few edges to tell."""
    luma = np.ascontiguousarray(luma, np.float32)
    crest = _gradient(luma)
    away = None if damaged is None or not damaged.any() else ~widen(damaged, DAMAGE_REACH)
    if away is not None and not away.any():
        return 0.0
    read = crest if away is None else crest[away]
    strong = max(float(np.quantile(read, 1.0 - EDGE_SHARE)), 0.02)  # 0.02: ~5 levels a px, a visible edge
    peaks = (crest >= strong) & (crest >= cv2.dilate(crest, np.ones((3, 3), np.uint8)))
    if away is not None:
        peaks &= away
    if int(peaks.sum()) < MIN_EDGES:
        return 0.0
    ratio = crest[peaks] / np.maximum(_gradient(cv2.GaussianBlur(luma, (0, 0), REBLUR))[peaks], 1e-6)
    widths = REBLUR / np.sqrt(np.maximum(ratio * ratio - 1.0, 1e-6))
    return float(np.percentile(widths, EDGE_PERCENTILE))


def noise_level(luma: np.ndarray) -> float:
    """The standard deviation of the photo's noise (grain, the 8-bit steps), by Immerkaer's estimate
    ("Fast noise variance estimation", 1996): the mean response to a mask that cancels smooth picture."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(np.ascontiguousarray(luma, np.float32), cv2.CV_32F, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) / 6 * np.abs(response).mean()) if response.size else 0.0


def deblur(luma: np.ndarray, sigma: float, *, noise: float = 0.0) -> np.ndarray:
    """`luma` deconvolved with a Gaussian of `sigma` px by a Wiener filter for white noise of std `noise`
    over a photo's 1 / f^2 spectrum (float32, not clipped)."""
    pad = int(np.ceil(4 * sigma)) + 1
    padded = cv2.copyMakeBorder(np.ascontiguousarray(luma, np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    height, width = padded.shape
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    otf = np.exp(np.float32(-2.0 * np.pi ** 2 * sigma ** 2) * (fx * fx + fy * fy))
    spectrum = np.fft.rfft2(padded)
    noise_to_signal = NOISE_TO_SIGNAL + np.float32(noise ** 2 / SIGNAL_POWER) * (fx * fx + fy * fy)
    spectrum *= otf / (otf * otf + noise_to_signal)
    return np.fft.irfft2(spectrum, s=(height, width))[pad:-pad, pad:-pad].astype(np.float32)


def focus_sigma(luma: np.ndarray, damaged: np.ndarray | None = None) -> tuple[float | None, float]:
    """(the Gaussian blur in px to undo, None for a sharp photo; the blur read off its edges away from the
    `damaged` pixels, in px)."""
    width = blur_width(luma, damaged)
    if width < BLUR_FROM:
        return None, width
    return float(np.sqrt(width ** 2 - SHARP_EDGE ** 2)), width


def focus_correction(plane: np.ndarray, sigma: float) -> np.ndarray:
    """H x W change that undoes a blur of `sigma` px on one plane, regularised by that plane's noise and JPEG
    blocking (on the scan preset's blurred JPEGs the blocking alone, ignored, cost single photos 2.6 dB). A
    colour photo's planes are deblurred one by one (a lens blurs each alike): on the 10 bundled colour photos
    blurred at 0.6 and 1.0 that beat moving all three by the luma's change in 19 of 20 cases, by up to 0.96 dB."""
    return deblur(plane, sigma, noise=float(np.hypot(noise_level(plane), blocking(plane)))) - plane
