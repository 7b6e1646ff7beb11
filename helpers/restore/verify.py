"""Stage 1b of the pipeline: keep only the detected components whose fill helps.

Half the error the detectors leave is false alarms: the fill erases a clock's numerals, a saucer's rim, a
grass blade, and a detector sure of them cannot be talked out of it by its own probability (a rule on the
components' peak probability traded dust for JPEG, docs/pipeline_experiments.md). Whether filling a
component helps, though, is a question one can answer exactly on an aged photo with its clean original,
and it depends on things a pixel detector does not weigh together: how far the component stands out from
what the fill would put there, against how busy its surroundings are; its size and shape; whether it lies
along one of the picture's own edges. So each connected component of
the detected mask is described by `FEATURES` and a small network (models/verifier.py), trained by
`train --model verifier` on what filling each component gained or lost against the clean photo
(`fill_benefit`), says whether to fill it. With a perfect such judge, keeping or dropping each component
would gain +1.3-2.0 dB on scratches, dust and creases and bring every false-alarm row to zero on the
validation photos. The trained one lifts the false-alarm rows but also leaves real damage, on the held-out
photos and on real prints, so the pipeline asks it only with `verify="on"` (`restore --verify on`;
docs/pipeline_experiments.md, 'A verifier for the detected components').

Features are measured at a 256 px short side's scale: sizes in pixels are divided by the photo's scale.
Nothing in them says how much of the photo was found, or in how many pieces: with those two numbers the
verifier learned that a photo where little is found holds only false alarms (a third of its training
photos carry no damage at all) and left every crack of a real print with sparse damage unfilled.
"""

from __future__ import annotations

import cv2
import numpy as np

from .fill import fill, scale_of, widen, widen_px

FEATURES = ("log_area", "elongation", "box_fill", "detector_max", "detector_mean", "specks_max", "specks_mean",
            "departure_mean", "departure_max", "departure_signed", "ring_std", "ring_gradient", "ring_mean",
            "component_mean", "edge_gradient", "departure_over_ring", "photo_noise", "photo_std", "both_detectors")
RING_AT_256 = 5  # px around a component whose texture it is compared with
BENEFIT_AT_256 = 4  # px around a component over which its fill's benefit is counted (the fill's reach)
EDGE_SIGMA_AT_256 = 2.0  # px: the picture's own edges, read on the photo blurred by this much
VISIBLE = 2 / 255  # the least ring texture a departure is compared with


