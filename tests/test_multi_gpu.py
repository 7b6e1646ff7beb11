"""Data-parallel training as on Kaggle's 2 x T4, rehearsed on the CPU: two gloo processes through accelerate.

Each process trains on its own half of every step's data; DDP averages the gradients, so the replicas'
weights must stay identical while their losses differ.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from tiny_gan import SyntheticPairs, build

from helpers import models
from helpers.checkpoints import read_metadata
from helpers.train import TrainConfig, fit

WORLD = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _replica(rank: int, port: int, folder: str) -> None:
    """One process of the run: the environment torchrun / `accelerate launch --cpu` would set."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_WORLD_SIZE=str(WORLD), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    models.BUILDERS["tiny"] = build
    torch.manual_seed(0)
    generator, discriminator, spec = build()
    config = TrainConfig(model="tiny", epochs=2, batch_size=2, device="cpu", progress=False, log_every=1000)
    result = fit(config, SyntheticPairs(8), SyntheticPairs(2, seed=1), Path(folder) / "run",
                 models=(generator, discriminator, spec))
    weights = {f"g.{k}": p.detach().contiguous() for k, p in generator.named_parameters()}
    weights |= {f"d.{k}": p.detach().contiguous() for k, p in discriminator.named_parameters()}
    weights["first_g_l1"] = torch.tensor(result["history"][0]["g_l1"])
    save_file(weights, Path(folder) / f"rank{rank}.safetensors")


def test_two_gloo_replicas_stay_identical(tmp_path):
    context = mp.spawn(_replica, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=False)
    deadline = time.time() + 120
    while not context.join(timeout=2):
        if time.time() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError("the two training processes did not finish within 120 s")
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in range(WORLD))
    first0, first1 = rank0.pop("first_g_l1"), rank1.pop("first_g_l1")
    assert first0 != first1, "both processes saw the same batch"
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    torch.manual_seed(0)
    untrained = dict(build()[0].named_parameters())
    assert not torch.equal(rank0["g.to_image.weight"], untrained["to_image.weight"])
    meta = read_metadata(tmp_path / "run" / "last.safetensors")  # written once, by the main process
    assert (meta["epoch"], meta["step"]) == (2, 4)  # 8 images / (2 per process x 2 processes) = 2 steps per epoch


def test_fit_on_all_gpus_leaves_cuda_to_the_launched_processes(tmp_path, monkeypatch):
    """The notebook's path on Kaggle's 2 x T4, rehearsed on the CPU: two GPUs counted, then accelerate's
    notebook_launcher forks one process per GPU. A forked process cannot use CUDA once the parent has
    initialised it ("Cannot re-initialize CUDA in forked subprocess"), so here every CUDA call that
    initialises it raises when the parent makes it; the forked processes train on the CPU with gloo. An
    Accelerator made earlier in this process must not stop the launcher, nor must OpenMP threads the
    parent has already used (a forked child waits for them forever: CI once hung here)."""
    import torch.cuda
    from accelerate import Accelerator

    from helpers.train import fit_on_all_gpus

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.rand(1 << 22).exp_().sum()  # a parallel CPU region in the parent, as an earlier cell would run
    torch.set_num_threads(threads)
    Accelerator(cpu=True)  # an earlier in-process run (a notebook cell, another test) leaves accelerate's state
    parent = os.getpid()
    touched = []

    def forbidden(name, real):
        def call(*args, **kwargs):
            if os.getpid() == parent:
                touched.append(name)
                raise RuntimeError(f"torch.cuda.{name} called before notebook_launcher: CUDA initialised")
            return real(*args, **kwargs)
        return call

    for name in ("is_available", "init", "_lazy_init", "current_device", "set_device", "get_device_capability",
                 "get_device_properties", "is_bf16_supported", "mem_get_info", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, forbidden(name, getattr(torch.cuda, name)))
    real_count = torch.cuda.device_count
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2 if os.getpid() == parent else real_count())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setitem(models.BUILDERS, "tiny", build)
    config = TrainConfig(model="tiny", epochs=1, batch_size=2, amp="auto", device="cpu", progress=False)
    fit_on_all_gpus(config, SyntheticPairs(8), None, tmp_path / "run", models=build())
    assert touched == []
    meta = read_metadata(tmp_path / "run" / "last.safetensors")
    assert (meta["epoch"], meta["step"]) == (1, 2)  # 8 images / (2 per process x 2 processes): both took part
    assert meta["train_config"]["amp"] == "none"  # "auto", decided inside the process: no GPU there
