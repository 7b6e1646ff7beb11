"""The U-Net restorer and its PatchGAN: shapes at any size, residual start, batch independence, the
translation behaviour tiling relies on, the 70x70 receptive field, and the size budget."""

from __future__ import annotations

import pytest
import torch

from helpers.models import build_models
from helpers.models.unet import PatchDiscriminator, UNetGenerator, build

TINY = {"width": 8, "depth": 2, "max_width": 16, "bottleneck_blocks": 1}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine OpenMP threads waiting for
    each other make these tests 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize_correction(generator: UNetGenerator, std: float = 0.05) -> UNetGenerator:
    """A fresh U-Net is the identity (zero correction layer); give it a real correction to test."""
    torch.nn.init.normal_(generator.to_correction.weight, 0.0, std)
    return generator


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 23), (64, 48)])
def test_any_size_gray_or_rgb_comes_back_the_same_size_and_in_range(channels, size):
    torch.manual_seed(0)
    generator = _randomize_correction(UNetGenerator(channels, **TINY), std=1.0).eval()
    x = torch.rand(2, channels, *size) * 2 - 1
    with torch.no_grad():
        image, mask_logits = generator(x)
    assert image.shape == x.shape
    assert mask_logits.shape == (2, 1, *size)
    assert image.min() >= -1 and image.max() <= 1
    assert torch.isfinite(mask_logits).all()


def test_untrained_generator_is_the_identity_so_training_starts_from_the_damaged_photo():
    generator, _, _ = build(**TINY)
    x = torch.rand(1, 1, 40, 40) * 2 - 1
    with torch.no_grad():
        image, _ = generator(x)
    assert torch.equal(image, x)


def test_clamped_output_still_passes_gradients_to_the_correction():
    """The straight-through clamp: a saturated pixel whose target is darker must still get a gradient."""
    generator = UNetGenerator(1, **TINY)
    torch.nn.init.constant_(generator.to_correction.bias, 0.5)
    x = torch.full((1, 1, 16, 16), 0.9)
    image, _ = generator(x)
    assert torch.all(image == 1.0)  # 0.9 + 0.5 clipped
    torch.nn.functional.l1_loss(image, torch.zeros_like(image)).backward()
    assert generator.to_correction.bias.grad.abs().sum().item() > 0


def test_each_image_is_restored_independently_of_its_batch():
    """No batch statistics (unlike BatchNorm): batch size 1 at inference gives what training saw."""
    torch.manual_seed(1)
    generator = _randomize_correction(UNetGenerator(1, **TINY)).eval()
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        together, _ = generator(x)
        alone, _ = generator(x[2:3])
    torch.testing.assert_close(together[2:3], alone, atol=1e-5, rtol=0)


def test_a_crop_on_the_stride_grid_sees_the_same_features_as_the_whole_image():
    """What seam-free tiling relies on: away from its borders, a tile's output equals the full output,
    which no norm with image-wide statistics (InstanceNorm, GroupNorm) would give."""
    torch.manual_seed(2)
    generator = _randomize_correction(UNetGenerator(1, **TINY)).eval()
    x = torch.rand(1, 1, 256, 256) * 2 - 1
    with torch.no_grad():
        full, _ = generator(x)
        tile, _ = generator(x[..., 32:, 32:])  # offset 32: a multiple of the stride 8
    # 80 px from the tile's borders: beyond the tiny model's receptive field
    torch.testing.assert_close(tile[..., 80:144, 80:144], full[..., 112:176, 112:176], atol=1e-4, rtol=0)
    assert not torch.allclose(full, x, atol=1e-2)  # the correction is real, so the check means something


def _randomize_context(generator: UNetGenerator, std: float = 0.05) -> UNetGenerator:
    torch.nn.init.normal_(generator.context.mlp[-1].weight, 0.0, std)
    return generator


def test_photo_wide_context_starts_as_no_change_and_then_depends_on_the_whole_photo():
    """Grown from a checkpoint, the context layers compute nothing until trained; once trained, a patch of
    the photo is restored differently depending on what the rest of the photo looks like."""
    torch.manual_seed(4)
    plain = _randomize_correction(UNetGenerator(1, **TINY)).eval()
    grown = UNetGenerator(1, **TINY, context=True).eval()
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("context.") for key in missing)
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(grown(x)[0], plain(x)[0], atol=0, rtol=0)
        _randomize_context(grown)
        dark, light = x.clone(), x.clone()
        dark[..., 32:, :], light[..., 32:, :] = -1, 1  # the same top half in two different photos
        top = x[..., :32, :]
        in_dark, in_light = grown(top, context=grown.describe(dark))[0], grown(top, context=grown.describe(light))[0]
    assert (in_dark - in_light).abs().mean() > 1e-3


