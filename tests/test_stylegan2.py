"""The compact StyleGAN2: style spaces W / W+ / W++, the per-filter modulation of W++, batching."""

import math

import pytest
import torch
import torch.nn.functional as F

from helpers.models.stylegan2 import (GeneratorConfig, ModulatedConv2d, random_generator, tiny_config,
                                      upsample2x)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gen():
    return random_generator(tiny_config(32), seed=0)


def _w(gen, n=1, seed=1):
    return gen.mapping(torch.randn(n, gen.style_dim, generator=torch.Generator().manual_seed(seed)))


def test_counts_follow_the_architecture(gen):
    cfg = gen.config
    log_size = int(math.log2(cfg.size))
    assert gen.n_latent == 2 * log_size - 2  # rosinality's n_latent
    # one conv and one toRGB at 4 px, then two convs and a toRGB per resolution
    expected = cfg.channels(4) + 3 + sum(2 * cfg.channels(2 ** i) + 3 for i in range(3, log_size + 1))
    assert gen.n_filters == expected
    assert len(gen.filters_per_layer) == len(gen.latent_index) == 2 + 3 * (log_size - 2)


def test_ffhq_config_has_the_published_widths():
    cfg = GeneratorConfig()  # config-f, 1024 px
    assert [cfg.channels(2 ** i) for i in range(2, 11)] == [512, 512, 512, 512, 512, 256, 128, 64, 32]
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(size=96)


