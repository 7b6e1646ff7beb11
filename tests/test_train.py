"""helpers.train: exact resume, divergence handling, run-folder safety, losses of every model kind."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from tiny_gan import NaNAfterEpoch, SyntheticPairs, build

from helpers import HelpersError, models
from helpers.__main__ import main
from helpers.checkpoints import load_checkpoint, load_generator, read_metadata
from helpers.train import TrainConfig, TrainingDiverged, epoch_batches, fit, mistake_cost


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch, request):
    """Registers the tiny pair; its microsecond-sized ops run on one thread, as a busy shared CPU makes
    threads wait for each other far longer than such ops take (the seed DCGAN keeps every thread)."""
    monkeypatch.setitem(models.BUILDERS, "tiny", build)
    threads = torch.get_num_threads()
    if "seed_dcgan" not in request.node.name:
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(**overrides) -> TrainConfig:
    return TrainConfig(**({"model": "tiny", "epochs": 2, "batch_size": 2, "log_every": 1000, "progress": False,
                           "device": "cpu", "samples": 1} | overrides))


def _weights(path):
    state, _ = load_checkpoint(path, ["generator", "discriminator", "optimizer_g"])
    return state


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    else:
        assert a == b


def test_six_steps_equal_three_then_three_resumed(tmp_path):
    """3 steps per epoch, so the stop at step 4 falls inside epoch 2 and resume must skip its first batch."""
    data, val = SyntheticPairs(6), SyntheticPairs(2, seed=1)
    straight = fit(_config(), data, val, tmp_path / "straight")
    first = fit(_config(max_steps=4), data, val, tmp_path / "split")
    assert first["status"] == "stopped at --steps" and first["steps"] == 4
    assert read_metadata(tmp_path / "split" / "last.safetensors")["step_in_epoch"] == 1
    second = fit(_config(), data, val, tmp_path / "split", resume=True)
    assert straight["steps"] == second["steps"] == 6
    _assert_same(*(_weights(tmp_path / run / "last.safetensors") for run in ("straight", "split")))
    # The history is continued rather than restarted: one record per step, once.
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    steps = [r for r in map(json.loads, lines) if r["kind"] == "step"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert steps == [r for r in straight["history"] if r["kind"] == "step"]


def test_the_training_actually_learns_something(tmp_path):
    result = fit(_config(epochs=3, lr=2e-3), SyntheticPairs(8), SyntheticPairs(4, seed=1), tmp_path / "run")
    epochs = [r for r in result["history"] if r["kind"] == "epoch"]
    assert epochs[-1]["train_g_l1"] < epochs[0]["train_g_l1"]
    best = read_metadata(tmp_path / "run" / "best.safetensors")
    assert best["best_val_l1"] == pytest.approx(min(r["val_l1"] for r in epochs))
    assert (tmp_path / "run" / "samples" / "epoch_003.png").stat().st_size > 0
    assert (tmp_path / "run" / "loss_curves.png").stat().st_size > 0


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"step 4: a loss is not finite .*last good checkpoint is kept"):
        fit(_config(epochs=3), NaNAfterEpoch(bad_epoch=1, count=6), SyntheticPairs(2, seed=1), run)
    meta = read_metadata(run / "last.safetensors")
    assert (meta["epoch"], meta["step"]) == (1, 3)
    generator, _ = load_generator(run / "last.safetensors", "tiny")
    assert all(torch.isfinite(p).all() for p in generator.parameters())


def test_refuses_an_existing_run_folder_unless_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    fit(_config(epochs=1), SyntheticPairs(4), None, run)
    (run / "notes.txt").write_text("mine")
    with pytest.raises(HelpersError, match="exists and is not empty"):
        fit(_config(epochs=1), SyntheticPairs(4), None, run)
    with pytest.raises(HelpersError, match="nothing to resume"):
        fit(_config(epochs=1), SyntheticPairs(4), None, tmp_path / "empty", resume=True)
    result = fit(_config(epochs=1, seed=3), SyntheticPairs(4), None, run, overwrite=True)
    assert result["best_checkpoint"] is None  # no validation set, so no "best"
    assert read_metadata(run / "last.safetensors")["seed"] == 3
    assert (run / "notes.txt").read_text() == "mine"


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path, monkeypatch):
    run = tmp_path / "run"
    fit(_config(epochs=1), SyntheticPairs(4), None, run)
    def other():
        generator, discriminator, spec = build()
        return generator, discriminator, dataclasses.replace(spec, name="other")

    monkeypatch.setitem(models.BUILDERS, "other", other)
    with pytest.raises(HelpersError, match=r"checkpoint is for 'tiny', expected 'other'"):
        fit(_config(model="other", epochs=2), SyntheticPairs(4), None, run, resume=True)


@pytest.mark.parametrize("model_config", [
    {"conditional": False, "loss": "ce2"},  # the seed DCGAN's kind: unconditional, 2-logit softmax head
    {"conditional": True, "loss": "bce", "mask_head": True},  # the U-Net's kind: PatchGAN + mask head
])
def test_every_model_kind_trains_and_logs_its_losses(tmp_path, model_config):
    result = fit(_config(epochs=1, model_config=model_config), SyntheticPairs(4), None, tmp_path / "run")
    step = result["history"][0]
    assert {"g_adv", "g_l1", "d_real", "d_fake", "lr"} <= step.keys()
    assert ("g_mask" in step) == model_config.get("mask_head", False)
    _, meta = load_generator(tmp_path / "run" / "last.safetensors")
    assert meta["model_config"] == build(**model_config)[2].config


def test_a_detectors_mistake_costs_what_the_fill_would_lose_there():
    clean = torch.full((1, 1, 16, 16), -0.6)  # images in [-1, 1]: a dark flat ground...
    clean[..., 8, :] = 0.8  # ...crossed by a thin bright line that belongs to the picture
    damaged, mask = clean.clone(), torch.zeros(1, 1, 16, 16)
    damaged[..., 3, 2:6], mask[..., 3, 2:6] = 0.2, 1.0  # a grey scratch over the ground
    cost = mistake_cost(damaged, clean, mask)
    assert cost[..., 0, 12].item() == 0.0  # a false alarm on flat ground: the fill gives it back
    line = (0.8 - (5 * 0.8 + 20 * -0.6) / 25) / 2  # what filling the line from its 5 x 5 surroundings loses
    assert cost[..., 8, 12].item() == pytest.approx(line)
    assert cost[..., 3, 3].item() == pytest.approx(0.4)  # a missed scratch pixel: its contrast, (0.2 + 0.6) / 2
    assert cost[..., 8, 12] > cost[..., 3, 3] > cost[..., 7, 12] > 0  # beside the line less is lost


def test_loss_weights_choose_the_terms_and_regression_alone_leaves_the_discriminator_untouched(tmp_path):
    config = {"conditional": True, "loss": "bce", "mask_head": True}
    plain = fit(_config(epochs=1, model_config=config, adv_weight=0.0, ssim_weight=5.0), SyntheticPairs(4), None,
                tmp_path / "plain")
    step = plain["history"][0]
    assert {"g_l1", "g_ssim", "g_mask"} <= step.keys() and not {"g_adv", "d_real", "d_fake"} & step.keys()
    assert 0.0 < step["g_ssim"] <= 2.0
    state, _ = load_checkpoint(tmp_path / "plain" / "last.safetensors", ["discriminator"])
    torch.manual_seed(0)
    untouched = build(**config)[1].state_dict()
    _assert_same(state["discriminator"], untouched)  # seeded init, never stepped
    with pytest.raises(HelpersError, match="adv-weight must be 0 or more"):
        fit(_config(adv_weight=-1.0), SyntheticPairs(4), None, tmp_path / "bad")
    with pytest.raises(HelpersError, match="cost-weight must be 0 or more"):
        fit(_config(cost_weight=float("nan")), SyntheticPairs(4), None, tmp_path / "bad")


def test_command_init_starts_from_a_checkpoints_weights(tmp_path, rng):
    data = _photos(tmp_path / "photos", 4, rng)
    code, _ = _train("--data", str(data), "--out", str(tmp_path / "a"), "--epochs", "1")
    assert code == 0
    code, report = _train("--data", str(data), "--out", str(tmp_path / "b"), "--steps", "1", "--crop", "16",
                          "--init", str(tmp_path / "a" / "last.safetensors"), "--lr", "1e-9")
    assert code == 0 and report["data"]["crop"] == 16
    before, _ = load_checkpoint(tmp_path / "a" / "last.safetensors", ["generator"])
    after, meta = load_checkpoint(tmp_path / "b" / "last.safetensors", ["generator", "optimizer_g"])
    for name, weight in before["generator"].items():  # a 1e-9 step away from the --init weights
        if "running_" in name or "num_batches" in name:  # BatchNorm statistics move with the data
            continue
        torch.testing.assert_close(after["generator"][name], weight, rtol=0, atol=1e-6)
    assert meta["step"] == 1 and meta["data"]["init"].endswith("last.safetensors")
    code, _ = _train("--data", str(data), "--out", str(tmp_path / "a"), "--resume", "--init",
                     str(tmp_path / "a" / "last.safetensors"))
    assert code == 2  # --init starts a run, --resume continues one


def _recording_build(seen: list[dict]):
    """The tiny pair with a hook on the generator's first conv recording what each training forward pass saw:
    the batch as prepared (RGB, so channels-last is visible: one channel is contiguous either way), its
    weight and the dtype it computed in."""

    def recording_build(**config):
        generator, discriminator, spec = build(**config)

        def record(module, inputs, output):
            if module.training:
                seen.append({"autocast": torch.is_autocast_enabled("cpu"), "dtype": output.dtype,
                             "input_channels_last": inputs[0].is_contiguous(memory_format=torch.channels_last),
                             "weight_channels_last": module.weight.is_contiguous(memory_format=torch.channels_last)})

        generator.body[0].register_forward_hook(record)
        return generator, discriminator, spec

    return recording_build


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # a step fp16 skipped
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last_train_and_resume(tmp_path, amp, monkeypatch):
    seen = []
    monkeypatch.setitem(models.BUILDERS, "tiny", _recording_build(seen))
    run = tmp_path / "run"
    rgb = {"model_config": {"channels": 3}}
    fit(_config(epochs=1, amp=amp, channels_last=True, **rgb), SyntheticPairs(4, channels=3), None, run)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    assert len(seen) == 2  # two steps of batch 2
    assert all(s == {"autocast": True, "dtype": dtype, "input_channels_last": True, "weight_channels_last": True}
               for s in seen), seen
    scaler = load_checkpoint(run / "last.safetensors", ["scaler"])[0]["scaler"]
    assert (scaler.get("scale", 0) > 0) == (amp == "fp16")  # the grad scaler is saved with its scale
    seen.clear()
    resumed = fit(_config(epochs=2, amp=amp, channels_last=True, **rgb), SyntheticPairs(4, channels=3), None, run,
                  resume=True)
    assert resumed["steps"] == 4
    assert len(seen) == 2 and all(s["dtype"] == dtype and s["input_channels_last"] for s in seen), seen


def test_without_mixed_precision_training_stays_float32_and_contiguous(tmp_path, monkeypatch):
    """The control for the test above: the hook does see the difference."""
    seen = []
    monkeypatch.setitem(models.BUILDERS, "tiny", _recording_build(seen))
    fit(_config(epochs=1, model_config={"channels": 3}), SyntheticPairs(4, channels=3), None, tmp_path / "run")
    assert seen and all(s == {"autocast": False, "dtype": torch.float32, "input_channels_last": False,
                              "weight_channels_last": False} for s in seen), seen


def test_epoch_batches_split_the_data_between_processes():
    one = epoch_batches(10, 2, seed=0, epoch=0)
    assert sorted(i for batch in one for i in batch) == list(range(10))
    assert one == epoch_batches(10, 2, seed=0, epoch=0) != epoch_batches(10, 2, seed=0, epoch=1)
    ranks = [epoch_batches(10, 2, seed=0, epoch=0, rank=r, world=2) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 2
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}
    assert epoch_batches(3, 4, seed=0, epoch=0) == [epoch_batches(3, 4, seed=0, epoch=0)[0]]  # short data repeats


def test_one_real_seed_dcgan_step(tmp_path):
    """The study's model through the same loop: one step at 256x256, batch 1 (several seconds on a CPU)."""
    import math

    torch.manual_seed(0)
    generator, discriminator, spec = models.build_models("seed-dcgan")
    before = {part: {k: v.clone() for k, v in module.state_dict().items()}
              for part, module in (("generator", generator), ("discriminator", discriminator))}
    data = SyntheticPairs(1, size=256)
    result = fit(_config(model="seed-dcgan", epochs=1, batch_size=1), data, None, tmp_path / "run",
                 models=(generator, discriminator, spec))
    assert result["steps"] == 1
    step = result["history"][0]
    losses = {k: v for k, v in step.items() if k.startswith(("g_", "d_"))}
    assert {"g_l1", "g_adv", "d_real", "d_fake"} <= losses.keys()
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert step["g_l1"] > 0 and step["d_real"] > 0
    trained = {"generator": generator.state_dict(), "discriminator": discriminator.state_dict()}
    for part, weights in trained.items():  # the step moved every model, and left nothing NaN
        assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point()), part
        moved = [k for k, w in weights.items() if w.is_floating_point() and not torch.equal(w, before[part][k])]
        assert any(k.endswith("weight") for k in moved), f"{part}: one step changed no weight"
    saved, _ = load_checkpoint(tmp_path / "run" / "last.safetensors", ["generator", "discriminator"])
    _assert_same(saved, trained)  # the checkpoint holds the weights the step left
    reloaded, meta = load_generator(tmp_path / "run" / "last.safetensors", "seed-dcgan")
    _assert_same(reloaded.state_dict(), trained["generator"])
    assert meta["model"] == "seed-dcgan" and sum(p.numel() for p in reloaded.parameters()) == 693_696