def test_a_tile_given_the_whole_photos_context_matches_the_whole_photo():
    """helpers.restore hands every tile the context of the whole photo (`describe`), so tiles still agree."""
    torch.manual_seed(5)
    generator = _randomize_context(_randomize_correction(UNetGenerator(1, **TINY, context=True))).eval()
    x = torch.rand(1, 1, 256, 256) * 2 - 1
    with torch.no_grad():
        full, _ = generator(x)
        tile, _ = generator(x[..., 32:, 32:], context=generator.describe(x))
        alone, _ = generator(x[..., 32:, 32:])
    torch.testing.assert_close(tile[..., 80:144, 80:144], full[..., 112:176, 112:176], atol=1e-4, rtol=0)
    assert (alone[..., 80:144, 80:144] - full[..., 112:176, 112:176]).abs().max() > 1e-3  # its own context differs


def test_context_of_a_large_photo_is_taken_at_the_training_size():
    from helpers.models.unet import CONTEXT_SIZE
    torch.manual_seed(6)
    generator = _randomize_context(UNetGenerator(1, **TINY, context=True)).eval()
    small = torch.rand(1, 1, CONTEXT_SIZE // 2, CONTEXT_SIZE) * 2 - 1
    large = torch.nn.functional.interpolate(small, scale_factor=3, mode="nearest")
    with torch.no_grad():
        torch.testing.assert_close(generator.describe(large), generator.describe(small), atol=1e-5, rtol=0)
        assert generator(large)[0].shape == large.shape


def test_contrast_gain_starts_as_no_change_and_can_undo_fading_exactly():
    """Grown with gain=true, a checkpoint restores as before; a gain of a / (1 - a) with a matching correction
    is the exact inverse of fading (x -> (1 - a) x + a grey), detail included, and tiles still agree."""
    torch.manual_seed(7)
    plain = _randomize_correction(UNetGenerator(1, **TINY)).eval()
    grown = UNetGenerator(1, **TINY, gain=True).eval()
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["to_gain.bias", "to_gain.weight"]
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(grown(x)[0], plain(x)[0], atol=0, rtol=0)
    inverse = UNetGenerator(1, **TINY, gain=True).eval()
    a, grey = 0.5, 0.2
    torch.nn.init.constant_(inverse.to_gain.bias, a / (1 - a))
    torch.nn.init.constant_(inverse.to_correction.bias, -a * grey / (1 - a))
    clean = torch.rand(1, 1, 64, 64) - 0.5
    with torch.no_grad():
        torch.testing.assert_close(inverse((1 - a) * clean + a * grey)[0], clean, atol=1e-5, rtol=0)
        torch.nn.init.normal_(grown.to_gain.weight, 0.0, 0.05)
        big = torch.rand(1, 1, 256, 256) * 2 - 1
        full, tile, before = grown(big)[0], grown(big[..., 32:, 32:])[0], plain(big)[0]
    torch.testing.assert_close(tile[..., 80:144, 80:144], full[..., 112:176, 112:176], atol=1e-4, rtol=0)
    assert (full - before).abs().mean() > 1e-3  # the gain is real, so the tile check means something


def test_patch_discriminator_is_conditional_and_sees_70x70_patches():
    torch.manual_seed(3)
    disc = PatchDiscriminator(in_channels=2, width=8)
    assert disc(torch.randn(1, 2, 256, 256)).shape == (1, 1, 30, 30)
    # The convolutions' receptive field; InstanceNorm's statistics would spread gradients everywhere.
    convs_only = torch.nn.Sequential(*(m for m in disc.main if not isinstance(m, torch.nn.InstanceNorm2d)))
    x = torch.randn(1, 2, 140, 140, requires_grad=True)
    out = convs_only(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3))).flatten()
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2))).flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def test_registry_builds_the_unet_pair_with_its_spec():
    generator, discriminator, spec = build_models("unet")
    assert spec.name == "unet" and spec.conditional and spec.mask_head and spec.loss == "bce"
    assert spec.l1_weight == 100.0 and spec.image_size is None
    assert spec.discriminator_channels == 2 * spec.channels
    assert spec.notes["stride"] == generator.stride == 16
    x = torch.zeros(1, spec.channels, 64, 64)
    with torch.no_grad():
        assert discriminator(torch.cat([x, x], 1)).shape[1] == 1


def test_default_generator_is_small_enough_to_bundle():
    generator, _, _ = build()
    parameters = sum(p.numel() for p in generator.parameters())
    assert 500_000 <= parameters <= 2_500_000
    assert parameters * 2 <= 10 * 1024 * 1024  # fp16 bytes of the bundled checkpoint, before its header


def test_a_few_steps_of_l1_training_reduce_the_error():
    """The model can learn a correction (here: undo a brightness shift) in a handful of Adam steps."""
    torch.manual_seed(4)
    generator = UNetGenerator(1, **TINY)
    clean = torch.rand(4, 1, 32, 32) * 1.6 - 0.8
    damaged = (clean + 0.3).clamp(-1, 1)
    optimizer = torch.optim.Adam(generator.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.l1_loss(generator(damaged)[0], clean)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
