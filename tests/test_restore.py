"""`python -m helpers restore`: every odd-but-valid input is restored right, every bad one refused with its
reason while the others go on, inputs never change, outputs are atomic, checkpoints are checked, and
tiles blend without seams.

The model is a tiny U-Net whose correction layer adds a constant +0.1 (in [0, 1]), so every test can
check that the model really ran on the right pixels, in the right orientation, with the right chroma.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import metrics
from helpers import restore as restore_module
from helpers.__main__ import main
from helpers.checkpoints import save_checkpoint
from helpers.data import bundled_samples
from helpers.age_folder import prepare_clean
from helpers.aging import apply_operator
from helpers.io import from_float, read_image, write_image
from helpers.models import build_models
from helpers.restore import DEFAULT_CHECKPOINTS
from images import gradient, png_header_only

TINY = {"channels": 1, "width": 8, "depth": 2, "max_width": 16, "bottleneck_blocks": 1, "disc_width": 8}
SHIFT = 0.1  # what the test model adds to every pixel, in [0, 1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")

BUNDLED_PIPELINE = pytest.mark.skipif(not all(DEFAULT_CHECKPOINTS[stage].is_file() for stage in ("detector", "unet")),
                                      reason="the bundled pipeline checkpoints are not in helpers/weights")


def _shift_model(config=TINY):
    generator, _, spec = build_models("unet", **config)
    torch.nn.init.constant_(generator.to_correction.bias, 2 * SHIFT)  # [-1, 1] units
    return generator, spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    generator, spec = _shift_model()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, {"generator": generator.state_dict()}, {"model": "unet", "model_config": spec.config})
    return path


def cli(capsys, *args) -> tuple[int, dict | None, str]:
    """Run the command in this process: (exit status, its --json document, stderr)."""
    code = main(["restore", *map(str, args), "--json", "--quiet"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def _shifted(img: np.ndarray) -> np.ndarray:
    top = np.iinfo(img.dtype).max
    return np.clip(img.astype(np.float64) + SHIFT * top, 0, top)


def _snapshot(folder: Path) -> dict[str, str]:
    """Bytes (or link target) of every entry under folder, to prove inputs stay identical."""
    state = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            state[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


# ---------------------------------------------------------------- odd but valid inputs

def test_gray_and_color_keep_size_layout_and_get_the_model_applied(tmp_path, capsys, checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    gray = gradient(30, 40, top=200)[..., 0]
    Image.fromarray(gray).save(src / "gray.png")
    Image.fromarray(gradient(30, 40, top=200)).save(src / "color.png")
    code, doc, err = cli(capsys, src, "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 0, err
    out_gray, out_color = read_image(tmp_path / "out/gray.png"), read_image(tmp_path / "out/color.png")
    assert out_gray.shape == gray.shape and out_gray.dtype == np.uint8
    assert np.abs(out_gray - _shifted(gray)).max() <= 1
    # a gray model restores the luminance: every channel moves by the same amount, chroma is kept
    assert out_color.shape == (30, 40, 3)
    assert np.abs(out_color - _shifted(gradient(30, 40, top=200))).max() <= 2
    assert len(doc["outputs"]) == 2 and doc["failures"] == []


def test_rgb_flag_writes_color_for_gray_input(tmp_path, capsys, checkpoint):
    Image.fromarray(gradient(30, 40, top=200)[..., 1]).save(tmp_path / "g.png")
    code, _, err = cli(capsys, tmp_path / "g.png", "--out", tmp_path / "out", "--checkpoint", checkpoint, "--rgb")
    assert code == 0, err
    out = read_image(tmp_path / "out/g.png")
    assert out.shape == (30, 40, 3) and np.array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("color", [False, True])
def test_16_bit_stays_16_bit_only_with_keep_depth(tmp_path, capsys, checkpoint, color):
    img16 = gradient(30, 40, top=200).astype(np.uint16) * 257 + 7
    img16 = img16 if color else img16[..., 0]
    cv2.imwrite(str(tmp_path / "deep.png"), img16[..., ::-1] if color else img16)
    code, _, err = cli(capsys, tmp_path / "deep.png", "--out", tmp_path / "keep", "--checkpoint", checkpoint,
                       "--keep-depth")
    assert code == 0, err
    kept = read_image(tmp_path / "keep/deep.png")
    assert kept.dtype == np.uint16 and kept.shape == img16.shape
    assert np.abs(kept - _shifted(img16)).max() <= (64 if color else 4)  # color: YCrCb round trip in float32
    cli(capsys, tmp_path / "deep.png", "--out", tmp_path / "eight", "--checkpoint", checkpoint)
    assert read_image(tmp_path / "eight/deep.png").dtype == np.uint8


def test_rgba_cmyk_palette_and_exif_rotated_files(tmp_path, capsys, checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.dstack([gradient(30, 40, top=200), np.full((30, 40), 255, np.uint8)])
    rgba[:10, :, 3] = 0  # transparent top: composited on white
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    Image.fromarray(gradient(30, 40, top=200)).convert("CMYK").save(src / "cmyk.jpg", quality=95)
    Image.fromarray(gradient(30, 40, top=200)).convert("P", palette=Image.ADAPTIVE).save(src / "palette.gif")
    stored = np.zeros((20, 40), np.uint8)
    stored[:, 20:] = 200  # left half dark as stored; EXIF 6 turns it 90 degrees clockwise for display
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(src / "rotated.jpg", exif=exif, quality=95)
    before = _snapshot(src)
    code, doc, err = cli(capsys, src, "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 0, err
    assert _snapshot(src) == before
    alpha = read_image(tmp_path / "out/alpha.png")
    assert alpha.shape == (30, 40, 3) and alpha[:10].min() == 255
    for name in ("cmyk", "palette"):
        out = read_image(tmp_path / f"out/{name}.png")
        assert out.shape == (30, 40, 3)
        assert np.abs(out - _shifted(read_image(next(src.glob(f"{name}.*"))))).mean() < 2
    upright = read_image(tmp_path / "out/rotated.png")
    assert upright.shape == (40, 20)  # portrait on display, written without EXIF
    assert upright[:20].mean() + 100 < upright[20:].mean()  # the stored left (dark) half is now the top


def test_nested_folders_and_unicode_names_are_mirrored(tmp_path, capsys, checkpoint):
    src = tmp_path / "ålbum"
    (src / "1890s" / "日本").mkdir(parents=True)
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(src / "1890s" / "日本" / "фото 1.png")
    Image.fromarray(gradient(30, 40, top=200)).save(src / "top.jpg")
    Image.fromarray(gradient(30, 40, top=200)).save(src / "top.png")  # same stem as top.jpg: both must survive
    code, doc, err = cli(capsys, src, "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 0, err
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["1890s/日本/фото 1.png", "top.jpg.png", "top.png.png"]


def test_glob_sources_mirror_the_tree_below_the_pattern(tmp_path, capsys, checkpoint):
    (tmp_path / "scans" / "a").mkdir(parents=True)
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "scans" / "a" / "x.png")
    code, _, err = cli(capsys, f"{tmp_path}/scans/**/*.png", "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 0, err
    assert (tmp_path / "out" / "a" / "x.png").is_file()


@pytest.mark.parametrize("height, width", [(1, 1), (1, 7), (2, 3), (5, 1)])
def test_tiny_images_are_restored_by_padding(tmp_path, capsys, checkpoint, height, width):
    img = np.full((height, width), 90, np.uint8)
    Image.fromarray(img).save(tmp_path / "tiny.png")
    code, _, err = cli(capsys, tmp_path / "tiny.png", "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 0, err
    out = read_image(tmp_path / "out/tiny.png")
    assert out.shape == (height, width)
    assert np.abs(out - _shifted(img)).max() <= 1


def test_mask_is_saved_next_to_the_output(tmp_path, capsys, checkpoint):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "p.png")
    code, doc, err = cli(capsys, tmp_path / "p.png", "--out", tmp_path / "out", "--checkpoint", checkpoint,
                         "--save-mask")
    assert code == 0, err
    mask = read_image(tmp_path / "out/p_mask.png")
    assert mask.shape == (30, 40) and mask.dtype == np.uint8
    assert doc["outputs"][0]["mask"].endswith("p_mask.png")


# ---------------------------------------------------------------- bad inputs

def _bad_inputs(folder: Path) -> dict[str, str]:
    """name -> a word the refusal must contain."""
    good = gradient(30, 40, top=200)
    ok, jpeg = cv2.imencode(".jpg", good)
    jpeg = jpeg.tobytes()
    (folder / "corrupt.jpg").write_bytes(jpeg[:2] + b"\xff\xc0\x00\x02" + bytes(range(256)) * 4)
    Image.fromarray(good).save(folder / "whole.png")
    whole = (folder / "whole.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "whole.png").unlink()
    (folder / "empty.png").write_bytes(b"")
    (folder / "random.png").write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    (folder / "text.jpg").write_text("this is not a photograph\n")
    png_header_only(folder / "huge.png", 30000, 30000)
    os.symlink("loop.png", folder / "loop.png")
    return {"corrupt.jpg": "", "truncated.png": "truncated", "empty.png": "empty", "random.png": "not an image",
            "text.jpg": "not an image", "huge.png": "exceeds the limit", "loop.png": "link"}


def test_bad_inputs_are_each_refused_with_a_reason_while_good_ones_are_restored(tmp_path, capsys, checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    expected = _bad_inputs(src)
    Image.fromarray(gradient(30, 40, top=200)).save(src / "good.png")
    before = _snapshot(src)
    code, doc, err = cli(capsys, src, "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 1
    assert _snapshot(src) == before  # inputs byte-identical
    assert (tmp_path / "out/good.png").is_file()
    reasons = {Path(f["input"]).name: f["reason"] for f in doc["failures"]}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert name in reasons[name] and word in reasons[name].lower(), reasons[name]
        assert sum(name in line for line in err.splitlines()) == 1  # one line each on stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]  # no partial outputs


def test_pixel_limit_can_be_raised_for_a_trusted_file(tmp_path, capsys, checkpoint):
    png_header_only(tmp_path / "big.png", 12000, 10000)
    code, doc, _ = cli(capsys, tmp_path / "big.png", "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 1 and "exceeds the limit" in doc["failures"][0]["reason"]
    code, doc, _ = cli(capsys, tmp_path / "big.png", "--out", tmp_path / "out", "--checkpoint", checkpoint,
                       "--max-pixels", 200_000_000)
    assert code == 1 and "exceeds" not in doc["failures"][0]["reason"]  # now decoded: its missing pixels fail


def test_output_folder_inside_the_input_folder_is_never_read_back(tmp_path, capsys, checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(src / name)
    for _ in range(2):
        code, doc, err = cli(capsys, src, "--out", src / "restored", "--checkpoint", checkpoint, "--overwrite")
        assert code == 0, err
        assert sorted(Path(o["input"]).name for o in doc["outputs"]) == ["a.png", "b.png"]
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) == [
        "a.png", "b.png", "restored/a.png", "restored/b.png"]


def test_never_writes_over_an_input(tmp_path, capsys, checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(src / "a.png")
    before = _snapshot(src)
    code, _, err = cli(capsys, src, "--out", src, "--checkpoint", checkpoint, "--overwrite")
    assert code == 2 and "input folder" in err
    code, doc, _ = cli(capsys, src / "a.png", "--out", src, "--checkpoint", checkpoint, "--overwrite")
    assert code == 1 and "output folder" in doc["failures"][0]["reason"]
    assert _snapshot(src) == before


def test_existing_outputs_are_replaced_only_with_overwrite(tmp_path, capsys, checkpoint):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.png").write_bytes(b"older result")
    code, doc, _ = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 1 and "already exists" in doc["failures"][0]["reason"]
    assert (tmp_path / "out/a.png").read_bytes() == b"older result"
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "out", "--checkpoint", checkpoint,
                       "--overwrite")
    assert code == 0, err
    assert read_image(tmp_path / "out/a.png").shape == (30, 40)


def test_an_interrupted_write_leaves_no_partial_file(tmp_path, capsys, checkpoint, monkeypatch):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("helpers.io.os.replace", interrupted)
    monkeypatch.setattr("helpers.io.os.link", interrupted)  # a new output gets its name by a hard link
    assert main(["restore", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--checkpoint",
                 str(checkpoint), "--quiet"]) == 130
    assert list((tmp_path / "out").iterdir()) == []


def test_output_folder_whose_parent_is_a_file_fails_cleanly(tmp_path, capsys, checkpoint):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    (tmp_path / "file").write_text("not a folder")
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "file" / "out", "--checkpoint", checkpoint)
    assert code == 1 and "cannot write" in err and "Traceback" not in err


def _read_only_folder_runner(folder: Path) -> list[str] | None:
    """A command prefix under which `folder` is a read-only output folder, even for root; or None.

    Non-root: chmod 555 is enforced. Root ignores permission bits, so a private mount namespace
    (`unshare -m`) mounts a read-only tmpfs on the folder, visible only to that one command.
    """
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    if not shutil.which("unshare"):
        return None
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs '{folder}'"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    return ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs '{folder}' && exec \"$0\" \"$@\""]


def test_read_only_output_folder_is_refused_with_a_reason(tmp_path, checkpoint):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    out = tmp_path / "locked"
    prefix = _read_only_folder_runner(out)
    if prefix is None:
        pytest.skip("running as root without mount namespaces: no way to make a folder read-only for root")
    try:
        result = subprocess.run(prefix + [sys.executable, "-m", "helpers", "restore", str(tmp_path / "a.png"),
                                          "--out", str(out), "--checkpoint", str(checkpoint), "--quiet"],
                                capture_output=True, text=True, timeout=120)
    finally:
        out.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert "cannot write" in result.stderr and str(out) in result.stderr
    assert "Traceback" not in result.stderr
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------- checkpoints

def test_pickle_checkpoints_need_trust_and_load_only_weights(tmp_path, capsys, checkpoint):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    generator, spec = _shift_model()
    torch.save({"generator": generator.state_dict(), "metadata": {"model": "unet", "model_config": spec.config}},
               tmp_path / "model.pt")
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o1", "--checkpoint", tmp_path / "model.pt")
    assert code == 1 and "pickle" in err and "--trust-pickle" in err
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o2", "--checkpoint", tmp_path / "model.pt",
                       "--trust-pickle")
    assert code == 0, err
    assert np.abs(read_image(tmp_path / "o2/a.png") - _shifted(gradient(30, 40, top=200)[..., 0])).max() <= 1


class _Payload:
    """A pickle that would create a file when unpickled without weights_only."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_trusted_pickle_still_never_runs_code(tmp_path, capsys):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    torch.save({"generator": _Payload(tmp_path / "pwned")}, tmp_path / "evil.pth")
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "out", "--checkpoint",
                       tmp_path / "evil.pth", "--trust-pickle")
    assert code == 1 and "evil.pth" in err
    assert not (tmp_path / "pwned").exists()


