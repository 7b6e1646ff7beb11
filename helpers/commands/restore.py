"""`python -m helpers restore SRC... --out DIR`: repair damaged photos with the pipeline (deblock, detect, tone,
fill, focus; the bundled stages), or, for comparison, the single U-Net, the study's seed DCGAN or the
classical OpenCV baseline. See helpers/restore/ for what it guarantees."""

from __future__ import annotations

from pathlib import Path

from .. import HelpersError, UsageError
from ..cli import device_option, out_folder
from ..io import DEFAULT_MAX_PIXELS
from ..restore import DEFAULT_OVERLAP, DEFAULT_TILE, MODELS


def add_arguments(parser):
    parser.add_argument("sources", nargs="+", metavar="SRC", help="image files, folders (recursive) or globs")
    parser.add_argument("--out", required=True, type=out_folder,
                        help="output folder; it mirrors the inputs' folder tree")
    parser.add_argument("--model", choices=MODELS,
                        help="restorer (default: the model a lone --checkpoint holds, else pipeline: deblock, "
                             "detect, tone, fill, focus, with the bundled stages)")
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="a .safetensors checkpoint instead of the bundled one; for the pipeline, a deblocker, "
                             "a detector, a speck finder, a verifier, a blender, a U-Net (it guides the tone "
                             "stage) or, with --fill learned, an inpainter checkpoint (repeat for several). A lone "
                             "U-Net checkpoint restores with the U-Net alone unless --model pipeline")
    parser.add_argument("--fill", default="telea", choices=["telea", "ns", "learned"],
                        help="pipeline: inpainting of the detected damage: OpenCV's Telea or Navier-Stokes, or the "
                             "learned inpainter (default telea)")
    parser.add_argument("--tone", default="auto", choices=["auto", "on", "off"],
                        help="pipeline: correct the tone when its gate finds it damaged (auto, default), always "
                             "(on), or never (off: for a photo whose matte or dark look is intended)")
    parser.add_argument("--focus", default="auto", choices=["auto", "off"],
                        help="pipeline: sharpen a photo whose edges read soft (auto, default) or never (off: for a "
                             "soft focus that is intended)")
    parser.add_argument("--deblock", default="auto", choices=["auto", "off"],
                        help="pipeline: take out the 8x8 blocks of a JPEG-compressed scan when they show (auto, "
                             "default) or never (off)")
    parser.add_argument("--verify", default="off", choices=["off", "on"],
                        help="pipeline: fill every component the detectors mark (off, default), or only those the "
                             "verifier judges worth a fill (on: spares picture lines taken for scratches, such as "
                             "a building's cornices, but also leaves some real cracks on dark, grainy ground)")
    parser.add_argument("--rims", default="auto", choices=["auto", "off"],
                        help="pipeline: also fill the faint ends and rims of the damage found where the blender "
                             "network judges it helps (auto, default), or fill exactly the detected mask (off)")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE,
                        help=f"tile size for large scans, 0 = whole image at once (default {DEFAULT_TILE}; "
                             "the seed DCGAN always uses 256x256 tiles)")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                        help=f"width of the blend between neighbouring tiles (default {DEFAULT_OVERLAP})")
    parser.add_argument("--save-mask", action="store_true", help="also write NAME_mask.png, the damage found")
    parser.add_argument("--mask", metavar="MASKS",
                        help="pipeline: repair exactly the damage these masks mark (white) instead of what the "
                             "detector finds: a mask file for one photo, or a folder laid out as --save-mask "
                             "writes it (edit those masks, then pass their --out folder here)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--rgb", action="store_true", help="write RGB even for gray inputs")
    parser.add_argument("--keep-depth", action="store_true", help="16-bit inputs give 16-bit outputs")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="accept a .pt/.pth checkpoint (read with weights_only=True); only for files you trust")
    parser.add_argument("--device", type=device_option, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _model_of(checkpoints: list[str]) -> str:
    """The restorer a lone --checkpoint holds, else the pipeline: a user who hands over a U-Net (or seed
    DCGAN) checkpoint wants that model without also having to say --model. A pickle cannot be looked into
    before it is trusted, and an unreadable file has no model: both go to the U-Net's loader, which
    refuses them with the reason."""
    from ..checkpoints import PICKLE_SUFFIXES, read_metadata
    from ..restore.pipeline import OPTIONAL_STAGES, STAGES

    if len(checkpoints) != 1:
        return "pipeline"
    if Path(checkpoints[0]).suffix.lower() in PICKLE_SUFFIXES:
        return "unet"
    try:
        model = read_metadata(checkpoints[0]).get("model")
    except (HelpersError, OSError, ValueError):
        return "unet"
    if model in (STAGES + OPTIONAL_STAGES) and model not in MODELS:
        return "pipeline"
    return model if model in MODELS else "unet"


def run(args):
    from ..checkpoints import PICKLE_SUFFIXES
    from ..restore import load_restorer, restore_files
    from ..restore.pipeline import AT_MOST, OPTIONAL_STAGES, STAGES

    if args.tile < 0 or args.overlap < 0 or args.max_pixels < 1:
        raise UsageError("--tile and --overlap must be >= 0 and --max-pixels >= 1")
    if args.tile and args.overlap * 2 >= args.tile:
        raise UsageError(f"--overlap {args.overlap} must be less than half of --tile {args.tile}")
    for checkpoint in args.checkpoint:  # before anything is inferred from it
        if not Path(checkpoint).is_file():
            raise HelpersError(f"{checkpoint}: no such checkpoint file")
    if args.model is None:
        args.model = _model_of(args.checkpoint)
    if len(args.checkpoint) > (len(STAGES + OPTIONAL_STAGES) if args.model == "pipeline" else 1):
        raise UsageError(f"--checkpoint: the {args.model} model takes "
                         + (AT_MOST if args.model == "pipeline" else "one"))
    for checkpoint in args.checkpoint:
        if Path(checkpoint).suffix.lower() in PICKLE_SUFFIXES and not args.trust_pickle:
            raise HelpersError(f"{checkpoint}: pickle checkpoints can run code when loaded; refused (use a "
                               ".safetensors checkpoint, or --trust-pickle for a file you trust: it is then read "
                               "with torch.load(weights_only=True))")
    for option, value, default in (("--fill", args.fill, "telea"), ("--tone", args.tone, "auto"),
                                   ("--focus", args.focus, "auto"), ("--deblock", args.deblock, "auto"),
                                   ("--verify", args.verify, "off"), ("--rims", args.rims, "auto"),
                                   ("--mask", args.mask, None)):
        if value != default and args.model != "pipeline":
            raise UsageError(f"{option} applies to the pipeline only, not to {args.model}")
    if args.model == "pipeline":
        from ..restore.pipeline import load_pipeline

        restorer = load_pipeline(args.checkpoint or None, device=args.device, fill_method=args.fill, tone=args.tone,
                                 focus=args.focus, deblock=args.deblock, verify=args.verify,
                                 rims=args.rims)
    else:
        restorer = load_restorer(args.model, args.checkpoint[0] if args.checkpoint else None,
                                 trust_pickle=args.trust_pickle, device=args.device)
    return restore_files(args.sources, args.out, restorer, tile=args.tile, overlap=args.overlap,
                         save_mask=args.save_mask, overwrite=args.overwrite, rgb=args.rgb,
                         keep_depth=args.keep_depth, max_pixels=args.max_pixels, masks=args.mask,
                         progress=not args.quiet)
