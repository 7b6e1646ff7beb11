"""How much does aging add to building a data set? Throughput at 256x256 against a baseline in the same run.

Baseline: read a JPEG, convert to gray (the study's default), resize to 256x256, encode PNG: the work
`python -m helpers age` does anyway. Aged: the same plus `age_image` with a preset. Both run single
process and in a `multiprocessing.Pool`, each measurement the best of a few repeats so that other work on
a shared machine disturbs it less. Targets (issue 3): aging adds at most 1x the baseline's cost, and the
aged pipeline does >= 150 images/s with 2 workers.

    python benchmarks/aging.py [--images 200] [--workers 2] [--rgb] [--out benchmarks/aging.json]
"""

import argparse
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

import cv2

from helpers import aging, io

HERE = Path(__file__).resolve().parent
SIZE = 256
TARGET_EXTRA_COST = 1.0
TARGET_IMAGES_PER_S = 150.0


def _init_worker():
    cv2.setNumThreads(1)  # one thread per process: the worker count is the parallelism being measured


def process(job):
    """One image through the pipeline; preset None is the baseline."""
    path, preset, seed, rgb = job
    img = io.read_image(path)
    img = img if rgb else io.to_gray(img)
    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    if preset is not None:
        img = aging.age_image(img, preset, seed=seed).image
    return len(io.encode_image(img, ".png"))


def _run(jobs, pool):
    start = time.perf_counter()
    if pool is None:
        for job in jobs:
            process(job)
    else:
        pool.map(process, jobs, chunksize=8)
    return time.perf_counter() - start


def measure(paths, *, workers, repeats, rgb, presets):
    """images/s of the baseline and of each preset, plus each preset's extra cost over the baseline.
    Repeats go round all pipelines in turn and keep each one's best time, so a burst of load from other
    processes hits the baseline and the presets alike instead of skewing their ratio."""
    pool = multiprocessing.Pool(workers, initializer=_init_worker) if workers > 1 else None
    try:
        names = ["baseline", *presets]
        jobs = {name: [(path, None if name == "baseline" else name, seed, rgb)
                       for seed, path in enumerate(paths)] for name in names}
        if pool is not None:
            pool.map(process, jobs["seed"][: 2 * workers])  # start-up is not throughput
        best = dict.fromkeys(names, float("inf"))
        for _ in range(repeats):
            for name in names:
                best[name] = min(best[name], _run(jobs[name], pool))
        base = best["baseline"]
        per_preset = {p: {"images_per_s": round(len(paths) / best[p], 1),
                          "extra_cost_vs_baseline": round((best[p] - base) / base, 3)} for p in presets}
        return {"baseline_images_per_s": round(len(paths) / base, 1), "presets": per_preset}
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="bundled samples repeated to this many")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="best of this many timings")
    parser.add_argument("--rgb", action="store_true", help="age RGB instead of the study's grayscale")
    parser.add_argument("--out", type=Path, default=HERE / "aging.json")
    args = parser.parse_args(argv)

    samples = sorted((HERE.parent / "samples" / "clean").glob("*.jpg"))
    paths = [str(samples[i % len(samples)]) for i in range(args.images)]
    cv2.setNumThreads(1)
    aging.keep_freed_memory()  # what age_image does on its first call; here before the baseline runs too
    presets = list(aging.PRESETS)
    single = measure(paths, workers=1, repeats=args.repeats, rgb=args.rgb, presets=presets)
    multi = measure(paths, workers=args.workers, repeats=args.repeats, rgb=args.rgb, presets=presets)
    seed_multi = multi["presets"]["seed"]
    report = {
        "benchmark": "aging throughput, read JPEG + resize + encode PNG, with and without age_image",
        "image_size": [SIZE, SIZE], "color": "rgb" if args.rgb else "gray", "images": len(paths),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "opencv": cv2.__version__},
        "single_process": single,
        f"workers_{args.workers}": multi,
        "targets": {"extra_cost_vs_baseline_at_most": TARGET_EXTRA_COST,
                    f"seed_images_per_s_with_{args.workers}_workers_at_least": TARGET_IMAGES_PER_S},
        "seed_preset_meets_targets": bool(
            single["presets"]["seed"]["extra_cost_vs_baseline"] <= TARGET_EXTRA_COST
            and seed_multi["extra_cost_vs_baseline"] <= TARGET_EXTRA_COST
            and seed_multi["images_per_s"] >= TARGET_IMAGES_PER_S),
    }
    io.atomic_write_text(args.out, json.dumps(report, indent=2) + "\n", overwrite=True)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
