"""StyleGAN2 weights: our safetensors files, rosinality checkpoints and NVIDIA StyleGAN2-ADA pickles.

Our format is one .safetensors file holding the generator's state dict under rosinality's key names
plus `latent_avg`, with the architecture (GeneratorConfig) and the file it came from in the header, and
a readable NAME.json copy of that metadata beside it. Loading it runs no code.

The two foreign formats are pickles, which can run code when loaded, so neither is opened with plain
pickle:
- rosinality/stylegan2-pytorch checkpoints (`{"g_ema": state_dict, "latent_avg": tensor, ...}`) are read
  with torch.load(weights_only=True), which only rebuilds tensors and containers; the argparse.Namespace
  of its training checkpoints is the one extra class allowed.
- NVIDIA stylegan2-ada-pytorch network pickles store every network as a "persistent object" that carries
  its Python source and executes it on load. `_NetworkUnpickler` resolves only the few globals that
  rebuild tensors and plain containers, turns each persistent object into a `NetworkStub` (class name +
  state, source never executed), and refuses every other global with an error naming it.
Either is converted to our safetensors once (`convert_weights`), then loaded from there.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import HelpersError
from .io import atomic_write_bytes, atomic_write_text
from .models.stylegan2 import Generator, GeneratorConfig

FORMAT = "old-photo-repair-stylegan2/1"
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt"}
# File names the notebook looks for under the Kaggle input folder (first match wins).
KNOWN_NAMES = ("*.safetensors", "stylegan2-ffhq-config-f.pt", "*.pt", "ffhq.pkl",
               "stylegan2-ffhq-1024x1024.pkl", "*.pkl")


class WeightsError(HelpersError):
    """A weight file that cannot be used; the message is 'path: reason'."""


# ------------------------------------------------------------------------------------------ our format

def save_generator(path: str | Path, generator: Generator, source: str = "", *, overwrite: bool = False) -> Path:
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    meta = {"config": generator.config.to_dict(), "source": source, "trained": generator.trained}
    header = {"format": FORMAT, "metadata": json.dumps(meta)}
    atomic_write_bytes(path, save(tensors, metadata=header), overwrite=overwrite)
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n", overwrite=True)
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], GeneratorConfig, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, "pt") as handle:
            header = handle.metadata() or {}
            if header.get("format") != FORMAT:
                raise WeightsError(f"{path}: not a StyleGAN2 weight file of this project (no '{FORMAT}' header)")
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"{path}: unreadable safetensors file ({err})") from None
    meta = json.loads(header["metadata"])
    return tensors, GeneratorConfig(**meta["config"]), meta


def build_generator(state: dict[str, torch.Tensor], config: GeneratorConfig, path: Path) -> Generator:
    """A generator holding `state` (rosinality keys); any missing, extra or misshapen tensor is refused."""
    generator = Generator(config)
    state = dict(state)
    latent_avg = state.pop("latent_avg", None)
    expected = {k: v.shape for k, v in generator.state_dict().items() if k != "latent_avg"}
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise WeightsError(f"{path}: not a StyleGAN2 generator of this layout (missing {missing[:3]}, "
                           f"unexpected {extra[:3]})")
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise WeightsError(f"{path}: {key} has shape {tuple(state[key].shape)}, expected {tuple(shape)} "
                               f"for a {config.size} px generator")
    generator.load_state_dict(state, strict=False)
    if latent_avg is None or latent_avg.numel() == 0:  # a training checkpoint: compute the mean once
        latent_avg = generator.mean_latent(10_000, seed=0)
    generator.latent_avg = latent_avg.reshape(1, -1).float()
    return generator.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------ rosinality

def infer_config(state: dict[str, torch.Tensor], conv_clamp: float | None = None) -> GeneratorConfig:
    """The architecture that produced a rosinality-keyed state dict, read from its tensor shapes."""
    n_mlp = sum(1 for k in state if re.fullmatch(r"style\.\d+\.weight", k))
    style_dim = state["style.1.weight"].shape[1]
    n_rgbs = sum(1 for k in state if re.fullmatch(r"to_rgbs\.\d+\.bias", k))
    size = 2 ** (n_rgbs + 2)
    widths = {4: state["conv1.conv.weight"].shape[1]}
    for j in range(n_rgbs):
        widths[2 ** (j + 3)] = state[f"convs.{2 * j}.conv.weight"].shape[1]
    channel_max = max(widths.values())
    below_max = [res * ch for res, ch in sorted(widths.items()) if ch < channel_max]
    channel_base = below_max[0] if below_max else channel_max * size
    return GeneratorConfig(size=size, style_dim=style_dim, n_mlp=n_mlp, channel_base=channel_base,
                           channel_max=channel_max, conv_clamp=conv_clamp)


def read_rosinality(path: Path) -> tuple[dict[str, torch.Tensor], GeneratorConfig]:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for forbidden globals, RuntimeError for a bad zip...
        raise WeightsError(f"{path}: refused or unreadable as a rosinality checkpoint "
                           f"(read with weights_only=True: {str(err).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema"), dict):
        raise WeightsError(f"{path}: no 'g_ema' state dict: not a rosinality/stylegan2-pytorch checkpoint")
    state = {k: v for k, v in ckpt["g_ema"].items() if not k.endswith(".kernel")}  # fixed blur kernels
    if "latent_avg" in ckpt:
        state["latent_avg"] = ckpt["latent_avg"]
    try:
        return state, infer_config(state)
    except (KeyError, IndexError) as err:
        raise WeightsError(f"{path}: 'g_ema' is not a StyleGAN2 generator (no {err})") from None


# ------------------------------------------------------------------------------------------ NVIDIA ADA

@dataclass
class NetworkStub:
    """What a StyleGAN2-ADA persistent object becomes here: its class name and pickled state, no code."""

    class_name: str
    state: dict


class _AttrDict(dict):
    """Stands in for dnnlib.EasyDict (a dict subclass) when unpickling."""


def _persistent_stub(meta: dict) -> NetworkStub:
    if meta.get("type") != "class":
        raise pickle.UnpicklingError(f"unknown persistent object type {meta.get('type')!r}")
    return NetworkStub(str(meta["class_name"]), dict(meta["state"]))


def _storage_from_bytes(data: bytes):
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _numpy_scalar():
    import numpy as np

    return getattr(getattr(np, "_core", None), "multiarray", np.core.multiarray).scalar


class _NetworkUnpickler(pickle.Unpickler):
    """Resolves only what rebuilds tensors and containers; every other global is an error."""

    ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): lambda: torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): lambda: torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): lambda: _storage_from_bytes,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: _persistent_stub,
        ("dnnlib.util", "EasyDict"): lambda: _AttrDict,
        ("collections", "OrderedDict"): lambda: collections.OrderedDict,
        ("builtins", "set"): lambda: set,
        ("__builtin__", "set"): lambda: set,  # protocol-2 pickles name Python 2's module
        ("_codecs", "encode"): lambda: __import__("codecs").encode,
        ("numpy", "dtype"): lambda: __import__("numpy").dtype,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which is neither a tensor nor a "
                                         f"container of a StyleGAN2-ADA network")
        return self.ALLOWED[(module, name)]()


def _flatten(stub: NetworkStub, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (stub.state.get(group) or {}).items():
            if isinstance(value, torch.Tensor):
                out[prefix + name] = value.detach()
    for name, child in (stub.state.get("_modules") or {}).items():
        if isinstance(child, NetworkStub):
            out.update(_flatten(child, f"{prefix}{name}."))
    return out


def _ada_to_rosinality(ada: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """StyleGAN2-ADA parameter names and shapes -> rosinality's (same maths, see the module docstring)."""
    out = {"latent_avg": ada["mapping.w_avg"]}
    for key, value in ada.items():
        if m := re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key):
            out[f"style.{int(m[1]) + 1}.{m[2]}"] = value
    out["input.input"] = ada["synthesis.b4.const"][None]
    resolutions = sorted(int(m[1]) for k in ada if (m := re.fullmatch(r"synthesis\.b(\d+)\.torgb\.bias", k)))
    for res in resolutions:
        j = int(math.log2(res)) - 3  # block index above 4x4
        layers = {"conv1": ("conv1", 0)} if res == 4 else {"conv0": (f"convs.{2 * j}", 2 * j + 1),
                                                          "conv1": (f"convs.{2 * j + 1}", 2 * j + 2)}
        for ada_name, (name, noise_index) in layers.items():
            src = f"synthesis.b{res}.{ada_name}."
            out[f"{name}.conv.weight"] = ada[src + "weight"][None]
            out[f"{name}.conv.modulation.weight"] = ada[src + "affine.weight"]
            out[f"{name}.conv.modulation.bias"] = ada[src + "affine.bias"]
            out[f"{name}.noise.weight"] = ada[src + "noise_strength"].reshape(1)
            out[f"{name}.activate.bias"] = ada[src + "bias"]
            out[f"noises.noise_{noise_index}"] = ada[src + "noise_const"][None, None]
        rgb, src = ("to_rgb1" if res == 4 else f"to_rgbs.{j}"), f"synthesis.b{res}.torgb."
        out[f"{rgb}.conv.weight"] = ada[src + "weight"][None]
        out[f"{rgb}.conv.modulation.weight"] = ada[src + "affine.weight"]
        out[f"{rgb}.conv.modulation.bias"] = ada[src + "affine.bias"]
        out[f"{rgb}.bias"] = ada[src + "bias"].reshape(1, 3, 1, 1)
    return out


