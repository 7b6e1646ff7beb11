"""Download the Daguerreotypes collection: page through the listing, fetch each item's JSON, then its
image at the chosen size, and keep the manifest current after every item.

Outcomes are kept apart on purpose: an item not free to use is recorded and skipped (exit 0); an item
whose JSON or image stays bad is named as a failure and left out of the manifest, so a rerun tries it
again (exit 1); when loc.gov says to stop, the run stops at once with that message and keeps what it has.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Iterator

import requests
from PIL import Image, UnidentifiedImageError

from ..cli import Report, info
from ..io import DEFAULT_MAX_PIXELS, OutputExistsError, atomic_write_bytes
from .api import (DEFAULT_API_BASE, Listing, collection_params, collection_url, item_url, parse_collection_page,
                  parse_item)
from .http import LocRequestError, LocStopped, PoliteSession
from .manifest import DOWNLOADED, DUPLICATE_PREFIX, NOT_FREE, Manifest, sha256_hex

ALREADY_HERE = "already here"
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp", "JPEG2000": ".jp2"}


@dataclass
class FetchSettings:
    """One download run; `limit` counts the photos held in `out` for this listing, old and new."""

    out: str | Path
    query: str | None = None
    limit: int | None = None
    size: int = 1024  # long side of the requested image, px
    api_base: str = DEFAULT_API_BASE
    per_page: int = 100  # long pages keep the number of collection requests (80 a minute at most) low


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        raise ValueError("the body is not valid JSON") from None


def _image(response: requests.Response) -> tuple[bytes, str]:
    """(bytes, file suffix) of a response that is an image that decodes whole; a wrong content type is
    final, an undecodable body (truncated, garbled) is worth another try."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise LocRequestError(f"{response.url}: content type {content_type or 'missing'!r}, not an image")
    data = response.content
    try:
        with Image.open(BytesIO(data)) as img:
            if img.width * img.height > DEFAULT_MAX_PIXELS:
                raise LocRequestError(f"{response.url}: {img.width}x{img.height} is too many pixels")
            img.load()
            return data, SUFFIXES.get(img.format or "", ".img")
    except (OSError, SyntaxError, UnidentifiedImageError) as err:
        raise ValueError(f"the body does not decode as an image ({err})") from None


def iter_listings(session: PoliteSession, settings: FetchSettings) -> Iterator[Listing]:
    """Every item of the collection (or of the query within it), one page at a time, fetched lazily."""
    page = 1
    while True:
        try:
            doc = session.get(collection_url(settings.api_base), "collection",
                              params=collection_params(page, settings.per_page, settings.query), check=_json)
            listings, more = parse_collection_page(doc)
        except (LocRequestError, ValueError) as err:
            raise LocStopped(f"cannot read collection page {page}: {err}") from None
        yield from listings
        if not more or not listings:
            return
        page += 1


def _fetch_item(session: PoliteSession, settings: FetchSettings, manifest: Manifest, listing: Listing) -> str:
    """Fetch one item and record it; returns its outcome. Raises LocRequestError when it failed."""
    doc = session.get(item_url(settings.api_base, listing.item_id), "item", params={"fo": "json"}, check=_json)
    try:
        record = parse_item(doc, listing, settings.size)
    except ValueError as err:
        raise LocRequestError(f"{listing.source_url}: {err}") from None
    if not record.free_to_use:
        manifest.record(record, NOT_FREE)
        info(f"not free to use, recorded and skipped: {listing.item_id} "
             f"({record.rights_advisory or 'no rights advisory'})")
        return NOT_FREE
    data, suffix = session.get(record.image_url, "image", check=_image)
    sha = sha256_hex(data)
    twin = manifest.id_with_sha(sha, other_than=record.item_id)
    if twin is not None:
        manifest.record(record, DUPLICATE_PREFIX + twin, sha=sha)
        return DUPLICATE_PREFIX + twin
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in listing.item_id) + suffix
    path = manifest.folder / name
    try:
        atomic_write_bytes(path, data)  # the final name is created exclusively: never replaced
    except OutputExistsError:  # left by a run stopped between the file and its row: keep it if identical
        if sha256_hex(path.read_bytes()) != sha:
            raise LocRequestError(f"{path}: exists with other content and is not in the manifest; "
                                  "not replaced") from None
    manifest.record(record, DOWNLOADED, sha=sha, file=name)
    return DOWNLOADED


def fetch_daguerreotypes(settings: FetchSettings, *, session: PoliteSession | None = None,
                         progress: bool = True) -> Report:
    """Download up to `settings.limit` photos of the Daguerreotypes collection into `settings.out`
    (with OUT/manifest.csv); rerunning resumes. The Report's payload counts each outcome."""
    from tqdm.auto import tqdm

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    session = session or PoliteSession(on_wait=info)
    manifest = Manifest(out)
    report, counts, seen, new = Report(), Counter(), set(), []
    held = 0
    bar = tqdm(total=settings.limit, desc="fetch-loc", unit="photo", disable=not progress, file=sys.stderr)
    try:
        for listing in iter_listings(session, settings):
            if settings.limit is not None and held >= settings.limit:
                break
            if listing.item_id in seen:
                counts["listed twice"] += 1
                continue
            seen.add(listing.item_id)
            outcome = ALREADY_HERE if manifest.held(listing.item_id) else manifest.settled(listing.item_id)
            if outcome is None:
                try:
                    outcome = _fetch_item(session, settings, manifest, listing)
                except LocRequestError as err:
                    report.fail(listing.item_id, str(err))
                    continue
                if outcome == DOWNLOADED:
                    new.append(str(out / manifest.rows[listing.item_id]["file"]))
            counts["duplicate" if outcome.startswith(DUPLICATE_PREFIX) else outcome] += 1
            if outcome in (DOWNLOADED, ALREADY_HERE):
                held += 1
                bar.update(1)
    except LocStopped as err:
        report.fail("loc.gov", str(err))
        report.payload["stopped"] = str(err)
    finally:
        bar.close()
    info(f"{held} photos in {out} ({len(new)} new); manifest {manifest.path}")
    report.payload.update({"out": str(out), "manifest": str(manifest.path), "query": settings.query,
                           "limit": settings.limit, "size": settings.size, "api_base": settings.api_base,
                           "held": held, "new": new, "outcomes": dict(counts), "requests": len(session.log)})
    report.payload.setdefault("stopped", None)
    return report
