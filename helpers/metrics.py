"""Image quality numbers for restored photos, and the tables that report them.

All functions take numpy arrays: uint8/uint16 or float in [0, 1], HxW or HxWx3, and compare in float
[0, 1] (data range 1), so 8- and 16-bit files give the same numbers. Color pairs are compared on all
channels; a gray/color pair is compared in gray.
- PSNR and SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) against a clean
  reference; written with OpenCV filters because scikit-image is not a dependency.
- Sharpness: the variance of the Laplacian (on the 0-255 scale, as blur detectors report it). The
  study's DCGAN lost detail; "restored / clean" below 1 means blurrier than the original.
- Edge contrast: the restored photo's gradient over the clean photo's strongest edges, divided by the
  clean photo's own; the sharpness measure grain and leftover scratches cannot inflate.
- Detection: pixel precision, recall and F1 of a damage mask against the true one.
- Noise: Immerkaer's (1996) fast estimate of the standard deviation of Gaussian noise, in [0, 1] units.
- LPIPS only when torchmetrics and the AlexNet weights are already on disk: nothing is ever downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .io import to_float, to_gray


def _as_float(img: np.ndarray) -> np.ndarray:
    return to_float(np.asarray(img)).astype(np.float64)


def match_channels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float [0, 1] copies of a and b with the same layout: both gray unless both are color."""
    a, b = _as_float(a), _as_float(b)
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"sizes differ: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    if a.ndim != b.ndim:
        a, b = to_gray(a), to_gray(b)
    return a, b


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (data range 1); identical images give +inf."""
    a, b = match_channels(reference, image)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Mean structural similarity in [-1, 1]; color images average their channels."""
    a, b = match_channels(reference, image)
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def sharpness(img: np.ndarray) -> float:
    """Variance of the Laplacian of the gray image on the 0-255 scale: higher is sharper."""
    gray = to_gray(_as_float(img)) * 255.0
    return float(cv2.Laplacian(gray, cv2.CV_64F, ksize=1).var())


def sobel_magnitude(gray: np.ndarray, depth: int = cv2.CV_64F) -> np.ndarray:
    """|gradient| by 3 x 3 Sobel (8 x the per-pixel slope); `depth` cv2.CV_32F halves the memory on big scans."""
    return cv2.magnitude(cv2.Sobel(gray, depth, 1, 0, ksize=3), cv2.Sobel(gray, depth, 0, 1, ksize=3))


def edge_contrast(clean: np.ndarray, image: np.ndarray, share: float = 0.1) -> float:
    """How much of the clean photo's edges an image keeps: its mean Sobel gradient magnitude over the clean
    photo's strongest `share` of edge pixels, divided by the clean photo's own there (1 = as sharp).

    Unlike the variance of the Laplacian, grain and leftover scratches cannot raise it: they add gradient
    everywhere, but only the gradient on the clean photo's real edges counts, and a blur lowers it.
    """
    reference, candidate = (to_gray(x) for x in match_channels(clean, image))
    reference_gradient = sobel_magnitude(reference)
    if reference_gradient.max() == 0:
        return math.nan
    strongest = reference_gradient >= np.quantile(reference_gradient, 1.0 - share)
    return float(sobel_magnitude(candidate)[strongest].mean() / reference_gradient[strongest].mean())


def detection_counts(found: np.ndarray, actual: np.ndarray) -> tuple[int, int, int]:
    """(true positives, found, actual) pixel counts of a damage mask against the true one; summed over many
    photos they give precision tp / found, recall tp / actual and F1."""
    found, actual = np.asarray(found, bool), np.asarray(actual, bool)
    return int((found & actual).sum()), int(found.sum()), int(actual.sum())


def precision_recall_f1(true_positives: int, found: int, actual: int) -> dict[str, float]:
    precision = true_positives / found if found else math.nan
    recall = true_positives / actual if actual else math.nan
    f1 = 2 * true_positives / (found + actual) if found + actual else math.nan
    return {"precision": precision, "recall": recall, "f1": f1}