def _noise(luma: np.ndarray) -> float:
    """Immerkaer's estimate of the photo's noise (its standard deviation, [0, 1] units)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    height, width = luma.shape
    if height < 3 or width < 3:
        return 0.0
    response = np.abs(cv2.filter2D(luma, -1, kernel)[1:-1, 1:-1]).sum(dtype=np.float64)
    return float(np.sqrt(np.pi / 2) / (6 * (width - 2) * (height - 2)) * response)


def _label_dilate(labels: np.ndarray, px: int) -> np.ndarray:
    """The component labels spread `px` pixels around each component (where two meet, the higher label)."""
    size = 2 * px + 1
    return cv2.dilate(labels.astype(np.float32), np.ones((size, size), np.uint8)).astype(np.int32)


def components(luma: np.ndarray, detector_probability: np.ndarray, specks_probability: np.ndarray | None,
               found: np.ndarray, found_by_both: np.ndarray | None = None
               ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """(labels H x W int32 of the 8-connected components of `found`, their count + 1, features
    (count x len(FEATURES) float32), the luma with `found` widened by a pixel and filled by Telea as the
    pipeline fills it). `found_by_both` marks the pixels both detectors found (None: the speck finder's
    mask is not known, counted as none)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
    unit = scale_of(luma.shape)
    grow = widen_px(luma.shape)  # as the pipeline widens before its fill
    filled = fill(luma[None], widen(found, grow), method="telea")[0]
    if count <= 1:
        return labels, count, np.zeros((0, len(FEATURES)), np.float32), filled

    def mean(where, keys, values):
        total = np.bincount(keys[where], values[where], minlength=count)
        return total / np.maximum(np.bincount(keys[where], minlength=count), 1)

    def peak(where, keys, values):
        out = np.zeros(count)
        np.maximum.at(out, keys[where], values[where])
        return out

    def gradient(image):
        return np.hypot(cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1)) * unit

    # Column by column, each full-size temporary freed before the next: a 4000 x 3000 scan holds a few
    # 48 MB planes at a time, not a dozen.
    columns = {}
    inside = labels > 0
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    width, height = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    columns["log_area"] = np.log(area / unit ** 2)
    columns["elongation"] = np.maximum(width, height).astype(np.float64) ** 2 / area
    columns["box_fill"] = area / (width * height).astype(np.float64)
    columns["detector_max"] = peak(inside, labels, detector_probability)
    columns["detector_mean"] = mean(inside, labels, detector_probability)
    specks = np.zeros_like(luma) if specks_probability is None else specks_probability
    columns["specks_max"], columns["specks_mean"] = peak(inside, labels, specks), mean(inside, labels, specks)
    del specks
    widened = _label_dilate(labels, grow)
    widened[found] = labels[found]
    near = widened > 0
    departure = luma - filled
    magnitude = np.abs(departure)
    columns["departure_mean"] = mean(near, widened, magnitude) * 255
    columns["departure_max"] = peak(near, widened, magnitude) * 255
    del magnitude
    columns["departure_signed"] = mean(near, widened, departure) * 255
    del departure
    ringed = _label_dilate(labels, round(RING_AT_256 * unit))
    ring = (ringed > 0) & ~near
    ring_mean = mean(ring, ringed, luma)
    ring_std = np.sqrt(np.maximum(mean(ring, ringed, luma * luma) - ring_mean ** 2, 0.0))
    columns["ring_std"] = ring_std * 255
    columns["ring_gradient"] = mean(ring, ringed, gradient(luma))
    del ringed, ring
    columns["ring_mean"], columns["component_mean"] = ring_mean, mean(inside, labels, luma)
    columns["edge_gradient"] = mean(near, widened, gradient(cv2.GaussianBlur(luma, (0, 0), EDGE_SIGMA_AT_256 * unit)))
    del widened, near
    columns["departure_over_ring"] = columns["departure_mean"] / 255 / (ring_std + VISIBLE)
    columns["photo_noise"] = np.full(count, _noise(luma) * 255)
    columns["photo_std"] = np.full(count, luma.std() * 255)
    both = np.zeros(luma.shape, bool) if found_by_both is None else found_by_both
    columns["both_detectors"] = mean(inside, labels, both.astype(np.float32))
    table = np.stack([columns[name] for name in FEATURES], axis=1)[1:]
    return labels, count, table.astype(np.float32), filled


def fill_benefit(labels: np.ndarray, count: int, luma: np.ndarray, filled: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Per component (count - 1): the squared error in 0-255 levels its fill removes over the component and
    `BENEFIT_AT_256` px around it (negative: the fill made the photo worse there), against the clean luma."""
    if count <= 1:
        return np.zeros(0)
    region = _label_dilate(labels, round(BENEFIT_AT_256 * scale_of(luma.shape)))
    near = region > 0
    gained = (luma - clean) ** 2 - (filled - clean) ** 2
    return np.bincount(region[near], gained[near], minlength=count)[1:] * 255.0 ** 2


def verified(verifier, luma: np.ndarray, detector_probability: np.ndarray, specks_probability: np.ndarray | None,
             found: np.ndarray, found_by_both: np.ndarray | None = None, threshold: float = 0.5) -> np.ndarray:
    """`found` with the components the `verifier` judges not worth filling (probability under `threshold`)
    taken out."""
    import torch

    labels, count, table, _ = components(luma, detector_probability, specks_probability, found, found_by_both)
    if count <= 1:
        return found
    with torch.inference_mode():
        keep = verifier(torch.from_numpy(table)).sigmoid()[:, 0].numpy() >= threshold
    return np.concatenate([[False], keep])[labels]
