"""`python -m helpers demo [--out DIR]`: age the bundled samples with every preset, restore them with the bundled
U-Net and the classical baseline, restore the bundled real old photos; grid PNGs, a slider page, metrics JSON."""

from __future__ import annotations

from ..cli import out_folder


def add_arguments(parser):
    parser.add_argument("--out", default="demo_output", type=out_folder, help="output folder (default demo_output/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the aging draws")
    parser.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier demo")


def run(args):
    from ..cli import Report
    from ..demo import run_demo

    return Report(payload=run_demo(args.out, seed=args.seed, overwrite=args.overwrite))
