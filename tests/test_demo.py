"""`python -m helpers demo`: grid PNG, HTML page, JSON summary, aged images; refuses to overwrite."""

from __future__ import annotations

import json

from PIL import Image

from helpers.__main__ import main
from helpers.aging import PRESETS
from helpers.data import bundled_samples


def test_demo_writes_grid_page_summary_and_refuses_to_overwrite(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    n_samples = len(bundled_samples("clean"))
    assert printed["samples"] == summary["samples"] and len(summary["samples"]) == n_samples
    assert summary["presets"] == list(PRESETS) and set(summary["operators_used"]) == set(PRESETS)
    for preset, used in summary["operators_used"].items():
        assert set(used) <= {name for name, *_ in PRESETS[preset]}
        assert all(1 <= count <= n_samples for count in used.values())

    grid = Image.open(out / "grid.png")
    assert grid.format == "PNG" and grid.size[0] > 600 and grid.size[1] > grid.size[0]  # samples are rows
    page = (out / "index.html").read_text()
    assert 'src="grid.png"' in page and all(preset in page for preset in PRESETS)
    assert len(list((out / "aged").rglob("*.png"))) == 2 * n_samples * len(PRESETS)

    before = (out / "grid.png").read_bytes()
    assert main(["demo", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "grid.png").read_bytes() == before
    assert main(["demo", "--out", str(out), "--overwrite"]) == 0
    assert (out / "grid.png").read_bytes() == before  # fixed seed: the same picture again
