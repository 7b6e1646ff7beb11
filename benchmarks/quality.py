"""Does a restorer repair photos it never saw? Held-out quality of the bundled U-Net, the classical baseline
and the seed DCGAN, per aging preset and per single operator, against the damaged image itself.

Images: the 10 bundled samples (samples/clean; their dreambooth subjects are held out of training) plus,
when ../shared/data is here, the other photos of those held-out subjects. Each is made gray 256x256
(centre crop) and aged with every preset, and with every single operator at strength 0.6; image i always
uses seed i, so every run ages the same way. The "identity" baseline is the damaged image compared to
the clean one: a restorer has to beat doing nothing. Targets (issue 5), on the mean over all preset
rows: PSNR >= identity + 4 dB, SSIM >= identity + 0.10, sharpness ratio (mean variance of the Laplacian
of restored / of clean) >= 0.9, i.e. not blurrier than the original.

The seed DCGAN takes ~4 s per 256x256 image on one thread, so it runs on a subset (the first bundled
samples, presets only) and the U-Net and classical numbers on that same subset are reported beside it.
Each network's checkpoint is identified by its weights' checksum, which `python -m helpers.bundle
--metrics` checks before copying the numbers into the bundle's metadata.

    python benchmarks/quality.py [--checkpoint F] [--seed-images 5] [--max-images N] [--out FILE]
    python benchmarks/quality.py --markdown [FILE]    # the README's table, from a JSON already written
"""

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch

from helpers import env, metrics
from helpers.age_folder import prepare_clean
from helpers.aging import OPERATORS, PRESETS, age_image, apply_operator
from helpers.bundle import weights_digest
from helpers.checkpoints import read_metadata
from helpers.data import bundled_samples
from helpers.io import from_float, read_image
from helpers.restore import DEFAULT_CHECKPOINTS, load_restorer, restore_image

HERE = Path(__file__).resolve().parent
SIZE = 256
OPERATOR_STRENGTH = 0.6
HELD_OUT = ("dog", "cat", "clock", "teapot", "vase", "candle", "backpack", "can", "fancy_boot", "berry_bowl")
TARGETS = {"psnr_gain": 4.0, "ssim_gain": 0.10, "sharpness_ratio": 0.9}


def held_out_images(max_images: int | None) -> tuple[dict[str, np.ndarray], dict]:
    """name -> clean gray uint8 256x256: the bundled samples first, then the held-out subjects' other photos."""
    images = {p.stem.removeprefix("dreambooth_"): p for p in bundled_samples("clean")}
    shared = env.shared_data_dir()
    extra = []
    if shared is not None and (shared / "clean" / "dreambooth").is_dir():
        pattern = re.compile(rf"dreambooth_({'|'.join(HELD_OUT)})_(\d+)\.jpg")
        for path in sorted((shared / "clean" / "dreambooth").iterdir()):
            match = pattern.fullmatch(path.name)
            name = path.stem.removeprefix("dreambooth_")
            if match and name not in images:  # the *_00 photos are the bundled samples already
                extra.append(name)
                images[name] = path
    names = list(images)[:max_images]
    clean = {name: from_float(prepare_clean(read_image(images[name]), SIZE, gray=True), np.uint8) for name in names}
    info = {"count": len(clean), "bundled_samples": sum(name not in extra for name in clean),
            "held_out_shared_photos": sum(name in extra for name in clean),
            "shared_data": "used" if extra else "absent: bundled samples only",
            "held_out_subjects": list(HELD_OUT), "size": SIZE, "gray": True}
    return clean, info


def conditions() -> list[tuple[str, str]]:
    return [("preset", p) for p in PRESETS] + [("operator", o) for o in OPERATORS]


def damage(clean: np.ndarray, kind: str, name: str, seed: int) -> np.ndarray:
    if kind == "preset":
        return age_image(clean, name, seed=seed).image
    return apply_operator(clean, name, OPERATOR_STRENGTH, seed=seed).image