def test_corrupted_truncated_and_foreign_checkpoints_name_the_problem(tmp_path, capsys, checkpoint):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    data = checkpoint.read_bytes()
    corrupted = bytearray(data)
    corrupted[-100] ^= 0xFF  # a weight byte
    (tmp_path / "corrupted.safetensors").write_bytes(bytes(corrupted))
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    seed, _, seed_spec = build_models("seed-dcgan")
    save_checkpoint(tmp_path / "seed.safetensors", {"generator": seed.state_dict()},
                    {"model": "seed-dcgan", "model_config": seed_spec.config})
    wide, _, wide_spec = build_models("unet", **(TINY | {"width": 12}))
    save_checkpoint(tmp_path / "other_shape.safetensors", {"generator": wide.state_dict()},
                    {"model": "unet", "model_config": TINY})  # metadata lies about the shape
    cases = {"corrupted": "corrupted", "truncated": "truncated", "seed": "'seed-dcgan', expected 'unet'",
             "other_shape": "do not fit"}
    for name, words in cases.items():
        code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / name, "--model", "unet",
                           "--checkpoint", tmp_path / f"{name}.safetensors")
        assert code == 1 and words in err and f"{name}.safetensors" in err, err
        assert "Traceback" not in err
    assert not any((tmp_path / name).exists() for name in cases)


