"""The repair pipeline and the U-Net against the study's seed DCGAN, in one run on one machine, 256x256.

    python benchmarks/restorer_vs_seed.py [--out benchmarks/restorer_vs_seed.json] [--batch-sizes 1,4] [--quick]
                                          [--steps 2] [--scan 4000x3000] [--tile 1024] [--threads N]

Per configuration, each in a fresh Python process (benchmarks/train_speed.py's `measure`, so peak RSS is
that process's own): training throughput of a full GAN step (generator + discriminator, images/s),
inference time per image, and peak memory, twice: the peak of the live tensors during the training
step (the profiler's memory timeline, what torch.cuda.max_memory_allocated reports on a GPU; the
measure the memory target uses) and the process's peak RSS, which adds the ~0.5 GB that torch itself
holds in every process (`runtime_rss_mb`). Then the large-scan case: a 4000x3000 RGB photo restored
with tiles by `helpers.restore` in a fresh process (time, peak RSS), and the size of the default U-Net
generator saved as an fp16 safetensors checkpoint. The U-Net has the bundled checkpoint's shape (its
`model_config`, e.g. with photo-wide context) but is freshly initialised: speed and memory do not depend
on the trained weights.

The repair pipeline (bundled detector, tone curves fitted to the bundled U-Net, Telea fill; issue 21) is
timed the same way in a fresh process: a 256x256 gray photo aged with the `heavy` preset, restored image
by image (so the fill has real damage to inpaint), and the same 4000x3000 scan.
Also timed: the second bundled sample (a berry bowl whose blacks are deep) aged with the `local` preset
(scratches, cracks, dust, torn corners on a tone that is fine), where the tone gate needs no U-Net run
(`infer_s_per_image_tone_fine`).

Targets (issue 5): training >= 10x the seed's throughput, inference >= 20x faster, peak training memory
<= 1/4 of the seed's, the 4000x3000 scan under 2 GB peak RSS, the fp16 checkpoint <= 10 MB.
Targets (issue 21): the whole pipeline >= 20x faster per image than the seed DCGAN; its scan <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import in_fresh_process, measure  # noqa: E402 - the seed's own benchmark, so both are measured alike

DEFAULT_OUT = Path(__file__).with_suffix(".json")
TARGETS = {"train_speedup": 10.0, "infer_speedup": 20.0, "train_memory_ratio": 0.25, "scan_peak_rss_mb": 2048,
           "checkpoint_fp16_mb": 10.0}


def write_scan(path: Path, width: int, height: int) -> Path:
    """A photo-like RGB JPEG (smooth shapes plus grain), made here so the measured process only restores."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    small = cv2.GaussianBlur(rng.random((height // 8, width // 8, 3)).astype(np.float32), (0, 0), 3)
    scan = cv2.resize((small - small.min()) / (np.ptp(small) + 1e-6) * 255, (width, height),
                      interpolation=cv2.INTER_CUBIC)
    scan += rng.normal(0, 6, scan.shape).astype(np.float32)
    cv2.imwrite(str(path), np.clip(scan, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def unet_config() -> dict:
    """The bundled U-Net's builder arguments (its metadata), so the benchmark measures the shipped shape."""
    from helpers.checkpoints import read_metadata
    from helpers.restore import DEFAULT_CHECKPOINTS

    path = DEFAULT_CHECKPOINTS["unet"]
    return read_metadata(path).get("model_config", {}) if path.is_file() else {}


def _scan_child(path: str, tile: int, model_config: dict) -> dict:
    """Runs in a fresh process: restore one large scan with tiles; time and peak RSS of this process."""
    import torch

    from helpers.models import build_models
    from helpers.restore import restore_files, restorer_from_model

    generator, _, spec = build_models("unet", **model_config)
    restorer = restorer_from_model(generator, spec)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    report = restore_files([path], Path(path).parent / "out", restorer, tile=tile, progress=False)
    seconds = time.perf_counter() - start
    if report.failures:
        raise RuntimeError(report.failures)
    return {"color": "rgb (gray model: luminance restored, chroma kept)", "tile": tile, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_restoring_mb": before, "threads": torch.get_num_threads()}


def _pipeline_child(path: str | None, repeats: int = 5) -> dict:
    """Runs in a fresh process: the bundled pipeline on a 256x256 aged photo (s/image) or on one scan."""
    import numpy as np
    import torch

    from helpers.age_folder import prepare_clean
    from helpers.aging import age_image
    from helpers.data import bundled_samples
    from helpers.io import from_float, read_image
    from helpers.restore import restore_files, restore_image
    from helpers.restore.pipeline import load_pipeline

    restorer = load_pipeline(device="cpu")
    if path:
        start = time.perf_counter()
        report = restore_files([path], Path(path).parent / "out_pipeline", restorer, progress=False)
        if report.failures:
            raise RuntimeError(report.failures)
        return {"color": "rgb", "seconds": time.perf_counter() - start,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "threads": torch.get_num_threads()}
    seconds = {}
    for preset, sample in (("heavy", 0), ("local", 1)):
        clean = prepare_clean(read_image(bundled_samples("clean")[sample]), 256, gray=True)
        aged = from_float(age_image(clean, preset, seed=0).image, np.uint8)
        restore_image(aged, restorer)  # warm-up: first-call allocations are not the pipeline's speed
        start = time.perf_counter()
        for _ in range(repeats):
            restore_image(aged, restorer)
        seconds[preset] = (time.perf_counter() - start) / repeats
    return {"infer_s_per_image": seconds["heavy"], "infer_s_per_image_tone_fine": seconds["local"],
            "images": repeats, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def _runtime_child() -> dict:
    """What a measuring process holds before any model exists: torch, accelerate and the helpers."""
    import torch  # noqa: F401
    from accelerate import Accelerator  # noqa: F401

    from helpers.models import build_models  # noqa: F401
    from helpers.train import GanTrainer  # noqa: F401

    return {"runtime_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _checkpoint_child(model_config: dict) -> dict:
    import torch

    from helpers.checkpoints import save_checkpoint
    from helpers.models import build_models

    generator, _, spec = build_models("unet", **model_config)
    half = {k: v.half() for k, v in generator.state_dict().items()}
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "unet.safetensors", {"generator": half},
                               {"model": "unet", "model_config": spec.config})
        size = path.stat().st_size
    return {"parameters": sum(p.numel() for p in generator.parameters()), "checkpoint_fp16_mb": size / 2**20,
            "torch": torch.__version__}


def compare(seed: dict, unet: dict, runtime_mb: float) -> dict:
    """Ratios in the direction of the targets: > 1 is faster for speed, < 1 is smaller for memory.
    Memory is compared as peak tensor memory, as peak RSS, and as peak RSS above the runtime every process
    carries anyway."""
    def net(row, key):
        return row[key] - runtime_mb

    return {"batch_size": seed["batch_size"],
            "train_speedup": unet["train_images_per_s"] / seed["train_images_per_s"],
            "infer_speedup": seed["infer_s_per_image"] / unet["infer_s_per_image"],
            "train_memory_ratio": unet["train_peak_tensor_mb"] / seed["train_peak_tensor_mb"],
            "train_memory_ratio_rss": unet["train_peak_rss_mb"] / seed["train_peak_rss_mb"],
            "train_memory_ratio_above_runtime": net(unet, "train_peak_rss_mb") / net(seed, "train_peak_rss_mb"),
            "infer_memory_ratio": unet["infer_peak_rss_mb"] / seed["infer_peak_rss_mb"],
            "infer_memory_ratio_above_runtime": net(unet, "infer_peak_rss_mb") / net(seed, "infer_peak_rss_mb")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per configuration (both models)")
    parser.add_argument("--scan", default="4000x3000", help="WIDTHxHEIGHT of the large scan")
    parser.add_argument("--tile", type=int, default=1024, help="tile size for the large scan")
    parser.add_argument("--threads", type=int,
                        help="torch threads in every measured process (OMP_NUM_THREADS); default: torch's own. "
                             "1 is steadier on a shared machine, where waiting OpenMP threads distort timings")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: batch size 1, one step, a 320x240 scan in 128 px tiles (not a measurement)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.steps, args.scan, args.tile = "1", 1, "320x240", 128
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by every fresh process below
    if args.child:
        options = json.loads(args.child)
        task = options.pop("task")
        children = {"scan": _scan_child, "runtime": _runtime_child, "checkpoint": _checkpoint_child,
                    "pipeline": _pipeline_child}
        print(json.dumps(children[task](**options)))
        return 0
    from helpers.io import atomic_write_text

    load_before = os.getloadavg()
    runtime_mb = in_fresh_process(__file__, "runtime")["runtime_rss_mb"]
    config = unet_config()
    rows, ratios = [], []
    for batch_size in map(int, args.batch_sizes.split(",")):
        pair = {}
        for model in ("seed-dcgan", "unet"):  # the baseline first, then the restorer, back to back
            pair[model] = measure(model, batch_size, steps=args.steps, tensors=True,
                                  model_config=config if model == "unet" else None)
            rows.append(pair[model])
            print(json.dumps(pair[model]), file=sys.stderr)
        ratios.append(compare(pair["seed-dcgan"], pair["unet"], runtime_mb))
        print(json.dumps(ratios[-1]), file=sys.stderr)
    width, height = map(int, args.scan.lower().split("x"))
    with tempfile.TemporaryDirectory() as folder:
        source = write_scan(Path(folder) / "scan.jpg", width, height)
        scan = {"size": f"{width}x{height}"} | in_fresh_process(__file__, "scan", path=str(source), tile=args.tile,
                                                               model_config=config)
        pipeline_scan = {"size": f"{width}x{height}"} | in_fresh_process(__file__, "pipeline", path=str(source))
    print(json.dumps(scan), file=sys.stderr)
    pipeline = in_fresh_process(__file__, "pipeline", path=None) | {"scan": pipeline_scan}
    seed_single = next(r for r in rows if r["model"] == "seed-dcgan" and r["batch_size"] == min(
        row["batch_size"] for row in rows))
    pipeline["infer_speedup_vs_seed"] = seed_single["infer_s_per_image"] / pipeline["infer_s_per_image"]
    print(json.dumps(pipeline), file=sys.stderr)
    checkpoint = in_fresh_process(__file__, "checkpoint", model_config=config)
    worst = {key: (min if key.endswith("speedup") else max)(r[key] for r in ratios)
             for key in ("train_speedup", "infer_speedup", "train_memory_ratio", "train_memory_ratio_rss",
                         "train_memory_ratio_above_runtime")}
    met = {"train_speedup >= 10": worst["train_speedup"] >= TARGETS["train_speedup"],
           "infer_speedup >= 20": worst["infer_speedup"] >= TARGETS["infer_speedup"],
           "train_memory_ratio <= 0.25": worst["train_memory_ratio"] <= TARGETS["train_memory_ratio"],
           "train_memory_ratio_rss <= 0.25": worst["train_memory_ratio_rss"] <= TARGETS["train_memory_ratio"],
           "train_memory_ratio_above_runtime <= 0.25":
               worst["train_memory_ratio_above_runtime"] <= TARGETS["train_memory_ratio"],
           "scan_peak_rss <= 2 GB": scan["peak_rss_mb"] <= TARGETS["scan_peak_rss_mb"],
           "checkpoint_fp16 <= 10 MB": checkpoint["checkpoint_fp16_mb"] <= TARGETS["checkpoint_fp16_mb"],
           "pipeline infer_speedup >= 20": pipeline["infer_speedup_vs_seed"] >= TARGETS["infer_speedup"],
           "pipeline scan_peak_rss <= 2 GB": pipeline_scan["peak_rss_mb"] <= TARGETS["scan_peak_rss_mb"]}
    result = {
        "benchmark": "restorer_vs_seed", "baseline": "seed-dcgan, same run, same batch sizes, 256x256",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "notes": "each configuration in a fresh process; train_memory_ratio compares the peak tensor memory of "
                 "a training step (profiler memory timeline); peak RSS includes the runtime (torch, accelerate, "
                 "helpers: runtime_rss_mb), so the *_above_runtime ratios compare what the models themselves "
                 "need; no warm-up steps for either model; the CPU may be shared with other jobs (load averages)",
        "unet_config": config, "runtime_rss_mb": runtime_mb, "ratios": ratios, "worst_case": worst, "targets_met": met, "scan": scan, "pipeline": pipeline, "checkpoint": checkpoint,
        "rows": rows,
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n", overwrite=True)
    print(json.dumps({"worst_case": worst, "targets_met": met, "scan_seconds": scan["seconds"],
                      "pipeline": pipeline,
                      "scan_peak_rss_mb": scan["peak_rss_mb"]}, indent=2), file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
