"""Data sets: on-the-fly aged triples, pre-aged folders, Imagenette discovery, bundled samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import HelpersError, UsageError
from helpers.age_folder import AgeSettings, age_folder, prepare_clean
from helpers.data import (IMAGENETTE_CLASSES, IMAGENETTE_SPLIT_SIZES, AgedDataset, PairedFolderDataset,
                          age_imagenette, bundled_samples, find_imagenette, imagenette_source,
                          imagenette_split, vary_exposure)


def _photo(path: Path, seed: int, size=(40, 56), mode="RGB") -> Path:
    rng = np.random.default_rng(seed)
    h, w = size
    # smooth gradients plus noise: something the operators visibly change
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 255 / w)[..., None] * rng.uniform(0.3, 1, 3) + (yy * 255 / h)[..., None] * rng.uniform(0, 0.5, 3)
    pixels = np.clip(base + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    for i in range(4):
        _photo(folder / f"p{i}.png", i, size=(40 + 8 * i, 56))
    return folder


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_bundled_samples_lists_clean_and_old_photos():
    clean, old = bundled_samples("clean"), bundled_samples("old")
    assert len(clean) >= 8 and all(p.is_file() for p in clean)
    assert len(old) >= 2 and not set(clean) & set(old)
    with pytest.raises(UsageError):
        bundled_samples("new")


def test_prepare_clean_resizes_shorter_side_and_crops_centre():
    img = np.zeros((60, 120, 3), np.uint8)
    img[:, 60:] = 255  # right half white: a centre crop holds both halves
    out = prepare_clean(img, 30, gray=True)
    assert out.shape == (30, 30) and out.dtype == np.float32
    assert out[:, :10].max() < 0.1 and out[:, -10:].min() > 0.9
    assert prepare_clean(img, 30, gray=False).shape == (30, 30, 3)
    assert prepare_clean(img, 0, gray=True).shape == (60, 120)


def test_aged_dataset_yields_triples_in_range(photo_folder):
    ds = AgedDataset(photo_folder, size=32, presets=["seed", "heavy"], seed=3)
    assert len(ds) == 4 and ds.skipped == []
    aged, clean, mask = ds[2]
    assert aged.shape == clean.shape == (1, 32, 32) and mask.shape == (1, 32, 32)
    for t in (aged, clean, mask):
        assert t.dtype == torch.float32 and 0.0 <= t.min() and t.max() <= 1.0
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(aged, clean)


def test_aged_dataset_rgb(photo_folder):
    aged, clean, mask = AgedDataset(photo_folder, size=24, gray=False)[0]
    assert aged.shape == clean.shape == (3, 24, 24) and mask.shape == (1, 24, 24)


def test_aged_dataset_is_deterministic_per_seed_epoch_and_index(photo_folder):
    ds = AgedDataset(photo_folder, size=32, presets=["seed", "old-print"], seed=7, train=True)
    first = ds[1]
    assert _same(first, ds[1])
    assert _same(first, AgedDataset(photo_folder, size=32, presets=["seed", "old-print"], seed=7, train=True)[1])
    ds.set_epoch(1)
    assert not _same(first, ds[1])  # a new epoch, new damage (and a new crop)
    ds.set_epoch(0)
    assert _same(first, ds[1])
    assert not _same(first, AgedDataset(photo_folder, size=32, presets=["seed", "old-print"], seed=8,
                                        train=True)[1])


def test_aged_dataset_crops_are_windows_of_the_whole_aged_item(photo_folder):
    """A crop is cut from the item aged at full size, so the damage has the scale it has at --size."""
    whole = AgedDataset(photo_folder, size=32, presets="old-print", seed=5)
    cropped = AgedDataset(photo_folder, size=32, presets="old-print", seed=5, crop=16)
    for full, part in zip(whole[1], cropped[1]):
        assert part.shape[1:] == (16, 16)
        assert torch.equal(part, full[:, 8:24, 8:24])  # not training: the centre window
    train = AgedDataset(photo_folder, size=32, presets="old-print", seed=5, crop=16, train=True)
    windows = {tuple(train[i][0].shape) for i in range(len(train))}
    assert windows == {(1, 16, 16)} and _same(train[2], train[2])
    for bad in (0, 33):
        with pytest.raises(UsageError, match="crop must lie in"):
            AgedDataset(photo_folder, size=32, crop=bad)


def test_exposure_jitter_reexposes_some_clean_training_photos_and_nothing_else(photo_folder):
    """A share of the training items gets a re-exposed clean photo (aged from it, so the pair still agrees);
    off, items are what they always were; validation items never change."""
    plain = AgedDataset(photo_folder, size=32, presets="local", seed=3, train=True)
    jittered = AgedDataset(photo_folder, size=32, presets="local", seed=3, train=True, exposure=1.0)
    assert all(_same(plain[i], AgedDataset(photo_folder, size=32, presets="local", seed=3, train=True,
                                           exposure=0.0)[i]) for i in range(len(plain)))
    changed = [not torch.equal(plain[i][1], jittered[i][1]) for i in range(len(plain))]
    assert all(changed) and _same(jittered[1], jittered[1])
    for i in range(len(plain)):  # the damage is drawn on the re-exposed photo, where it is still visible
        aged, clean, mask = jittered[i]
        assert (mask > 0).any() and (aged - clean).abs()[mask > 0].mean() > 0.03
    val = AgedDataset(photo_folder, size=32, presets="local", seed=3, exposure=1.0)
    assert _same(val[0], AgedDataset(photo_folder, size=32, presets="local", seed=3)[0])
    with pytest.raises(UsageError, match="exposure must lie in"):
        AgedDataset(photo_folder, exposure=1.5)


def test_vary_exposure_spans_dark_to_clipped_white():
    ramp = np.linspace(0, 1, 256, dtype=np.float32)
    rng = np.random.default_rng(0)
    results = [vary_exposure(ramp, rng) for _ in range(200)]
    assert all(r.dtype == np.float32 and r.min() >= 0 and r.max() <= 1 for r in results)
    assert all(np.all(np.diff(r) >= 0) for r in results)  # a tone curve: the order of levels is kept
    assert max((r >= 0.999).mean() for r in results) > 0.3  # some clip a third of the levels to white
    assert min(r.mean() for r in results) < 0.35 < 0.6 < max(r.mean() for r in results)


def test_aged_dataset_skips_unreadable_files_and_counts_them(photo_folder):
    (photo_folder / "junk.jpg").write_bytes(b"this is not a jpeg")
    (photo_folder / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = AgedDataset(photo_folder, size=16)
    assert len(ds) == 4 and len(ds.skipped) == 2
    assert any("junk.jpg" in s for s in ds.skipped) and any("empty.png" in s for s in ds.skipped)


def test_aged_dataset_full_check_drops_a_truncated_file(photo_folder):
    good = _photo(photo_folder / "z.jpg", 9, size=(64, 64))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])  # header intact, body cut
    assert len(AgedDataset(photo_folder, size=16, check="header")) == 5
    with pytest.warns(UserWarning):
        ds = AgedDataset(photo_folder, size=16, check="full")
    assert len(ds) == 4 and "z.jpg" in ds.skipped[0]


def test_aged_dataset_replaces_an_undecodable_item_with_the_next(photo_folder):
    bad = _photo(photo_folder / "z.jpg", 9, size=(64, 64))
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # passes the header check, fails to decode
    ds = AgedDataset(photo_folder, size=16)
    with pytest.warns(UserWarning, match="z.jpg"):
        aged, clean, mask = ds[len(ds) - 1]  # z.jpg sorts last; p0.png stands in
    assert torch.equal(clean, AgedDataset(photo_folder, size=16)[0][1])


def test_all_corrupt_folder_names_the_folder(tmp_path):
    folder = tmp_path / "broken_photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"nope")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nshort")
    with pytest.raises(HelpersError, match="broken_photos.*2 unreadable"):
        AgedDataset(folder)
    with pytest.raises(HelpersError, match="no usable images"):
        AgedDataset(tmp_path / "missing")


def test_aged_dataset_rejects_bad_options(photo_folder):
    with pytest.raises(UsageError, match="unknown preset"):
        AgedDataset(photo_folder, presets="ancient")
    with pytest.raises(UsageError):
        AgedDataset(photo_folder, strength=(0.8, 0.2))


def test_aged_dataset_in_dataloader_workers_matches_direct_indexing(photo_folder):
    ds = AgedDataset(photo_folder, size=16, seed=5)
    ds.set_epoch(2)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    aged = torch.cat([batch[0] for batch in loader])
    assert torch.equal(aged, torch.stack([ds[i][0] for i in range(len(ds))]))


def test_paired_folder_dataset_reads_what_age_wrote(tmp_path, photo_folder):
    (photo_folder / "church").mkdir()
    _photo(photo_folder / "church" / "c0.png", 11)
    out = tmp_path / "aged_set"
    report = age_folder([str(photo_folder)], out, AgeSettings(size=32, masks=True), workers=0, progress=False)
    assert report.exit_code == 0
    ds = PairedFolderDataset(out)
    assert len(ds) == 5
    aged, clean, mask = ds[0]
    assert aged.shape == clean.shape == mask.shape == (1, 32, 32)
    name = ds.rows[0]["file"]
    expected = np.asarray(Image.open(out / "aged" / name), dtype=np.float32) / 255
    assert torch.allclose(aged[0], torch.from_numpy(expected))
    assert len(PairedFolderDataset(out, classes=["church"])) == 1


def test_paired_folder_dataset_needs_manifest_and_masks(tmp_path, photo_folder):
    with pytest.raises(HelpersError, match="manifest.csv"):
        PairedFolderDataset(photo_folder)
    out = tmp_path / "no_masks"
    age_folder([str(photo_folder)], out, AgeSettings(size=16, masks=False), workers=0, progress=False)
    with pytest.raises(HelpersError, match="--masks"):
        PairedFolderDataset(out)


def _fake_imagenette(root: Path) -> Path:
    base = root / "download" / "imagenette2"
    wnids = list(IMAGENETTE_CLASSES)[:2]
    for i in range(6):
        split = "train" if i < 4 else "val"
        _photo(base / split / wnids[i % 2] / f"{wnids[i % 2]}_{i}.JPEG", i)
    return base


def test_imagenette_constants():
    assert len(IMAGENETTE_CLASSES) == 10 and IMAGENETTE_CLASSES["n03888257"] == "parachute"
    assert IMAGENETTE_SPLIT_SIZES == {"train": 9469, "val": 3925}


def test_find_imagenette_in_a_nested_local_folder(tmp_path):
    base = _fake_imagenette(tmp_path)
    assert find_imagenette(tmp_path) == base
    assert imagenette_source(tmp_path) == base
    assert imagenette_split(base, "val") == base / "val"
    with pytest.raises(UsageError):
        imagenette_split(base, "test")


def test_imagenette_source_accepts_a_flat_folder_and_explains_absence(tmp_path, photo_folder, monkeypatch):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert imagenette_source(photo_folder) == photo_folder
    assert imagenette_split(photo_folder, "train") == photo_folder
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HelpersError, match="--download"):
        imagenette_source(empty)  # never downloads unless asked


def test_imagenette_source_finds_the_kaggle_input(tmp_path, monkeypatch):
    base = _fake_imagenette(tmp_path / "input")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setenv("REPAIR_INPUT_ROOT", str(tmp_path / "input"))
    assert imagenette_source() == base


def test_age_imagenette_keeps_splits_and_classes(tmp_path):
    base = _fake_imagenette(tmp_path)
    report = age_imagenette(base, tmp_path / "out", settings=AgeSettings(size=16, masks=True), workers=0,
                            progress=False)
    splits = report.payload["splits"]
    assert report.exit_code == 0 and set(splits) == {"train", "val"}
    assert splits["train"]["written"] == 4 and splits["val"]["written"] == 2
    assert set(splits["train"]["classes"]) == set(list(IMAGENETTE_CLASSES)[:2])
    wnid = list(IMAGENETTE_CLASSES)[0]
    assert (tmp_path / "out" / "train" / "masks" / wnid / f"{wnid}_0.png").is_file()
    limited = age_imagenette(base, tmp_path / "few", ["train"], AgeSettings(size=16), workers=0, progress=False,
                             limit_per_class=1)
    assert limited.payload["splits"]["train"]["written"] == 2