def summarize(rows: list[dict]) -> dict:
    """Means of a group of rows; the sharpness ratio is of the means (restored / clean), as the target says."""
    def mean(key):
        return float(np.mean([r[key] for r in rows if np.isfinite(r[key])]))

    stats = {"count": len(rows), "identity_psnr": mean("identity_psnr"), "psnr": mean("psnr"),
             "identity_ssim": mean("identity_ssim"), "ssim": mean("ssim"),
             "sharpness_ratio": sum(r["sharpness"] for r in rows) / sum(r["clean_sharpness"] for r in rows),
             "identity_sharpness_ratio": (sum(r["identity_sharpness"] for r in rows)
                                          / sum(r["clean_sharpness"] for r in rows)),
             "seconds_per_image": mean("seconds")}
    stats["psnr_gain"] = stats["psnr"] - stats["identity_psnr"]
    stats["ssim_gain"] = stats["ssim"] - stats["identity_ssim"]
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in stats.items()}


def targets_met(stats: dict) -> dict:
    met = {f"psnr_gain >= {TARGETS['psnr_gain']}": stats["psnr_gain"] >= TARGETS["psnr_gain"],
           f"ssim_gain >= {TARGETS['ssim_gain']}": stats["ssim_gain"] >= TARGETS["ssim_gain"],
           f"sharpness_ratio >= {TARGETS['sharpness_ratio']}": stats["sharpness_ratio"] >= TARGETS["sharpness_ratio"]}
    return met | {"all": all(met.values())}


def evaluate(restorer, clean: dict[str, np.ndarray], jobs: list[tuple[str, str]], damaged: dict) -> list[dict]:
    """One row per (image, condition): the damaged and the restored image, each against the clean one."""
    rows = []
    for index, (name, img) in enumerate(clean.items()):
        clean_sharpness = metrics.sharpness(img)
        for kind, condition in jobs:
            key = (name, kind, condition)
            if key not in damaged:
                aged = damage(img, kind, condition, seed=index)
                damaged[key] = (aged, metrics.compare(img, aged))
            aged, identity = damaged[key]
            started = time.perf_counter()
            restored, _ = restore_image(aged, restorer)
            seconds = time.perf_counter() - started
            result = metrics.compare(img, restored)
            rows.append({"image": name, "kind": kind, "condition": condition, "seconds": seconds,
                         "identity_psnr": identity["psnr"], "psnr": result["psnr"],
                         "identity_ssim": identity["ssim"], "ssim": result["ssim"],
                         "clean_sharpness": clean_sharpness, "identity_sharpness": identity["sharpness"],
                         "sharpness": result["sharpness"]})
    return rows


def report(rows: list[dict]) -> dict:
    presets = [r for r in rows if r["kind"] == "preset"]
    operators = [r for r in rows if r["kind"] == "operator"]
    overall = summarize(presets)
    result = {"overall": overall, "targets": targets_met(overall),
              "per_preset": {p: summarize([r for r in presets if r["condition"] == p]) for p in PRESETS
                             if any(r["condition"] == p for r in presets)}}
    result["presets_meeting_all_targets"] = [p for p, s in result["per_preset"].items() if targets_met(s)["all"]]
    if operators:
        result["overall_operators"] = summarize(operators)
        result["per_operator"] = {o: summarize([r for r in operators if r["condition"] == o]) for o in OPERATORS}
    return result


def network_info(model: str, checkpoint: Path) -> dict:
    metadata = read_metadata(checkpoint)
    return {"checkpoint": str(checkpoint), "weights_sha256": weights_digest(checkpoint),
            "step": metadata.get("step"), "epoch": metadata.get("epoch"), "git_commit": metadata.get("git_commit")}