# ----------------------------------------------------------------------------- the train command

def _photos(folder, count, rng, size=40):
    from helpers.io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_image(folder / f"photo_{i}.png", rng.integers(0, 256, (size, size + 8), dtype=np.uint8))
    return folder


def _train(*args):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["train", "--model", "tiny", "--size", "32", "--workers", "0", "--quiet", "--json", *args])
    return code, json.loads(stdout.getvalue()) if stdout.getvalue() else None


def test_command_skips_and_names_corrupt_photos(tmp_path, rng, capsys, monkeypatch):
    data = _photos(tmp_path / "photos", 5, rng)
    monkeypatch.setattr("sys.argv", ["/x/helpers/__main__.py", "train", "--data", "my photos"])
    (data / "broken.jpg").write_bytes(b"not a jpeg at all")
    code, report = _train("--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1")
    assert code == 1  # trained, but one input failed
    assert [f["input"] for f in report["failures"]] == [str(data / "broken.jpg")]
    expected = {"train": 4, "val": 1, "skipped": 1, "kind": "clean photos aged on the fly"}
    assert report["data"].items() >= expected.items()
    meta = read_metadata(tmp_path / "run" / "best.safetensors")
    assert meta["command"] == "python -m helpers train --data 'my photos'"
    assert meta["data"]["skipped"] == 1 and meta["train_config"]["model"] == "tiny"
    assert "broken.jpg" in capsys.readouterr().err


