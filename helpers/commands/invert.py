"""`python -m helpers invert SRC --degradation NAME --out DIR`: restore one photo by StyleGAN inversion.

Writes DIR/<stem>_restored.png (the generator's resolution), DIR/<stem>_strip.png (observation, f̂ of
the result, the image after each phase), DIR/<stem>_loss.png and DIR/<stem>_inversion.json.
Without --generator a small random generator is used: the command runs end to end, but its pictures
are not restorations of anything, and it says so.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from .. import HelpersError, UsageError
from ..cli import Report, device_option, info, out_folder

BANNER = ("!" * 78 + "\n!! No --generator given: using a small RANDOM StyleGAN2. The pipeline runs, but the\n"
          "!! result is NOT a restoration of your photo and is not meaningful. Pass FFHQ weights\n"
          "!! (--generator stylegan2-ffhq-config-f.pt, an NVIDIA .pkl or our .safetensors).\n" + "!" * 78)


def add_arguments(parser):
    parser.add_argument("source", metavar="SRC", help="the photo to restore (cropped to a centred square)")
    parser.add_argument("--degradation", required=True,
                        help="upsampling[:F], denoising[:PHOTONS], deartifacting[:QUALITY], inpainting, "
                             "old-photo, or several joined with '+'")
    parser.add_argument("--out", required=True, type=out_folder, help="output folder")
    parser.add_argument("--generator", help="StyleGAN2 weights: .safetensors, rosinality .pt, NVIDIA .pkl")
    parser.add_argument("--steps", default=None, help="steps of phases W,W+,W++ (default 150,150,150)")
    parser.add_argument("--lrs", default="0.08,0.02,0.005", help="learning rates of the three phases")
    parser.add_argument("--mask", help="damage mask image, white = destroyed (inpainting, old-photo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mean latent and random generator")
    parser.add_argument("--device", type=device_option, default=None,
                        help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _triple(text: str, kind, what: str):
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or any(v < 0 for v in values):
        raise UsageError(f"--{what} needs three non-negative numbers separated by commas, not {text!r}")
    return values


def _generator(args):
    from ..models.stylegan2 import compact_config, random_generator, tiny_config
    from ..stylegan_weights import load_generator
    from .. import env

    if args.generator:
        return load_generator(args.generator), False
    info(BANNER)
    config = tiny_config(64) if env.quick_mode() else compact_config(256)
    return random_generator(config, seed=args.seed), True


def run(args):
    import torch

    from .. import env
    from ..degradations import make_degradation
    from ..invert import (STRIP_LABELS, align_square, comparison_strip, image_tensor, invert,
                          loss_curve_figure, to_numpy)
    from ..io import atomic_write_bytes, atomic_write_text, read_image, to_float, to_gray, write_image

    default_steps = "10,10,10" if env.quick_mode() else "150,150,150"
    steps = _triple(args.steps or default_steps, int, "steps")
    lrs = _triple(args.lrs, float, "lrs")
    source, out = Path(args.source), Path(args.out)
    stem, protected = source.stem, [source] + ([Path(args.mask)] if args.mask else [])
    paths = {"restored": out / f"{stem}_restored.png", "strip": out / f"{stem}_strip.png",
             "loss_curve": out / f"{stem}_loss.png", "json": out / f"{stem}_inversion.json"}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.overwrite:  # say so before minutes of work, not after
        raise HelpersError(f"{existing[0]}: already exists (use --overwrite to replace it)")
    generator, random_weights = _generator(args)
    generator = generator.to(env.device(args.device))
    size = generator.size

    mask = None
    if args.mask:
        mask_img, note = align_square(to_gray(read_image(args.mask)), size)
        mask = torch.from_numpy(to_float(mask_img) > 0.5).float()
    degradation = make_degradation(args.degradation, mask=mask)
    side = degradation.observation_size(size)
    img, note = align_square(read_image(source), side)
    if note:
        info(f"warning: {source}: {note} to fit the {size} px generator ({degradation.name} observes {side} px)")
    observation = image_tensor(img)

    result = invert(generator, observation, degradation, steps=steps, lrs=lrs, seed=args.seed,
                    progress=not args.quiet)
    write_image(paths["restored"], to_numpy(result.image), overwrite=args.overwrite, protected=protected)
    write_image(paths["strip"], comparison_strip(observation, result, degradation),
                overwrite=args.overwrite, protected=protected)
    png = io.BytesIO()
    loss_curve_figure(result, f"{stem}: {degradation.name}").savefig(png, format="png", dpi=100)
    atomic_write_bytes(paths["loss_curve"], png.getvalue(), overwrite=args.overwrite, protected=protected)
    payload = {
        "source": str(source), "degradation": degradation.describe(), "generator": args.generator or "random",
        "meaningful": not random_weights, "generator_size": size, "observation_size": side,
        "alignment": note, "steps": list(steps), "lrs": list(lrs), "seed": args.seed,
        "loss": result.loss_kind, "final_losses": result.final_losses(), "seconds": round(result.seconds, 2),
        "strip_panels": list(STRIP_LABELS), "outputs": {k: str(v) for k, v in paths.items()},
    }
    atomic_write_text(paths["json"], json.dumps(payload, indent=2) + "\n", overwrite=args.overwrite,
                      protected=protected)
    info(f"{source}: restored in {result.seconds:.1f} s -> {paths['restored']}"
         + ("  (random generator: NOT meaningful)" if random_weights else ""))
    return Report(payload)
