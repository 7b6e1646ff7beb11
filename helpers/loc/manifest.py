"""The download folder's memory: OUT/manifest.csv and files that appear whole or not at all.

A row is written only after its image is complete on disk, and the manifest itself is replaced
atomically, so an interrupted run leaves a folder a rerun can trust: rows whose file still matches
its sha256 are skipped, items recorded as not free to use (or as duplicates) are not asked for again.
"""

from __future__ import annotations

import csv
import hashlib
from io import StringIO
from pathlib import Path

from ..io import atomic_write_text
from .api import Record

MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ["id", "title", "date", "creator", "rights_advisory", "source_url", "image_url", "sha256",
                   "file", "status"]
DOWNLOADED, NOT_FREE = "downloaded", "not free to use"
DUPLICATE_PREFIX = "duplicate of "


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Manifest:
    """Rows by item id, loaded from OUT/manifest.csv and rewritten whole after every change."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.rows: dict[str, dict[str, str]] = {}
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    if row.get("id") and row.get("status"):
                        self.rows[row["id"]] = {k: row.get(k) or "" for k in MANIFEST_FIELDS}

    def held(self, item_id: str) -> bool:
        """Downloaded earlier, and the file is still there with the bytes the manifest names."""
        row = self.rows.get(item_id)
        if not row or row["status"] != DOWNLOADED:
            return False
        path = self.folder / row["file"]
        return path.is_file() and sha256_hex(path.read_bytes()) == row["sha256"]

    def settled(self, item_id: str) -> str | None:
        """The status of an item that is not to be fetched again (not free to use, a duplicate)."""
        row = self.rows.get(item_id)
        return row["status"] if row and row["status"] != DOWNLOADED else None

    def id_with_sha(self, sha: str, other_than: str) -> str | None:
        """Another item already holding these exact bytes, if any."""
        return next((i for i, row in self.rows.items()
                     if i != other_than and row["status"] == DOWNLOADED and row["sha256"] == sha), None)

    def record(self, record: Record, status: str, *, sha: str = "", file: str = "") -> None:
        self.rows[record.item_id] = {"id": record.item_id, "title": record.title, "date": record.date,
                                     "creator": record.creator, "rights_advisory": record.rights_advisory,
                                     "source_url": record.source_url, "image_url": record.image_url,
                                     "sha256": sha, "file": file, "status": status}
        buffer = StringIO()
        writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows.values())
        atomic_write_text(self.path, buffer.getvalue(), overwrite=True)

    def downloaded_files(self) -> list[Path]:
        """The photos of the folder, in manifest order (only those still on disk)."""
        return [self.folder / row["file"] for row in self.rows.values()
                if row["status"] == DOWNLOADED and (self.folder / row["file"]).is_file()]
