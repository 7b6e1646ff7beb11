"""Smaller promises of the command line: an animated image says only its first frame was restored, a tile
size off the network's grid is rounded up (never silently down to no overlap), Ctrl-C at start-up prints no
traceback, a bad --device is a usage error, and a broken manifest or checkpoint is named in the error."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.__main__ import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_an_animated_gif_says_only_its_first_frame_is_restored(tmp_path, capsys):
    frames = [Image.fromarray(np.full((24, 32), 40 * (i + 1), np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    code = main(["restore", str(tmp_path / "moving.gif"), "--out", str(tmp_path / "out"), "--model", "classical",
                 "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (output,) = json.loads(captured.out)["outputs"]
    assert "first of 3 frames" in output["note"]
    assert "moving.gif" in captured.err and "first of 3 frames" in captured.err


def test_a_tile_off_the_grid_is_rounded_up_and_keeps_its_overlap():
    from helpers import restore

    from helpers.models import build_models

    torch.manual_seed(0)
    generator, _, spec = build_models("unet", width=8, max_width=16, depth=3, bottleneck_blocks=1)
    assert spec.notes["stride"] == 16
    torch.nn.init.normal_(generator.to_correction.weight, 0.0, 0.05)
    restorer = restore.restorer_from_model(generator, spec)
    img = np.random.default_rng(0).integers(0, 256, (80, 96), dtype=np.uint8)
    whole, _ = restore.restore_image(img, restorer, tile=0)
    asked, _ = restore.restore_image(img, restorer, tile=17, overlap=8)
    rounded_up, _ = restore.restore_image(img, restorer, tile=32, overlap=16)
    no_overlap, _ = restore.restore_image(img, restorer, tile=32, overlap=0)
    assert np.array_equal(asked, rounded_up)
    seams = np.abs(asked.astype(float) - whole).mean()
    assert seams < np.abs(no_overlap.astype(float) - whole).mean()  # the blend asked for is really there


def _default_sigint():
    """In the child: Ctrl-C as a terminal delivers it. A test run started in the background (`nohup ... &`)
    ignores SIGINT, and Python keeps an inherited SIG_IGN, so the command would never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_start_up_prints_no_traceback():
    for delay in (0.4, 0.8):  # importing torch and the commands takes longer than this
        for _ in range(3):
            process = subprocess.Popen([sys.executable, "-m", "helpers", "restore", "nothing.png", "--out",
                                        "/tmp/x"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       preexec_fn=_default_sigint)
            time.sleep(delay)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
            if "init_import_site" not in stderr:
                break
            delay *= 2  # a loaded machine: still inside Python's own start-up, before any of our code
        assert "Traceback" not in stderr, stderr
        assert process.returncode in (130, -signal.SIGINT), (process.returncode, stderr)


@pytest.mark.parametrize("command", [["restore", "x.png", "--out", "o"],
                                     ["invert", "x.png", "--degradation", "blur", "--out", "o"],
                                     ["train", "--data", "d", "--out", "o"]])
def test_an_unknown_device_is_a_usage_error(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--device", "foo"])
    assert exit_.value.code == 2
    assert "--device" in capsys.readouterr().err.splitlines()[-1]  # the error line names the option


@pytest.mark.parametrize("command", [["age", "x.png"], ["restore", "x.png"], ["demo"], ["train", "--data", "d"],
                                     ["invert", "x.png", "--degradation", "blur"], ["fetch-loc"]])
def test_an_output_folder_that_is_a_file_is_a_usage_error(tmp_path, capsys, command):
    """Before any work: `invert` used to run the whole inversion and then fail on its first write."""
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--out", str(tmp_path / "file")])
    assert exit_.value.code == 2
    assert "--out" in (err := capsys.readouterr().err.splitlines()[-1]) and "is a file, not a folder" in err
    assert (tmp_path / "file").read_text() == "not a folder"


def test_a_device_that_is_absent_is_a_usage_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal of an absent one cannot be seen here")
    with pytest.raises(SystemExit) as exit_:
        main(["restore", "x.png", "--out", "o", "--device", "cuda"])
    assert exit_.value.code == 2 and "no CUDA" in capsys.readouterr().err


def test_a_broken_manifest_is_named(tmp_path, capsys):
    from helpers import HelpersError
    from helpers.data import PairedFolderDataset

    Image.fromarray(np.full((40, 40), 99, np.uint8)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert main(["age", str(tmp_path / "a.png"), "--out", str(out), "--size", "32", "--workers", "0", "--masks",
                 "--quiet"]) == 0
    (out / "manifest.csv").write_bytes(b"\xff\xfe\x00binary\x00garbage\n" * 4)
    capsys.readouterr()
    assert main(["age", str(tmp_path / "a.png"), "--out", str(out), "--size", "32", "--workers", "0", "--masks",
                 "--quiet"]) == 1
    assert str(out / "manifest.csv") in capsys.readouterr().err
    with pytest.raises(HelpersError, match="manifest.csv"):
        PairedFolderDataset(out)


@pytest.mark.parametrize("metadata", ["{not json", json.dumps({"model": "unet", "model_config": {"width": "x"}}),
                                      json.dumps({"no": "model"}), json.dumps(["a", "list"])])
def test_a_checkpoint_with_bad_metadata_is_named(tmp_path, capsys, metadata):
    from safetensors.torch import save_file

    from helpers.checkpoints import FORMAT

    path = tmp_path / "bad.safetensors"
    save_file({"generator.w": torch.zeros(1)}, path, metadata={"format": FORMAT, "metadata": metadata,
                                                                 "state": "{}", "sha256": "{}"})
    Image.fromarray(np.full((24, 32), 99, np.uint8)).save(tmp_path / "a.png")
    code = main(["restore", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--model", "unet",
                 "--checkpoint", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and str(path) in err and "Traceback" not in err, err