def test_command_refuses_folders_with_nothing_usable(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    for name in ("a.jpg", "b.png"):
        (tmp_path / "junk" / name).write_bytes(b"\x00garbage")
    for folder in ("empty", "junk"):
        code, _ = _train("--data", str(tmp_path / folder), "--out", str(tmp_path / f"run_{folder}"))
        assert code == 1
        assert "no usable images in" in capsys.readouterr().err
    assert main(["train", "--model", "tiny", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2


def test_command_passes_adams_first_moment_decay(tmp_path, rng):
    """--beta1: pix2pix's 0.5 by default, 0.9 for a stage trained by regression alone (the rims blender)."""
    data = _photos(tmp_path / "photos", 3, rng)
    for beta1, run in ((None, "default"), ("0.9", "plain")):
        code, _ = _train("--data", str(data), "--out", str(tmp_path / run), "--steps", "1",
                         *(("--beta1", beta1) if beta1 else ()))
        assert code == 0
        metadata = json.loads((tmp_path / run / "last.json").read_text())
        assert metadata["train_config"]["beta1"] == (0.9 if beta1 else 0.5)


def test_command_trains_on_pre_aged_pairs_and_resumes(tmp_path, rng):
    from helpers.age_folder import AgeSettings, age_folder

    aged = tmp_path / "aged_set"
    age_folder([str(_photos(tmp_path / "photos", 4, rng))], aged, AgeSettings(size=32, masks=True), workers=0,
               progress=False)
    run = tmp_path / "run"
    code, report = _train("--data", str(aged), "--out", str(run), "--epochs", "1", "--val-fraction", "0.25")
    assert code == 0 and report["data"]["kind"] == "pre-aged pairs" and report["steps"] == 3
    code, _ = _train("--data", str(aged), "--out", str(run), "--epochs", "2")
    assert code == 1  # an existing run folder is not overwritten by accident
    code, report = _train("--data", str(aged), "--out", str(run), "--epochs", "2", "--val-fraction", "0.25",
                          "--resume")
    assert code == 0 and report["steps"] == 6 and report["epochs"] == 2


def test_command_model_options_shape_the_model_and_are_saved(tmp_path, rng):
    data = _photos(tmp_path / "photos", 3, rng)
    out = tmp_path / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["train", "--model", "unet", "--model-option", "width=8", "--model-option", "max_width=16",
                     "--data", str(data), "--out", str(out), "--size", "32", "--steps", "1", "--workers", "0",
                     "--quiet", "--json"])
    assert code == 0
    generator, meta = load_generator(out / "last.safetensors")
    assert meta["model_config"]["width"] == 8 and meta["model_config"]["max_width"] == 16
    assert sum(p.numel() for p in generator.parameters()) < sum(p.numel() for p in models.build_models("unet")[0].parameters()) / 10
    for bad in ("width", "colour=3", "channels=3", "wdth=8"):
        assert main(["train", "--model", "unet", "--model-option", bad, "--data", str(data),
                     "--out", str(tmp_path / "bad"), "--quiet"]) == 2


def test_command_init_with_model_options_grows_the_checkpoints_model(tmp_path, rng, capsys):
    """--init + --model-option context=true: the checkpoint's weights, plus the new layers at their init;
    an option that changes the shape of existing layers is refused, naming the mismatch."""
    data = _photos(tmp_path / "photos", 3, rng)
    common = ["train", "--model", "unet", "--model-option", "width=8", "--model-option", "max_width=16",
              "--data", str(data), "--size", "32", "--steps", "1", "--workers", "0", "--quiet", "--lr", "1e-9"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    first = tmp_path / "a" / "last.safetensors"
    grow = ["train", "--model", "unet", "--init", str(first), "--model-option", "context=true", "--data", str(data),
            "--size", "32", "--steps", "2", "--workers", "0", "--quiet", "--lr", "1e-3"]
    assert main([*grow, "--train-only", "context.", "--out", str(tmp_path / "b")]) == 0
    assert "layers new to this model start fresh: context.mlp" in capsys.readouterr().err
    before, _ = load_checkpoint(first, ["generator"])
    after, meta = load_checkpoint(tmp_path / "b" / "last.safetensors", ["generator"])
    assert meta["model_config"]["context"] is True and meta["model_config"]["width"] == 8  # the checkpoint's shape
    for name, weight in before["generator"].items():  # frozen by --train-only: not a bit moved
        torch.testing.assert_close(after["generator"][name], weight, rtol=0, atol=0)
    assert {name for name in after["generator"] if name not in before["generator"]} == {
        "context.mlp.0.weight", "context.mlp.0.bias", "context.mlp.2.weight", "context.mlp.2.bias"}
    assert after["generator"]["context.mlp.2.weight"].abs().sum() > 0  # the new layer (zero at first) trained
    assert main([*grow, "--train-only", "contxt.", "--out", str(tmp_path / "typo")]) == 2
    assert "no generator parameter is named so" in capsys.readouterr().err
    assert main(["train", "--model", "unet", "--init", str(first), "--model-option", "width=16",
                 "--data", str(data), "--size", "32", "--steps", "1", "--workers", "0", "--quiet",
                 "--out", str(tmp_path / "c")]) == 2
    assert "does not fit the model" in capsys.readouterr().err


def test_quick_mode_trains_on_the_bundled_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("REPAIR_QUICK", "1")
    code, report = _train("--out", str(tmp_path / "run"))
    assert code == 0 and report["data"]["source"].endswith("clean") and report["steps"] == 2
    assert (tmp_path / "run" / "best.safetensors").is_file()
    assert (tmp_path / "run" / "samples" / "epoch_001.png").is_file()


def test_command_trains_the_deblocker_on_photos_compressed_after_aging(tmp_path):
    """Its pairs are (aged photo JPEG-compressed, aged photo), so its validation scores undoing JPEG, and the
    record says how its data were made."""
    import shutil

    from helpers.data import bundled_samples

    data = tmp_path / "photos"
    data.mkdir()
    for photo in bundled_samples("clean")[:4]:
        shutil.copy(photo, data)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["train", "--model", "deblocker", "--model-option", "width=8", "--model-option", "blocks=1",
                     "--presets", "unscanned", "--data", str(data), "--size", "64", "--epochs", "1", "--workers", "0",
                     "--quiet", "--json", "--out", str(tmp_path / "run")])
    assert code == 0
    meta = read_metadata(tmp_path / "run" / "best.safetensors")
    assert meta["model"] == "deblocker" and "JPEG" in meta["data"]["recompressed"]
    assert json.loads(stdout.getvalue())["final"]["val_psnr"] > 25  # what JPEG at quality >= 15 costs, at most
