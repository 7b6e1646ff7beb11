"""Checkpoints without pickle: safetensors for every tensor, JSON for everything else, atomic writes.

One file per checkpoint. Its safetensors header carries, as JSON strings:
- "metadata": model name and build config, epoch, step, losses, data, git commit, seed, command line;
- "state": the skeleton of the saved state (nested dicts/lists/scalars) in which each tensor is replaced
  by {"__tensor__": key}, so optimizer, grad-scaler, scheduler and RNG states round-trip exactly
  without unpickling anything;
- "sha256": one digest per top-level group ("generator", "discriminator", ...), which catches a file
  corrupted in place (safetensors itself already refuses a truncated one).

A training checkpoint (`last`) holds the groups generator, discriminator, optimizer_g, optimizer_d,
scaler, scheduler_g, scheduler_d and rng; an inference checkpoint (`best`) holds the generator only.
Both open with `load_generator`, which reads only the generator tensors. A readable copy of the
metadata is written next to each file as NAME.json for people browsing a run folder.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import HelpersError
from .env import REPO_ROOT
from .io import atomic_write_bytes, atomic_write_text

FORMAT = "old-photo-repair-checkpoint/1"
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin"}


class CheckpointError(HelpersError):
    """A checkpoint that cannot be used; the message is 'path: reason'."""


# ---------------------------------------------------------------- state <-> (JSON skeleton, tensors)

def _pack(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().to("cpu").contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _pack(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _pack(v, f"{key}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{key}: cannot store a {type(obj).__name__} without pickle")


def _unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_unpack(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _unpack(v, tensors) for k, v in obj["__items__"]}
    return {k: _unpack(v, tensors) for k, v in obj.items()}


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    sha = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key]
        sha.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        sha.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


# ---------------------------------------------------------------- RNG states as uint8 tensors

def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states; the data order has no state of its own."""
    version, words, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "words": torch.from_numpy(np.array(words, np.uint32).view(np.uint8)),
                   "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.uint32).view(np.uint8)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["words"].numpy().view(np.uint32)), py["gauss"]))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().view(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- writing

def git_commit() -> str | None:
    """The commit of the code that trained a checkpoint, or None outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def save_checkpoint(path: str | Path, state: dict[str, Any], metadata: dict[str, Any]) -> Path:
    """Write `state` (top-level groups of tensors, state dicts, scalars) and `metadata` atomically.

    `metadata` must name the model ("model") so that loading can refuse a checkpoint of another model.
    """
    from safetensors.torch import save

    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = {group: _pack(value, group, tensors) for group, value in state.items()}
    digests = {group: _digest({k: t for k, t in tensors.items() if k.split(".", 1)[0] == group})
               for group in state}
    header = {"format": FORMAT, "metadata": json.dumps(metadata, default=str), "state": json.dumps(skeleton),
              "sha256": json.dumps(digests)}
    atomic_write_bytes(path, save(tensors, metadata=header), overwrite=True)
    atomic_write_text(path.with_suffix(".json"), json.dumps(metadata, indent=2, default=str) + "\n",
                      overwrite=True)
    return path


# ---------------------------------------------------------------- reading

def _header(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(path, "pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: truncated or corrupted safetensors file ({err})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this project (no '{FORMAT}' header)")
    return header


def _header_json(path: Path, header: dict[str, str], key: str) -> dict[str, Any]:
    """One JSON object of the header; anything else is an error that names the file."""
    try:
        value = json.loads(header[key])
    except KeyError:
        raise CheckpointError(f"{path}: the checkpoint header has no {key!r} entry") from None
    except ValueError as err:
        raise CheckpointError(f"{path}: the checkpoint's {key} is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: the checkpoint's {key} is a {type(value).__name__}, not a JSON object")
    return value


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint, read from its header without loading any tensor."""
    path = Path(path)
    return _header_json(path, _header(path), "metadata")


def load_checkpoint(path: str | Path, groups: list[str] | None = None, *, expected_model: str | None = None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, metadata) of a checkpoint, the tensors of only `groups` when given, digests verified."""
    from safetensors import safe_open

    path = Path(path)
    header = _header(path)
    metadata = _header_json(path, header, "metadata")
    if expected_model and metadata.get("model") != expected_model:
        raise CheckpointError(f"{path}: checkpoint is for {metadata.get('model')!r}, expected {expected_model!r}")
    skeleton, digests = _header_json(path, header, "state"), _header_json(path, header, "sha256")
    wanted = list(skeleton) if groups is None else groups
    for group in wanted:
        if group not in skeleton:
            raise CheckpointError(f"{path}: checkpoint has no {group!r} (it holds {', '.join(skeleton)})")
    with safe_open(path, "pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys() if k.split(".", 1)[0] in wanted}
    for group in wanted:
        if _digest({k: t for k, t in tensors.items() if k.split(".", 1)[0] == group}) != digests[group]:
            raise CheckpointError(f"{path}: corrupted checkpoint (the {group!r} tensors fail their checksum)")
    return {group: _unpack(skeleton[group], tensors) for group in wanted}, metadata


def _load_pickle(path: Path, model: str | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a bad pickle raises anything from UnpicklingError to RuntimeError
        raise CheckpointError(f"{path}: cannot read this pickle checkpoint ({err})") from None
    if isinstance(obj, dict) and isinstance(obj.get("generator"), dict):
        weights, metadata = obj["generator"], dict(obj.get("metadata") or {})
    else:
        weights, metadata = obj, {}
    metadata.setdefault("model", model)
    if not metadata["model"]:
        raise CheckpointError(f"{path}: a pickle checkpoint does not say its model; name it (model=...)")
    if model and metadata["model"] != model:
        raise CheckpointError(f"{path}: checkpoint is for {metadata['model']!r}, expected {model!r}")
    return weights, metadata


def load_generator(path: str | Path, model: str | None = None, *, device: str | torch.device = "cpu",
                   trust_pickle: bool = False):
    """(generator in eval mode on `device`, metadata) from a `last`/`best` checkpoint, for inference.

    `model`, when given, is the model the caller expects: a checkpoint of another model is refused.
    A .pt/.pth pickle can run arbitrary code when unpickled, so it is refused unless `trust_pickle`,
    and even then read with torch.load(weights_only=True); it must hold a generator state dict
    (or {"generator": state_dict, "metadata": {...}}).
    """
    from .models import build_models

    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise CheckpointError(f"{path}: pickle checkpoints can run code when loaded; refused "
                                  f"(use a .safetensors checkpoint, or trust_pickle=True for a file you trust)")
        weights, metadata = _load_pickle(path, model)
    else:
        state, metadata = load_checkpoint(path, ["generator"], expected_model=model)
        weights = state["generator"]
    try:
        generator, _, _ = build_models(metadata["model"], **metadata.get("model_config", {}))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{path}: its metadata describes no model we can build ({type(err).__name__}: "
                              f"{err})") from None
    try:
        generator.load_state_dict(weights)
    except RuntimeError as err:
        reason = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(f"{path}: weights do not fit the {metadata['model']!r} model ({reason})") from None
    # Channels-last memory: oneDNN's convolutions on a CPU ran the detector 2.4x, the seed DCGAN 1.9x and the
    # U-Net 1.15x faster (same outputs to 1e-5); on a GPU it is the layout tensor cores want.
    return generator.to(device, memory_format=torch.channels_last).eval(), metadata
