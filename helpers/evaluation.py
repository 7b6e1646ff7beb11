"""Objective evaluation: every restorer on the same aged photos, per operator, strength and preset, against
doing nothing. One implementation behind `benchmarks/quality.py` and notebook 04, so the README's table and
the notebook's cannot disagree.

A row is one (method, photo, condition): PSNR, SSIM, edge contrast, the variance of the Laplacian, the
mean change away from the true damage, the study's own measure (the generator's validation L1: mean
|restored - clean| in [0, 1] units, as `train` reports `val_l1`), LPIPS when its backbone weights are on
disk, and the detector's pixel counts for restorers that predict a mask; each beside the same number for
the damaged photo itself ("identity"). Photo i is always aged with seed i, so a run is reproducible and
every method sees exactly the same damage.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from . import HelpersError, metrics
from .aging import OPERATORS, PRESETS, age_image, apply_operator

AWAY_PX = 3  # "away from the damage": farther than this from every truly damaged pixel
ISSUE_PRESETS = ("seed", "old-print", "daguerreotype", "mild", "heavy")  # the presets issue 21's targets name


@dataclass(frozen=True)
class Condition:
    """One way of damaging a photo: a preset (its own random strengths) or one operator at a strength."""

    kind: str  # "preset" or "operator"
    name: str
    strength: float | None = None

    @property
    def label(self) -> str:
        return self.name if self.strength is None else f"{self.name} {self.strength:g}"


def conditions(strengths=(0.6,), operators=OPERATORS, presets=PRESETS) -> list[Condition]:
    """Every preset, then every operator alone at every strength."""
    return ([Condition("preset", p) for p in presets]
            + [Condition("operator", o, float(s)) for o in operators for s in strengths])


def damage(clean: np.ndarray, condition: Condition, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(aged image, true damage mask) for a clean uint8 photo."""
    result = (age_image(clean, condition.name, seed=seed) if condition.kind == "preset"
              else apply_operator(clean, condition.name, condition.strength, seed=seed))
    return result.image, result.mask


def away_change(clean: np.ndarray, image: np.ndarray, mask: np.ndarray, px: int = AWAY_PX) -> float:
    """Mean |image - clean| in 0-255 levels over the pixels farther than `px` from the true damage."""
    near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)).astype(bool)
    if near.all():
        return math.nan
    return float(np.abs(image.astype(np.float64) - clean.astype(np.float64))[~near].mean())


def l1_loss(clean: np.ndarray, image: np.ndarray) -> float:
    """The study's measure: mean absolute error in [0, 1] units (what `train` logs as val_l1)."""
    a, b = metrics.match_channels(clean, image)
    return float(np.abs(metrics._as_float(a) - metrics._as_float(b)).mean())


def scores(clean: np.ndarray, image: np.ndarray, mask: np.ndarray, lpips=None) -> dict[str, float]:
    """Every full-reference score of one image against its clean photo."""
    compared = metrics.compare(clean, image)
    row = {key: compared[key] for key in ("psnr", "ssim", "edge_contrast", "sharpness")}
    row |= {"l1": l1_loss(clean, image), "away_change": away_change(clean, image, mask)}
    if lpips is not None:
        row["lpips"] = lpips(clean, image)
    return row


def evaluate(restorer, clean: dict[str, np.ndarray], jobs: list[Condition], damaged: dict | None = None, *,
             lpips=None, progress: bool = False) -> list[dict]:
    """One row per (photo, condition) for one restorer. `damaged` caches the aged photos and their scores
    across restorers (the damage does not depend on who repairs it)."""
    from .restore import restore_image

    damaged = {} if damaged is None else damaged
    rows = []
    pairs = [(index, name, job) for index, name in enumerate(clean) for job in jobs]
    if progress:
        from tqdm.auto import tqdm
        pairs = tqdm(pairs, desc=restorer.name, leave=False)
    for index, name, job in pairs:
        img = clean[name]
        key = (name, job, lpips is not None)
        if key not in damaged:
            aged, mask = damage(img, job, seed=index)
            damaged[key] = (aged, mask, scores(img, aged, mask, lpips), metrics.sharpness(img))
        aged, mask, identity, clean_sharpness = damaged[key]
        started = time.perf_counter()
        restored, found = restore_image(aged, restorer)
        seconds = time.perf_counter() - started
        row = {"image": name, "seed": index, "kind": job.kind, "condition": job.name, "strength": job.strength,
               "seconds": seconds, "clean_sharpness": clean_sharpness}
        row |= {f"identity_{key}": value for key, value in identity.items()} | scores(img, restored, mask, lpips)
        if found is not None:
            row["detection"] = metrics.detection_counts(found > 127, mask)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- summaries

