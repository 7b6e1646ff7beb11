"""How much does aging add to building a data set? Throughput at 256x256 against a baseline in the same run.

Baseline: read a JPEG, convert to gray (the study's default), resize to 256x256, encode PNG: the work
`python -m helpers age` does anyway. Aged: the same plus `age_image` with a preset. Both run in one
process and in a `multiprocessing.Pool`. Targets (issue 3): aging adds at most 1x the baseline's cost,
and the seed preset's pipeline does >= 150 images/s with 2 workers.

Two clocks, because this machine is shared: wall-clock throughput is what a user sees but drops when other
processes compete for the cores; CPU time per image (summed over the workers) is what the pipelines
themselves cost. `cpu_bound_images_per_s` = workers / CPU seconds per image: the rate on idle cores.
Repeats go round all pipelines in turn and keep each one's best, so a burst of load hits the baseline
and the presets alike. The load average before and after is recorded to judge a run.

    python benchmarks/aging.py [--images 200] [--workers 2] [--repeats 5] [--rgb] [--out FILE]
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
    aging.keep_freed_memory()  # what age_image does on its first call; the baseline gets it too


def process(job):
    """One image through the pipeline (preset None: the baseline); returns the CPU seconds it took."""
    path, preset, seed, rgb = job
    start = time.process_time()
    img = io.read_image(path)
    img = img if rgb else io.to_gray(img)
    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    if preset is not None:
        img = aging.age_image(img, preset, seed=seed).image
    io.encode_image(img, ".png")
    return time.process_time() - start


def _run(jobs, pool):
    """(wall seconds, CPU seconds) for all jobs."""
    start = time.perf_counter()
    cpu = list(map(process, jobs)) if pool is None else pool.map(process, jobs, chunksize=8)
    return time.perf_counter() - start, sum(cpu)


def _figures(n, wall, cpu, workers, base_wall, base_cpu):
    return {"images_per_s": round(n / wall, 1), "cpu_ms_per_image": round(1000 * cpu / n, 3),
            "cpu_bound_images_per_s": round(workers * n / cpu, 1),
            "extra_cost_vs_baseline": round((wall - base_wall) / base_wall, 3),
            "extra_cpu_vs_baseline": round((cpu - base_cpu) / base_cpu, 3)}


def measure(paths, *, workers, repeats, rgb, presets):
    """Baseline and per-preset throughput, and each preset's extra cost over the baseline."""
    _init_worker()
    pool = multiprocessing.Pool(workers, initializer=_init_worker) if workers > 1 else None
    try:
        names = ["baseline", *presets]
        jobs = {name: [(path, None if name == "baseline" else name, seed, rgb)
                       for seed, path in enumerate(paths)] for name in names}
        _run(jobs["seed"][: 4 * workers], pool)  # imports and start-up are not throughput
        wall, cpu = dict.fromkeys(names, float("inf")), dict.fromkeys(names, float("inf"))
        for _ in range(repeats):
            for name in names:
                w, c = _run(jobs[name], pool)
                wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
        n = len(paths)
        base = _figures(n, wall["baseline"], cpu["baseline"], workers, wall["baseline"], cpu["baseline"])
        del base["extra_cost_vs_baseline"], base["extra_cpu_vs_baseline"]
        return {"workers": workers, "baseline": base,
                "presets": {p: _figures(n, wall[p], cpu[p], workers, wall["baseline"], cpu["baseline"])
                            for p in presets}}
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def _meets_targets(single, multi):
    """Wall clock: the single-process extra cost and the pool's throughput as measured. CPU time: the
    extra CPU per image in both settings and the pool's rate on idle cores; the fairer test while other
    processes load the machine."""
    seed_single, seed_multi = single["presets"]["seed"], multi["presets"]["seed"]
    return {
        "wall_clock": bool(seed_single["extra_cost_vs_baseline"] <= TARGET_EXTRA_COST
                           and seed_multi["images_per_s"] >= TARGET_IMAGES_PER_S),
        "cpu_time": bool(max(seed_single["extra_cpu_vs_baseline"], seed_multi["extra_cpu_vs_baseline"])
                         <= TARGET_EXTRA_COST
                         and seed_multi["cpu_bound_images_per_s"] >= TARGET_IMAGES_PER_S),
    }


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
    presets = list(aging.PRESETS)
    load_before = os.getloadavg()[0]
    single = measure(paths, workers=1, repeats=args.repeats, rgb=args.rgb, presets=presets)
    multi = measure(paths, workers=args.workers, repeats=args.repeats, rgb=args.rgb, presets=presets)
    report = {
        "benchmark": "aging throughput, read JPEG + resize + encode PNG, with and without age_image",
        "image_size": [SIZE, SIZE], "color": "rgb" if args.rgb else "gray", "images": len(paths),
        "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "opencv": cv2.__version__,
                    "load_average_1min_before": round(load_before, 2),
                    "load_average_1min_after": round(os.getloadavg()[0], 2)},
        "single_process": single,
        f"workers_{args.workers}": multi,
        "targets": {"extra_cost_vs_baseline_at_most": TARGET_EXTRA_COST,
                    f"seed_images_per_s_with_{args.workers}_workers_at_least": TARGET_IMAGES_PER_S},
        "seed_preset_meets_targets": _meets_targets(single, multi),
    }
    io.atomic_write_text(args.out, json.dumps(report, indent=2) + "\n", overwrite=True)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
