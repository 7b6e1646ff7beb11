"""helpers.bundle: a run checkpoint becomes a small fp16 bundle that the restorer loads into a float32 model
and that restores like the original; it refuses to overwrite, and it only accepts quality numbers that
were measured on its own weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import HelpersError
from helpers.bundle import bundle_checkpoint, main, weights_digest
from helpers.checkpoints import load_checkpoint, load_generator, read_metadata, save_checkpoint
from helpers.models import build_models
from helpers.restore import load_restorer, restore_image

TINY = {"channels": 1, "width": 8, "depth": 2, "max_width": 16, "bottleneck_blocks": 1, "disc_width": 8}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run(tmp_path):
    """A training-style `last` checkpoint (generator, discriminator, optimizer) with non-trivial weights."""
    torch.manual_seed(0)
    generator, discriminator, spec = build_models("unet", **TINY)
    with torch.no_grad():
        for param in generator.parameters():
            param.add_(0.05 * torch.randn_like(param))
    optimizer = torch.optim.Adam(generator.parameters())
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "photos" / "a.jpg").write_bytes(b"x")
    path = tmp_path / "run" / "last.safetensors"
    path.parent.mkdir()
    save_checkpoint(path, {"generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
                           "optimizer_g": optimizer.state_dict()},
                    {"model": "unet", "model_config": spec.config, "step": 42, "epoch": 1,
                     "command": "python -m helpers train --model unet --data DATA --out RUN",
                     "data": {"source": str(data), "size": 256}, "git_commit": "abc"})
    return path, generator.eval()


def test_bundle_is_fp16_small_and_restores_like_the_run(run, tmp_path):
    path, original = run
    bundled = bundle_checkpoint(path, "unet_default", out_dir=tmp_path / "weights")
    from safetensors import safe_open

    with safe_open(str(bundled), "pt") as handle:
        keys = list(handle.keys())
        assert all(k.startswith("generator.") for k in keys)  # no discriminator nor optimizer
        floats = [handle.get_tensor(k) for k in keys if handle.get_tensor(k).is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    assert bundled.stat().st_size < 0.6 * path.stat().st_size

    metadata = json.loads(bundled.with_suffix(".json").read_text())
    assert metadata == read_metadata(bundled)
    assert metadata["step"] == 42 and metadata["command"].startswith("python -m helpers train")
    assert metadata["data"]["files_per_folder"] == {"photos": 1}
    assert metadata["bundle"]["dtype"] == "float16" and metadata["bundle"]["source"] == str(path)

    generator, _ = load_generator(bundled, "unet")
    assert all(p.dtype == torch.float32 for p in generator.parameters())
    x = torch.rand(1, 1, 40, 56) * 2 - 1
    with torch.no_grad():
        expected, got = original(x)[0], generator(x)[0]
    assert (got - expected).abs().max() < 2e-2 and not torch.equal(got, expected)

    img = (np.random.default_rng(0).random((48, 64)) * 255).astype(np.uint8)
    restored, _ = restore_image(img, load_restorer("unet", bundled, device="cpu"))
    assert restored.shape == img.shape and restored.dtype == np.uint8


def test_refuses_overwrite_wrong_model_and_foreign_metrics(run, tmp_path, capsys):
    path, _ = run
    out = tmp_path / "weights"
    args = [str(path), "--name", "unet_default", "--out-dir", str(out)]
    assert main(args) == 0
    before = weights_digest(out / "unet_default.safetensors")
    assert main(args) == 1 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert weights_digest(out / "unet_default.safetensors") == before  # same run: the same weights
    with pytest.raises(HelpersError, match="expected 'seed-dcgan'"):
        bundle_checkpoint(path, "seed_dcgan", out_dir=out)

    digest = before
    quality = {"images": {"count": 3}, "methods": {"unet": {
        "weights_sha256": digest, "overall": {"psnr_gain": 4.2}, "per_preset": {"seed": {"psnr_gain": 5.0}},
        "targets": {"all": True}}}}
    metrics = tmp_path / "quality.json"
    metrics.write_text(json.dumps(quality))
    assert main(args + ["--overwrite", "--metrics", str(metrics)]) == 0
    stored = read_metadata(out / "unet_default.safetensors")["quality"]
    assert stored["overall"] == {"psnr_gain": 4.2} and stored["weights_sha256"] == digest
    assert main(args + ["--overwrite"]) == 0  # re-bundling the same weights keeps their numbers
    assert read_metadata(out / "unet_default.safetensors")["quality"] == stored

    quality["methods"]["unet"]["weights_sha256"] = "0" * 64
    metrics.write_text(json.dumps(quality))
    assert main(args + ["--overwrite", "--metrics", str(metrics)]) == 1
    assert "other weights" in capsys.readouterr().err


def test_bundle_records_the_commands_of_every_init_stage(run, tmp_path):
    """A model fine-tuned with `train --init` from an earlier bundle carries the whole recipe."""
    first, _ = run
    earlier = bundle_checkpoint(first, "unet_default", out_dir=tmp_path / "stage1")
    state, metadata = load_checkpoint(first)
    second = tmp_path / "run2" / "last.safetensors"
    second.parent.mkdir()
    save_checkpoint(second, state, metadata | {"step": 7, "command": "python -m helpers train --init X",
                                               "data": {"init": str(earlier)}})
    lineage = read_metadata(bundle_checkpoint(second, "unet_default", out_dir=tmp_path / "stage2"))["bundle"]["lineage"]
    assert [stage["command"] for stage in lineage] == [metadata["command"], "python -m helpers train --init X"]
    assert lineage[1]["init"] == str(earlier)
    assert lineage[1]["init_weights_sha256"] == weights_digest(earlier)


def test_fine_tuning_the_bundled_file_again_and_again_keeps_every_stage(run, tmp_path):
    """Runs that each start from the bundled path (`--init helpers/weights/X`) find there only the latest
    bundle: its stored lineage carries the stages before it."""
    first, _ = run
    out = tmp_path / "weights"
    bundled = bundle_checkpoint(first, "unet_default", out_dir=out)
    state, metadata = load_checkpoint(first)
    for stage in (2, 3):
        run_ckpt = tmp_path / f"run{stage}" / "best.safetensors"
        run_ckpt.parent.mkdir()
        save_checkpoint(run_ckpt, state, metadata | {"command": f"train stage {stage}", "data": {"init": str(bundled)}})
        bundled = bundle_checkpoint(run_ckpt, "unet_default", out_dir=out, overwrite=True)
    lineage = read_metadata(bundled)["bundle"]["lineage"]
    assert [stage["command"] for stage in lineage] == [metadata["command"], "train stage 2", "train stage 3"]
