"""`python -m helpers age`: outputs, manifest, JSON report, failures, resume, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.__main__ import main
from helpers.age_folder import file_seed, read_manifest
from helpers.aging import age_image


def _photo(path: Path, seed: int, size=(40, 52)) -> Path:
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(128, 50, (*size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def src(tmp_path):
    """Five photos: three flat, two in a class folder."""
    folder = tmp_path / "src"
    for i in range(3):
        _photo(folder / f"flat{i}.jpg", i)
    for i in range(2):
        _photo(folder / "church" / f"c{i}.png", 10 + i)
    return folder


def _age(capsys, *args):
    code = main(["age", "--size", "32", "--json", "--quiet", "--workers", "0", *map(str, args)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_age_writes_aged_clean_masks_and_manifest(capsys, tmp_path, src):
    out = tmp_path / "out"
    code, report, _ = _age(capsys, src, "--out", out, "--masks", "--preset", "seed,mild")
    assert code == 0 and report["exit_code"] == 0
    assert report["found"] == report["written"] == 5 and report["failed"] == 0
    assert report["classes"] == {"": 3, "church": 2}
    rows = read_manifest(out / "manifest.csv")
    assert sorted(r["file"] for r in rows) == sorted(["flat0.png", "flat1.png", "flat2.png", "church/c0.png",
                                                      "church/c1.png"])
    for row in rows:
        for folder in ("aged", "clean", "masks"):
            img = np.asarray(Image.open(out / folder / row["file"]))
            assert img.shape == (32, 32) and img.dtype == np.uint8
        assert row["class"] == ("church" if row["file"].startswith("church/") else "")
        assert row["seed"] == file_seed(0, row["file"]) and row["preset"] in ("seed", "mild")
        assert isinstance(row["params"], list)
    with open(out / "manifest.csv", newline="") as handle:
        assert next(csv.reader(handle))[:3] == ["file", "class", "source"]


def test_manifest_row_recreates_the_aged_image(capsys, tmp_path, src):
    out = tmp_path / "out"
    _age(capsys, src, "--out", out, "--masks", "--preset", "old-print", "--strength", "0.7")
    row = read_manifest(out / "manifest.csv")[0]
    clean = np.asarray(Image.open(out / "clean" / row["file"]))
    again = age_image(clean, row["preset"], strength=row["strength"], seed=row["seed"])
    assert np.array_equal(again.image, np.asarray(Image.open(out / "aged" / row["file"])))
    assert np.array_equal(again.mask, np.asarray(Image.open(out / "masks" / row["file"])) > 0)


def test_masks_only_when_asked_and_rgb_option(capsys, tmp_path, src):
    code, report, _ = _age(capsys, src, "--out", tmp_path / "out", "--rgb")
    assert code == 0 and not (tmp_path / "out" / "masks").exists()
    assert np.asarray(Image.open(tmp_path / "out" / "aged" / "flat0.png")).shape == (32, 32, 3)


def test_corrupt_file_is_named_and_the_others_are_done(capsys, tmp_path, src):
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, report, err = _age(capsys, src, "--out", tmp_path / "out")
    assert code == 1 and report["written"] == 5
    assert [f["input"] for f in report["failures"]] == [str(src / "broken.jpg")]
    assert "broken.jpg" in err
    assert len(read_manifest(tmp_path / "out" / "manifest.csv")) == 5


def test_resume_skips_finished_files_and_gives_identical_bytes(capsys, tmp_path, src):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    _age(capsys, src, "--out", full, "--masks")
    _age(capsys, src, "--out", resumed, "--masks")
    # Simulate an interrupted run: one file lost an output, and the manifest's last line was cut short.
    (resumed / "aged" / "flat1.png").unlink()
    text = (resumed / "manifest.csv").read_text()
    (resumed / "manifest.csv").write_text(text[: len(text) - 40])
    code, report, _ = _age(capsys, src, "--out", resumed, "--masks")
    assert code == 0 and report["written"] == 2 and report["already_done"] == 3
    assert _files(resumed) == _files(full)


def test_parallel_workers_give_the_same_bytes(capsys, tmp_path, src):
    _age(capsys, src, "--out", tmp_path / "serial", "--masks")
    code = main(["age", str(src), "--out", str(tmp_path / "parallel"), "--size", "32", "--masks", "--quiet",
                 "--workers", "2"])
    assert code == 0
    assert _files(tmp_path / "parallel") == _files(tmp_path / "serial")


def test_existing_outputs_are_not_overwritten(capsys, tmp_path, src):
    out = tmp_path / "out"
    foreign = _photo(out / "aged" / "flat0.png", 99, size=(8, 8))
    before = foreign.read_bytes()
    code, report, err = _age(capsys, src, "--out", out)
    assert code == 1 and "already exists" in err and report["written"] == 4
    assert foreign.read_bytes() == before
    code, report, _ = _age(capsys, src, "--out", out, "--overwrite")
    assert code == 0 and report["written"] == 5 and foreign.read_bytes() != before


def test_other_settings_refuse_to_resume(capsys, tmp_path, src):
    out = tmp_path / "out"
    _age(capsys, src, "--out", out)
    code, _, err = _age(capsys, src, "--out", out, "--seed", "1")
    assert code == 1 and "other settings" in err and "seed" in err


def test_inputs_are_never_written_and_out_inside_input_is_not_reread(capsys, tmp_path, src):
    before = _files(src)
    code, report, _ = _age(capsys, src, "--out", src / "aged_here")
    assert code == 0 and report["found"] == 5
    code, report, _ = _age(capsys, src, "--out", src / "aged_here")
    assert code == 0 and report["found"] == 5 and report["already_done"] == 5
    assert {k: v for k, v in _files(src).items() if not k.startswith("aged_here/")} == before


def test_out_equal_to_input_is_refused(capsys, src):
    code, report, err = _age(capsys, src, "--out", src)
    assert code == 2 and report is None and "input folder" in err


@pytest.mark.parametrize("option", [["--preset", "ancient"], ["--strength", "1.5"], ["--size", "-3"]])
def test_bad_options_exit_2(capsys, tmp_path, src, option):
    code, report, err = _age(capsys, src, "--out", tmp_path / "out", *option)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_glob_sources_keep_subfolders_and_missing_sources_fail(capsys, tmp_path, src):
    code, report, err = _age(capsys, f"{src}/**/*.png", tmp_path / "nothing_here", "--out", tmp_path / "out")
    assert code == 1 and report["written"] == 2
    assert (tmp_path / "out" / "aged" / "church" / "c0.png").is_file()
    assert "nothing_here" in err


def test_no_images_at_all_is_an_error(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = _age(capsys, tmp_path / "empty", "--out", tmp_path / "out")
    assert code == 1 and "no images found" in err
