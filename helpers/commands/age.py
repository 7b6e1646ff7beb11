"""`python -m helpers age SRC... --out DIR`: age clean photos into (aged, clean, mask) training pairs.

Writes DIR/aged/, DIR/clean/, DIR/masks/ (with --masks) and DIR/manifest.csv; a rerun resumes.
"""

from __future__ import annotations

from ..cli import out_folder
from ..io import DEFAULT_MAX_PIXELS


def add_arguments(parser):
    parser.add_argument("sources", nargs="+", metavar="SRC", help="image files, folders or glob patterns")
    parser.add_argument("--out", required=True, type=out_folder,
                        help="output folder (aged/, clean/, masks/, manifest.csv)")
    parser.add_argument("--preset", default="seed",
                        help="aging preset, or several separated by commas to mix them per file "
                             "(seed, old-print, daguerreotype, mild, heavy; default seed)")
    parser.add_argument("--strength", type=float, default=1.0, help="overall damage strength in [0, 1]")
    parser.add_argument("--seed", type=int, default=0, help="run seed; each file's seed derives from it")
    parser.add_argument("--masks", action="store_true", help="also write damage masks to DIR/masks/")
    parser.add_argument("--size", type=int, default=256,
                        help="square output size: shorter side resized, centre crop; 0 keeps the size")
    parser.add_argument("--rgb", action="store_true", help="keep colour (default: grayscale as in the study)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (0 or 1: none)")
    parser.add_argument("--overwrite", action="store_true", help="redo every file and replace outputs")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse larger images (decompression bombs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    from ..age_folder import AgeSettings, age_folder

    settings = AgeSettings(presets=tuple(p.strip() for p in args.preset.split(",") if p.strip()),
                           strength=args.strength, seed=args.seed, size=args.size, gray=not args.rgb,
                           masks=args.masks)
    return age_folder(args.sources, args.out, settings, workers=args.workers, overwrite=args.overwrite,
                      max_pixels=args.max_pixels, progress=not args.quiet)
