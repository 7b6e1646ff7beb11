"""Which fill is better on the same holes: OpenCV's Telea, Navier-Stokes, or the learned inpainter?

The fill stage judged apart from the detector: the held-out photos of benchmarks/quality.py (the bundled
samples, plus the held-out subjects' other photos when ../shared/data is here), each aged with one local
damage operator at a time, the *true* damage mask widened by 1 px as the pipeline does, and PSNR over the
filled pixels only. The better method is the pipeline's default fill (issue 21).

    python benchmarks/fill.py [--checkpoint INPAINTER] [--max-images N] [--out benchmarks/fill.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from helpers.bundle import weights_digest
from helpers.checkpoints import load_generator
from helpers.evaluation import fill_comparison
from helpers.io import atomic_write_text
from helpers.restore import DEFAULT_CHECKPOINTS
from quality import OPERATOR_STRENGTH, held_out_images

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINTS["inpainter"],
                        help="the inpainter (default: the bundled one)")
    parser.add_argument("--max-images", type=int, help="use only the first N photos (quick checks)")
    parser.add_argument("--out", type=Path, default=HERE / "fill.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    clean, images = held_out_images(args.max_images)
    inpainter, metadata = load_generator(args.checkpoint, "inpainter", device="cpu")
    fills = fill_comparison(clean, strength=OPERATOR_STRENGTH, inpainter=inpainter)
    wins = {op: max(v, key=v.get) for op, v in fills.items()}
    mean = {m: round(sum(v[m] for v in fills.values()) / len(fills), 2) for m in next(iter(fills.values()))}
    result = {"benchmark": "fill", "description": __doc__.split("\n\n")[0], "images": images,
              "operator_strength": OPERATOR_STRENGTH, "psnr_in_mask_db": fills, "best_per_operator": wins,
              "mean_over_operators_db": mean, "best_overall": max(mean, key=mean.get),
              "inpainter": {"checkpoint": str(args.checkpoint), "weights_sha256": weights_digest(args.checkpoint),
                            "model_config": metadata.get("model_config"), "losses": metadata.get("losses")},
              "machine": platform.platform(), "torch": torch.__version__,
              "seconds": round(time.perf_counter() - started, 1)}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n", overwrite=True)
    print(json.dumps({"psnr_in_mask_db": fills, "mean_over_operators_db": mean}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
