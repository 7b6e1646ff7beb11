"""The offline demo: age the bundled clean samples with every preset, restore them with the repair pipeline
(deblock, detect, tone, fill, focus), the single U-Net and the classical baseline, restore the bundled real old
photos (with the damage the pipeline found drawn over them), and show it all as grid PNGs, an HTML page with
before/after sliders (helpers/demo_page.py), metrics.json and a JSON summary.

One function per stage (load, age, restore, write images, grids, metrics, page, summary). Restoring
works on the aged images as written to disk (8 bits), so anyone can redo it from the files. Without the
bundled checkpoints the demo still ages and restores with the classical baseline, and says how to get them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import HelpersError, metrics
from .aging import PRESETS, AgingResult, age_image
from .cli import info
from .data import bundled_samples
from .io import atomic_write_text, from_float, read_image, write_image
from .age_folder import prepare_clean

OUTPUT_NAMES = ("grid.png", "restored_grid.png", "index.html", "summary.json", "metrics.json", "aged",
                "restored", "old")
METHODS = ("pipeline", "unet", "classical")
MASK_VERSION = "pipeline_mask"  # old/pipeline_mask/<photo>.png: the detected damage over the original
GRID_PRESETS = ("old-print", "daguerreotype")  # the before/after grid's columns; every preset is restored


def check_outputs(out: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier demo unless asked: its pictures may be someone's only copy."""
    existing = [name for name in OUTPUT_NAMES if (out / name).exists()]
    if existing and not overwrite:
        raise HelpersError(f"{out} already holds demo outputs ({', '.join(existing)}); pass --overwrite to "
                           "replace them, or --out to write elsewhere")


def load_samples(size: int = 256) -> dict[str, np.ndarray]:
    """Bundled clean photos as RGB float32 size x size, keyed by a short name (dog_00, cat_00...)."""
    paths = bundled_samples("clean")
    if not paths:
        raise HelpersError("no bundled samples found in samples/clean (is the repository complete?)")
    return {p.stem.removeprefix("dreambooth_"): prepare_clean(read_image(p), size, gray=False) for p in paths}


def age_samples(samples: dict[str, np.ndarray], presets=tuple(PRESETS), seed: int = 0
                ) -> dict[str, dict[str, AgingResult]]:
    """sample -> preset -> result; sample i uses seed + i, so each photo shows a different draw."""
    return {name: {preset: age_image(img, preset, seed=seed + i) for preset in presets}
            for i, (name, img) in enumerate(samples.items())}


def write_aged(out: Path, aged: dict[str, dict[str, AgingResult]], overwrite: bool) -> list[Path]:
    """out/aged/<preset>/<sample>.png and the masks beside them as <sample>_mask.png."""
    written = []
    for name, by_preset in aged.items():
        for preset, result in by_preset.items():
            folder = out / "aged" / preset
            written.append(write_image(folder / f"{name}.png", from_float(result.image), overwrite=overwrite))
            written.append(write_image(folder / f"{name}_mask.png", result.mask.astype(np.uint8) * 255,
                                       overwrite=overwrite))
    return written


def write_grid(out: Path, samples: dict[str, np.ndarray], aged: dict[str, dict[str, AgingResult]],
               overwrite: bool) -> Path:
    """Rows are samples; columns are the clean photo then one column per preset."""
    from .plots import save_grid_png

    presets = list(next(iter(aged.values())))
    rows = [[samples[name]] + [aged[name][p].image for p in presets] for name in samples]
    return save_grid_png(out / "grid.png", rows, list(samples), ["clean"] + presets, overwrite=overwrite,
                         cell_inches=1.6, title="Bundled samples aged with every preset")


def preset_usage(aged: dict[str, dict[str, AgingResult]]) -> dict[str, dict[str, int]]:
    """preset -> operator -> on how many samples it ran (presets draw their operators at random)."""
    usage: dict[str, Counter] = {}
    for by_preset in aged.values():
        for preset, result in by_preset.items():
            usage.setdefault(preset, Counter()).update(p["op"] for p in result.params if p["strength"] > 0)
    return {preset: dict(counts.most_common()) for preset, counts in usage.items()}


