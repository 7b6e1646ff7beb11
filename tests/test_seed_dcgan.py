"""The seed DCGAN replica against the study's torchsummary tables, row by row."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from tiny_gan import build

from helpers import models
from helpers.__main__ import main
from helpers.models.seed_dcgan import SeedDiscriminator

# The study's tables: (layer, output channels x height x width, parameters), batch dimension left out.
STUDY_GENERATOR = [
    ("ConvTranspose2d", [256, 259, 259], 4_096), ("BatchNorm2d", [256, 259, 259], 512), ("ReLU", [256, 259, 259], 0),
    ("ConvTranspose2d", [128, 518, 518], 524_288), ("BatchNorm2d", [128, 518, 518], 256), ("ReLU", [128, 518, 518], 0),
    ("ConvTranspose2d", [64, 1036, 1036], 131_072), ("BatchNorm2d", [64, 1036, 1036], 128),
    ("ReLU", [64, 1036, 1036], 0), ("MaxPool2d", [64, 259, 259], 0),
    ("ConvTranspose2d", [32, 260, 260], 32_768), ("BatchNorm2d", [32, 260, 260], 64), ("ReLU", [32, 260, 260], 0),
    ("MaxPool2d", [32, 257, 257], 0), ("ConvTranspose2d", [1, 256, 256], 512), ("Tanh", [1, 256, 256], 0),
]
STUDY_DISCRIMINATOR = [
    ("Conv2d", [32, 128, 128], 512), ("LeakyReLU", [32, 128, 128], 0),
    ("Conv2d", [64, 64, 64], 32_768), ("BatchNorm2d", [64, 64, 64], 128), ("LeakyReLU", [64, 64, 64], 0),
    ("Conv2d", [128, 32, 32], 131_072), ("BatchNorm2d", [128, 32, 32], 256), ("LeakyReLU", [128, 32, 32], 0),
    ("Conv2d", [256, 16, 16], 524_288), ("BatchNorm2d", [256, 16, 16], 512), ("LeakyReLU", [256, 16, 16], 0),
    ("MaxPool2d", [256, 4, 4], 0),
    ("Conv2d", [256, 2, 2], 1_048_576), ("BatchNorm2d", [256, 2, 2], 512), ("LeakyReLU", [256, 2, 2], 0),
    ("Flatten", [1024], 0), ("Linear", [100], 102_500), ("ReLU", [100], 0), ("Linear", [100], 10_100),
    ("ReLU", [100], 0), ("Linear", [2], 202), ("Softmax", [2], 0),
]


@pytest.fixture(scope="module")
def summary_json():
    """One `summary --json` run (about 10 s: torchsummary pushes two 256x256 images through the generator)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["summary", "--model", "seed-dcgan", "--json"]) == 0
    return json.loads(stdout.getvalue())


@pytest.mark.parametrize("part, study, total", [("generator", STUDY_GENERATOR, 693_696),
                                                ("discriminator", STUDY_DISCRIMINATOR, 1_851_426)])
def test_summary_matches_the_study_row_by_row(summary_json, part, study, total):
    table = summary_json[part]
    got = [(row["layer"].rsplit("-", 1)[0], row["output_shape"][1:], row["params"]) for row in table["rows"]]
    assert got == study
    assert [row["layer"].rsplit("-", 1)[1] for row in table["rows"]] == [str(i) for i in range(1, len(study) + 1)]
    assert table["total_params"] == sum(p for _, _, p in study) == total


def test_summary_prints_torchsummary_tables(capsys, monkeypatch):
    monkeypatch.setitem(models.BUILDERS, "tiny", build)
    assert main(["summary", "--model", "tiny", "--size", "16"]) == 0
    out = capsys.readouterr().out
    assert out.count("Layer (type)") == 2 and "tiny generator, input 1 x 16 x 16" in out
    assert "tiny discriminator, input 2 x 16 x 16" in out  # conditional: damaged + candidate


def test_summary_refuses_another_size_for_the_fixed_size_model(capsys):
    assert main(["summary", "--model", "seed-dcgan", "--size", "128"]) == 2
    assert "256x256 inputs only" in capsys.readouterr().err


def test_discriminator_keeps_its_softmax_but_trains_on_logits():
    torch.manual_seed(0)
    discriminator = SeedDiscriminator().eval()
    x = torch.rand(2, 1, 256, 256) * 2 - 1
    logits = discriminator(x, return_logits=True)
    probabilities = discriminator(x)
    assert logits.shape == probabilities.shape == (2, 2)
    torch.testing.assert_close(probabilities, logits.softmax(1))
    assert not torch.allclose(logits.sum(1), torch.ones(2))


def test_dcgan_init():
    generator, discriminator, spec = models.build_models("seed-dcgan")
    convs = [m.weight for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert abs(torch.cat([w.flatten() for w in convs]).std().item() - 0.02) < 0.002
    assert (spec.conditional, spec.loss, spec.l1_weight, spec.image_size) == (False, "ce2", 100.0, 256)


@pytest.mark.skipif(not __import__("helpers.restore").restore.DEFAULT_CHECKPOINTS["seed-dcgan"].is_file(),
                    reason="the bundled seed DCGAN checkpoint is not in helpers/weights")
def test_restore_with_the_bundled_seed_dcgan(tmp_path, capsys):
    """The study's model through the command: any size goes through 256x256 tiles and comes back at its own
    size, and the output is the photo run through the trained network (not noise, not the input)."""
    import numpy as np
    from PIL import Image

    from helpers.aging import age_image
    from helpers.data import bundled_samples
    from helpers.io import from_float, read_image, to_float, to_gray

    clean = to_gray(read_image(bundled_samples("clean")[0]))[:200, :230]  # under one 256x256 tile
    aged = from_float(age_image(to_float(clean), "seed", seed=0).image)
    Image.fromarray(aged).save(tmp_path / "aged.png")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["restore", str(tmp_path / "aged.png"), "--out", str(tmp_path / "out"), "--model", "seed-dcgan",
                     "--json", "--quiet", "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["model"] == "seed-dcgan" and doc["checkpoint"].endswith("seed_dcgan.safetensors")
    restored = read_image(tmp_path / "out/aged.png").astype(float)
    assert restored.shape == aged.shape == (200, 230)
    assert np.abs(restored - aged).mean() > 1  # the network ran
    assert np.corrcoef(restored.ravel(), clean.astype(float).ravel())[0, 1] > 0.5  # and kept the photo


@pytest.mark.parametrize("model", ["detector", "inpainter"])
def test_summary_prints_the_pipeline_stages_which_have_no_discriminator(capsys, model):
    assert main(["summary", "--model", model, "--size", "64", "--json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert "discriminator" not in tables and tables["generator"]["total_params"] > 10_000
