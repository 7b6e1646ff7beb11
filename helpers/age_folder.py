"""Build an aged data set on disk: DIR/aged/, DIR/clean/, DIR/masks/ and DIR/manifest.csv.

Shared by `python -m helpers age` and `data_prep/age_dataset.py`. Two properties matter for long runs:
- Resumable. Each finished file gets a manifest row; a rerun skips files whose row and outputs exist,
  and refuses to mix settings (DIR/age_settings.json) so a folder never holds two kinds of damage.
- Reproducible. A file's seed comes from (run seed, relative path), never from processing order, so
  any number of workers, interrupted or not, gives the same bytes; and
  `age_image(read(clean/F), preset, strength=strength, seed=seed)` re-creates aged/F from its row.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import signal
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import HelpersError, UsageError
from .cli import Report, info
from .io import (DEFAULT_MAX_PIXELS, ImageReadError, atomic_write_text, find_images, from_float, read_image,
                 to_float, to_gray, to_rgb, write_image)

MANIFEST_FIELDS = ["file", "class", "source", "seed", "preset", "strength", "params"]
OUTPUT_FOLDERS = ("aged", "clean", "masks")


@dataclass(frozen=True)
class AgeSettings:
    """What decides the bytes of a run; a resumed run must use the same."""

    presets: tuple[str, ...] = ("seed",)
    strength: float = 1.0
    seed: int = 0
    size: int = 256  # 0 keeps the original size
    gray: bool = True
    masks: bool = True


def prepare_clean(img: np.ndarray, size: int, gray: bool, rng: np.random.Generator | None = None
                  ) -> np.ndarray:
    """Gray or RGB float32 [0, 1], shorter side resized to `size`, then a size x size crop.

    The crop is centred, or placed by `rng` (training-time augmentation). size 0 keeps the image whole.
    """
    import cv2

    img = to_float(to_gray(img) if gray else to_rgb(img))
    if size <= 0:
        return img
    h, w = img.shape[:2]
    scale = size / min(h, w)
    if scale != 1.0:
        new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        img = np.clip(cv2.resize(img, (new_w, new_h), interpolation=interp), 0.0, 1.0)
        h, w = new_h, new_w
    if rng is None:
        top, left = (h - size) // 2, (w - size) // 2
    else:
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(img[top:top + size, left:left + size])


def file_seed(seed: int, relative_name: str) -> int:
    """A 63-bit seed from the run seed and the file's relative output name, independent of order."""
    digest = hashlib.sha256(f"{seed}/{relative_name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def choose_preset(presets: tuple[str, ...], seed: int) -> str:
    """Mixed presets: the file's seed picks one, so the choice too survives a resume."""
    return presets[seed % len(presets)]


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def class_of(relative_name: str) -> str:
    """The immediate parent folder (an ImageFolder class such as n01440764), or '' for flat inputs."""
    parent = Path(relative_name).parent
    return "" if str(parent) == "." else parent.name


# --------------------------------------------------------------------------- which files, named how

def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if any(c in p for c in "*?["))]]
    return Path(*fixed) if fixed else Path(".")


def named_inputs(sources: list[str], out: Path, report: Report) -> list[tuple[Path, str]]:
    """(input path, relative output name ending in .png) for every image, keeping subfolders.

    A folder's images are named relative to that folder, a glob's relative to its fixed prefix, a
    file by its name; two inputs that would share one output name are reported, the first wins.
    """
    named: list[tuple[Path, str]] = []
    taken: dict[str, Path] = {}
    seen: set[Path] = set()
    for source in sources:
        images, problems = find_images([source], exclude=[out])
        for item, reason in problems:
            report.fail(item, reason)
        is_glob = any(c in source for c in "*?[") and not Path(source).exists()
        root = _glob_root(source) if is_glob else Path(source) if Path(source).is_dir() else None
        for path in images:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                rel = path.relative_to(root) if root is not None else Path(path.name)
            except ValueError:
                rel = Path(path.name)
            name = rel.with_suffix(".png").as_posix()
            if name in taken:
                report.fail(path, f"its output name {name} is already used by {taken[name]}")
                continue
            taken[name] = path
            named.append((path, name))
    return named


def _first_per_class(named: list[tuple[Path, str]], limit: int) -> list[tuple[Path, str]]:
    kept, seen = [], Counter()
    for src, name in named:
        seen[class_of(name)] += 1
        if seen[class_of(name)] <= limit:
            kept.append((src, name))
    return kept


# --------------------------------------------------------------------------- manifest and settings

def read_manifest(path: Path) -> list[dict]:
    """Manifest rows, dropping a last line cut short by an interrupted run; a file that is no manifest at
    all (binary, not UTF-8, NUL bytes) is an error naming it."""
    if not path.is_file():
        return []
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if any(row.get(f) is None for f in MANIFEST_FIELDS):
                    continue
                try:
                    row["params"] = json.loads(row["params"])
                    row["seed"], row["strength"] = int(row["seed"]), float(row["strength"])
                except (ValueError, TypeError):
                    continue
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as err:
        raise HelpersError(f"{path}: not a readable manifest ({err}); use --overwrite or another --out") from None
    return rows


