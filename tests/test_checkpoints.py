"""helpers.checkpoints: exact round trips without pickle, and a clear refusal of every bad file."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from tiny_gan import build

from helpers import models
from helpers.checkpoints import (CheckpointError, load_checkpoint, load_generator, read_metadata, rng_state,
                                 save_checkpoint, set_rng_state)


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setitem(models.BUILDERS, "tiny", build)


def _trained_state():
    torch.manual_seed(0)
    generator, discriminator, spec = build(mask_head=True)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    for _ in range(2):
        image, mask = generator(torch.rand(2, 1, 8, 8))
        (image.mean() + mask.mean()).backward()
        optimizer.step()
        scheduler.step()
    state = {"generator": generator.state_dict(), "optimizer_g": optimizer.state_dict(),
             "scheduler_g": scheduler.state_dict(), "rng": rng_state()}
    return state, {"model": "tiny", "model_config": spec.config, "epoch": 1, "step": 2}


def test_training_state_round_trips_exactly(tmp_path):
    state, meta = _trained_state()
    path = save_checkpoint(tmp_path / "last.safetensors", state, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == meta == json.loads((tmp_path / "last.json").read_text())
    optimizer = loaded["optimizer_g"]
    assert set(optimizer["state"]) == set(state["optimizer_g"]["state"])  # integer keys come back as ints
    assert optimizer["param_groups"][0]["betas"] == (0.5, 0.999)  # tuples stay tuples
    for index, slots in state["optimizer_g"]["state"].items():
        for name, value in slots.items():
            assert torch.equal(optimizer["state"][index][name], value)
    assert loaded["scheduler_g"]["last_epoch"] == 2
    # The restored state drives a fresh optimizer to exactly the same next step.
    generator, _, _ = build(mask_head=True)
    generator.load_state_dict(loaded["generator"])
    fresh = torch.optim.Adam(generator.parameters(), lr=1e-3)
    fresh.load_state_dict(optimizer)
    assert fresh.param_groups[0]["lr"] == state["optimizer_g"]["param_groups"][0]["lr"]


def test_rng_states_round_trip_through_a_file(tmp_path):
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    np.random.normal()  # a cached gaussian is part of numpy's state
    save_checkpoint(tmp_path / "c.safetensors", {"rng": rng_state()}, {"model": "tiny"})
    expected = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    set_rng_state(load_checkpoint(tmp_path / "c.safetensors")[0]["rng"])
    got = (random.random(), np.random.normal(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_load_generator_reads_only_the_generator_and_sets_eval_mode(tmp_path):
    state, meta = _trained_state()
    save_checkpoint(tmp_path / "best.safetensors", {"generator": state["generator"]}, meta)
    generator, got_meta = load_generator(tmp_path / "best.safetensors", "tiny")
    assert not generator.training and got_meta["step"] == 2
    for key, value in state["generator"].items():
        assert torch.equal(generator.state_dict()[key], value)


def test_refuses_a_checkpoint_of_another_model(tmp_path):
    state, meta = _trained_state()
    path = save_checkpoint(tmp_path / "x.safetensors", state, meta)
    with pytest.raises(CheckpointError, match=r"x.safetensors: checkpoint is for 'tiny', expected 'seed-dcgan'"):
        load_generator(path, "seed-dcgan")


def test_refuses_truncated_corrupted_and_foreign_files(tmp_path):
    state, meta = _trained_state()
    path = save_checkpoint(tmp_path / "x.safetensors", state, meta)
    data = path.read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated.safetensors: truncated or corrupted safetensors file"):
        load_generator(tmp_path / "truncated.safetensors")
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF  # inside the last tensor's bytes: the header still parses
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"flipped.safetensors: corrupted checkpoint \(the '\w+' tensors fail"):
        load_checkpoint(tmp_path / "flipped.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        read_metadata(tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_generator(tmp_path / "missing.safetensors")


def test_weights_that_do_not_fit_the_model_are_named(tmp_path):
    generator, _, spec = build()
    weights = generator.state_dict()
    weights["to_image.weight"] = torch.zeros(3, 8, 3, 3)
    save_checkpoint(tmp_path / "x.safetensors", {"generator": weights}, {"model": "tiny", "model_config": spec.config})
    with pytest.raises(CheckpointError, match=r"x.safetensors: weights do not fit the 'tiny' model \(.*to_image"):
        load_generator(tmp_path / "x.safetensors")


def test_pickle_checkpoints_need_explicit_trust(tmp_path):
    generator, _, spec = build()
    path = tmp_path / "old.pt"
    torch.save({"generator": generator.state_dict(), "metadata": {"model": "tiny", "model_config": spec.config}}, path)
    with pytest.raises(CheckpointError, match=r"old.pt: pickle checkpoints can run code when loaded; refused"):
        load_generator(path)
    loaded, meta = load_generator(path, trust_pickle=True)
    assert meta["model"] == "tiny" and torch.equal(loaded.to_image.weight, generator.to_image.weight)

    class Exploit:  # what weights_only=True exists to stop
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"generator": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt: cannot read this pickle checkpoint"):
        load_generator(tmp_path / "evil.pt", "tiny", trust_pickle=True)