@pytest.mark.parametrize("model, restorer", [("unet", "unet"), ("detector", "pipeline"), ("unet", "pipeline")])
def test_missing_bundled_checkpoint_says_how_to_get_one(tmp_path, capsys, monkeypatch, model, restorer):
    monkeypatch.setitem(restore_module.DEFAULT_CHECKPOINTS, model, tmp_path / "absent.safetensors")
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "out", "--model", restorer)
    assert code == 1 and "python -m helpers train" in err and "--checkpoint" in err and model in err


def test_a_missing_checkpoint_file_is_named_before_its_model_is_guessed(tmp_path, capsys):
    """A mistyped path used to be taken for a U-Net and refused for --fill: the message named the wrong thing."""
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "out", "--fill", "learned",
                       "--checkpoint", tmp_path / "absent.safetensors")
    assert code == 1 and "absent.safetensors: no such checkpoint file" in err and "unet" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_lone_checkpoint_picks_its_model_and_the_pipeline_takes_stage_checkpoints(tmp_path, capsys):
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    seed, _, seed_spec = build_models("seed-dcgan")
    save_checkpoint(tmp_path / "seed.safetensors", {"generator": seed.state_dict()},
                    {"model": "seed-dcgan", "model_config": seed_spec.config})
    code, doc, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o1", "--checkpoint", tmp_path / "seed.safetensors")
    assert code == 0 and doc["model"] == "seed-dcgan", err
    detector, _, detector_spec = build_models("detector")
    save_checkpoint(tmp_path / "det.safetensors", {"generator": detector.state_dict()},
                    {"model": "detector", "model_config": detector_spec.config})
    code, doc, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o2", "--checkpoint", tmp_path / "det.safetensors")
    assert code == 0 and doc["model"] == "pipeline" and doc["checkpoint"]["detector"].endswith("det.safetensors"), err
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o3", "--model", "pipeline",
                       "--checkpoint", tmp_path / "seed.safetensors")
    assert code == 2 and "a detector, a specks, a verifier, a blender, a unet and an inpainter checkpoint" in err
    unet, _, unet_spec = build_models("unet", width=8, max_width=16)
    save_checkpoint(tmp_path / "unet.safetensors", {"generator": unet.state_dict()},
                    {"model": "unet", "model_config": unet_spec.config})
    code, doc, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o5",
                         "--checkpoint", tmp_path / "unet.safetensors")
    assert code == 0 and doc["model"] == "unet", err  # alone, a U-Net checkpoint restores by itself
    code, doc, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o6",
                         "--checkpoint", tmp_path / "det.safetensors", "--checkpoint", tmp_path / "unet.safetensors")
    assert code == 0 and doc["model"] == "pipeline" and doc["checkpoint"]["unet"].endswith("unet.safetensors"), err
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o7", "--model", "pipeline",
                       "--checkpoint", tmp_path / "det.safetensors", "--checkpoint", tmp_path / "det.safetensors")
    assert code == 2 and "second detector checkpoint" in err
    inpainter, _, inpainter_spec = build_models("inpainter", width=8, max_width=16)
    save_checkpoint(tmp_path / "inp.safetensors", {"generator": inpainter.state_dict()},
                    {"model": "inpainter", "model_config": inpainter_spec.config})
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o8",
                       "--checkpoint", tmp_path / "det.safetensors", "--checkpoint", tmp_path / "inp.safetensors")
    assert code == 2 and "--fill learned" in err  # an inpainter is no use to Telea
    code, doc, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o9", "--fill", "learned",
                         "--checkpoint", tmp_path / "det.safetensors", "--checkpoint", tmp_path / "inp.safetensors")
    assert code == 0 and doc["model"] == "pipeline", err
    assert doc["checkpoint"]["inpainter"].endswith("inp.safetensors")
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o4", "--model", "unet", "--fill", "ns")
    assert code == 2 and "--fill" in err
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o10", "--model", "unet", "--tone", "off")
    assert code == 2 and "--tone applies to the pipeline only" in err
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o11", "--model", "unet", "--focus", "off")
    assert code == 2 and "--focus applies to the pipeline only" in err
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o12", "--model", "unet", "--deblock", "off")
    assert code == 2 and "--deblock applies to the pipeline only" in err
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "o13", "--model", "unet", "--verify", "on")
    assert code == 2 and "--verify applies to the pipeline only" in err