@contextmanager
def one_torch_thread():
    """256 px images gain little from a second thread, and on a busy machine OpenMP threads mostly wait
    for each other (a 40 ms restore then takes over a second): the demo restores on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_restorers() -> tuple[dict, str | None]:
    """method -> Restorer on the CPU, and why a bundled model is missing (None when all are here)."""
    from .restore import load_restorer

    restorers, skipped = {}, []
    for method, bundle in (("pipeline", "detector` and `--name unet_default"), ("unet", "unet_default")):
        try:
            restorers[method] = load_restorer(method, device="cpu")
        except HelpersError as err:
            skipped.append(f"{'U-Net' if method == 'unet' else 'Pipeline'} restoration skipped: {err}; then "
                           f"install it with `python -m helpers.bundle RUN_DIR/best.safetensors --name {bundle}`")
    restorers["classical"] = load_restorer("classical")
    return restorers, " ".join(skipped) or None


def restore_aged(aged: dict[str, dict[str, AgingResult]], restorers: dict) -> dict[str, dict[str, dict]]:
    """method -> sample -> preset -> restored uint8 RGB, from the 8-bit aged images the demo writes."""
    from tqdm.auto import tqdm

    from .restore import restore_image

    jobs = [(m, name, p) for m in restorers for name, by_preset in aged.items() for p in by_preset]
    restored: dict[str, dict[str, dict]] = {m: {name: {} for name in aged} for m in restorers}
    for method, name, preset in tqdm(jobs, desc="demo: restore", unit="image"):
        restored[method][name][preset], _ = restore_image(from_float(aged[name][preset].image), restorers[method])
    return restored


def restore_old(restorers: dict) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict]]:
    """Real old photos: (name -> {"original": image, method: restored}, name -> what each pipeline stage
    decided for it); they have no clean reference."""
    from .restore import restore_image

    from .plots import mask_overlay

    photos, stages = {}, {}
    for path in bundled_samples("old"):
        img = read_image(path)
        photos[path.stem] = {"original": img}
        for method, restorer in restorers.items():
            notes = {}
            photos[path.stem][method], mask = restore_image(img, restorer, notes=notes)
            if method == "pipeline":
                photos[path.stem][MASK_VERSION] = mask_overlay(img, mask > 127)
                stages[path.stem] = notes
    return photos, stages


def real_old_photo_paths() -> list[Path]:
    """The real old photos we ship (samples/old) and, in a development checkout, ../shared/data/old_photos."""
    from . import env
    from .io import find_images

    paths = bundled_samples("old")
    shared = env.shared_data_dir()
    if shared is not None and (shared / "old_photos").is_dir():
        paths += find_images([shared / "old_photos"])[0]
    return paths


def real_photo_panels(paths: list[Path], restorer) -> list[list[np.ndarray]]:
    """[original, the damage found drawn over it, restored] for each real old photo: what a restorer
    removes and what it leaves is seen here, where no clean original exists to compute a score."""
    from .plots import mask_overlay
    from .restore import restore_image

    rows = []
    for path in paths:
        img = read_image(path)
        restored, mask = restore_image(img, restorer)
        rows.append([img, mask_overlay(img, mask > 127) if mask is not None else None, restored])
    return rows


def write_restored(out: Path, restored: dict, old: dict, overwrite: bool) -> None:
    """out/restored/<method>/<preset>/<sample>.png and out/old/<original|method>/<photo>.png."""
    for method, by_sample in restored.items():
        for name, by_preset in by_sample.items():
            for preset, img in by_preset.items():
                write_image(out / "restored" / method / preset / f"{name}.png", img, overwrite=overwrite)
    for name, versions in old.items():
        for version, img in versions.items():
            write_image(out / "old" / version / f"{name}.png", img, overwrite=overwrite)


def write_restored_grid(out: Path, samples: dict[str, np.ndarray], aged: dict, restored: dict,
                        overwrite: bool) -> Path:
    """Before/after: rows are samples; per preset in GRID_PRESETS the aged image and each method's repair."""
    from .plots import save_grid_png

    presets = [p for p in GRID_PRESETS if p in next(iter(aged.values()))]
    columns = ["clean"] + [f"{p}: {label}" for p in presets for label in ["aged", *restored]]
    rows = [[samples[name]] + [img for p in presets
                               for img in [aged[name][p].image] + [restored[m][name][p] for m in restored]]
            for name in samples]
    return save_grid_png(out / "restored_grid.png", rows, list(samples), columns, overwrite=overwrite,
                         cell_inches=1.6, title="Before and after: aged, then restored by each method")


