"""`python -m helpers restore SRC... --out DIR`: restore damaged photos with the U-Net (bundled checkpoint),
the study's seed DCGAN, or the classical OpenCV baseline. See helpers/restore.py for what it guarantees."""

from __future__ import annotations

from pathlib import Path

from .. import HelpersError, UsageError
from ..io import DEFAULT_MAX_PIXELS
from ..restore import DEFAULT_OVERLAP, DEFAULT_TILE, MODELS


def add_arguments(parser):
    parser.add_argument("sources", nargs="+", metavar="SRC", help="image files, folders (recursive) or globs")
    parser.add_argument("--out", required=True, help="output folder; it mirrors the inputs' folder tree")
    parser.add_argument("--model", default="unet", choices=MODELS,
                        help="restorer (default unet, with the bundled checkpoint)")
    parser.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the bundled one")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE,
                        help=f"tile size for large scans, 0 = whole image at once (default {DEFAULT_TILE}; "
                             "the seed DCGAN always uses 256x256 tiles)")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                        help=f"width of the blend between neighbouring tiles (default {DEFAULT_OVERLAP})")
    parser.add_argument("--save-mask", action="store_true", help="also write NAME_mask.png, the damage found")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--rgb", action="store_true", help="write RGB even for gray inputs")
    parser.add_argument("--keep-depth", action="store_true", help="16-bit inputs give 16-bit outputs")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="accept a .pt/.pth checkpoint (read with weights_only=True); only for files you trust")
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    from ..checkpoints import PICKLE_SUFFIXES
    from ..restore import load_restorer, restore_files

    if args.tile < 0 or args.overlap < 0 or args.max_pixels < 1:
        raise UsageError("--tile and --overlap must be >= 0 and --max-pixels >= 1")
    if args.tile and args.overlap * 2 >= args.tile:
        raise UsageError(f"--overlap {args.overlap} must be less than half of --tile {args.tile}")
    if args.checkpoint and Path(args.checkpoint).suffix.lower() in PICKLE_SUFFIXES and not args.trust_pickle:
        raise HelpersError(f"{args.checkpoint}: pickle checkpoints can run code when loaded; refused (use a "
                           ".safetensors checkpoint, or --trust-pickle for a file you trust: it is then read "
                           "with torch.load(weights_only=True))")
    restorer = load_restorer(args.model, args.checkpoint, trust_pickle=args.trust_pickle, device=args.device)
    return restore_files(args.sources, args.out, restorer, tile=args.tile, overlap=args.overlap,
                         save_mask=args.save_mask, overwrite=args.overwrite, rgb=args.rgb,
                         keep_depth=args.keep_depth, max_pixels=args.max_pixels, progress=not args.quiet)