@BUNDLED_PIPELINE
def test_verify_on_fills_only_the_components_the_verifier_keeps(capsys, tmp_path):
    """Off (the default) fills whatever the detectors mark; on, the verifier may leave some of it, and the
    report says how much: what is filled is then a part of what off filled."""
    clean = prepare_clean(read_image(bundled_samples("clean")[1]), 256, gray=True)
    aged = apply_operator(from_float(clean, np.uint8), "jpeg", 0.6, seed=1).image
    write_image(tmp_path / "in" / "a.png", aged)
    masks = {}
    for mode in ("off", "on"):
        code, doc, err = cli(capsys, tmp_path / "in", "--out", tmp_path / mode, "--verify", mode, "--save-mask")
        assert code == 0, err
        fill = doc["outputs"][0]["stages"]["fill"]
        masks[mode] = read_image(tmp_path / mode / "a_mask.png") > 127
        assert fill["found"] > 0 and (fill["dropped"] > 0) == (mode == "on")
        assert masks[mode].mean() == pytest.approx(fill["found"] - fill["dropped"], abs=1e-4)
    assert (masks["on"] <= masks["off"]).all() and masks["on"].sum() < masks["off"].sum()


@BUNDLED_PIPELINE
def test_tone_off_keeps_an_intended_look_and_on_corrects_it(capsys, tmp_path):
    """A matte grade looks like fading to any gate; the user who knows says so: --tone off leaves every pixel
    outside the detected damage as it was, --tone on (and the gate, for so strong a fade) corrects it. The
    report says what the tone stage decided, and when the gate corrected a photo, how to keep its look.
    With --rims off, so that what is filled is exactly the saved mask."""
    from helpers.aging import apply_operator

    clean = read_image(bundled_samples("clean")[0])
    graded = apply_operator(clean, "fading", 0.8, seed=0).image
    Image.fromarray(graded).save(tmp_path / "matte.png")
    outputs = {}
    for tone in ("off", "on", "auto"):
        code, doc, err = cli(capsys, tmp_path / "matte.png", "--out", tmp_path / tone, "--tone", tone, "--save-mask",
                             "--rims", "off")
        assert code == 0 and doc["model"] == "pipeline", err
        outputs[tone] = read_image(tmp_path / tone / "matte.png").astype(int)
        notes = doc["outputs"][0]["stages"]["tone"]
        assert notes["mode"] == tone and notes["kept"] == (0.0 if tone == "off" else 1.0), notes
        assert ("restore those with --tone off" in err) == (tone == "auto"), err
    assert notes["black_point"] > 50 and notes["curves"] > 10  # fading at 0.8 lifts the blacks a lot
    mask = read_image(tmp_path / "off" / "matte_mask.png") > 127
    far = ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.abs(outputs["off"] - graded.astype(int))[far].max() <= 1
    assert np.abs(outputs["on"] - graded.astype(int))[far].mean() > 10
    assert np.array_equal(outputs["auto"], outputs["on"])


