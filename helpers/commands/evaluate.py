"""`python -m helpers evaluate --clean DIR --restored DIR [--damaged DIR]`: PSNR, SSIM, sharpness and noise
of restored photos against their clean originals, matched by relative path (the suffix may differ:
clean/a/x.jpg pairs with restored/a/x.png). With --damaged, the damaged inputs are scored too (the
"identity" baseline) and each row gets the gain over it. A table goes to stderr, --json prints all.

Numbers stay JSON: PSNR is capped at 100 dB (identical images would give infinity), a score that is
undefined for an image (the sharpness ratio of a flat photo) is null with the reason beside it, and the
mean says which images it had to leave out. A folder inside another (restore's --out inside its input
folder) is skipped when listing the outer one."""

from __future__ import annotations

import math
from pathlib import Path

from .. import UsageError

PSNR_CAP_DB = 100.0  # what torchmetrics-style reports give identical images instead of infinity
UNDEFINED = {"sharpness_ratio": "the clean photo is flat (no Laplacian variance), so sharper or blurrier is "
                                "undefined",
             "edge_contrast": "the clean photo is flat (no edges to compare)"}


def add_arguments(parser):
    parser.add_argument("--clean", required=True, help="folder of clean reference photos")
    parser.add_argument("--restored", required=True, help="folder of restored photos (same relative names)")
    parser.add_argument("--damaged", help="folder of the damaged inputs, scored as the identity baseline")
    parser.add_argument("--lpips", action="store_true",
                        help="add LPIPS (needs torchmetrics and AlexNet weights already on disk)")


def _by_stem(folder: Path, others: list[Path], report) -> dict[str, Path]:
    """relative path without suffix -> file; a second file with the same stem is reported, not guessed.
    The other folders of the run that lie inside `folder` are not entered."""
    from ..io import find_images

    inside = [o for o in others if o.resolve() != folder.resolve() and o.resolve().is_relative_to(folder.resolve())]
    images, problems = find_images([folder], exclude=inside)
    for item, reason in problems:
        report.fail(item, reason)
    found: dict[str, Path] = {}
    for path in images:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            report.fail(path, f"same name as {found[key]} apart from the suffix; which one to use is ambiguous")
            continue
        found[key] = path
    return found


def _folders(args) -> dict[str, Path]:
    folders = {name: Path(folder) for name, folder in
               (("clean", args.clean), ("restored", args.restored), ("damaged", args.damaged)) if folder}
    for name, folder in folders.items():
        if not folder.is_dir():
            raise UsageError(f"--{name} {folder}: no such folder")
    for first, second in (("clean", "restored"), ("clean", "damaged"), ("restored", "damaged")):
        if first in folders and second in folders and folders[first].resolve() == folders[second].resolve():
            raise UsageError(f"--{first} and --{second} are the same folder ({folders[first]}); every image "
                             "would be compared with itself")
    return folders


def _defined(row: dict) -> dict:
    """PSNR capped, undefined scores null with the reason under row['undefined']."""
    for column in ("psnr", "identity_psnr"):
        if column in row:
            row[column] = min(row[column], PSNR_CAP_DB)
    undefined = {c: UNDEFINED.get(c, "undefined for this image") for c, v in row.items()
                 if isinstance(v, float) and not math.isfinite(v)}
    row.update(dict.fromkeys(undefined))
    if undefined:
        row["undefined"] = undefined
    return row


def _means(rows: list[dict], columns: list[str]) -> tuple[dict, dict[str, list[str]]]:
    """The mean of each column over the images where it is defined, and the images left out of each."""
    from ..cli import info

    mean, left_out = {}, {}
    for column in columns:
        values = [row[column] for row in rows if row.get(column) is not None]
        mean[column] = sum(values) / len(values) if values else None
        missing = [row["image"] for row in rows if row.get(column) is None]
        if missing:
            left_out[column] = missing
            info(f"note: {column} left out of the mean for {len(missing)} image(s), where it is undefined: "
                 + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    return mean, left_out


def run(args):
    from .. import metrics
    from ..cli import Report, info
    from ..io import ImageReadError, read_image

    report = Report()
    folders = _folders(args)
    others = list(folders.values())
    clean = _by_stem(folders["clean"], others, report)
    restored = _by_stem(folders["restored"], others, report)
    damaged = _by_stem(folders["damaged"], others, report) if args.damaged else {}
    lpips = None
    if args.lpips:
        if metrics.lpips_weights() is None:
            raise UsageError(f"--lpips: {metrics.ALEXNET_WEIGHTS} is not in the torch hub cache (never downloaded)")
        lpips = metrics.Lpips()
    rows = []
    for key, clean_path in clean.items():
        if key not in restored:
            report.fail(clean_path, f"no restored image named {key}.* in {args.restored}")
            continue
        try:
            reference = read_image(clean_path)
            row = _defined({"image": key} | metrics.compare(reference, read_image(restored[key])))
            if lpips is not None:
                row["lpips"] = lpips(reference, read_image(restored[key]))
            if args.damaged:
                if key not in damaged:
                    report.fail(clean_path, f"no damaged image named {key}.* in {args.damaged}")
                    continue
                baseline = _defined(metrics.compare(reference, read_image(damaged[key])))
                row |= {"identity_psnr": baseline["psnr"], "identity_ssim": baseline["ssim"],
                        "psnr_gain": row["psnr"] - baseline["psnr"], "ssim_gain": row["ssim"] - baseline["ssim"]}
        except ImageReadError as err:
            report.fail(clean_path, str(err))
            continue
        except ValueError as err:  # sizes differ
            report.fail(clean_path, f"{restored[key]}: {err}")
            continue
        rows.append(row)
    for key in sorted(set(restored) - set(clean)):
        info(f"note: {restored[key]} has no clean reference; not scored")
    if not rows:
        info("no image pairs to score")
    else:
        columns = [c for c in ("psnr", "ssim", "sharpness_ratio", "noise", "lpips", "identity_psnr", "identity_ssim",
                               "psnr_gain", "ssim_gain") if c in rows[0]]
        mean, left_out = _means(rows, columns)
        info(metrics.format_table(rows + [mean | {"image": f"mean of {len(rows)}"}], ["image", *columns]))
        report.payload["mean"] = mean
        report.payload["left_out_of_mean"] = left_out
    report.payload.update({"clean": args.clean, "restored": args.restored, "damaged": args.damaged,
                           "count": len(rows), "images": rows})
    return report
