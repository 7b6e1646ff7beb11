"""StyleGAN2 weight files: our safetensors, rosinality checkpoints, NVIDIA StyleGAN2-ADA pickles, refusals.

The NVIDIA pickle here is built the way stylegan2-ada-pytorch builds its own: every network is a
`torch_utils.persistence` object whose pickled form carries its Python source and state. Fake
`torch_utils` and `dnnlib` modules exist only while the file is written, as they would on NVIDIA's side.
"""

import argparse
import collections
import os
import pickle
import re
import sys
import types

import pytest
import torch

from helpers.models.stylegan2 import Generator, GeneratorConfig, random_generator, tiny_config
from helpers.stylegan_weights import (WeightsError, convert_weights, find_weights, infer_config, load_generator,
                                      read_nvidia_pickle, save_generator)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gen():
    g = random_generator(tiny_config(16), seed=0)
    with torch.no_grad():  # non-zero noise strengths and biases, so every tensor matters to the output
        for name, p in g.named_parameters():
            if name.endswith(("noise.weight", "activate.bias")):
                p.normal_(0, 0.2)
    g.latent_avg = g.mean_latent(1000, seed=5)
    return g


def _image(g):
    w = g.mapping(torch.randn(2, g.style_dim, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        return g.synthesis(w)


def test_safetensors_round_trip(gen, tmp_path):
    path = save_generator(tmp_path / "g.safetensors", gen, source="test")
    assert path.with_suffix(".json").is_file()
    loaded = load_generator(path)
    assert loaded.config == gen.config and loaded.trained
    torch.testing.assert_close(_image(loaded), _image(gen), rtol=0, atol=0)
    torch.testing.assert_close(loaded.mean_latent(), gen.latent_avg)


def test_rosinality_checkpoint_loads_with_weights_only(gen, tmp_path):
    state = gen.state_dict()
    latent_avg = state.pop("latent_avg")[0]
    state["convs.0.conv.blur.kernel"] = torch.ones(4, 4)  # rosinality stores its fixed FIR kernels too
    state["to_rgbs.0.upsample.kernel"] = torch.ones(4, 4)
    ckpt = {"g_ema": state, "latent_avg": latent_avg, "args": argparse.Namespace(size=16)}
    torch.save(ckpt, tmp_path / "ros.pt")
    loaded = load_generator(tmp_path / "ros.pt")
    torch.testing.assert_close(_image(loaded), _image(gen), rtol=0, atol=0)
    out = convert_weights(tmp_path / "ros.pt", tmp_path / "ros.safetensors")
    torch.testing.assert_close(_image(load_generator(out)), _image(gen), rtol=0, atol=0)


@pytest.mark.parametrize("config", [GeneratorConfig(size=64, style_dim=16, n_mlp=3, channel_base=1024, channel_max=32),
                                    GeneratorConfig(size=32, style_dim=8, n_mlp=1, channel_base=4096, channel_max=16)])
def test_config_is_read_from_tensor_shapes(config):
    inferred = infer_config(Generator(config).state_dict())
    assert (inferred.size, inferred.style_dim, inferred.n_mlp) == (config.size, config.style_dim, config.n_mlp)
    resolutions = [2 ** i for i in range(2, config.size.bit_length())]
    assert [inferred.channels(r) for r in resolutions] == [config.channels(r) for r in resolutions]


def test_wrong_resolution_is_refused(gen, tmp_path):
    path = save_generator(tmp_path / "g16.safetensors", gen)
    with pytest.raises(WeightsError, match="a 16 px generator, but 256 px was asked for"):
        load_generator(path, size=256)
    state = gen.state_dict()
    state["to_rgbs.1.conv.weight"] = torch.zeros(1, 3, 5, 1, 1)
    torch.save({"g_ema": state}, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=r"to_rgbs\.1\.conv\.weight has shape"):
        load_generator(tmp_path / "bad.pt")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickles_carrying_code_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"G_ema": _Evil(marker)}))
    with pytest.raises(WeightsError, match=r"refused: it asks for (posix|nt|os)\.system.*nothing from the file was run"):
        load_generator(tmp_path / "evil.pkl")
    torch.save({"g_ema": {"x": _Evil(marker)}}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="refused or unreadable"):
        load_generator(tmp_path / "evil.pt")
    assert not marker.exists()


# ---------------------------------------------------------------------------------- NVIDIA pickle