def read_nvidia_pickle(path: Path) -> tuple[dict[str, torch.Tensor], GeneratorConfig]:
    """G_ema of a stylegan2-ada-pytorch network pickle, rebuilt from tensors only (no pickled code runs)."""
    try:
        with open(path, "rb") as handle:
            data = _NetworkUnpickler(handle).load()
    except pickle.UnpicklingError as err:
        raise WeightsError(f"{path}: refused: {err}; nothing from the file was run") from None
    except (EOFError, ValueError, OSError, RuntimeError) as err:
        raise WeightsError(f"{path}: unreadable network pickle ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), NetworkStub):
        raise WeightsError(f"{path}: no 'G_ema' network: not a stylegan2-ada-pytorch pickle (TensorFlow "
                           f"pickles must first be converted, e.g. with rosinality's convert_weight.py)")
    g_ema = data["G_ema"]
    kwargs = g_ema.state.get("_init_kwargs") or {}
    if int(g_ema.state.get("c_dim", 0) or 0) > 0:
        raise WeightsError(f"{path}: a class-conditional generator; only unconditional ones are supported")
    synthesis_kwargs = kwargs.get("synthesis_kwargs") or {}
    if synthesis_kwargs.get("architecture", "skip") != "skip":
        raise WeightsError(f"{path}: synthesis architecture {synthesis_kwargs['architecture']!r}; only 'skip'")
    try:
        state = _ada_to_rosinality(_flatten(g_ema))
        return state, infer_config(state, conv_clamp=synthesis_kwargs.get("conv_clamp"))
    except KeyError as err:
        raise WeightsError(f"{path}: G_ema lacks {err}: not a StyleGAN2 generator") from None


# ------------------------------------------------------------------------------------------ entry points

def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], GeneratorConfig, str]:
    """(state dict in rosinality keys, config, format name) of any supported weight file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weight file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        state, config, _ = _read_safetensors(path)
        return state, config, "safetensors"
    if suffix in PICKLE_SUFFIXES:
        return (*read_rosinality(path), "rosinality")
    if suffix == ".pkl":
        return (*read_nvidia_pickle(path), "stylegan2-ada")
    raise WeightsError(f"{path}: unknown weight format (expected .safetensors, a rosinality .pt or an "
                       f"NVIDIA stylegan2-ada-pytorch .pkl)")


def load_generator(path: str | Path, *, size: int | None = None, device="cpu") -> Generator:
    """A frozen generator in eval mode; refused when `size` is given and the file is another resolution."""
    state, config, _ = read_weights(path)
    if size is not None and config.size != size:
        raise WeightsError(f"{path}: a {config.size} px generator, but {size} px was asked for")
    return build_generator(state, config, Path(path)).to(device)


def convert_weights(src: str | Path, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Convert a rosinality checkpoint or an NVIDIA pickle to our safetensors (verified by building it)."""
    state, config, kind = read_weights(src)
    generator = build_generator(state, config, Path(src))
    return save_generator(dst, generator, source=f"{kind}:{Path(src).name}", overwrite=overwrite)


