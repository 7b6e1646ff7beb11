"""How fast is robust inversion? One step in W, W+ and W++ (same run, same generator), and the whole
450-step Algorithm 1 at 256 px with the compact generator on the CPU; at 1024 px (FFHQ config-f
architecture, random weights) when a GPU is present. The W++ overhead is also measured at FFHQ's
real widths (config-f at 256 px, random weights) on the CPU, steps only.

    python benchmarks/inversion.py [--out benchmarks/inversion.json] [--quick] [--threads N]

Targets from the issue: a W++ step costs at most 1.5x a W step (the baseline, measured in the same run);
the 450-step CPU inversion at 256 px takes at most 60 s. The CPU is shared with whatever else runs on
the machine, so the JSON records the load average next to every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch

from helpers.degradations import Upsampling
from helpers.invert import invert, ngd_step, render
from helpers.losses import make_loss
from helpers.models.stylegan2 import GeneratorConfig, compact_config, random_generator, tiny_config


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_costs(generator, loss_fn, device, repeats: int) -> dict:
    """Median seconds of one full step (render, f̂, loss, backward, NGD update) in each style space."""
    degradation = Upsampling(4).to(device)
    target = torch.rand(1, 3, generator.size // 4, generator.size // 4, device=device)
    out = {}
    for space in ("W", "W+", "W++"):
        latent = generator.mean_latent().to(device)
        if space != "W":
            latent = generator.w_to_wplus(latent)
        if space == "W++":
            latent = generator.wplus_to_wplusplus(latent)
        latent.requires_grad_(True)
        times = []
        for i in range(repeats + 2):  # two warm-up steps
            _sync(device)
            start = time.perf_counter()
            loss_fn(degradation(render(generator, latent)), target).backward()
            ngd_step(latent, 0.01)
            _sync(device)
            if i >= 2:
                times.append(time.perf_counter() - start)
        out[space] = {"median_s": statistics.median(times), "latent_vectors": latent.shape[1] if latent.ndim == 3 else 1}
    out["ratio_wpp_to_w"] = out["W++"]["median_s"] / out["W"]["median_s"]
    out["ratio_wplus_to_w"] = out["W+"]["median_s"] / out["W"]["median_s"]
    return out


def full_inversion(generator, loss_fn, device, steps) -> dict:
    degradation = Upsampling(4)
    with torch.no_grad():
        clean = render(generator, generator.mean_latent().to(device) + 0.5).clamp(0, 1)
    observation = degradation.simulate(clean)[0]
    result = invert(generator, observation, degradation, steps=steps, progress=False, loss_fn=loss_fn)
    return {"steps": list(steps), "seconds": result.seconds, "per_step_s": result.seconds / sum(steps),
            "final_losses": result.final_losses()}


def bench(device: torch.device, config: GeneratorConfig, steps, repeats: int, loss_fn) -> dict:
    """Step costs, then the full inversion when `steps` is given."""
    generator = random_generator(config, seed=0).to(device).requires_grad_(False)
    entry = {"device": str(device), "config": config.to_dict(), "n_latent": generator.n_latent,
             "n_filters": generator.n_filters, "parameters": sum(p.numel() for p in generator.parameters()),
             "loss": loss_fn.kind, "load_average_before": os.getloadavg()}
    entry["step"] = step_costs(generator, loss_fn.to(device), device, repeats)
    if steps:
        entry["full"] = full_inversion(generator, loss_fn, device, steps)
    entry["load_average_after"] = os.getloadavg()
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    parser.add_argument("--quick", action="store_true", help="a 64 px tiny generator, few steps (smoke test)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice). On a CPU shared with other work, "
                             "1 thread avoids OpenMP workers spinning against each other, which made a "
                             "2-thread step 5-10x slower on this 2-core machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # make_loss prints its own line when it falls back
        loss_fn = make_loss()
    doc = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "torch_threads": torch.get_num_threads()},
           "targets": {"ratio_wpp_to_w_max": 1.5, "cpu_256_full_seconds_max": 60}}
    cpu = torch.device("cpu")
    if args.quick:
        doc["cpu_quick"] = bench(cpu, tiny_config(64), (10, 10, 10), 3, loss_fn)
    else:
        doc["cpu_256"] = bench(cpu, compact_config(256), (150, 150, 150), 10, loss_fn)
        # The W++ overhead at the real FFHQ widths (512 channels up to 64 px), steps only.
        doc["cpu_256_ffhq_widths"] = bench(cpu, GeneratorConfig(size=256), None, 3, loss_fn)
        doc["cpu_256"]["meets_targets"] = {
            "wpp_step": doc["cpu_256"]["step"]["ratio_wpp_to_w"] <= 1.5,
            "full_inversion": doc["cpu_256"]["full"]["seconds"] <= 60}
        if torch.cuda.is_available():
            doc["gpu_1024"] = bench(torch.device("cuda"), GeneratorConfig(), (150, 150, 150), 10, loss_fn)
            doc["gpu_1024"]["gpu"] = torch.cuda.get_device_name()
        else:
            doc["gpu_1024"] = "skipped: no CUDA device on this machine"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from helpers.io import atomic_write_text

    atomic_write_text(args.out, json.dumps(doc, indent=2) + "\n", overwrite=True)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