def noise_sigma(img: np.ndarray) -> float:
    """Standard deviation of Gaussian noise in [0, 1] units (Immerkaer 1996), from the gray image.

    The 3x3 kernel is the difference of two Laplacians, so smooth image content cancels and what is
    left is mostly noise; edges make it a slight overestimate on busy photos.
    """
    gray = to_gray(_as_float(img))
    height, width = gray.shape
    if height < 3 or width < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    response = cv2.filter2D(gray, cv2.CV_64F, kernel)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6.0 * (width - 2) * (height - 2)))


def compare(clean: np.ndarray, restored: np.ndarray) -> dict[str, float]:
    """The per-image row of every quality table: PSNR, SSIM, sharpness ratio, noise."""
    clean_sharpness = sharpness(clean)
    return {
        "psnr": psnr(clean, restored),
        "ssim": ssim(clean, restored),
        "edge_contrast": edge_contrast(clean, restored),
        "sharpness": sharpness(restored),
        "sharpness_ratio": sharpness(restored) / clean_sharpness if clean_sharpness > 0 else math.nan,
        "noise": noise_sigma(restored),
    }


def no_reference(original: np.ndarray, restored: np.ndarray) -> dict[str, float]:
    """Scores for a real old photo, which has no clean original: what the restorer did relative to its input.

    edge contrast against the input (below 1: the input's strongest edges got weaker, i.e. blurrier — the
    study's finding as a number), the noise level's ratio (below 1: smoother) and RMS contrast (the gray
    levels' standard deviation) before and after."""
    before, after = noise_sigma(original), noise_sigma(restored)
    a, b = match_channels(original, restored)
    return {"edge_contrast_vs_input": edge_contrast(original, restored),
            "noise_ratio": after / before if before > 0 else math.nan,
            "rms_contrast_input": float(to_gray(_as_float(a)).std()),
            "rms_contrast": float(to_gray(_as_float(b)).std())}


# ---------------------------------------------------------------- LPIPS, only with weights on disk

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"


def lpips_weights() -> Path | None:
    """torchvision's AlexNet weights in the torch hub cache, which torchmetrics' LPIPS needs; or None."""
    try:
        import torch
        import torchmetrics.image  # noqa: F401 - LPIPS's learned layers ship inside torchmetrics
    except ImportError:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS
    return path if path.is_file() else None


class Lpips:
    """LPIPS (AlexNet) distance, lower is more similar; build it only when `lpips_weights()` is not None."""

    def __init__(self):
        if lpips_weights() is None:
            raise RuntimeError(f"LPIPS needs {ALEXNET_WEIGHTS} in the torch hub cache; it is never downloaded")
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        self.metric = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).eval()

    def __call__(self, reference: np.ndarray, image: np.ndarray) -> float:
        import torch

        a, b = match_channels(reference, image)
        tensors = [torch.from_numpy(np.ascontiguousarray(x, np.float32)) for x in (a, b)]
        tensors = [t[None, None].expand(1, 3, *t.shape) if t.ndim == 2 else t.permute(2, 0, 1)[None]
                   for t in tensors]
        with torch.no_grad():
            return float(self.metric(*tensors))


# ---------------------------------------------------------------- tables

def mean_rows(rows: Iterable[dict], group_by: str | None = None) -> list[dict]:
    """Means of every numeric column, overall or per value of `group_by`; infinities (identical images)
    are left out of a mean rather than making it infinite, and `count` says how many rows went in."""
    groups: dict[object, list[dict]] = {}
    for row in rows:
        groups.setdefault(row.get(group_by) if group_by else "all", []).append(row)
    table = []
    for key, members in groups.items():
        summary = {group_by or "group": key, "count": len(members)}
        columns = [c for c in members[0] if c != group_by and isinstance(members[0][c], (int, float))
                   and not isinstance(members[0][c], bool)]
        for column in columns:
            values = [r[column] for r in members if isinstance(r.get(column), (int, float))
                      and math.isfinite(r[column])]
            summary[column] = float(np.mean(values)) if values else math.nan
        table.append(summary)
    return table


def format_table(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    """A Markdown table (for the README, notebooks and the terminal)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def cell(value):
        if value is None:  # a score undefined for this row
            return "n/a"
        if isinstance(value, float):
            return "inf" if math.isinf(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
