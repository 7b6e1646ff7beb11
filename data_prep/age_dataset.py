"""Build the aged Imagenette of the study on disk: 256x256 grayscale (aged, clean, mask) triples.

    python data_prep/age_dataset.py --out aged_imagenette [--imagenette DIR] [--download] [--split both]

Imagenette comes from --imagenette (ImageFolder train/<wnid>/ and val/<wnid>/, or a flat folder), else
from the attached Kaggle input, else (with --download) kagglehub or torchvision. Writes
OUT/<split>/{aged,clean,masks}/<wnid>/*.png and OUT/<split>/manifest.csv; rerunning resumes.
Exit status 1 when any image could not be read (each is named). The logic lives in helpers.data.
"""

import argparse
import sys

from helpers.age_folder import AgeSettings
from helpers.cli import execute
from helpers.data import age_imagenette, imagenette_source


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder (one subfolder per split)")
    parser.add_argument("--imagenette", help="local Imagenette folder (default: Kaggle input or download)")
    parser.add_argument("--download", action="store_true", help="download Imagenette when not found")
    parser.add_argument("--split", choices=["train", "val", "both"], default="both")
    parser.add_argument("--preset", default="seed", help="preset, or several separated by commas")
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rgb", action="store_true", help="keep colour (default grayscale, as in the study)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit-per-class", type=int, help="first N images of each class (trial runs)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    args = parser.parse_args(argv)
    return execute(_age_imagenette, args)


def _age_imagenette(args):
    source = imagenette_source(args.imagenette, download=args.download)
    settings = AgeSettings(presets=tuple(args.preset.split(",")), strength=args.strength, seed=args.seed,
                           size=args.size, gray=not args.rgb, masks=True)
    splits = ("train", "val") if args.split == "both" else (args.split,)
    return age_imagenette(source, args.out, splits, settings, workers=args.workers,
                          overwrite=args.overwrite, limit_per_class=args.limit_per_class)


if __name__ == "__main__":
    sys.exit(main())