def _manifest_line(row: dict) -> str:
    import io

    buffer = io.StringIO()
    flat = dict(row, params=json.dumps(row["params"], default=_jsonable, sort_keys=True))
    csv.DictWriter(buffer, MANIFEST_FIELDS, lineterminator="\n").writerow(flat)
    return buffer.getvalue()


def _write_manifest(path: Path, rows: list[dict]) -> None:
    text = ",".join(MANIFEST_FIELDS) + "\n" + "".join(_manifest_line(r) for r in rows)
    atomic_write_text(path, text, overwrite=True)


def _outputs(out: Path, name: str, masks: bool) -> list[Path]:
    return [out / folder / name for folder in (OUTPUT_FOLDERS if masks else OUTPUT_FOLDERS[:2])]


def _check_settings(out: Path, settings: AgeSettings) -> bool:
    """True when `out` already holds a run of ours (same settings); refuses a different run."""
    settings_path = out / "age_settings.json"
    if not settings_path.is_file():
        if (out / "manifest.csv").exists():
            raise HelpersError(f"{out}: has a manifest.csv but no age_settings.json; use --overwrite or "
                               "another --out")
        return False
    try:
        stored = json.loads(settings_path.read_text(encoding="utf-8"))
        stored["presets"] = tuple(stored["presets"])
        previous = AgeSettings(**stored)
    except (ValueError, TypeError, KeyError) as err:
        raise HelpersError(f"{settings_path}: unreadable ({err}); use --overwrite or another --out") from None
    if previous != settings:
        diff = ", ".join(f"{k} {v!r} (now {getattr(settings, k)!r})" for k, v in asdict(previous).items()
                         if getattr(settings, k) != v)
        raise HelpersError(f"{out} was built with other settings: {diff}; resume with the same options, "
                           "or use --overwrite or another --out")
    return True


# --------------------------------------------------------------------------- the work for one file

def _age_one(task: tuple) -> tuple[str, object]:
    """Read, prepare, age and write one file; ('ok', row) or ('fail', (path, reason))."""
    from .aging import age_image

    src, name, out, settings, overwrite, max_pixels = task
    try:
        seed = file_seed(settings.seed, name)
        preset = choose_preset(settings.presets, seed)
        img = read_image(src, max_pixels=max_pixels)
        _check_resized_pixels(src, img.shape[:2], settings.size, max_pixels)
        clean = to_float(from_float(prepare_clean(img, settings.size, settings.gray)))
        del img
        result = age_image(clean, preset, strength=settings.strength, seed=seed)
        images = [from_float(result.image), from_float(clean), result.mask.astype(np.uint8) * 255]
        for path, img in zip(_outputs(out, name, settings.masks), images):
            write_image(path, img, overwrite=overwrite, protected=[src])
    except HelpersError as err:  # ImageReadError, ImageWriteError
        return "fail", (str(src), str(err))
    except Exception as err:  # a bug in one operator must not end a 10,000-file run silently
        return "fail", (str(src), f"{type(err).__name__}: {err}")
    return "ok", {"file": name, "class": class_of(name), "source": str(src), "seed": seed,
                  "preset": preset, "strength": settings.strength, "params": result.params}


def _check_resized_pixels(src: Path, shape: tuple[int, int], size: int, max_pixels: int) -> None:
    """--size scales the shorter side, so a long photo grows past size x size on the way to its crop; that
    intermediate is held to the same pixel limit as reading (an enormous --size would exhaust memory)."""
    if size <= 0:
        return
    height, width = shape
    scale = size / min(height, width)
    pixels = max(size, round(width * scale)) * max(size, round(height * scale))
    if pixels > max_pixels:
        raise ImageReadError(f"{src}: resizing to --size {size} makes {pixels:,} pixels, which exceeds the limit "
                             f"of {max_pixels:,} (raise it with --max-pixels, or choose a smaller --size)")


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV's own threads would oversubscribe
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent alone answers


WORKER_DIED = ("a worker process died while this file was queued or being aged (killed, for example by the "
               "out-of-memory killer); rerun the same command to resume, with fewer --workers or a smaller --size")


