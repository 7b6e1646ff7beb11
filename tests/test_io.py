"""helpers.io: odd but valid images decode correctly; bad ones give one line naming file and reason."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import io
from images import gradient, png_header_only


def test_rgb_round_trip(tmp_path):
    img = gradient()
    out = io.write_image(tmp_path / "a.png", img)
    assert np.array_equal(io.read_image(out), img)


def test_gray_8_and_16_bit(tmp_path):
    gray8 = gradient()[..., 0]
    Image.fromarray(gray8).save(tmp_path / "g8.png")
    assert io.read_image(tmp_path / "g8.png").dtype == np.uint8
    gray16 = (gray8.astype(np.uint16) * 257 + 3)
    io.write_image(tmp_path / "g16.png", gray16)
    back = io.read_image(tmp_path / "g16.png")
    assert back.dtype == np.uint16 and np.array_equal(back, gray16)


def test_rgb_16_bit_keeps_depth(tmp_path):
    rgb16 = gradient().astype(np.uint16) * 257 + 1
    io.write_image(tmp_path / "c16.png", rgb16)
    back = io.read_image(tmp_path / "c16.png")
    assert back.dtype == np.uint16 and np.array_equal(back, rgb16)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = io.read_image(tmp_path / "a.png")
    assert img.shape == (4, 4, 3)
    assert tuple(img[0, 0]) == (200, 0, 0) and tuple(img[3, 3]) == (255, 255, 255)


def test_float_tiffs_keep_their_tones(tmp_path):
    ramp = np.linspace(0.0, 1.0, 24, dtype=np.float32).reshape(4, 6)
    Image.fromarray(ramp, "F").save(tmp_path / "unit.tif")  # [0, 1], as most float scans hold it
    unit = io.read_image(tmp_path / "unit.tif")
    assert unit.dtype == np.uint16 and unit[0, 0] == 0 and unit[-1, -1] == 65535
    assert np.abs(unit / 65535 - ramp).max() < 1e-4
    Image.fromarray(ramp * 200, "F").save(tmp_path / "levels.tif")  # levels of 0-255
    levels = io.read_image(tmp_path / "levels.tif")
    assert levels.dtype == np.uint8 and np.abs(levels - ramp * 200).max() <= 0.5


def test_gray_with_alpha_is_composited_on_white(tmp_path):
    la = np.zeros((4, 6, 2), np.uint8)
    la[..., 0] = 90
    la[:2, :, 1] = 255  # top half opaque, bottom half transparent
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    img = io.read_image(tmp_path / "la.png")
    assert img.shape == (4, 6) and img.dtype == np.uint8
    assert img[0, 0] == 90 and img[3, 5] == 255


def test_palette_and_cmyk(tmp_path):
    Image.fromarray(gradient()).convert("P", palette=Image.ADAPTIVE).save(tmp_path / "p.gif")
    assert io.read_image(tmp_path / "p.gif").shape == (24, 32, 3)
    Image.fromarray(gradient()).convert("CMYK").save(tmp_path / "c.jpg")
    cmyk = io.read_image(tmp_path / "c.jpg")
    assert cmyk.shape == (24, 32, 3)
    assert np.abs(cmyk.astype(int) - gradient()).mean() < 12  # JPEG loss only, colours right


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(gradient(20, 40))  # landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    upright = io.read_image(tmp_path / "rot.jpg").astype(float)
    assert upright.shape[:2] == (40, 20)
    clockwise, counter = np.rot90(gradient(20, 40), -1), np.rot90(gradient(20, 40), 1)
    assert np.abs(upright - clockwise).mean() < 3  # JPEG's loss only
    assert np.abs(upright - counter).mean() > 30  # a turn the wrong way (or a flip) is caught


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(os.urandom(2048)), "not an image"),
    (lambda p: p.write_text("hello, not a photo\n"), "not an image"),
    (lambda p: p.write_bytes(Path(p.parent / "good.png").read_bytes()[:300]), "truncated"),
    (lambda p: png_header_only(p, 30000, 30000), "exceeds the limit"),
])
def test_bad_inputs_give_one_line_and_stay_untouched(tmp_path, make, reason):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    make(bad)
    before = bad.read_bytes()
    with pytest.raises(io.ImageReadError) as err:
        io.read_image(bad)
    message = str(err.value)
    assert message.startswith(str(bad)) and reason in message and "\n" not in message
    assert bad.read_bytes() == before


def test_pixel_limit_can_be_raised(tmp_path):
    io.write_image(tmp_path / "a.png", gradient())
    with pytest.raises(io.ImageReadError):
        io.read_image(tmp_path / "a.png", max_pixels=100)
    assert io.read_image(tmp_path / "a.png", max_pixels=10_000).shape == (24, 32, 3)


def test_symlink_loop_and_missing_file(tmp_path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(io.ImageReadError, match="loop.png"):
        io.read_image(loop)
    with pytest.raises(io.ImageReadError, match="no such file"):
        io.read_image(tmp_path / "missing.png")


def test_write_never_replaces_inputs_or_existing_files(tmp_path):
    src = io.write_image(tmp_path / "in.png", gradient())
    before = src.read_bytes()
    with pytest.raises(io.ImageWriteError, match="input"):
        io.write_image(src, gradient()[::-1], overwrite=True, protected=[src])
    with pytest.raises(io.ImageWriteError, match="already exists"):
        io.write_image(src, gradient()[::-1])
    assert src.read_bytes() == before
    io.write_image(src, gradient()[::-1], overwrite=True)
    assert src.read_bytes() != before


@pytest.mark.parametrize("final_step, overwrite", [("link", False), ("replace", True)])
def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch, final_step, overwrite):
    def boom(*_args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, final_step, boom)  # interrupted just as the finished file gets its name
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_bytes(tmp_path / "x.bin", b"data", overwrite=overwrite)
    assert list(tmp_path.iterdir()) == []


def test_write_into_unwritable_place_names_the_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(io.ImageWriteError, match="cannot write"):
        io.write_image(blocker / "out.png", gradient())


def test_find_images_expands_and_skips_output_folder(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for rel in ["a.png", "sub/b.jpg", "notes.txt"]:
        (tmp_path / "in" / rel).write_bytes(b"x")
    out = tmp_path / "in" / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"x")
    (tmp_path / "in" / "sub" / "loop").symlink_to(tmp_path / "in")
    found, problems = io.find_images([tmp_path / "in", str(tmp_path / "in" / "*.png"), tmp_path / "nope"],
                                     exclude=[out])
    assert [p.relative_to(tmp_path / "in").as_posix() for p in found] == ["a.png", "sub/b.jpg"]
    assert problems == [(str(tmp_path / "nope"), "no such file or folder")]


def test_find_images_follows_symlinked_folders_once(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").write_bytes(b"x")
    linked = tmp_path / "set"
    (linked / "sub").mkdir(parents=True)
    (linked / "sub" / "photos").symlink_to(data)  # a data set assembled from links
    (linked / "sub" / "again").symlink_to(data)  # the same folder twice: its images once
    (linked / "sub" / "up").symlink_to(linked)  # a loop back to the top
    found, problems = io.find_images([linked])
    assert [p.name for p in found] == ["a.png"] and problems == []


def test_float_conversions_round_trip():
    img = gradient()
    assert np.array_equal(io.from_float(io.to_float(img)), img)
    u16 = img.astype(np.uint16) * 257
    assert np.array_equal(io.from_float(io.to_float(u16), np.uint16), u16)
    assert io.to_gray(img).shape == img.shape[:2] and io.to_rgb(img[..., 0]).shape == img.shape