@BUNDLED_PIPELINE
def test_focus_off_keeps_an_intended_soft_focus_and_auto_sharpens_it(capsys, tmp_path):
    clean = read_image(bundled_samples("clean")[2])
    soft = cv2.GaussianBlur(clean, (0, 0), 1.6)
    Image.fromarray(soft).save(tmp_path / "soft.png")
    outputs = {}
    for focus in ("off", "auto"):
        code, doc, err = cli(capsys, tmp_path / "soft.png", "--out", tmp_path / focus, "--focus", focus,
                             "--tone", "off", "--save-mask", "--rims", "off")
        assert code == 0 and doc["model"] == "pipeline", err
        outputs[focus] = read_image(tmp_path / focus / "soft.png")
    mask = read_image(tmp_path / "off" / "soft_mask.png") > 127
    far = ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.abs(outputs["off"].astype(int) - soft.astype(int))[far].max() <= 1
    assert metrics.edge_contrast(clean, outputs["auto"]) > metrics.edge_contrast(clean, soft) + 0.1


def _scratched(tmp_path) -> Path:
    """A bundled photo with one long bright scratch, as a PNG in its own folder."""
    photo = read_image(bundled_samples("clean")[1])
    photo = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY) if photo.ndim == 3 else photo
    photo = cv2.resize(photo, (192, 160), interpolation=cv2.INTER_AREA)
    cv2.line(photo, (20, 30), (170, 120), 250, 2)
    (tmp_path / "in").mkdir()
    Image.fromarray(photo).save(tmp_path / "in" / "scratched.png")
    return tmp_path / "in" / "scratched.png"


