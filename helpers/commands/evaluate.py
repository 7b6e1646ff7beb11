"""`python -m helpers evaluate --clean DIR --restored DIR [--damaged DIR]`: PSNR, SSIM, sharpness and noise
of restored photos against their clean originals, matched by relative path (the suffix may differ:
clean/a/x.jpg pairs with restored/a/x.png). With --damaged, the damaged inputs are scored too (the
"identity" baseline) and each row gets the gain over it. A table goes to stderr, --json prints all."""

from __future__ import annotations

from pathlib import Path

from .. import UsageError


def add_arguments(parser):
    parser.add_argument("--clean", required=True, help="folder of clean reference photos")
    parser.add_argument("--restored", required=True, help="folder of restored photos (same relative names)")
    parser.add_argument("--damaged", help="folder of the damaged inputs, scored as the identity baseline")
    parser.add_argument("--lpips", action="store_true",
                        help="add LPIPS (needs torchmetrics and AlexNet weights already on disk)")


def _by_stem(folder: Path, report) -> dict[str, Path]:
    """relative path without suffix -> file; a second file with the same stem is reported, not guessed."""
    from ..io import find_images

    images, problems = find_images([folder])
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


def run(args):
    from .. import metrics
    from ..cli import Report, info
    from ..io import ImageReadError, read_image

    report = Report()
    folders = {"clean": args.clean, "restored": args.restored, "damaged": args.damaged}
    for name, folder in folders.items():
        if folder and not Path(folder).is_dir():
            raise UsageError(f"--{name} {folder}: no such folder")
    clean = _by_stem(Path(args.clean), report)
    restored = _by_stem(Path(args.restored), report)
    damaged = _by_stem(Path(args.damaged), report) if args.damaged else {}
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
            row = {"image": key} | metrics.compare(reference, read_image(restored[key]))
            if lpips is not None:
                row["lpips"] = lpips(reference, read_image(restored[key]))
            if args.damaged:
                if key not in damaged:
                    report.fail(clean_path, f"no damaged image named {key}.* in {args.damaged}")
                    continue
                baseline = metrics.compare(reference, read_image(damaged[key]))
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
        mean = metrics.mean_rows(rows)[0]
        info(metrics.format_table(rows + [mean | {"image": f"mean of {len(rows)}"}], ["image", *columns]))
        report.payload["mean"] = {c: mean[c] for c in columns}
    report.payload.update({"clean": args.clean, "restored": args.restored, "damaged": args.damaged,
                           "count": len(rows), "images": rows})
    return report