def markdown(result: dict) -> str:
    """The README's quality section: per preset, overall, per operator, then the other methods."""
    unet = result["methods"]["unet"]
    lines = [f"Bundled U-Net at step {unet['step']} (epoch {unet['epoch']}); {result['images']['count']} gray "
             f"{result['images']['size']}² images never seen in training (the 10 bundled samples and the other "
             "photos of their held-out subjects), each aged with every preset and with every single operator at "
             f"strength {result['conditions']['operator_strength']}.", "",
             "| condition | PSNR damaged → restored (gain) | SSIM damaged → restored (gain) | sharpness restored / clean |",
             "|---|---|---|---|"]

    def row(name, r):
        lines.append(f"| {name} | {r['identity_psnr']:.2f} → {r['psnr']:.2f} ({r['psnr_gain']:+.2f} dB) | "
                     f"{r['identity_ssim']:.3f} → {r['ssim']:.3f} ({r['ssim_gain']:+.3f}) | {r['sharpness_ratio']:.2f} |")

    for name, stats in unet["per_preset"].items():
        row(f"preset `{name}`", stats)
    row("**all presets**", unet["overall"])
    for name, stats in unet.get("per_operator", {}).items():
        row(f"operator `{name}`", stats)
    lines.append("")
    for method in ("classical", "seed-dcgan"):
        info = result["methods"].get(method, {})
        if "overall" not in info:
            continue
        o = info["overall"]
        subset = f" (subset: {info['subset']})" if info.get("subset") else ""
        lines.append(f"- `{method}`{subset}: PSNR {o['identity_psnr']:.2f} → {o['psnr']:.2f} ({o['psnr_gain']:+.2f} dB), "
                     f"SSIM {o['identity_ssim']:.3f} → {o['ssim']:.3f} ({o['ssim_gain']:+.3f}), "
                     f"sharpness {o['sharpness_ratio']:.2f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="evaluate this checkpoint (U-Net or seed DCGAN, from its metadata) "
                                             "instead of the bundled one")
    parser.add_argument("--seed-images", type=int, default=5, help="images for the slow seed DCGAN (0 skips it)")
    parser.add_argument("--max-images", type=int, help="use only the first N images (quick checks)")
    parser.add_argument("--out", default=str(HERE / "quality.json"))
    parser.add_argument("--markdown", nargs="?", const=str(HERE / "quality.json"), metavar="FILE",
                        help="print the README table of a JSON this script wrote, and stop")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return
    torch.set_num_threads(1)
    started = time.perf_counter()
    checkpoints = dict(DEFAULT_CHECKPOINTS)
    if args.checkpoint:
        checkpoints[read_metadata(args.checkpoint)["model"]] = Path(args.checkpoint)
    clean, images = held_out_images(args.max_images)
    damaged: dict = {}
    methods, rows_by_method = {}, {}
    for model in ("unet", "classical"):
        if model != "classical" and not checkpoints[model].is_file():
            methods[model] = {"skipped": f"{checkpoints[model]} is missing"}
            continue
        restorer = load_restorer(model, checkpoints.get(model) if model != "classical" else None, device="cpu")
        print(f"{model}: {len(clean)} images x {len(conditions())} conditions", flush=True)
        rows_by_method[model] = evaluate(restorer, clean, conditions(), damaged)
        methods[model] = ({} if model == "classical" else network_info(model, checkpoints[model])) \
            | {"subset": None} | report(rows_by_method[model])
    seed_path = checkpoints["seed-dcgan"]
    subset = list(clean)[:args.seed_images]
    if not subset or not seed_path.is_file():
        methods["seed-dcgan"] = {"skipped": "--seed-images 0" if not subset else f"{seed_path} is missing"}
    else:
        print(f"seed-dcgan: {len(subset)} images x {len(PRESETS)} presets", flush=True)
        restorer = load_restorer("seed-dcgan", seed_path, device="cpu")
        presets = [c for c in conditions() if c[0] == "preset"]
        rows = evaluate(restorer, {name: clean[name] for name in subset}, presets, damaged)
        note = (f"first {len(subset)} images x {len(presets)} presets only (~4 s per image on one thread); "
                "same_subset gives the other methods on exactly these rows")
        same = {m: summarize([r for r in rows_by_method[m] if r["image"] in subset and r["kind"] == "preset"])
                for m in rows_by_method}
        methods["seed-dcgan"] = network_info("seed-dcgan", seed_path) | {"subset": note} | report(rows) \
            | {"same_subset": same}
    result = {"benchmark": "quality", "description": __doc__.split("\n\n")[0], "images": images,
              "conditions": {"presets": list(PRESETS), "operators": list(OPERATORS),
                             "operator_strength": OPERATOR_STRENGTH, "seeds": "image i is aged with seed i"},
              "targets": TARGETS, "targets_apply_to": "the mean over all preset rows ('overall')",
              "methods": methods, "threads": 1, "machine": platform.platform(), "torch": torch.__version__,
              "seconds": round(time.perf_counter() - started, 1)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    table = [{"method": m, "preset": p} | s for m, r in methods.items() if "per_preset" in r
             for p, s in list(r["per_preset"].items()) + [("overall", r["overall"])]]
    print(metrics.format_table(table, ["method", "preset", "count", "identity_psnr", "psnr", "psnr_gain",
                                       "identity_ssim", "ssim", "ssim_gain", "sharpness_ratio"], digits=3))
    print(f"wrote {args.out} in {result['seconds']} s")


if __name__ == "__main__":
    main()