def measure(samples: dict[str, np.ndarray], aged: dict, restored: dict, old: dict) -> dict:
    """PSNR / SSIM / sharpness of every aged ('identity') and restored image against its clean sample,
    means per method and preset and overall; sharpness and noise of the real old photos before and after."""
    rows = []
    for name, clean in samples.items():
        clean8 = from_float(clean)
        for preset, result in aged[name].items():
            versions = {"identity": from_float(result.image)} | {m: restored[m][name][preset] for m in restored}
            for method, img in versions.items():
                rows.append({"sample": name, "preset": preset, "method": method} | metrics.compare(clean8, img))
    means = {}
    for method in ["identity", *restored]:
        mine = [r for r in rows if r["method"] == method]
        table = metrics.mean_rows(mine, "preset") + metrics.mean_rows(mine)
        means[method] = {row.pop("preset", None) or (row.pop("group") and "overall"): row for row in table}
    old_rows = [{"photo": name, "version": version, "sharpness": metrics.sharpness(img),
                 "noise": metrics.noise_sigma(img)} for name, versions in old.items()
                for version, img in versions.items() if version != MASK_VERSION]
    return {"methods": list(restored), "reference": "identity = the aged image itself, compared to the clean one",
            "sharpness_ratio": "per image, restored / clean variance of the Laplacian; means average the ratios",
            "per_image": rows, "means": means, "old_photos": old_rows}


def write_summary(out: Path, summary: dict, overwrite: bool) -> Path:
    return atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n", overwrite=overwrite)


def run_demo(out: str | Path = "demo_output", *, seed: int = 0, overwrite: bool = False) -> dict:
    """Every stage in order; returns the summary that is also written to out/summary.json."""
    from .demo_page import write_html

    out = Path(out)
    check_outputs(out, overwrite)
    start = time.perf_counter()
    samples = load_samples()
    info(f"demo: aging {len(samples)} samples with {len(PRESETS)} presets")
    aged = age_samples(samples, seed=seed)
    write_aged(out, aged, overwrite)
    grid = write_grid(out, samples, aged, overwrite)
    restorers, skipped = load_restorers()
    if skipped:
        info(f"demo: {skipped}")
    with one_torch_thread():
        restored, (old, old_stages) = restore_aged(aged, restorers), restore_old(restorers)
    write_restored(out, restored, old, overwrite)
    restored_grid = write_restored_grid(out, samples, aged, restored, overwrite)
    quality = measure(samples, aged, restored, old)
    atomic_write_text(out / "metrics.json", json.dumps(quality, indent=2) + "\n", overwrite=overwrite)
    summary = {"out": str(out), "seed": seed, "samples": list(samples), "presets": list(PRESETS),
               "operators_used": preset_usage(aged), "grid": grid.name, "page": "index.html",
               "aged_folder": "aged", "methods": list(restored), "restoration_skipped": skipped,
               "checkpoint": {m: r.metadata.get("checkpoint") for m, r in restorers.items() if m != "classical"},
               "restored_grid": restored_grid.name, "metrics": "metrics.json", "restored_folder": "restored",
               "old_photos": {name: int(v["original"].shape[1]) for name, v in old.items()},
               "old_photo_stages": old_stages,
               "mean_quality": {m: quality["means"][m]["overall"] for m in quality["means"]}}
    write_html(out, summary, quality, overwrite)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    write_summary(out, summary, overwrite)
    info(f"demo: wrote {out / 'index.html'} (open it in a browser)")
    return summary
