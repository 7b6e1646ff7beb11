"""The offline demo: age the bundled clean samples with every preset and show the result as a grid PNG,
an HTML page and a JSON summary.

One function per stage (load, age, write images, grid, page, summary) so later stages, such as
restoring the aged images with the bundled model, slot in between without touching the others.
"""

from __future__ import annotations

import html
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import HelpersError
from .aging import PRESETS, AgingResult, age_image
from .cli import info
from .data import bundled_samples
from .io import atomic_write_text, from_float, read_image, write_image
from .age_folder import prepare_clean

OUTPUT_NAMES = ("grid.png", "index.html", "summary.json", "aged")


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


def write_html(out: Path, summary: dict, overwrite: bool) -> Path:
    """A page that works from disk: the grid referenced relatively, and which operators each preset used."""
    n = len(summary["samples"])
    rows = "\n".join(
        f"<tr><td>{html.escape(preset)}</td><td>"
        + ", ".join(f"{html.escape(op)} ({count}/{n})" for op, count in ops.items()) + "</td></tr>"
        for preset, ops in summary["operators_used"].items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Old-photo repair demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}
td,th{{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h1>Old-photo repair demo</h1>
<p>{n} bundled clean photos aged with each preset (seed {summary['seed']}). Each aged image and its damage
mask are in <code>aged/&lt;preset&gt;/</code>.</p>
<img src="grid.png" alt="grid: rows are samples, columns are clean and each preset">
<h2>Operators used per preset</h2>
<table><tr><th>preset</th><th>operators (on how many samples)</th></tr>
{rows}
</table></body></html>
"""
    return atomic_write_text(out / "index.html", page, overwrite=overwrite)


def write_summary(out: Path, summary: dict, overwrite: bool) -> Path:
    return atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n", overwrite=overwrite)


def run_demo(out: str | Path = "demo_output", *, seed: int = 0, overwrite: bool = False) -> dict:
    """Every stage in order; returns the summary that is also written to out/summary.json."""
    out = Path(out)
    check_outputs(out, overwrite)
    start = time.perf_counter()
    samples = load_samples()
    info(f"demo: aging {len(samples)} samples with {len(PRESETS)} presets")
    aged = age_samples(samples, seed=seed)
    write_aged(out, aged, overwrite)
    grid = write_grid(out, samples, aged, overwrite)
    summary = {"out": str(out), "seed": seed, "samples": list(samples), "presets": list(PRESETS),
               "operators_used": preset_usage(aged), "grid": grid.name, "page": "index.html",
               "aged_folder": "aged"}
    write_html(out, summary, overwrite)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    write_summary(out, summary, overwrite)
    info(f"demo: wrote {out / 'index.html'} (open it in a browser)")
    return summary
