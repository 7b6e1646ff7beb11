"""Safe image reading and writing, used by every command and notebook.

Reading applies EXIF orientation, accepts 8/16-bit gray, RGB, RGBA (composited on white), palette and
CMYK files, refuses decompression bombs before decoding, and names the file and the reason on every
error. Writing is atomic (temporary file + rename) and never replaces an input or, unless asked, an
existing file, so an interrupted run leaves no partial outputs.
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import HelpersError

DEFAULT_MAX_PIXELS = 100_000_000
# read_image enforces its own, configurable limit from the header; Pillow's fixed one would pre-empt it.
Image.MAX_IMAGE_PIXELS = None
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


class ImageReadError(HelpersError):
    """A file that cannot be read as an image; the message is 'path: reason'."""


class ImageWriteError(HelpersError):
    """An output that cannot or must not be written; the message is 'path: reason'."""


class OutputExistsError(ImageWriteError):
    """The output's name is taken and replacing it was not asked for (a caller may judge the file there)."""


def _png_is_16bit_color(path: Path) -> bool:
    """Pillow reduces 16-bit RGB(A) PNGs to 8 bits, so those are decoded with OpenCV instead."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 and head[24] == 16 and head[25] in (2, 6)


def _is_16bit_color(img: Image.Image, path: Path) -> bool:
    """16-bit RGB(A) files that Pillow would silently reduce to 8 bits: PNG (checked from its header) and
    TIFF (BitsPerSample 16 on three or more samples)."""
    if img.format == "PNG":
        return _png_is_16bit_color(path)
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, ())
        bits = bits if isinstance(bits, tuple) else (bits,)
        return len(bits) >= 3 and all(b == 16 for b in bits)
    return False


# EXIF orientation -> what brings the pixels upright, as ImageOps.exif_transpose does (rot90 turns
# counter-clockwise); for the PNGs OpenCV decodes, which it leaves as stored (its TIFF reader applies the
# TIFF Orientation tag itself).
_UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: np.rot90(a[:, ::-1], 1), 6: lambda a: np.rot90(a, -1),
            7: lambda a: np.rot90(a[:, ::-1], -1), 8: lambda a: np.rot90(a, 1)}


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The picture (HxW gray or HxWx3) over white paper, as a viewer shows a transparent one."""
    top = np.iinfo(rgb.dtype).max
    a = alpha.astype(np.float32) / top
    a = a[..., None] if rgb.ndim == 3 else a
    out = rgb.astype(np.float32) * a + top * (1.0 - a)
    return np.clip(np.rint(out), 0, top).astype(rgb.dtype)


def _read_16bit_color(path: Path, orientation: int) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint16 or img.ndim != 3:
        raise ImageReadError(f"{path}: corrupt, truncated or unsupported 16-bit colour image")
    if img.shape[2] == 4:
        img = _composite_on_white(img[..., 2::-1], img[..., 3])
    else:
        img = img[..., 2::-1]
    return np.ascontiguousarray(_UPRIGHT.get(orientation, lambda a: a)(img))


def _pil_to_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.uint16).copy()
    if img.mode == "I":  # 16-bit gray PNGs often decode as 32-bit 'I'
        return np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
    if img.mode == "F":  # 32-bit float: most float scans hold [0, 1]; others levels of 0-255 or 0-65535
        data = np.nan_to_num(np.asarray(img, dtype=np.float32))
        top = float(data.max(initial=0.0))
        if top <= 1.0:  # to 16 bits, not 8: a float scan's fine steps are why it was saved as floats
            return np.rint(np.clip(data, 0.0, 1.0) * 65535).astype(np.uint16)
        depth = np.uint8 if top <= 255 else np.uint16
        return np.clip(np.rint(data), 0, np.iinfo(depth).max).astype(depth)
    if img.mode in ("1", "L"):
        return np.asarray(img.convert("L")).copy()
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("LA", "PA"):
        la = np.asarray(img.convert("LA"))
        return _composite_on_white(la[..., 0], la[..., 1])
    if img.mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    return np.asarray(img.convert("RGB")).copy()  # RGB, CMYK, YCbCr, LAB, HSV


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to an upright uint8 or uint16 array, HxW (gray) or HxWx3 (RGB).

    Raises ImageReadError naming the file and the reason for anything that is not a readable image,
    including a pixel count above `max_pixels`, checked from the header before any decoding.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ImageReadError(f"{path}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageReadError(
                    f"{path}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
                    f"{max_pixels:,} (raise it with --max-pixels if the file is trusted)"
                )
            if width < 1 or height < 1:
                raise ImageReadError(f"{path}: image has no pixels ({width}x{height})")
            if _is_16bit_color(img, path):
                return _read_16bit_color(path, img.getexif().get(274, 1) if img.format == "PNG" else 1)
            img.load()
            return _pil_to_array(ImageOps.exif_transpose(img))
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file, or a format we cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        reason = str(err) or type(err).__name__
        if "truncated" in reason.lower():
            reason = f"truncated file ({reason})"
        elif "Too many levels of symbolic links" in reason:
            reason = "symbolic link loop"
        raise ImageReadError(f"{path}: corrupt or unreadable image ({reason})") from None


def frame_count(path: str | os.PathLike) -> int:
    """How many frames (animated GIF/WebP/PNG) or pages (TIFF) a file holds; read_image decodes the first
    only, so callers say so. 1 for anything unreadable: read_image reports that with its reason."""
    try:
        with Image.open(path) as img:
            return int(getattr(img, "n_frames", 1))
    except (OSError, SyntaxError, ValueError, EOFError):
        return 1


