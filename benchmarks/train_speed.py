"""Training and inference speed and peak memory of the seed DCGAN replica at 256x256, batch 1, 2 and 4.

    python benchmarks/train_speed.py [--out benchmarks/train_speed.json] [--batch-sizes 1,2,4] [--steps 2]

Each configuration runs in a fresh Python process, so its peak resident memory (ru_maxrss) is its own;
on a GPU the peak is torch.cuda.max_memory_allocated. Timed steps are not preceded by warm-up steps (one
seed-DCGAN step takes seconds on a CPU), so the first step's allocations are included. The baseline is
batch 1, measured in the same run; ratios are against it.

Where the memory goes: the generator inflates the 1x256x256 input to 256x259x259, 128x518x518 and
64x1036x1036 before max pooling brings it back to 256x256. Training keeps every one of those activations
(and its batch-norm twin) for the backward pass: measured on a CPU, peak RSS is 2.3 GB at batch 1 and
grows by about 1.45 GB per further image (6.6 GB at batch 4); one 64x1036x1036 float32 tensor is 275 MB.
The discriminator (1.85 M parameters, 256x16x16 at most) is small beside it.

The restorer's benchmark (benchmarks/restorer_vs_seed.py) imports `measure` to compare models in one run:
    from train_speed import measure
    measure("unet", batch_size=4, size=256)  -> {"train_images_per_s", "infer_s_per_image", "peak_*_mb", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).with_suffix(".json")


def _child(task: str, model: str, batch_size: int, size: int, steps: int, device: str | None, amp: str,
           model_config: dict) -> dict:
    """Runs inside the fresh process: one measurement, printed as JSON."""
    import torch
    from accelerate import Accelerator

    from helpers.models import build_models
    from helpers.train import GanTrainer, TrainConfig, restore_batch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    models = build_models(model, **model_config)
    channels = models[2].channels
    aged, clean = torch.rand(2, batch_size, channels, size, size)
    mask = (torch.rand(batch_size, 1, size, size) > 0.9).float()
    # inference in channels-last memory, as helpers.checkpoints.load_generator runs every restorer
    config = TrainConfig(model=model, batch_size=batch_size, amp=amp, device=device, progress=False,
                         channels_last=task == "infer")
    trainer = GanTrainer(config, models, Accelerator(cpu=device == "cpu"), schedule_steps=steps)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if task == "tensors":
        return {"peak_tensor_mb": peak_tensor_mb(lambda: trainer.train_step(aged, clean, mask), steps)}
    start = time.perf_counter()
    for _ in range(steps):
        if task == "train":
            trainer.train_step(aged, clean, mask)
        else:
            trainer.generator.eval()
            with trainer.autocast():
                restore_batch(trainer.generator, aged)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "device": device, "threads": torch.get_num_threads()}
    if task == "train":
        result["train_images_per_s"] = steps * batch_size / seconds
    else:
        result["infer_s_per_image"] = seconds / (steps * batch_size)
    if device.startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return result


def peak_tensor_mb(step, steps: int) -> float:
    """Peak memory of the live CPU tensors (parameters, gradients, optimizer state, activations,
    temporaries) over `steps` calls, from the profiler's memory timeline: the CPU counterpart of
    torch.cuda.max_memory_allocated, free of the interpreter, the libraries and the allocator's caching
    that ru_maxrss also counts. (The timeline export is deprecated in favour of a CUDA-only snapshot API.)"""
    import gzip
    import tempfile
    import warnings

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        for _ in range(steps):
            step()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        path = Path(folder) / "timeline.json.gz"
        prof.export_memory_timeline(str(path), device="cpu")
        _, sizes = json.loads(gzip.decompress(path.read_bytes()))
    return max(map(sum, sizes)) / 2**20


def in_fresh_process(script: str, task: str, **kwargs) -> dict:
    """Run `script --child {task, **kwargs}` in a new interpreter (so its peak RSS is its own) and return
    the JSON document it prints last; a failure raises with the child's last error line."""
    command = [sys.executable, script, "--child", json.dumps({"task": task} | kwargs)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"{task} {kwargs}: {done.stderr.strip().splitlines()[-1] if done.stderr else 'failed'}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(model: str = "seed-dcgan", batch_size: int = 1, *, size: int = 256, steps: int = 2,
            device: str | None = None, amp: str = "none", model_config: dict | None = None,
            tensors: bool = False) -> dict:
    """Training images/s and inference s/image of one model and batch size, each in a fresh process;
    with `tensors` (CPU), also the training step's peak tensor memory in a third one (see peak_tensor_mb)."""
    options = dict(model=model, batch_size=batch_size, size=size, steps=steps, device=device, amp=amp,
                   model_config=model_config or {})
    train, infer = in_fresh_process(__file__, "train", **options), in_fresh_process(__file__, "infer", **options)
    result = {"model": model, "batch_size": batch_size, "size": size, "amp": amp, "steps": steps,
              "device": train["device"], "threads": train["threads"],
              "train_images_per_s": train["train_images_per_s"], "train_peak_rss_mb": train["peak_rss_mb"],
              "infer_s_per_image": infer["infer_s_per_image"], "infer_peak_rss_mb": infer["peak_rss_mb"]}
    if "peak_gpu_mb" in train:
        result |= {"train_peak_gpu_mb": train["peak_gpu_mb"], "infer_peak_gpu_mb": infer["peak_gpu_mb"]}
    elif tensors:
        result["train_peak_tensor_mb"] = in_fresh_process(__file__, "tensors", **options)["peak_tensor_mb"]
    return result


def with_ratios(rows: list[dict], baseline: dict) -> list[dict]:
    """Each row with its speed and memory relative to the baseline row (measured in the same run)."""
    memory = "train_peak_gpu_mb" if "train_peak_gpu_mb" in baseline else "train_peak_rss_mb"
    return [row | {"train_speed_vs_baseline": row["train_images_per_s"] / baseline["train_images_per_s"],
                   "infer_time_vs_baseline": row["infer_s_per_image"] / baseline["infer_s_per_image"],
                   "train_memory_vs_baseline": row[memory] / baseline[memory]} for row in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per configuration")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--amp", default="none", choices=["none", "fp16", "bf16"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(**json.loads(args.child))))
        return 0
    from helpers.io import atomic_write_text

    load_before = os.getloadavg()
    rows = []
    for batch_size in map(int, args.batch_sizes.split(",")):
        rows.append(measure("seed-dcgan", batch_size, steps=args.steps, device=args.device, amp=args.amp))
        print(json.dumps(rows[-1]), file=sys.stderr)
    result = {
        "benchmark": "train_speed", "model": "seed-dcgan", "size": 256, "baseline": "batch size 1",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "notes": "no warm-up steps; the CPU may be shared with other jobs (see load averages); "
                 "peak memory is the fresh process's ru_maxrss (CPU) or max allocated (GPU)",
        "rows": with_ratios(rows, rows[0]),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n", overwrite=True)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