def _results(tasks: list[tuple], workers: int):
    """('ok', row) or ('fail', (path, reason)) for every task, in the order they finish.

    A worker that dies (SIGKILL from the out-of-memory killer) breaks the pool: every file not yet done
    fails with that reason and the run ends, rather than waiting forever for a result that never comes.
    """
    if workers <= 1 or len(tasks) < 2:
        yield from map(_age_one, tasks)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: safe after torch or a notebook kernel has started threads, the same on every OS.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
    try:
        futures = {pool.submit(_age_one, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # BrokenProcessPool, or a result that could not come back
                from concurrent.futures.process import BrokenProcessPool

                reason = WORKER_DIED if isinstance(err, BrokenProcessPool) else f"{type(err).__name__}: {err}"
                yield "fail", (str(futures[future][0]), reason)
    finally:  # on an interrupt too: queued files are dropped, not aged after the fact
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- the whole run

def validate(settings: AgeSettings) -> None:
    from .aging import PRESETS

    unknown = [p for p in settings.presets if p not in PRESETS]
    if unknown or not settings.presets:
        raise UsageError(f"unknown preset {', '.join(unknown) or '(none)'}; choose from {', '.join(PRESETS)}")
    if not 0.0 <= settings.strength <= 1.0:
        raise UsageError(f"--strength must be in [0, 1], got {settings.strength}")
    if settings.size < 0:
        raise UsageError(f"--size must be 0 (keep) or positive, got {settings.size}")


def _check_size(settings: AgeSettings, max_pixels: int) -> None:
    if settings.size * settings.size > max_pixels:
        raise UsageError(f"--size {settings.size} makes {settings.size ** 2:,} pixels per image, more than "
                         f"--max-pixels {max_pixels:,}")


def _lock(out: Path):
    """Hold `out` for this run: a second run would rewrite the manifest without the first one's rows, so
    it is refused at once, with the reason, rather than silently dropping files from the data set."""
    from filelock import FileLock, Timeout

    lock = FileLock(out / ".age.lock")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:  # an OSError too, so first
        raise HelpersError(f"{out}: another age run is writing into this folder; wait for it to end (then rerun "
                           "to add these files) or choose another --out") from None
    except OSError as err:
        raise HelpersError(f"{out}: cannot write to the output folder ({err.strerror or err})") from None
    return lock


def age_folder(sources: list[str], out: str | Path, settings: AgeSettings = AgeSettings(), *,
               workers: int = 2, overwrite: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
               limit_per_class: int | None = None, progress: bool = True, report: Report | None = None
               ) -> Report:
    """Age every image of `sources` (files, folders, globs) into `out`; see the module docstring.

    `limit_per_class` keeps the first N images (in name order) of each class folder, for trial runs.
    Per-file problems are recorded in the returned Report (exit 1); bad options raise UsageError.
    """
    validate(settings)
    _check_size(settings, max_pixels)
    report = report if report is not None else Report()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    for source in sources:
        if Path(source).is_dir() and Path(source).resolve() == out.resolve():
            raise UsageError(f"--out {out} is an input folder; choose a separate output folder")
    named = named_inputs(list(map(str, sources)), out, report)
    if limit_per_class is not None:
        named = _first_per_class(named, limit_per_class)
    if not named:
        raise HelpersError(f"no images found in {', '.join(map(str, sources))}")

    lock = _lock(out)
    try:
        return _age_locked(named, out, settings, workers=workers, overwrite=overwrite, max_pixels=max_pixels,
                           progress=progress, report=report)
    finally:
        lock.release()


def _age_locked(named: list[tuple[Path, str]], out: Path, settings: AgeSettings, *, workers: int,
                overwrite: bool, max_pixels: int, progress: bool, report: Report) -> Report:
    """The run itself, while this process holds `out`."""
    from tqdm.auto import tqdm

    ours = False if overwrite else _check_settings(out, settings)
    manifest_path = out / "manifest.csv"
    done = {} if overwrite else {r["file"]: r for r in read_manifest(manifest_path)
                                 if all(p.is_file() for p in _outputs(out, r["file"], settings.masks))}
    tasks = [(src, name, out, settings, overwrite or ours, max_pixels)
             for src, name in named if name not in done]
    info(f"age: {len(named)} images, {len(named) - len(tasks)} already done, {len(tasks)} to age "
         f"into {out} ({workers} workers)")

    atomic_write_text(out / "age_settings.json", json.dumps(asdict(settings), indent=2), overwrite=True)
    _write_manifest(manifest_path, sorted(done.values(), key=lambda r: r["file"]))  # drops a cut line
    written = 0
    try:
        with open(manifest_path, "a", encoding="utf-8", newline="") as manifest, \
                tqdm(total=len(tasks), desc="aging", unit="img", disable=not progress, file=sys.stderr) as bar:
            for status, value in _results(tasks, workers):
                if status == "ok":
                    done[value["file"]] = value
                    manifest.write(_manifest_line(value))
                    manifest.flush()
                    written += 1
                else:
                    report.fail(*value)
                bar.update(1)
    finally:  # sorted, so a resumed run ends with the same manifest as an uninterrupted one
        _write_manifest(manifest_path, sorted(done.values(), key=lambda r: r["file"]))

    report.payload.update({
        "out": str(out), "found": len(named), "written": written, "already_done": len(named) - len(tasks),
        "failed": len(report.failures), "manifest": str(manifest_path),
        "classes": dict(sorted(Counter(r["class"] for r in done.values()).items())),
        "settings": asdict(settings),
    })
    info(f"age: wrote {written}, skipped {len(named) - len(tasks)} already done, "
         f"{len(report.failures)} failed")
    return report
