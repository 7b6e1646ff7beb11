"""The bundled restorer on real scanned old prints from ../shared/data (skipped on a user's clone)."""

import json

import numpy as np
import pytest

from helpers.__main__ import main
from helpers.io import read_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bundled_model_restores_real_scratched_prints(shared_data, tmp_path, capsys):
    source = shared_data / "old_photos" / "bopbtl" / "old_w_scratch"  # RGBA scans with real cracks
    inputs = sorted(source.glob("*.png"))
    assert inputs, f"{source} holds no PNG files"
    before = {p: p.read_bytes() for p in inputs}
    assert main(["restore", str(source), "--out", str(tmp_path / "out"), "--save-mask", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["failures"] == []
    for path in inputs:
        restored = read_image(tmp_path / "out" / f"{path.stem}.png")
        original = read_image(path)
        assert restored.shape == original.shape  # size kept; RGBA composited to RGB on both sides
        assert abs(restored.astype(float).mean() - original.astype(float).mean()) < 64
        mask = read_image(tmp_path / "out" / f"{path.stem}_mask.png")
        assert mask.shape == original.shape[:2]
        assert path.read_bytes() == before[path]
        # A restorer that returned its input would pass everything above. The repair is local: the tone
        # stage moves every pixel a little, the fill moves the detected cracks a lot.
        found = mask > 127
        change = np.abs(restored.astype(float) - original[..., :3]).max(axis=-1)
        assert 0 < found.mean() < 0.5, path.name
        assert change[found].mean() > 40, path.name  # the bright cracks are filled
        assert change[found].mean() > 3 * change[~found].mean(), path.name  # and the change lies mostly there