@BUNDLED_PIPELINE
def test_masks_handed_back_repair_exactly_what_they_mark(capsys, tmp_path):
    """The workflow for what the detector gets wrong: --save-mask, edit the masks, pass their folder to
    --mask. Unedited, they give the same bytes as a first run that filled exactly its mask (--rims off: the
    rims stage fills beyond the mask, a choice no mask can hand back); edited, the repair follows the edit and
    nothing else."""
    photo = _scratched(tmp_path)
    code, doc, err = cli(capsys, photo.parent, "--out", tmp_path / "found", "--save-mask", "--rims", "off")
    assert code == 0, err
    code, doc, err = cli(capsys, photo.parent, "--out", tmp_path / "again", "--mask", tmp_path / "found", "--save-mask")
    assert code == 0 and doc["outputs"][0]["damage_mask"] == str(tmp_path / "found" / "scratched_mask.png"), err
    for name in ("scratched.png", "scratched_mask.png"):
        assert (tmp_path / "found" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()

    original = read_image(photo).astype(int)
    drawn = np.zeros(original.shape, np.uint8)
    Image.fromarray(drawn).save(tmp_path / "nothing.png")
    code, _, err = cli(capsys, photo, "--out", tmp_path / "none", "--mask", tmp_path / "nothing.png", "--tone", "off")
    assert code == 0, err
    assert np.array_equal(read_image(tmp_path / "none" / "scratched.png").astype(int), original)

    cv2.line(drawn, (20, 30), (170, 120), 255, 4)  # the user paints over the scratch, in colour
    Image.fromarray(np.dstack([drawn] * 3)).save(tmp_path / "painted.png")
    code, _, err = cli(capsys, photo, "--out", tmp_path / "painted", "--mask", tmp_path / "painted.png",
                       "--tone", "off", "--save-mask")
    assert code == 0, err
    out = read_image(tmp_path / "painted" / "scratched.png").astype(int)
    assert np.array_equal(read_image(tmp_path / "painted" / "scratched_mask.png") > 127, drawn > 127)
    near = cv2.dilate(drawn, np.ones((5, 5), np.uint8)) > 0  # the painted line widened by the pipeline's pixel
    assert np.array_equal(out[~near], original[~near])
    assert out[drawn > 127].mean() < original[drawn > 127].mean() - 30  # the bright scratch is gone


@BUNDLED_PIPELINE
def test_bad_masks_are_refused_with_their_reason(capsys, tmp_path):
    photo = _scratched(tmp_path)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(photo.parent / "other.png")
    code, _, err = cli(capsys, photo.parent, "--out", tmp_path / "o1", "--mask", tmp_path / "small.png")
    assert code == 2 and "one mask for 2 photos" in err
    code, doc, err = cli(capsys, photo, "--out", tmp_path / "o2", "--mask", tmp_path / "small.png")
    assert code == 1 and "the mask is 10x10, the photo 192x160" in doc["failures"][0]["reason"]
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / "masks" / "other_mask.png")
    code, doc, err = cli(capsys, photo.parent, "--out", tmp_path / "o3", "--mask", tmp_path / "masks")
    assert code == 1 and [Path(o["input"]).name for o in doc["outputs"]] == ["other.png"]
    assert "no damage mask for this photo" in doc["failures"][0]["reason"]
    code, _, err = cli(capsys, photo, "--out", tmp_path / "o4", "--mask", tmp_path / "absent")
    assert code == 1 and "no such mask file or folder" in err
    code, _, err = cli(capsys, photo, "--out", tmp_path / "o5", "--mask", tmp_path / "masks", "--model", "classical")
    assert code == 2 and "--mask applies to the pipeline only" in err
    before = (tmp_path / "masks" / "other_mask.png").read_bytes()  # masks are inputs: never written over
    code, doc, err = cli(capsys, photo.parent / "other.png", "--out", tmp_path / "masks", "--mask", tmp_path / "masks",
                         "--save-mask", "--overwrite")
    assert code == 1 and "refusing to write over an input" in doc["failures"][0]["reason"]
    assert (tmp_path / "masks" / "other_mask.png").read_bytes() == before


