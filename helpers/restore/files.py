"""Restore files and folders: `restore_files` never writes over an input, replaces an existing output only
with `overwrite`, writes atomically, mirrors the input folders' relative tree in the output folder, never
reads its own outputs back (an output folder inside an input folder is skipped), and reports each bad input
with its reason while going on with the others.

Masks the user drew (`masks`): the detector misses some damage and mistakes some thin posts or legs for
scratches, and no threshold suits every photo. So the masks `--save-mask` wrote can be edited in any paint
program (white: damage) and handed back: the pipeline then repairs exactly what they mark. A folder of
masks is laid out as --save-mask wrote it (OUT/REL_mask.png for the output OUT/REL.png); a single mask file
goes with a single photo.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .. import HelpersError, UsageError
from ..cli import Report, info
from ..io import (DEFAULT_MAX_PIXELS, ImageReadError, ImageWriteError, find_images, frame_count, read_image,
                  to_float, to_gray, write_image)
from .restorers import DEFAULT_OVERLAP, DEFAULT_TILE, Restorer, restore_image


def _glob_base(pattern: str) -> Path:
    parts = []
    for part in Path(pattern).parts:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def mask_path(target: Path) -> Path:
    """Where --save-mask puts the damage mask of the output `target`."""
    return target.with_name(target.stem + "_mask.png")


def plan_outputs(sources: list[str], out_dir: Path, report: Report, *, save_mask: bool = False
                 ) -> list[tuple[Path, Path]]:
    """(input, output) pairs: each output mirrors its input's path relative to the folder (or glob base)
    it was found under, as .png; names that would collide keep their old suffix (a.jpg -> a.jpg.png).
    Two inputs that would still share an output (a/x.png and b/x.png given as files), or whose output is
    another's mask, cannot both be kept: the later one is reported, naming the first, and the first wins."""
    out_dir = Path(out_dir)
    for source in sources:
        if Path(source).is_dir() and Path(source).resolve() == out_dir.resolve():
            raise UsageError(f"--out {out_dir} is an input folder; choose another folder for the outputs")
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for source in sources:
        images, problems = find_images([source], exclude=[out_dir])
        for item, reason in problems:
            report.fail(item, reason)
        if not images and not problems:
            report.fail(source, f"inside the output folder {out_dir}; skipped so outputs are never read back")
        is_pattern = any(ch in source for ch in "*?[") and not Path(source).exists()
        base = _glob_base(source) if is_pattern else Path(source) if Path(source).is_dir() else None
        for path in images:
            key = _resolved(path)
            if key in seen:
                continue
            seen.add(key)
            found.append((path, path.relative_to(base) if base is not None else Path(path.name)))
    spellings: dict[Path, set[Path]] = {}  # x.png <- {x.jpg, x.png}: those keep their suffix
    for _, rel in found:
        spellings.setdefault(rel.with_suffix(".png"), set()).add(rel)
    pairs: list[tuple[Path, Path]] = []
    owners: dict[Path, Path] = {}
    for path, rel in found:
        name = rel.with_suffix(".png")
        target = out_dir / (name if len(spellings[name]) == 1 else rel.with_name(rel.name + ".png"))
        claimed = [target, mask_path(target)] if save_mask else [target]
        first = next((owners[c] for c in claimed if c in owners), None)
        if first is not None:
            report.fail(path, f"its output {target} would also be the output of {first}; restore one of them "
                              "into another --out folder, or pass their parent folder to keep both names apart")
            continue
        owners.update(dict.fromkeys(claimed, path))
        pairs.append((path, target))
    return pairs


def damage_mask_path(masks: Path, target: Path, out_dir: Path) -> Path:
    """The user's mask for the output `target`: `masks` itself when it is a file, else where --save-mask
    would have written it had `masks` been the output folder."""
    return masks if masks.is_file() else mask_path(masks / target.relative_to(out_dir))


def read_damage_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """H x W bool: the pixels drawn lighter than mid-gray in the mask image at `path`, which must have the
    photo's size (`shape`: the photo's array shape)."""
    if not path.is_file():
        raise ImageReadError(f"{path}: no damage mask for this photo (--mask)")
    drawn = to_float(to_gray(read_image(path)))
    if drawn.shape != tuple(shape[:2]):
        raise ImageReadError(f"{path}: the mask is {drawn.shape[1]}x{drawn.shape[0]}, the photo "
                             f"{shape[1]}x{shape[0]}; a mask must match its photo pixel for pixel")
    return drawn > 0.5


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        return path.absolute()


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise HelpersError(f"{out_dir}: cannot write to the output folder ({err.strerror or err})") from None