def find_weights(root: str | Path) -> Path | None:
    """The first StyleGAN2 weight file under `root` (e.g. /kaggle/input), by the names in KNOWN_NAMES."""
    root = Path(root)
    if not root.is_dir():
        return None
    for pattern in KNOWN_NAMES:
        for found in sorted(root.rglob(pattern)):
            if found.suffix != ".safetensors" or _is_ours(found):
                return found
    return None


def trained_generator(search_root: str | Path, cache_dir: str | Path):
    """(generator, its path) from the weights found under `search_root` (converted once into `cache_dir`),
    or (None, None) when there are none."""
    path = find_weights(search_root)
    if path is None:
        return None, None
    if path.suffix != ".safetensors":
        cached = Path(cache_dir) / f"{path.stem}.safetensors"
        if not cached.is_file():
            convert_weights(path, cached)
        path = cached
    return load_generator(path), path


def weights_or_random(search_root: str | Path, cache_dir: str | Path, fallback: GeneratorConfig,
                      seed: int = 0) -> tuple[Generator, str]:
    """(generator, a sentence saying what it is): trained weights found under `search_root`, else a seeded
    random generator of the `fallback` architecture."""
    from .models.stylegan2 import random_generator

    generator, path = trained_generator(search_root, cache_dir)
    if generator is None:
        return random_generator(fallback, seed), (f"RANDOM {fallback.size} px generator (no StyleGAN2 weights "
                                                  f"under {search_root}): results are NOT meaningful")
    return generator, f"trained {generator.size} px generator from {path}"


def _is_ours(path: Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as handle:
            return (handle.metadata() or {}).get("format") == FORMAT
    except Exception:  # any unreadable file is simply not a candidate
        return False


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description="Convert StyleGAN2 weights to this project's safetensors.")
    cli.add_argument("src", help="rosinality .pt checkpoint or NVIDIA stylegan2-ada-pytorch .pkl")
    cli.add_argument("dst", help="output .safetensors file")
    cli.add_argument("--overwrite", action="store_true")
    args = cli.parse_args()
    print(convert_weights(args.src, args.dst, overwrite=args.overwrite))