def _to_ada(state):
    """Our (rosinality) keys -> StyleGAN2-ADA keys and shapes: the inverse of the loader's mapping."""
    ada = {"mapping.w_avg": state["latent_avg"][0], "synthesis.b4.const": state["input.input"][0]}
    for key, value in state.items():
        if m := re.fullmatch(r"style\.(\d+)\.(weight|bias)", key):
            ada[f"mapping.fc{int(m[1]) - 1}.{m[2]}"] = value
    n_blocks = sum(1 for k in state if re.fullmatch(r"to_rgbs\.\d+\.bias", k))
    blocks = [(4, {"conv1": ("conv1", 0)}, "to_rgb1")]
    for j in range(n_blocks):
        blocks.append((2 ** (j + 3), {"conv0": (f"convs.{2 * j}", 2 * j + 1), "conv1": (f"convs.{2 * j + 1}", 2 * j + 2)},
                       f"to_rgbs.{j}"))
    for res, convs, rgb in blocks:
        for ada_name, (name, noise) in convs.items():
            p = f"synthesis.b{res}.{ada_name}."
            ada[p + "weight"] = state[f"{name}.conv.weight"][0]
            ada[p + "affine.weight"] = state[f"{name}.conv.modulation.weight"]
            ada[p + "affine.bias"] = state[f"{name}.conv.modulation.bias"]
            ada[p + "noise_strength"] = state[f"{name}.noise.weight"][0]
            ada[p + "bias"] = state[f"{name}.activate.bias"]
            ada[p + "noise_const"] = state[f"noises.noise_{noise}"][0, 0]
            ada[p + "resample_filter"] = torch.ones(4, 4) / 16
        p = f"synthesis.b{res}.torgb."
        ada[p + "weight"] = state[f"{rgb}.conv.weight"][0]
        ada[p + "affine.weight"] = state[f"{rgb}.conv.modulation.weight"]
        ada[p + "affine.bias"] = state[f"{rgb}.conv.modulation.bias"]
        ada[p + "bias"] = state[f"{rgb}.bias"].reshape(3)
    return ada


@pytest.fixture
def nvidia_modules(monkeypatch):
    """Stand-ins for NVIDIA's torch_utils.persistence and dnnlib.util, present only while pickling."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # the real one exec()s meta["module_src"]
        raise AssertionError("never called: the pickle is only written here")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    for name, module in {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
                         "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return persistence, util


def _persistent(persistence, class_name, tree, marker, **attrs):
    """A node of the pickled network tree: parameters, buffers and child modules, as ADA pickles them."""
    params, buffers, modules = collections.OrderedDict(), collections.OrderedDict(), collections.OrderedDict()
    for name, value in tree.items():
        if isinstance(value, dict):
            modules[name] = _persistent(persistence, "Layer", value, marker)
        elif name in ("w_avg", "noise_const", "resample_filter"):
            buffers[name] = value.clone()
        else:
            params[name] = torch.nn.Parameter(value.clone())
    state = {"training": False, "_parameters": params, "_buffers": buffers, "_modules": modules,
             "_non_persistent_buffers_set": set(), "_forward_hooks": collections.OrderedDict(), **attrs}
    meta = {"type": "class", "version": 4, "class_name": class_name, "state": state,
            "module_src": f"import os\nos.system('touch {marker}')\n"}
    return type("Persistent", (), {"__reduce__": lambda self: (persistence._reconstruct_persistent_obj, (meta,))})()


def _nest(flat):
    tree = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


@pytest.mark.parametrize("protocol", [2, 4])
def test_nvidia_pickle_converts_without_running_its_code(gen, tmp_path, nvidia_modules, protocol):
    persistence, util = nvidia_modules
    marker = tmp_path / "pwned"
    kwargs = util.EasyDict(z_dim=gen.style_dim, w_dim=gen.style_dim, mapping_kwargs=util.EasyDict(num_layers=2),
                           synthesis_kwargs=util.EasyDict(channel_base=512, channel_max=32, conv_clamp=None))
    g_ema = _persistent(persistence, "Generator", _nest(_to_ada(gen.state_dict())), marker, c_dim=0,
                        _init_kwargs=kwargs, z_dim=gen.style_dim)
    data = {"G": g_ema, "D": _persistent(persistence, "Discriminator", {"w": torch.ones(2)}, marker),
            "G_ema": g_ema, "augment_pipe": None, "training_set_kwargs": util.EasyDict(resolution=16)}
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(data, protocol=protocol))

    state, config = read_nvidia_pickle(tmp_path / "net.pkl")
    assert config.size == 16 and config.conv_clamp is None
    torch.testing.assert_close(_image(load_generator(tmp_path / "net.pkl")), _image(gen), rtol=0, atol=0)
    out = convert_weights(tmp_path / "net.pkl", tmp_path / "net.safetensors")
    assert load_generator(out).trained and not marker.exists()


def test_find_weights_skips_foreign_safetensors(gen, tmp_path):
    from safetensors.torch import save_file

    assert find_weights(tmp_path / "absent") is None
    save_file({"x": torch.zeros(1)}, tmp_path / "a_restorer.safetensors")
    assert find_weights(tmp_path) is None
    ours = save_generator(tmp_path / "sub" / "b.safetensors", gen)
    assert find_weights(tmp_path) == ours