FILL_OPERATORS = ("scratches", "cracks", "dust", "creases", "torn_corners", "oval_mat")


def fill_comparison(clean: dict[str, np.ndarray], *, strength: float = 0.6, inpainter=None) -> dict:
    """The fill methods on the *true* damage masks (widened by 1 px, as the pipeline does): PSNR over the
    filled pixels only, per local-damage operator, so the fill is judged apart from the detector. The
    input is the aged photo, rim of the damage included, as the pipeline hands it over. Telea and
    Navier-Stokes always; the learned fill when an `inpainter` network is given."""
    from .restore.fill import METHODS, fill, widen

    methods = [m for m in METHODS if m != "learned" or inpainter is not None]
    result = {}
    for op in FILL_OPERATORS:
        errors = {method: [] for method in methods}
        for index, img in enumerate(clean.values()):
            aged, mask = damage(img, Condition("operator", op, strength), seed=index)
            region = widen(mask, 1)
            if not region.any():
                continue
            planes = (aged.astype(np.float32) / 255)[None]
            for method in methods:
                filled = fill(planes, region, method=method, inpainter=inpainter)[0]
                errors[method].append(float(np.mean((filled[region] - img[region] / 255.0) ** 2)))
        result[op] = {method: round(10 * math.log10(1 / max(np.mean(e), 1e-10)), 2) for method, e in errors.items()}
    return result