# ---------------------------------------------------------------- other restorers

class _Only256(torch.nn.Module):
    """Stands in for the seed DCGAN (38 GMAC a tile): accepts 256x256 and nothing else, darkens a bit."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.sizes = []

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        if x.shape[-2:] != (256, 256):
            raise ValueError(f"the seed DCGAN takes 256x256 only, got {tuple(x.shape[-2:])}")
        return (x + 1) * self.scale - 1


@pytest.mark.parametrize("height, width", [(60, 200), (300, 700), (1, 1)])
def test_fixed_size_models_restore_any_size_through_256_tiles(height, width):
    _, _, spec = build_models("seed-dcgan")
    model = _Only256()
    restorer = restore_module.restorer_from_model(model, spec)
    img = (np.random.default_rng(0).random((height, width)) * 255).astype(np.uint8)
    out, mask = restore_module.restore_image(img, restorer, tile=512)  # --tile does not apply to it
    assert out.shape == img.shape and mask is None
    assert set(model.sizes) == {(256, 256)}
    assert np.abs(out.astype(float) - img / 2).max() <= 1  # every pixel restored once, blended exactly


def test_seed_dcgan_has_no_mask_to_save(tmp_path, capsys, monkeypatch):
    generator, _, spec = build_models("seed-dcgan")
    monkeypatch.setattr(restore_module, "load_restorer",
                        lambda *a, **k: restore_module.restorer_from_model(generator, spec))
    Image.fromarray(gradient(30, 40, top=200)[..., 0]).save(tmp_path / "a.png")
    code, _, err = cli(capsys, tmp_path / "a.png", "--out", tmp_path / "out", "--model", "seed-dcgan",
                       "--save-mask")
    assert code == 2 and "mask" in err


def test_classical_baseline_through_the_command(tmp_path, capsys):
    img = np.full((64, 64), 120, np.uint8)
    cv2.line(img, (5, 10), (60, 50), 250, 1)
    Image.fromarray(img).save(tmp_path / "scratched.png")
    code, _, err = cli(capsys, tmp_path / "scratched.png", "--out", tmp_path / "out", "--model", "classical",
                       "--save-mask")
    assert code == 0, err
    out, mask = read_image(tmp_path / "out/scratched.png"), read_image(tmp_path / "out/scratched_mask.png")
    assert mask[30, 35] == 255 and mask[5, 50] == 0  # on the line / far from it
    assert out[30, 35] < 200  # the bright scratch was filled in


# ---------------------------------------------------------------- tiles

def _photo_like(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = sum(cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), s) * w
              for s, w in ((2, 1.0), (8, 3.0), (32, 6.0)))
    return ((img - img.min()) / (img.max() - img.min()) * 255).astype(np.uint8)


@pytest.mark.parametrize("options", [{}, {"context": True}, {"context": True, "gain": True}])
def test_tiled_and_untiled_restorations_of_768px_differ_by_under_half_a_gray_level(options):
    """Same stride (16) and so the same receptive-field geometry as the default model, narrower so the
    test is quick; its correction (and contrast gain) is made strong on purpose, so seams would show.
    With photo-wide context, every tile gets the whole photo's."""
    torch.manual_seed(0)
    generator, _, spec = build_models("unet", width=8, max_width=32, **options)
    torch.nn.init.normal_(generator.to_correction.weight, 0.0, 0.05)
    if options.get("context"):
        torch.nn.init.normal_(generator.context.mlp[-1].weight, 0.0, 0.05)
    if options.get("gain"):
        torch.nn.init.normal_(generator.to_gain.weight, 0.0, 0.05)
    restorer = restore_module.restorer_from_model(generator, spec)
    img = _photo_like(768)
    whole, _ = restore_module.restore_image(img, restorer, tile=0)
    tiled, _ = restore_module.restore_image(img, restorer, tile=512)  # the default overlap
    naive, _ = restore_module.restore_image(img, restorer, tile=512, overlap=0)
    change = np.abs(whole.astype(float) - img).mean()
    seams = np.abs(tiled.astype(float) - whole).mean()
    assert change > 5  # the model really changes the photo
    assert seams <= 0.5
    assert np.abs(naive.astype(float) - whole).mean() > 2 * seams  # blending is what removes the seams