def to_gray(img: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, keeping the dtype; gray input is returned as is."""
    if img.ndim == 2:
        return img
    top = np.iinfo(img.dtype).max if img.dtype.kind in "ui" else None
    gray = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    if top is None:
        return gray.astype(img.dtype)
    return np.clip(np.rint(gray), 0, top).astype(img.dtype)


def to_rgb(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 in [0, 1]; float input is returned as float32 unchanged."""
    if img.dtype.kind == "f":
        return img.astype(np.float32, copy=False)
    return img.astype(np.float32) / float(np.iinfo(img.dtype).max)


def from_float(img: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """float in [0, 1] → uint8/uint16 with rounding and clipping."""
    top = float(np.iinfo(dtype).max)
    return np.clip(np.rint(np.asarray(img, dtype=np.float32) * top), 0, top).astype(dtype)


def encode_image(img: np.ndarray, suffix: str = ".png", *, jpeg_quality: int = 95) -> bytes:
    """Encode an HxW or HxWx3 (RGB) uint8/uint16 array; JPEG gets 8 bits."""
    import cv2

    suffix = suffix.lower()
    if img.dtype.kind == "f":
        img = from_float(img)
    if suffix in (".jpg", ".jpeg") and img.dtype != np.uint8:
        img = (img >> 8).astype(np.uint8)
    bgr = img[..., ::-1] if img.ndim == 3 else img
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, np.ascontiguousarray(bgr), params)
    if not ok:
        raise ImageWriteError(f"cannot encode an image as {suffix}")
    return buf.tobytes()


def _resolve(path: Path) -> Path:
    """resolve(), except for a symbolic link loop, which resolve() refuses: its absolute path then."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False,
                       protected: Iterable[str | os.PathLike] = ()) -> Path:
    """Write via a temporary file in the same folder, so readers never see a partial file.

    Refuses to replace any path in `protected` (the inputs of a run), and an existing file unless
    `overwrite` is true. Without `overwrite` the final name is created exclusively (a hard link to the
    finished temporary file), so a file another process writes under the same name at the same moment is
    never replaced: one of the two writers is told the name already exists.
    """
    path = Path(path)
    target = _resolve(path)
    for other in protected:
        if _resolve(Path(other)) == target:
            raise ImageWriteError(f"{path}: refusing to write over an input file")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (use --overwrite to replace it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as err:
        raise ImageWriteError(f"{path}: cannot write ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_exclusively(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path}: already exists (use --overwrite to replace it)") from None
    except BaseException as err:
        if isinstance(err, OSError):
            raise ImageWriteError(f"{path}: cannot write ({err.strerror or err})") from None
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _link_exclusively(tmp: str, path: Path) -> None:
    """Give the finished `tmp` the name `path` only if no file has it; FileExistsError otherwise.

    os.link is atomic and never replaces. File systems without hard links (FAT, some network shares)
    get a name reserved with O_EXCL and then filled by a rename over that empty reservation."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise
    except OSError:
        pass
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        os.replace(tmp, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, **kwargs) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), **kwargs)


def write_image(path: str | os.PathLike, img: np.ndarray, *, overwrite: bool = False,
                protected: Iterable[str | os.PathLike] = (), jpeg_quality: int = 95) -> Path:
    """Encode by the file suffix (PNG when none) and write atomically; see atomic_write_bytes."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    data = encode_image(img, path.suffix, jpeg_quality=jpeg_quality)
    return atomic_write_bytes(path, data, overwrite=overwrite, protected=protected)


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _walk(folder: Path, skip: list[Path]) -> Iterator[Path]:
    # Symlinked folders are followed (data sets are often assembled from links), but each real folder is
    # entered once, so a link to the folder itself or to an ancestor cannot make the walk run forever.
    entered: set[Path] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        root_path = Path(root)
        here = root_path.resolve()
        if here in entered:  # a second link to a folder already walked
            dirs[:] = []
            continue
        entered.add(here)
        real = {d: (root_path / d).resolve() for d in dirs if not d.startswith(".")}
        dirs[:] = sorted(d for d, path in real.items() if path not in entered and path not in skip)
        for name in sorted(files):
            if _is_image_name(root_path / name):
                yield root_path / name


def find_images(sources: Iterable[str | os.PathLike], *, exclude: Iterable[str | os.PathLike] = ()
                ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, folders (recursively) and glob patterns into image paths, in a stable order.

    Returns (images, problems): problems are (source, reason) pairs for sources that matched nothing.
    Folders in `exclude` (for example an output folder inside the input folder) are never entered,
    so a run never feeds its own outputs back in.
    """
    skip = [Path(e).resolve() for e in exclude]
    images: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for source in sources:
        source = str(source)
        if any(ch in source for ch in "*?[") and not Path(source).exists():
            matches = [Path(m) for m in sorted(glob.glob(source, recursive=True))]
            found = [m for m in matches if m.is_file() and _is_image_name(m)]
            for folder in (m for m in matches if m.is_dir()):
                found.extend(_walk(folder, skip))
            if not found:
                problems.append((source, "pattern matched no image files"))
        elif Path(source).is_dir():
            found = list(_walk(Path(source), skip))
            if not found:
                problems.append((source, "folder holds no image files"))
        elif Path(source).is_file() or Path(source).is_symlink():
            found = [Path(source)]
        else:
            problems.append((source, "no such file or folder"))
            found = []
        for path in found:
            try:
                key = path.resolve()
            except (OSError, RuntimeError):
                key = path.absolute()
            if any(key.is_relative_to(s) for s in skip) or key in seen:
                continue
            seen.add(key)
            images.append(path)
    return images, problems