def bootstrap_ci(values, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (fixed seed: same rows, same interval)."""
    values = np.asarray([v for v in values if np.isfinite(v)], np.float64)
    if values.size == 0:
        return math.nan, math.nan
    means = values[np.random.default_rng(seed).integers(0, values.size, (resamples, values.size))].mean(1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def _finite_mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key in r and np.isfinite(r[key])]
    return float(np.mean(values)) if values else math.nan


def summarize(rows: list[dict]) -> dict:
    """Means of a group of rows (PSNR over the photos the aging changed, `psnr_undamaged` counting the others;
    infinite scores left out of a mean and counted); the PSNR and SSIM gains with standard deviation and a
    95 % bootstrap interval; sharpness as ratios of sums; detection from the summed pixel counts."""
    stats = {"count": len(rows)}
    # PSNR only over the photos the aging changed: an untouched photo's input PSNR is infinite, so it drops out
    # of the input's mean, and a restorer's finite PSNR there would stand in its mean alone, over other photos
    # than the input's (a restorer that changed such a photo was credited with its 25-46 dB on the benchmark).
    damaged = [r for r in rows if np.isfinite(r.get("identity_psnr", math.nan))]
    stats["psnr_undamaged"] = len(rows) - len(damaged)
    for key in ("psnr", "ssim", "edge_contrast", "away_change", "l1", "lpips"):
        if all(key in r for r in rows):
            over = damaged if key == "psnr" else rows
            stats[f"identity_{key}"], stats[key] = _finite_mean(over, f"identity_{key}"), _finite_mean(over, key)
    stats["sharpness_ratio"] = sum(r["sharpness"] for r in rows) / sum(r["clean_sharpness"] for r in rows)
    stats["identity_sharpness_ratio"] = (sum(r["identity_sharpness"] for r in rows)
                                         / sum(r["clean_sharpness"] for r in rows))
    stats["seconds_per_image"] = _finite_mean(rows, "seconds")
    stats["psnr_gain"] = stats["psnr"] - stats["identity_psnr"]
    stats["ssim_gain"] = stats["ssim"] - stats["identity_ssim"]
    for key in ("psnr", "ssim"):
        gains = [r[key] - r[f"identity_{key}"] for r in rows]
        finite = [g for g in gains if np.isfinite(g)]
        stats[f"{key}_gain_std"] = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
        stats[f"{key}_gain_ci95"] = list(bootstrap_ci(finite))
        stats[f"{key}_infinite"] = len(gains) - len(finite)
    if all("detection" in r for r in rows):
        counts = np.sum([r["detection"] for r in rows], axis=0).tolist()
        stats["detection"] = metrics.precision_recall_f1(*counts) | {"damaged_pixels": counts[2]}
    return json.loads(json.dumps(stats, default=float), parse_float=lambda v: round(float(v), 4))


def report(rows: list[dict]) -> dict:
    """Overall, the five presets issue 21 names, per preset, and (when measured) per operator."""
    presets = [r for r in rows if r["kind"] == "preset"]
    operators = [r for r in rows if r["kind"] == "operator"]
    five = [r for r in presets if r["condition"] in ISSUE_PRESETS]
    result = {"overall": summarize(presets) if presets else None,
              "overall_five_presets": summarize(five) if five else None,
              "per_preset": {p: summarize([r for r in presets if r["condition"] == p]) for p in PRESETS
                             if any(r["condition"] == p for r in presets)}}
    if operators:
        result["overall_operators"] = summarize(operators)
        result["per_operator"] = {o: summarize([r for r in operators if r["condition"] == o]) for o in OPERATORS
                                  if any(r["condition"] == o for r in operators)}
    return result


def gain_table(rows_by_method: dict[str, list[dict]], lpips_reason: str | None = None) -> list[dict]:
    """One line per (method, condition, strength): the gains over doing nothing with their intervals, the
    scores themselves, and LPIPS or why it is missing. What notebook 04 shows and plots."""
    table = []
    for method, rows in rows_by_method.items():
        groups: dict[tuple, list[dict]] = {}
        for row in rows:
            groups.setdefault((row["kind"], row["condition"], row["strength"]), []).append(row)
        for (kind, condition, strength), members in groups.items():
            s = summarize(members)
            line = {"method": method, "kind": kind, "condition": condition,
                    "strength": "preset" if strength is None else strength, "n": s["count"],
                    "psnr_gain": s["psnr_gain"], "psnr_gain_std": s["psnr_gain_std"],
                    "psnr_gain_ci_low": s["psnr_gain_ci95"][0], "psnr_gain_ci_high": s["psnr_gain_ci95"][1],
                    "ssim_gain": s["ssim_gain"], "ssim_gain_ci_low": s["ssim_gain_ci95"][0],
                    "ssim_gain_ci_high": s["ssim_gain_ci95"][1], "psnr": s["psnr"], "ssim": s["ssim"],
                    "edge_contrast": s["edge_contrast"], "l1": s["l1"], "identity_l1": s["identity_l1"]}
            line["lpips"] = s["lpips"] if "lpips" in s else f"n/a: {lpips_reason or 'not measured'}"
            table.append(line)
    return table


def lpips_or_reason():
    """(an LPIPS scorer, None) when torchvision's AlexNet weights are on disk, else (None, why not)."""
    if metrics.lpips_weights() is None:
        return None, (f"{metrics.ALEXNET_WEIGHTS} is not in the torch hub cache and is never downloaded here "
                      "(on Kaggle with internet on, torchvision.models.alexnet(weights='DEFAULT') fetches it)")
    return metrics.Lpips(), None


def worst_cases(rows: list[dict], count: int = 4) -> list[dict]:
    """The rows where the method lost most against doing nothing (lowest PSNR gain)."""
    finite = [r for r in rows if np.isfinite(r["psnr"] - r["identity_psnr"])]
    return sorted(finite, key=lambda r: r["psnr"] - r["identity_psnr"])[:count]


def replay(row: dict, clean: dict[str, np.ndarray], restorer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean, damaged, restored) of a row, recomputed: the seeds make it the very image that was scored."""
    from .restore import restore_image

    job = Condition(row["kind"], row["condition"], row["strength"])
    aged, _ = damage(clean[row["image"]], job, seed=row["seed"])
    return clean[row["image"]], aged, restore_image(aged, restorer)[0]


def evaluation_photos(count: int, size: int, *, imagenette: str | None = None) -> tuple[dict[str, np.ndarray], str]:
    """(name -> clean gray uint8 photo, where they come from): Imagenette's validation split when it is
    attached or given (the study's data), else the bundled samples (never trained on)."""
    from .age_folder import prepare_clean
    from .data import bundled_samples, imagenette_source, imagenette_split
    from .io import find_images, from_float, read_image

    try:
        files = sorted(find_images([imagenette_split(imagenette_source(imagenette), "val")])[0])
        files = [files[i] for i in np.random.default_rng(0).permutation(len(files))[:count]]
        source = f"Imagenette validation split ({len(files)} photos, a fixed random choice)"
    except HelpersError as missing:  # not attached, not given, or not in the expected layout
        files = bundled_samples("clean")[:count]
        source = f"the bundled samples ({len(files)} photos; Imagenette not here: {missing})"
    photos = {path.stem.removeprefix("dreambooth_"): from_float(prepare_clean(read_image(path), size, gray=True),
                                                                np.uint8) for path in files}
    return photos, source
