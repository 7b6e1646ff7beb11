"""A stand-in for loc.gov on 127.0.0.1: collection pages, item JSON and IIIF images, with faults on demand.

The tests never touch the real network. `FakeLoc.faults[path]` is a list of faults served, one per
request, before that path answers normally again ("always:<fault>" never stops); `FakeLoc.log` keeps
(monotonic time, path, query) of every request as it arrived.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
from PIL import Image

FREE = "No known restrictions on publication."
RESTRICTED = "Publication may be restricted. For information see \"Daguerreotypes\"."


def photo_bytes(seed: int, size: int = 48) -> bytes:
    """A small JPEG whose bytes differ by seed (fitted in a size-px box like the IIIF service does)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (max(2, size * 3 // 4), size, 3), dtype=np.uint8)
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class FakeLoc:
    """The server, its canned items (id -> {'seed': int, optional 'title', 'rights'}) and its request log."""

    def __init__(self, items: dict[str, dict]):
        self.items = items
        self.faults: dict[str, list[str]] = {}
        self.relisted: dict[int, list[str]] = {}  # page -> ids listed again there (loc.gov's pages can shift)
        self.log: list[tuple[float, str, dict]] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def requests_to(self, prefix: str) -> list[str]:
        return [path for _, path, _ in self.log if path.startswith(prefix)]

    def next_fault(self, path: str) -> str | None:
        with self._lock:
            queue = self.faults.get(path)
            if not queue:
                return None
            if queue[0].startswith("always:"):
                return queue[0][len("always:"):]
            return queue.pop(0)

    # ------------------------------------------------------------------ the three kinds of answer
    def collection_page(self, query: dict) -> dict:
        per_page, page = int(query.get("c", ["25"])[0]), int(query.get("sp", ["1"])[0])
        ids = sorted(self.items)
        if query.get("q"):
            ids = [i for i in ids if query["q"][0] in self.items[i].get("title", "")]
        chunk = ids[(page - 1) * per_page: page * per_page] + self.relisted.get(page, [])
        results = [{"id": f"http://www.loc.gov/item/{i}/", "title": self.items[i].get("title", i),
                    "image_url": [f"{self.base}/thumb/{i}.gif"], "original_format": ["photo, print, drawing"]}
                   for i in chunk]
        if page == 1:  # the collection's own record comes first on loc.gov; it is not an item
            results.insert(0, {"id": "http://www.loc.gov/collections/daguerreotypes/", "title": "Daguerreotypes",
                               "original_format": ["collection"]})
        more = page * per_page < len(ids)
        return {"results": results,
                "pagination": {"current": page, "next": f"{self.base}/collections/daguerreotypes/?sp={page + 1}"
                               if more else None}}

    def item_page(self, item_id: str) -> dict:
        item = self.items[item_id]
        service = f"{self.base}/iiif/service:pnp:dag:{item_id}"
        return {"item": {"title": item.get("title", item_id), "date": "1850", "contributor_names": ["Brady, Mathew B."],
                         "rights_advisory": [item.get("rights", FREE)]},
                "resources": [{"files": [[{"mimetype": "image/jpeg", "url": f"{service}/full/pct:25/0/default.jpg",
                                           "width": 100, "height": 75},
                                          {"mimetype": "image/jp2", "info": f"{service}/info.json"}]]}]}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLoc

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        self.fake.log.append((time.monotonic(), path, query))
        try:
            self._answer(path, query, self.fake.next_fault(path))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def _answer(self, path: str, query: dict, fault: str | None):
        if fault and fault.startswith("429"):
            self.send_response(429)
            if ":" in fault:
                self.send_header("Retry-After", fault.split(":", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "drop":  # hang up without an answer
            self.close_connection = True
            return
        if fault == "500":
            return self._send(500, b"server error", "text/plain")
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault.split(":", 1)[1]))
        if fault == "badjson":
            return self._send(200, b'{"results": [', "application/json")
        if fault == "html":
            return self._send(200, b"<html>Please wait</html>", "text/html; charset=utf-8")
        if fault == "garbage":
            return self._send(200, b"\xff\xd8\xff" + b"\x00" * 64, "image/jpeg")
        body, content_type = self._body(path, query)
        if body is None:
            return self._send(404, b"not found", "text/plain")
        if fault == "truncated":  # promises the whole body, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(200, body, content_type)

    def _body(self, path: str, query: dict) -> tuple[bytes | None, str]:
        fake = self.fake
        if path == "/collections/daguerreotypes/" and query.get("fo") == ["json"]:
            return json.dumps(fake.collection_page(query)).encode(), "application/json"
        if path.startswith("/item/") and query.get("fo") == ["json"]:
            item_id = path.strip("/").split("/")[1]
            if item_id in fake.items:
                return json.dumps(fake.item_page(item_id)).encode(), "application/json"
        if path.startswith("/iiif/service:pnp:dag:") and path.endswith("/0/default.jpg"):
            item_id = path.split("service:pnp:dag:")[1].split("/")[0]
            size = int(path.split("/full/!")[1].split(",")[0])
            if item_id in fake.items:
                return photo_bytes(fake.items[item_id]["seed"], size), "image/jpeg"
        return None, ""

    def _send(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
