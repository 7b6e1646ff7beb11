"""Data sets: clean photos aged on the fly, pre-aged folders, Imagenette, and the bundled samples.

Every item is a triple of float32 tensors in [0, 1]: (aged C×H×W, clean C×H×W, mask 1×H×W with
1 = destroyed pixel). The GAN code converts to [-1, 1] at the model boundary, not here.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from . import HelpersError, UsageError, env
from .age_folder import MANIFEST_FIELDS, AgeSettings, age_folder, prepare_clean
from .cli import Report
from .io import DEFAULT_MAX_PIXELS, ImageReadError, find_images, read_image, to_float

# ------------------------------------------------------------------------------------------ Imagenette

IMAGENETTE_CLASSES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn",
    "n03417042": "garbage truck", "n03425413": "gas pump", "n03445777": "golf ball",
    "n03888257": "parachute",
}
IMAGENETTE_SPLIT_SIZES = {"train": 9469, "val": 3925}  # imagenette2, fast.ai's own split
KAGGLE_IMAGENETTE = "aniladepu/imagenette"  # holds imagenette/{train,val}/<wnid>/*.JPEG


def bundled_samples(kind: str = "clean") -> list[Path]:
    """The repository's small images: 'clean' photos (held out of training) or real 'old' ones."""
    if kind not in ("clean", "old"):
        raise UsageError(f"kind must be 'clean' or 'old', got {kind!r}")
    images, _ = find_images([env.samples_dir() / kind])
    return images


def _is_imagefolder(folder: Path) -> bool:
    return any((folder / split / wnid).is_dir() for split in ("train", "val") for wnid in IMAGENETTE_CLASSES)


def find_imagenette(root: str | Path, depth: int = 3) -> Path | None:
    """The folder holding train/ and val/ with wnid subfolders, searched up to `depth` levels below root.

    Kaggle mounts and archives nest it differently (imagenette2/, imagenette/imagenette/, ...).
    """
    root = Path(root)
    level = [root] if root.is_dir() else []
    for _ in range(depth + 1):
        for folder in level:
            if _is_imagefolder(folder):
                return folder
        level = [child for folder in level for child in sorted(folder.iterdir())
                 if child.is_dir() and not child.name.startswith(".")]
    return None


def imagenette_split(source: str | Path, split: str) -> Path:
    """The folder of one split: source/<split> for the ImageFolder layout, source itself when flat."""
    if split not in IMAGENETTE_SPLIT_SIZES:
        raise UsageError(f"split must be train or val, got {split!r}")
    source = Path(source)
    if not _is_imagefolder(source):
        return source
    if not (source / split).is_dir():
        raise HelpersError(f"{source}: has no {split}/ folder")
    return source / split


def _download_kaggle(handle: str) -> Path:
    try:
        import kagglehub  # only on Kaggle or where the user installed it
    except ImportError:
        raise HelpersError("kagglehub is not installed (pip install kagglehub), or pass a local Imagenette "
                           "folder") from None
    return Path(kagglehub.dataset_download(handle))


def _download_torchvision(root: Path) -> Path:
    from torchvision.datasets import Imagenette

    for split in IMAGENETTE_SPLIT_SIZES:  # downloads imagenette2.tgz (1.5 GB) once, extracts both splits
        Imagenette(root, split=split, size="full", download=True)
    return root / "imagenette2"


def imagenette_source(root: str | Path | None = None, *, download: bool = False,
                      kaggle_handle: str = KAGGLE_IMAGENETTE) -> Path:
    """Find Imagenette: a local folder (ImageFolder or flat), a Kaggle input, or a download.

    Order: `root` when given (a flat folder of images is accepted as is); the attached Kaggle input;
    then, only with download=True, kagglehub and finally torchvision's download into `root` or the
    working root. Without internet the downloads fail with the library's own message.
    """
    if root is not None and Path(root).is_dir():
        found = find_imagenette(root)
        if found is not None:
            return found
        if find_images([root])[0]:  # flat: any folder of images
            return Path(root)
    if env.on_kaggle():
        found = env.find_input("imagenette", required=not download)  # attached, in any mount layout
        if found is not None:
            return found
    if not download:
        where = root if root is not None else env.input_root()
        raise HelpersError(f"no Imagenette found in {where} (expected train/<wnid>/ and val/<wnid>/ "
                           "folders or a folder of images); pass --download to fetch it")
    if env.on_kaggle() or _has_module("kagglehub"):
        found = find_imagenette(_download_kaggle(kaggle_handle), depth=4)
        if found is not None:
            return found
    target = Path(root) if root is not None else env.working_root() / "imagenette"
    return _download_torchvision(target)