def test_repeating_styles_leaves_the_image_unchanged(gen):
    w = _w(gen)
    wplus = gen.w_to_wplus(w)
    wpp = gen.wplus_to_wplusplus(wplus)
    assert (gen.space_of(w), gen.space_of(wplus), gen.space_of(wpp)) == ("W", "W+", "W++")
    assert wpp.shape == (1, gen.n_filters, gen.style_dim)
    with torch.no_grad():
        images = [gen.synthesis(x) for x in (w, wplus, wpp)]
    torch.testing.assert_close(images[1], images[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(images[2], images[0], rtol=1e-5, atol=1e-5)


def test_wplusplus_styles_equal_wplus_styles_after_repeat(gen):
    wplus = gen.w_to_wplus(_w(gen)) + 0.1 * torch.randn(1, gen.n_latent, gen.style_dim)
    wpp = gen.wplus_to_wplusplus(wplus)
    for layer, s_plus, s_pp in zip(gen.style_layers, gen.layer_styles(wplus), gen.layer_styles(wpp)):
        assert s_pp.shape[1] == layer.out_channels and s_plus.shape[1] == 1
        torch.testing.assert_close(s_pp, s_plus.expand_as(s_pp), rtol=0, atol=0)
        mod = layer.conv.modulation
        torch.testing.assert_close(mod(s_pp), mod(s_plus).expand(-1, layer.out_channels, -1))


def test_wplusplus_modulates_each_filter_by_its_own_vector():
    """Batched W++ equals a slow loop where filter o's kernel is W[o, i] * s_{o,i}, demodulated per o."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, style_dim=8)
    x, w = torch.randn(1, 6, 7, 7), torch.randn(1, 5, 8)
    out = conv(x, w)
    for o in range(5):
        s = conv.modulation(w[0, o])  # this filter's own scales, one per input channel
        kernel = conv.scale * conv.weight[0, o] * s[:, None, None]
        kernel = kernel / torch.sqrt(kernel.square().sum() + 1e-8)
        torch.testing.assert_close(out[0, o], F.conv2d(x, kernel[None], padding=1)[0, 0], rtol=1e-4, atol=1e-5)


def test_changing_one_filter_vector_changes_only_that_filter(gen):
    layer_index, filter_index = 2, 3  # the first upsampling conv of the 8 px block
    layer = gen.style_layers[layer_index]
    wpp = gen.wplus_to_wplusplus(gen.w_to_wplus(_w(gen)))
    outputs = []
    hook = layer.conv.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    with torch.no_grad():
        gen.synthesis(wpp)
        row = sum(gen.filters_per_layer[:layer_index]) + filter_index
        wpp[0, row] += torch.randn(gen.style_dim)
        gen.synthesis(wpp)
    hook.remove()
    changed = (outputs[0] - outputs[1]).abs().amax(dim=(0, 2, 3)) > 1e-6
    assert changed.tolist() == [c == filter_index for c in range(layer.out_channels)]


def test_batched_synthesis_equals_one_by_one(gen):
    w = _w(gen, n=2)
    wpp = gen.wplus_to_wplusplus(gen.w_to_wplus(w)) + 0.05 * torch.randn(2, gen.n_filters, gen.style_dim)
    with torch.no_grad():
        both = gen.synthesis(wpp)
        single = torch.cat([gen.synthesis(wpp[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(both, single, rtol=1e-4, atol=1e-5)
    assert both.shape == (2, 3, 32, 32)


def test_bad_latents_are_named(gen):
    with pytest.raises(ValueError, match="neither W"):
        gen.synthesis(torch.zeros(1, 5, gen.style_dim))


def test_upsampling_keeps_a_flat_image_flat():
    kernel = torch.tensor([1.0, 3, 3, 1])
    kernel = (kernel[:, None] * kernel[None]) / 64 * 4
    up = upsample2x(torch.ones(1, 2, 6, 6), kernel)
    assert up.shape == (1, 2, 12, 12)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.ones(1, 2, 8, 8))


def test_random_generator_is_seeded_and_readable():
    a, b = random_generator(tiny_config(16), seed=3), random_generator(tiny_config(16), seed=3)
    z = torch.randn(4, a.style_dim)
    with torch.no_grad():
        img_a, img_b = a(z, noise_mode="const"), b(z, noise_mode="const")
    torch.testing.assert_close(img_a, img_b, rtol=0, atol=0)
    assert 0.2 < float(img_a.std()) < 1.0  # spans about [-1, 1] instead of saturating
    assert not a.trained
    torch.testing.assert_close(a.mean_latent(seed=0), b.mean_latent(seed=0))


def test_summary_command_prints_the_compact_generator(capsys):
    import json

    from helpers.__main__ import main

    # The compact 64x64 generator counted by hand from the StyleGAN2 architecture (512-d style, 8-layer
    # mapping; 128 channels at 4-16 px, 64 at 32 px, 32 at 64 px): each StyledConv(i, o) has its modulation
    # EqualLinear(512, i), a 3x3 weight o*i*9, one noise weight and o biases; each ToRGB(i) a modulation,
    # a 1x1 weight 3*i and 3 biases. torchsummary counts weights and biases of modules, so the learned
    # constant input (128x4x4) is not in its total.
    style = 512
    styled = lambda i, o: (style * i + i) + o * i * 9 + 1 + o
    to_rgb = lambda i: (style * i + i) + 3 * i + 3
    expected = 8 * (style * style + style) + styled(128, 128) + to_rgb(128)
    for previous, channels in ((128, 128), (128, 128), (128, 64), (64, 32)):  # 8, 16, 32, 64 px
        expected += styled(previous, channels) + styled(channels, channels) + to_rgb(channels)
    assert expected == 3_701_368

    assert main(["summary", "--model", "stylegan2", "--size", "64", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)["generator"]
    assert table["total_params"] == expected
    assert table["input_shape"] == [512]
    assert table["rows"][0]["output_shape"] == [-1, 512]
    assert table["rows"][-1] == {"layer": "ToRGB-69", "output_shape": [-1, 3, 64, 64], "params": 3}
    assert sum(row["params"] for row in table["rows"]) == expected

    assert main(["summary", "--model", "stylegan2", "--size", "64"]) == 0
    printed = capsys.readouterr().out
    assert "Total params: 3,701,368" in printed and "[-1, 3, 64, 64]" in printed
