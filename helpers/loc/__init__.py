"""Library of Congress photographs for the subjective evaluation: the Daguerreotypes collection over
the loc.gov JSON API (online), or the bundled stand-ins (offline).

    from helpers import loc
    report = loc.fetch_daguerreotypes(loc.FetchSettings(out="loc", limit=12, query="portrait"))
    photos, label = loc.photos_for_evaluation("loc", online=False)   # the bundled stand-ins

The pieces: `http` (rate limits, retries), `api` (what the JSON means), `manifest` (resumable folder),
`fetch` (the run). `python -m helpers fetch-loc` and `data_prep/fetch_loc.py` call `fetch_daguerreotypes`.
"""

from __future__ import annotations

from pathlib import Path

from .. import env
from ..io import find_images
from .api import DEFAULT_API_BASE, Record, is_free_to_use
from .fetch import FetchSettings, fetch_daguerreotypes
from .http import (DEFAULT_LIMITS, USER_AGENT, Clock, LocRequestError, LocStopped, PoliteSession, RateLimiter,
                   RetryPolicy)
from .manifest import MANIFEST_FIELDS, Manifest

__all__ = ["DAGUERREOTYPES_LABEL", "DEFAULT_API_BASE", "DEFAULT_LIMITS", "MANIFEST_FIELDS", "STAND_IN_LABEL",
           "USER_AGENT", "Clock", "FetchSettings", "LocRequestError", "LocStopped", "Manifest", "PoliteSession",
           "RateLimiter", "Record", "RetryPolicy", "bundled_samples", "downloaded_photos", "fetch_daguerreotypes",
           "is_free_to_use", "photos_for_evaluation", "sample_credit"]

DAGUERREOTYPES_LABEL = "Library of Congress, Daguerreotypes collection"
STAND_IN_LABEL = ("Library of Congress photographs (1860s-1920s, public domain) standing in for the "
                  "daguerreotypes: not daguerreotypes")
# The bundled files keep the collection prefix of their source data set (samples/LICENSES.md).
_COLLECTIONS = {
    "Abdul": "Abdul Hamid II Collection",
    "Carpenter": "Frank and Frances Carpenter Collection",
    "Grabill": "John C. H. Grabill Collection",
    "Lawrence": "Lawrence & Houseworth Collection",
    "Travel": "Arnold Genthe Collection",
}


def bundled_samples() -> list[Path]:
    """The bundled LoC photographs (samples/loc/) that stand in for the daguerreotypes offline: show
    them with STAND_IN_LABEL and sample_credit(path), never as daguerreotypes."""
    images, _ = find_images([env.samples_dir() / "loc"])
    return images


def sample_credit(path: str | Path) -> str:
    """The credit line of one bundled stand-in: its LoC collection (item ids are unknown)."""
    collection = _COLLECTIONS.get(Path(path).stem.split("_")[0], "collection unknown")
    return f"Library of Congress, Prints & Photographs Division, {collection}"


def downloaded_photos(out: str | Path) -> list[Path]:
    """The photos a fetch put in `out`, in manifest order."""
    return Manifest(out).downloaded_files()


def photos_for_evaluation(out: str | Path, *, online: bool, limit: int = 12, query: str | None = "portrait",
                          size: int = 1024, progress: bool = True) -> tuple[list[Path], str]:
    """(photos, label): the daguerreotypes fetched into `out` when online and the fetch yields any,
    else the bundled stand-ins with a label that says so (and why, when a fetch was tried)."""
    if online:
        report = fetch_daguerreotypes(FetchSettings(out=out, limit=limit, query=query, size=size), progress=progress)
        photos = downloaded_photos(out)
        if photos:
            return photos, DAGUERREOTYPES_LABEL
        why = report.payload.get("stopped") or "the fetch returned no photos"
        return bundled_samples(), f"{STAND_IN_LABEL} ({why})"
    return bundled_samples(), STAND_IN_LABEL