def test_bundled_model_tiles_without_seams():
    path = restore_module.DEFAULT_CHECKPOINTS["unet"]
    if not path.is_file():
        pytest.skip(f"{path} not bundled yet (trained by `python -m helpers train --model unet`)")
    from helpers.aging import age_image
    from helpers.data import bundled_samples

    restorer = restore_module.load_restorer("unet", device="cpu")
    clean = cv2.resize(read_image(bundled_samples("clean")[0]), (768, 768), interpolation=cv2.INTER_CUBIC)
    aged = age_image(clean, "old-print", seed=3).image
    whole, _ = restore_module.restore_image(aged, restorer, tile=0)
    tiled, _ = restore_module.restore_image(aged, restorer, tile=512)  # default overlap; 1024 would not tile
    assert np.abs(tiled.astype(float) - whole).mean() <= 0.5


@BUNDLED_PIPELINE
def test_rims_off_fills_exactly_the_mask_and_auto_fills_around_it(capsys, tmp_path):
    """Auto (the default) may also fill the faint rims of what was found, and the report says how much;
    off changes nothing outside the widened mask. The option is the pipeline's alone."""
    clean = prepare_clean(read_image(bundled_samples("clean")[1]), 256, gray=True)
    aged = apply_operator(from_float(clean, np.uint8), "scratches", 0.6, seed=1).image
    write_image(tmp_path / "in" / "a.png", aged)
    results = {}
    for mode in ("off", "auto"):
        code, doc, err = cli(capsys, tmp_path / "in", "--out", tmp_path / mode, "--rims", mode, "--save-mask",
                             "--tone", "off", "--focus", "off")
        assert code == 0, err
        assert doc["outputs"][0]["stages"]["rims"]["ran"] == (mode == "auto")
        results[mode] = read_image(tmp_path / mode / "a.png").astype(int)
    mask = read_image(tmp_path / "off" / "a_mask.png") > 127
    outside = ~cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (results["off"][outside] == aged[outside]).all()
    assert (results["auto"] != results["off"]).any()
    code, _, err = cli(capsys, tmp_path / "in", "--out", tmp_path / "unet", "--model", "unet", "--rims", "off")
    assert code == 2 and "--rims applies to the pipeline only" in err
