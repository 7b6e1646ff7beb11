"""What the loc.gov JSON API returns, turned into the few fields the study keeps.

Collection pages (`/collections/daguerreotypes/?fo=json`) list items under `results[]` (`id` is the
item's loc.gov URL) and say whether there is more under `pagination.next`. An item's JSON
(`/item/<id>/?fo=json`) carries its metadata under `item` (title, date, contributors,
`rights_advisory`) and its images under `resources[].files`: groups of one image in several
encodings, one of which names the IIIF image service by its `info` URL (`.../info.json`). The IIIF
Image API then serves any size: `{service}/full/!{px},{px}/0/default.jpg` fits the photo in a
px-square box (https://iiif.io/api/image/2.1/#size).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_API_BASE = "https://www.loc.gov"
COLLECTION = "daguerreotypes"
# The statement LoC gives its public-domain photographs; any other advisory (or none) is not free to use.
FREE_TO_USE = ("no known restrictions", "public domain")


@dataclass(frozen=True)
class Listing:
    """One result of a collection page: enough to name the item and to fetch its JSON."""

    item_id: str
    title: str
    source_url: str
    thumbnail: str


@dataclass(frozen=True)
class Record:
    """One item as the manifest keeps it."""

    item_id: str
    title: str
    date: str
    creator: str
    rights_advisory: str
    source_url: str
    image_url: str  # empty for an item that is not free to use: recorded, never fetched

    @property
    def free_to_use(self) -> bool:
        return bool(self.image_url)


def is_free_to_use(rights_advisory: str, access_restricted: bool = False) -> bool:
    advisory = rights_advisory.lower()
    return not access_restricted and any(phrase in advisory for phrase in FREE_TO_USE)


def collection_url(api_base: str) -> str:
    return f"{api_base.rstrip('/')}/collections/{COLLECTION}/"


def collection_params(page: int, per_page: int, query: str | None) -> dict:
    """`at` trims the answer to the two parts read here; `sp` is the page (from 1), `c` its length."""
    params = {"fo": "json", "at": "results,pagination", "c": per_page, "sp": page}
    if query:
        params["q"] = query
    return params


def item_url(api_base: str, item_id: str) -> str:
    return f"{api_base.rstrip('/')}/item/{item_id}/"


def _text(value) -> str:
    """loc.gov gives many fields either as a string or as a list of strings (or of {'title': ...})."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return _text(value.get("title") or value.get("name"))
    if isinstance(value, (list, tuple)):
        return "; ".join(t for t in (_text(v) for v in value) if t)
    return str(value).strip()


def _first_text(mapping: dict, *keys: str) -> str:
    for key in keys:
        text = _text(mapping.get(key))
        if text:
            return text
    return ""


def parse_collection_page(doc) -> tuple[list[Listing], bool]:
    """(the page's items, whether another page follows). Raises ValueError for anything else."""
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError("not a collection page (no 'results' list)")
    listings = []
    for result in doc["results"]:
        url = result.get("id") if isinstance(result, dict) else None
        match = re.search(r"/item/([^/?#]+)", url or "")
        if not match:  # the collection's own record, web pages and other non-items
            continue
        images = result.get("image_url") or []
        listings.append(Listing(item_id=match.group(1), title=_text(result.get("title")), source_url=url,
                                thumbnail=images[-1] if isinstance(images, list) and images else ""))
    pagination = doc.get("pagination") if isinstance(doc.get("pagination"), dict) else {}
    return listings, bool(pagination.get("next"))


def _file_groups(doc: dict):
    for resource in doc.get("resources") or []:
        if isinstance(resource, dict):
            for group in resource.get("files") or []:
                if isinstance(group, list):
                    yield [f for f in group if isinstance(f, dict)]


def image_url(doc: dict, size: int) -> str:
    """The IIIF URL of the item's first image fitted in a size-px box; without an IIIF service, the
    largest JPEG listed. Raises ValueError when the item has no image at all."""
    groups = list(_file_groups(doc))
    for group in groups[:1]:
        for entry in group:
            info = str(entry.get("info") or "")
            if info.endswith("/info.json"):
                return f"{info[: -len('/info.json')]}/full/!{size},{size}/0/default.jpg"
    jpegs = [f for g in groups[:1] for f in g if f.get("mimetype") == "image/jpeg" and f.get("url")]
    if jpegs:
        return max(jpegs, key=lambda f: (f.get("width") or 0) * (f.get("height") or 0))["url"]
    raise ValueError("the item lists no image (no IIIF service, no JPEG)")


def parse_item(doc, listing: Listing, size: int) -> Record:
    """The manifest record of one item's JSON. Raises ValueError when it is not an item page, or when
    an item free to use lists no image."""
    if not isinstance(doc, dict) or not isinstance(doc.get("item"), dict):
        raise ValueError("not an item page (no 'item' object)")
    item = doc["item"]
    record = Record(
        item_id=listing.item_id,
        title=_first_text(item, "title") or listing.title,
        date=_first_text(item, "date", "created_published_date", "created_published"),
        creator=_first_text(item, "contributor_names", "creators", "contributors", "creator"),
        rights_advisory=_first_text(item, "rights_advisory"),
        source_url=listing.source_url,
        image_url="",
    )
    if not is_free_to_use(record.rights_advisory, item.get("access_restricted") is True):
        return record
    return Record(**{**record.__dict__, "image_url": image_url(doc, size)})