def age_imagenette(source: str | Path, out: str | Path, splits: Sequence[str] = ("train", "val"),
                   settings: AgeSettings = AgeSettings(masks=True), **age_options) -> Report:
    """Age Imagenette split by split into out/<split>/ (aged/, clean/, masks/, manifest.csv each).

    A flat folder has no splits: everything goes to out/all/. `age_options` go to `age_folder`
    (workers, overwrite, limit_per_class, progress...). Failures of every split are in one Report.
    """
    source, out, report = Path(source), Path(out), Report()
    folders = ({split: imagenette_split(source, split) for split in splits} if _is_imagefolder(source)
               else {"all": source})
    report.payload = {"source": str(source), "out": str(out), "splits": {}}
    for split, folder in folders.items():
        split_report = age_folder([str(folder)], out / split, settings, **age_options)
        report.failures += split_report.failures
        report.payload["splits"][split] = split_report.payload
    return report


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ----------------------------------------------------------------------------- aged on the fly

def _header_problem(path: Path, max_pixels: int) -> str | None:
    """Why a file cannot be used, judged from its header only (fast on 10,000 files), or None."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception as err:  # PIL raises many types for junk; any of them means unusable
        return f"{path}: not a readable image ({type(err).__name__})"
    if width * height > max_pixels:
        return f"{path}: {width}x{height} exceeds the limit of {max_pixels:,} pixels"
    return None


def _usable_files(files: list[Path], check: str, max_pixels: int) -> tuple[list[Path], list[str]]:
    usable, skipped = [], []
    for path in files:
        if check == "full":
            try:
                read_image(path, max_pixels=max_pixels)
                problem = None
            except ImageReadError as err:
                problem = str(err)
        else:
            problem = _header_problem(path, max_pixels)
        (skipped if problem else usable).append(problem or path)
    return usable, skipped


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    array = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def vary_exposure(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clean photo as another exposure of the same scene: a gamma and a gain (highlights clip to white,
    as in a product shot on a white ground). Photo collections lean to mid-tones, and the damage detector
    trained on them alone found no dust at all on a ground brighter than 0.85 (0.92 recall at 0.8)."""
    gamma, gain = np.exp(rng.uniform(-0.5, 0.5)), np.exp(rng.uniform(-0.4, 0.5))
    return np.clip(gain * np.power(clean, gamma, dtype=np.float32), 0.0, 1.0).astype(np.float32)


