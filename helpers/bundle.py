"""Ship a trained generator with the package: helpers/weights/<name>.safetensors (fp16) + <name>.json.

    python -m helpers.bundle RUN_DIR/best.safetensors --name unet_default [--metrics benchmarks/quality.json]
                             [--overwrite]

Why a separate step rather than copying `best.safetensors`: a run checkpoint may hold the discriminator
and optimizer states (`last`), is float32, and its metadata says how it was trained but not how well it
restores photos it never saw. The bundle keeps the generator only, in float16 (half the size; the
restorer loads it into a float32 model, `load_state_dict` converts), and its metadata adds where it came
from, which commit bundled it, and, with `--metrics`, the held-out quality measured by
`benchmarks/quality.py` on these very weights (the benchmark records the weights' checksum, and bundling
refuses numbers that were measured on other weights).

The bundle is an ordinary checkpoint of this project, so `helpers.restore.load_restorer` and
`helpers.checkpoints.load_generator` open it like any other.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import HelpersError
from .checkpoints import _digest, git_commit, load_checkpoint, read_metadata, save_checkpoint
from .env import PACKAGE_ROOT

WEIGHTS_DIR = PACKAGE_ROOT / "weights"
NAMES = {"unet_default": "unet", "seed_dcgan": "seed-dcgan", "detector": "detector", "specks": "specks",
         "inpainter": "inpainter", "deblocker": "deblocker", "verifier": "verifier",
         "blender": "blender"}  # bundle name -> its model
MAX_BYTES = 10 * 2**20
KEPT_METADATA = ("model", "model_config", "command", "data", "git_commit", "epoch", "step", "seed",
                 "best_val_l1", "losses", "train_config", "torch")


def weights_digest(path: str | Path) -> str:
    """The checksum of a checkpoint's generator tensors, from its header (nothing is loaded)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return json.loads((handle.metadata() or {}).get("sha256", "{}")).get("generator", "")


def describe_data(data: dict[str, Any]) -> dict[str, Any]:
    """The training data record plus how many files each of its top folders held, when they are here."""
    source = Path(str(data.get("source", "")))
    if not data.get("source") or not source.is_dir():
        return data
    folders = {child.name: sum(1 for f in child.rglob("*") if f.is_file())
               for child in sorted(source.iterdir()) if child.is_dir()}
    return data | {"files_per_folder": folders}


def lineage(metadata: dict[str, Any], limit: int = 20) -> list[dict[str, Any]]:
    """The commands that made a checkpoint, oldest first: a run started with `train --init CKPT` records
    CKPT, whose own metadata (when the file is still here) names the command and --init before it. A
    bundle already holds its whole recipe, so it is taken over as stored: runs fine-tuned one after another
    from the bundled file all name the same path, whose current metadata is only the latest of them."""
    chain, seen = [], set()
    while metadata and len(chain) < limit:
        chain.append({"command": metadata.get("command"), "epoch": metadata.get("epoch"), "step": metadata.get("step")})
        init = (metadata.get("data") or {}).get("init")
        if not init:
            break
        path = Path(init)
        chain[-1]["init"] = str(init)
        if not path.is_file() or path.resolve() in seen:
            break
        seen.add(path.resolve())
        chain[-1]["init_weights_sha256"] = weights_digest(path)
        metadata = read_metadata(path)
        stored = (metadata.get("bundle") or {}).get("lineage")
        if stored:
            chain.extend(reversed(stored))
            break
    return chain[::-1]


def quality_summary(quality: dict[str, Any], model: str, digest: str, source: str) -> dict[str, Any]:
    """The part of a `benchmarks/quality.py` JSON that describes `model`, checked to be about these weights."""
    methods = quality.get("methods", {})
    if model not in methods:
        raise HelpersError(f"{source}: no results for the {model!r} model (it has {', '.join(methods) or 'none'})")
    result = methods[model]
    if result.get("weights_sha256") != digest:
        raise HelpersError(f"{source}: its {model!r} numbers were measured on other weights than this bundle's; "
                           f"rerun benchmarks/quality.py --checkpoint on the bundled file first")
    return {"benchmark": "benchmarks/quality.py", "weights_sha256": digest, "images": quality.get("images"),
            "overall": result["overall"], "per_preset": result["per_preset"],
            "targets": result.get("targets"), "subset": result.get("subset")}


