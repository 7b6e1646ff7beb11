"""Small synthetic images shared by the tests: a colour gradient and a PNG that only claims its size."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def gradient(h: int = 24, w: int = 32, top: int = 255) -> np.ndarray:
    """An RGB gradient whose corners differ, so flips, rotations and crops are all visible."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * top // (w - 1), y * top // (h - 1), np.full_like(x, 60)], -1).astype(np.uint8)


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height; the pixels are never there (nothing is allocated)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)))
