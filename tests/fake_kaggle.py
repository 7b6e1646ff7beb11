"""The official `kaggle` client with its network replaced, and Kaggle's side of an upload, for tests.

`FakeKaggle` stands in for `requests.Session.send`, which every call of the client goes through (the
kagglesdk RPCs and the resumable blob uploads alike): it answers StartBlobUpload with an upload URL,
keeps the bytes PUT there, and records each CreateDataset / SaveKernel request. `unpack_dataset` then
lays the uploaded files out as Kaggle serves them to a kernel: an uploaded archive `X.zip` becomes the
folder `X/` (how the client's --dir-mode uploads are meant to arrive, kaggle-cli PR 111).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import requests

UPLOAD_URL = "https://uploads.invalid/blob/"


class FakeKaggle:
    def __init__(self):
        self.blobs: dict[str, bytes] = {}  # token -> bytes
        self.names: dict[str, str] = {}  # token -> uploaded file name
        self.calls: list[tuple[str, dict]] = []  # (RPC name, request body)

    def install(self, monkeypatch, home: Path) -> None:
        """Route the client's HTTP here and give it throwaway credentials and config."""
        monkeypatch.setattr(requests.Session, "send", lambda session, request, **kw: self.send(request))
        monkeypatch.setenv("KAGGLE_USERNAME", "alice")
        monkeypatch.setenv("KAGGLE_KEY", "0" * 32)
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home))
        monkeypatch.setenv("HOME", str(home))

    def send(self, request) -> requests.Response:
        if request.url.startswith(UPLOAD_URL):
            body = request.body
            if not isinstance(body, bytes):  # the client streams the file
                body = b"".join(iter(lambda: request.body.read(1 << 20), b""))
            self.blobs[request.url[len(UPLOAD_URL):]] = body
            return self._response({})
        rpc = request.url.rsplit("/", 1)[-1]
        body = json.loads(request.body or b"{}")
        self.calls.append((rpc, body))
        if rpc == "StartBlobUpload":
            token = f"t{len(self.names)}"
            self.names[token] = body["name"]
            return self._response({"token": token, "createUrl": UPLOAD_URL + token})
        if rpc == "GetDatasetStatus":  # a new dataset: the server knows no such slug yet
            return self._response({"code": 404, "message": "Not found"}, status=404)
        if rpc == "SaveKernel":
            return self._response({"ref": body["slug"], "url": "https://www.kaggle.com/code/" + body["slug"],
                                   "versionNumber": 1})
        return self._response({"ref": "alice/dataset", "url": "https://www.kaggle.com/datasets/alice/dataset"})

    @staticmethod
    def _response(payload: dict, status: int = 200) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps(payload).encode()
        return response

    def uploaded(self) -> dict[str, bytes]:
        """File name -> bytes of what a dataset creation sent, in the order the client sent it."""
        return {self.names[token]: data for token, data in self.blobs.items()}

    def requests_named(self, rpc: str) -> list[dict]:
        return [body for name, body in self.calls if name == rpc]


def unpack_dataset(uploaded: dict[str, bytes], mount: Path) -> Path:
    """Lay out an uploaded dataset under `mount` as a kernel sees it: archives unpacked into folders."""
    mount.mkdir(parents=True)
    for name, data in uploaded.items():
        if name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(mount / name.removesuffix(".zip"))
        else:
            (mount / name).write_bytes(data)
    return mount