def calibration(checkpoint: Path, metadata: dict, photos: int = 16) -> dict:
    """The detector's (or the verifier's) fill threshold, chosen on the first `photos` of the run's own
    validation photos (the split `train` made: same data folder, fraction and seed), never trained on."""
    import numpy as np

    from .age_folder import prepare_clean
    from .checkpoints import load_generator
    from .commands.train import _split
    from .io import find_images, from_float, read_image
    from .restore.detect import calibrate_threshold

    data, config = metadata.get("data") or {}, metadata.get("train_config") or {}
    source = Path(str(data.get("source", "")))
    if not source.is_dir():
        raise HelpersError(f"{checkpoint}: its training data {source} is not here, so no validation photos to "
                           "calibrate the threshold on; bundle without --calibrate")
    split = str(data.get("split", "0.1"))
    if split.startswith("train/"):
        files = find_images([source / "val"])[0]
    else:
        files = _split(find_images([source])[0], float(split.split()[0]), int(config.get("seed", 0)))[1]
    clean = [from_float(prepare_clean(read_image(path), data.get("size", 256), gray=True), np.uint8)
             for path in files[:photos]]
    model = metadata.get("model", "detector")
    detector, _ = load_generator(checkpoint, model, device="cpu")
    base, mirror, note = None, True, "the run's validation photos"
    if model == "verifier":  # which components of the bundled detectors' masks to fill
        from .verify_training import calibrate_threshold as calibrate_verifier

        threshold, gains = calibrate_verifier(detector, clean)
        return {"fill_threshold": threshold, "fill_threshold_calibration": {
            "photos": len(clean), "from": note + ", the bundled detectors' components",
            "mean_gain_db_by_threshold": gains}}
    if model == "specks":  # what the speck finder adds to the bundled damage detector's mask
        from .restore.detect import damage_probability, threshold_of
        from .restore.pipeline import SPECK_MIRROR
        from .restore.restorers import DEFAULT_CHECKPOINTS

        bundled, bundled_meta = load_generator(DEFAULT_CHECKPOINTS["detector"], "detector", device="cpu")
        cut = threshold_of(bundled_meta)

        def detector_mask(aged):
            return damage_probability(bundled, aged, tile=1024, overlap=128) > cut

        base, mirror = detector_mask, SPECK_MIRROR
        note += f", joined to the bundled detector's mask (threshold {cut})"
    threshold, gains = calibrate_threshold(detector, clean, base=base, mirror=mirror)
    return {"fill_threshold": threshold, "fill_threshold_calibration": {
        "photos": len(clean), "from": note, "mean_gain_db_by_threshold": gains}}


def bundle_checkpoint(checkpoint: str | Path, name: str, *, metrics: str | Path | None = None,
                      overwrite: bool = False, out_dir: str | Path = WEIGHTS_DIR, calibrate: bool = False) -> Path:
    """Write out_dir/<name>.safetensors (generator in fp16) and <name>.json from a run checkpoint."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    target = out_dir / f"{name}.safetensors"
    if name not in NAMES:
        raise HelpersError(f"unknown bundle name {name!r} (choose from {', '.join(NAMES)})")
    if target.resolve() == checkpoint.resolve():
        raise HelpersError(f"{checkpoint}: is the bundle itself; bundle from the run's checkpoint")
    if target.exists() and not overwrite:
        raise HelpersError(f"{target}: already exists (use --overwrite to replace it)")
    state, metadata = load_checkpoint(checkpoint, ["generator"], expected_model=NAMES[name])
    half = {key: value.half() if value.is_floating_point() else value for key, value in state["generator"].items()}
    size = sum(value.numel() * value.element_size() for value in half.values())
    if size > MAX_BYTES:
        raise HelpersError(f"{checkpoint}: its generator takes {size / 2**20:.1f} MB in fp16, over the "
                           f"{MAX_BYTES // 2**20} MB a bundle may take")
    bundled = {key: metadata[key] for key in KEPT_METADATA if key in metadata}
    if calibrate:
        if NAMES[name] not in ("detector", "specks", "verifier"):
            raise HelpersError("--calibrate chooses a detector's or the verifier's threshold; this bundle holds a "
                               + NAMES[name])
        bundled |= calibration(checkpoint, metadata)
    if isinstance(bundled.get("data"), dict):
        bundled["data"] = describe_data(bundled["data"])
    bundled["bundle"] = {"name": name, "source": str(checkpoint), "dtype": "float16",
                         "bundled_at_commit": git_commit(), "reproduce": metadata.get("command"),
                         "lineage": lineage(metadata)}
    digest = _digest({f"generator.{key}": value for key, value in half.items()})  # as save_checkpoint will
    if metrics is not None:
        quality = quality_summary(json.loads(Path(metrics).read_text()), NAMES[name], digest, str(metrics))
    else:  # re-bundling the same weights keeps their numbers; other weights need measuring again
        previous = json.loads(target.with_suffix(".json").read_text()).get("quality") \
            if target.with_suffix(".json").is_file() else None
        quality = previous if previous and previous.get("weights_sha256") == digest else None
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(target, {"generator": half}, bundled | ({"quality": quality} if quality else {}))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a run's best.safetensors or last.safetensors")
    parser.add_argument("--name", required=True, choices=sorted(NAMES), help="which bundled model to write")
    parser.add_argument("--metrics", help="a benchmarks/quality.py JSON measured on the bundled weights")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    parser.add_argument("--out-dir", default=str(WEIGHTS_DIR), help="folder to write into (default: helpers/weights)")
    parser.add_argument("--calibrate", action="store_true",
                        help="detector, specks: choose the threshold that repairs the run's validation photos best")
    args = parser.parse_args(argv)
    try:
        path = bundle_checkpoint(args.checkpoint, args.name, metrics=args.metrics, overwrite=args.overwrite,
                                 out_dir=args.out_dir, calibrate=args.calibrate)
    except HelpersError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MB) and {path.with_suffix('.json').name}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