class AgedDataset(torch.utils.data.Dataset):
    """Clean photos from any folder or file list, aged freshly for every item.

    Item i of epoch e with seed s is always the same triple (its generator is seeded with (s, e, i)),
    so runs are reproducible while each epoch, after `set_epoch(e)`, sees new damage. Unreadable files
    are dropped at construction (`skipped` lists why); check='full' decodes every file instead of
    reading headers only. `crop` cuts a crop x crop window (random when training) out of the aged
    size x size image: small windows train faster while the damage keeps the scale it has at `size`.
    `exposure`: the share of training items whose clean photo is first re-exposed (`vary_exposure`).
    Works in DataLoader workers (the state is plain data).
    """

    def __init__(self, source: str | Path | Iterable[str | Path], *, size: int = 256, gray: bool = True,
                 presets: str | Sequence[str] = "seed", strength: float | tuple[float, float] = (0.5, 1.0),
                 seed: int = 0, train: bool = False, check: str = "header",
                 max_pixels: int = DEFAULT_MAX_PIXELS, crop: int | None = None, exposure: float = 0.0):
        from .aging import RECIPES

        sources = [source] if isinstance(source, (str, Path)) else list(source)
        self.presets = (presets,) if isinstance(presets, str) else tuple(presets)
        unknown = [p for p in self.presets if p not in RECIPES]
        if unknown or not self.presets:
            raise UsageError(f"unknown preset {', '.join(unknown) or '(none)'}; choose from {', '.join(RECIPES)}")
        self.strength = (float(strength), float(strength)) if np.isscalar(strength) else tuple(map(float, strength))
        if not 0.0 <= self.strength[0] <= self.strength[1] <= 1.0:
            raise UsageError(f"strength must lie in [0, 1] with low <= high, got {strength}")
        if size <= 0:
            raise UsageError(f"size must be positive (items are batched), got {size}")
        if crop is not None and not 0 < crop <= size:
            raise UsageError(f"crop must lie in [1, size={size}], got {crop}")
        if not 0.0 <= exposure <= 1.0:
            raise UsageError(f"exposure must lie in [0, 1] (a share of the items), got {exposure}")
        if check not in ("header", "full"):
            raise UsageError(f"check must be 'header' or 'full', got {check!r}")
        self.size, self.gray, self.seed, self.train, self.max_pixels = size, gray, seed, train, max_pixels
        self.crop, self.exposure = crop, exposure
        self.epoch = 0
        files, problems = find_images(sources)
        self.files, self.skipped = _usable_files(files, check, max_pixels)
        self.skipped += [f"{item}: {reason}" for item, reason in problems]
        if not self.files:
            named = ", ".join(map(str, sources))
            raise HelpersError(f"no usable images in {named} ({len(self.skipped)} unreadable or missing"
                               + (f", e.g. {self.skipped[0]}" if self.skipped else "") + ")")
        if self.skipped:
            warnings.warn(f"AgedDataset skipped {len(self.skipped)} unreadable files, e.g. {self.skipped[0]}",
                          stacklevel=2)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, index: int) -> tuple[np.ndarray, int]:
        """A file whose header passed but whose body is broken is replaced by the next good one."""
        for offset in range(len(self.files)):
            path = self.files[(index + offset) % len(self.files)]
            try:
                return read_image(path, max_pixels=self.max_pixels), offset
            except ImageReadError as err:
                warnings.warn(f"{err}; using the next image instead (check='full' drops such files)")
        raise HelpersError(f"none of the {len(self.files)} images can be decoded")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from .aging import age_image

        if not 0 <= index < len(self.files):
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        img, _ = self._read(index)
        clean = prepare_clean(img, self.size, self.gray, rng if self.train else None)
        if self.train and rng.random() < 0.5:
            clean = np.ascontiguousarray(clean[:, ::-1])
        if self.train and self.exposure > 0 and rng.random() < self.exposure:  # no draw when off: old runs replay
            clean = vary_exposure(clean, rng)
        preset = self.presets[int(rng.integers(len(self.presets)))]
        strength = float(rng.uniform(*self.strength))
        result = age_image(clean, preset, strength=strength, seed=int(rng.integers(2**63)))
        aged, mask = result.image, result.mask
        if self.crop is not None and self.crop < self.size:  # aged whole, so damage keeps its scale
            top, left = (rng.integers(0, self.size - self.crop + 1, size=2) if self.train
                         else ((self.size - self.crop) // 2,) * 2)
            window = (slice(top, top + self.crop), slice(left, left + self.crop))
            aged, clean, mask = aged[window], clean[window], mask[window]
        return _to_tensor(aged), _to_tensor(clean), _to_tensor(mask.astype(np.float32))


class Recompressed(torch.utils.data.Dataset):
    """The deblocker's pairs: each item of `base` as (aged photo JPEG-compressed, aged photo, mask).

    JPEG comes last, as a scan's compression does, so the target is the aged photo, damage and all: the
    deblocker learns to undo the compression and nothing else. The quality follows the `jpeg` aging
    operator's (92 down to 15) at a strength drawn per item from `strength`, seeded by (seed, epoch,
    index), so runs replay. The block grid starts at the item's top-left corner (a crop is compressed
    after it is cut), as it does on a photo the pipeline is given.
    """

    def __init__(self, base, *, seed: int = 0, strength: tuple[float, float] = (0.05, 1.0)):
        self.base, self.seed, self.strength, self.epoch = base, seed, strength, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from .aging_ops import jpeg

        aged, _, mask = self.base[index]
        rng = np.random.default_rng([self.seed, self.epoch, index, 8])
        image = aged.numpy()
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        compressed = jpeg(image, float(rng.uniform(*self.strength)), rng)[0]
        return _to_tensor(compressed), aged, mask


# ----------------------------------------------------------------------------- pre-aged on disk

class PairedFolderDataset(torch.utils.data.Dataset):
    """A folder written by `python -m helpers age` (aged/, clean/, masks/, manifest.csv) as triples.

    `classes` keeps only rows of those classes (Imagenette wnids); the manifest's order is kept.
    """

    def __init__(self, root: str | Path, *, classes: Iterable[str] | None = None):
        self.root = Path(root)
        manifest = self.root / "manifest.csv"
        if not manifest.is_file():
            raise HelpersError(f"{self.root}: no manifest.csv; build the folder with `python -m helpers age`")
        try:
            with open(manifest, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames is None or "file" not in reader.fieldnames:
                    raise HelpersError(f"{manifest}: not a manifest (columns {', '.join(MANIFEST_FIELDS)})")
                rows = [row for row in reader if row.get("file")]
        except (UnicodeDecodeError, csv.Error) as err:
            raise HelpersError(f"{manifest}: not a readable manifest ({err})") from None
        wanted = set(classes) if classes is not None else None
        self.rows = [r for r in rows if wanted is None or r.get("class") in wanted]
        if not self.rows:
            raise HelpersError(f"{manifest}: lists no images" + (" of those classes" if wanted else ""))
        if not (self.root / "masks").is_dir():
            raise HelpersError(f"{self.root}: no masks/ folder; rebuild it with `python -m helpers age --masks`")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        name = self.rows[index]["file"]
        aged, clean, mask = (to_float(read_image(self.root / folder / name)) for folder in ("aged", "clean", "masks"))
        return _to_tensor(aged), _to_tensor(clean), _to_tensor((mask > 0.5).astype(np.float32))