def restore_files(sources: list[str], out_dir: str | Path, restorer: Restorer, *, tile: int = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP, save_mask: bool = False, overwrite: bool = False,
                  rgb: bool = False, keep_depth: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                  masks: str | Path | None = None, progress: bool = True, report: Report | None = None) -> Report:
    """Restore every image under `sources` (files, folders, globs) into `out_dir`, repairing what `masks`
    (a mask file or folder) marks when given; see the module doc."""
    from tqdm.auto import tqdm

    report = report or Report()
    out_dir = Path(out_dir)
    if save_mask and not restorer.has_mask:
        raise UsageError(f"--save-mask: the {restorer.name} model predicts no damage mask")
    if masks is not None:
        masks = Path(masks)
        if not restorer.takes_mask:
            raise UsageError(f"--mask: the {restorer.name} model repairs what it finds itself; masks need the pipeline")
        if not masks.exists():
            raise HelpersError(f"{masks}: no such mask file or folder (--mask)")
    pairs = plan_outputs(sources, out_dir, report, save_mask=save_mask)
    if masks is not None and masks.is_file() and len(pairs) > 1:
        raise UsageError(f"--mask {masks} is one mask for {len(pairs)} photos; give a folder of masks laid out as "
                         "--save-mask writes them")
    user_masks = {} if masks is None else {target: damage_mask_path(masks, target, out_dir) for _, target in pairs}
    # once, not once per write: scans come by thousands; the user's masks are inputs too
    inputs = {_resolved(path) for path, _ in pairs} | {_resolved(path) for path in user_masks.values()}
    if pairs:
        _check_writable(out_dir)
    outputs = []
    for path, target in tqdm(pairs, desc="restore", unit="image", disable=not progress):
        mask_target = mask_path(target)
        clash = next((t for t in (target, mask_target) if _resolved(t) in inputs), None)
        if clash is not None:
            report.fail(path, f"{clash}: refusing to write over an input file")
            continue
        if not overwrite and (target.exists() or (save_mask and mask_target.exists())):
            existing = target if target.exists() else mask_target
            report.fail(path, f"{existing}: already exists (use --overwrite to replace it)")
            continue
        started = time.perf_counter()
        try:
            img = read_image(path, max_pixels=max_pixels)
            damage = read_damage_mask(user_masks[target], img.shape) if user_masks else None
            notes = {}
            restored, mask = restore_image(img, restorer, tile=tile, overlap=overlap, rgb=rgb,
                                           keep_depth=keep_depth, damage=damage, notes=notes)
            protected = [path, user_masks[target]] if user_masks else [path]
            write_image(target, restored, overwrite=overwrite, protected=protected)
            if save_mask:
                write_image(mask_target, mask, overwrite=overwrite, protected=protected)
        except (ImageReadError, ImageWriteError) as err:
            report.fail(path, str(err))
            continue
        except MemoryError:
            report.fail(path, "out of memory (try a smaller --tile)")
            continue
        outputs.append({"input": str(path), "output": str(target), "mask": str(mask_target) if save_mask else None,
                        "damage_mask": str(user_masks[target]) if user_masks else None,
                        "size": [int(img.shape[1]), int(img.shape[0])], "dtype": str(restored.dtype),
                        "seconds": round(time.perf_counter() - started, 3)})
        if notes:  # the pipeline's: what each stage decided for this photo
            outputs[-1]["stages"] = notes
        frames = frame_count(path)
        if frames > 1:  # an animation or a multi-page scan: say what was left out rather than drop it quietly
            outputs[-1]["note"] = f"only the first of {frames} frames (or pages) was restored"
            info(f"note: {path}: {outputs[-1]['note']}")
    info(f"restored {len(outputs)} of {len(pairs)} image(s) into {out_dir}"
         + (f"; {len(report.failures)} problem(s) listed above" if report.failures else ""))
    toned = [Path(o["input"]).name for o in outputs if o.get("stages", {}).get("tone", {}).get("mode") == "auto"
             and o["stages"]["tone"]["kept"] > 0]
    if toned:  # the one stage whose call no pixel settles (docs/pipeline_experiments.md, 'Tone judge')
        info(f"tone corrected (the blacks had lifted, as fading lifts them) on {len(toned)}: "
             f"{', '.join(toned[:5])}{', ...' if len(toned) > 5 else ''}; if a light or matte look was intended, "
             "restore those with --tone off")
    report.payload.update({"model": restorer.name, "checkpoint": restorer.metadata.get("checkpoint"),
                           "out": str(out_dir), "tile": tile, "overlap": overlap, "outputs": outputs})
    return report
