"""A compact StyleGAN2 generator in plain PyTorch (no custom CUDA ops), with W, W+ and W++ styles.

Read top to bottom: the mapping network turns z into w; the synthesis network starts from a learned
4x4 constant and, resolution by resolution, applies modulated convolutions (the style scales each input
channel of the kernel, demodulation renormalises each output filter), adds per-pixel noise, and sums
the toRGB outputs of every resolution into the image ("skip" architecture).

The parameter and buffer names are those of rosinality/stylegan2-pytorch (`style.1.weight`,
`conv1.conv.modulation.weight`, `convs.N...`, `to_rgbs.N...`, `noises.noise_N`, `input.input`), so a
rosinality `g_ema` state dict loads as it is (see helpers/stylegan_weights.py).

Three ways to give styles to the synthesis network (Poirier-Ginter & Lalonde, CVPR 2023):
- W   B x D: one vector for every layer;
- W+  B x N_L x D: one vector per latent index (rosinality's `n_latent`; a toRGB shares the index of the
  next convolution, as in StyleGAN2);
- W++ B x N_F x D: one vector per output filter of every style layer, each layer with its own vectors.
  Filter o of a layer is modulated by its own vector w_o: the affine maps it to its own per-input-channel
  scales s_{o,i}, so the kernel is W[o,i,:,:] * s_{o,i}, demodulated per o. All filters of a layer go
  through the affine in one batched matmul, so W++ costs about what W+ costs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

BLUR = (1.0, 3.0, 3.0, 1.0)  # StyleGAN2's low-pass filter for every resampling


@dataclass(frozen=True)
class GeneratorConfig:
    """The architecture; channels(res) = min(channel_base // res, channel_max) as in StyleGAN2-ADA.

    FFHQ config-f at 1024 px is the default (channel_base 32768 is rosinality's channel_multiplier 2).
    """

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_base: int = 32768
    channel_max: int = 512
    lr_mlp: float = 0.01
    conv_clamp: float | None = None  # StyleGAN2-ADA trained networks clamp activations at 256

    def __post_init__(self):
        if self.size < 4 or self.size & (self.size - 1):
            raise ValueError(f"generator size must be a power of two >= 4, not {self.size}")

    def channels(self, res: int) -> int:
        return max(1, min(self.channel_base // res, self.channel_max))

    def to_dict(self) -> dict:
        return asdict(self)


def compact_config(size: int = 256) -> GeneratorConfig:
    """A narrow generator for CPU work: the 450-step inversion at 256 px runs in about a minute."""
    return GeneratorConfig(size=size, style_dim=512, n_mlp=8, channel_base=2048, channel_max=128)


def tiny_config(size: int = 32) -> GeneratorConfig:
    """Tests and quick mode: a few thousand parameters per layer, an inversion step in milliseconds."""
    return GeneratorConfig(size=size, style_dim=32, n_mlp=2, channel_base=32 * 16, channel_max=32)


# ------------------------------------------------------------------------------------------ resampling

def _blur_kernel(gain: float = 1.0) -> torch.Tensor:
    k = torch.tensor(BLUR)
    k = k[:, None] * k[None, :]
    return k / k.sum() * gain


def blur(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """Depthwise FIR filter with asymmetric padding (upfirdn2d without up/down; the kernel is symmetric)."""
    channels = x.shape[1]
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, kernel.to(x.dtype).expand(channels, 1, *kernel.shape), groups=channels)


def upsample2x(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Zero insertion then blur (upfirdn2d up=2, pad (2, 1)): how StyleGAN2 upsamples the skip image."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, h, 2, w, 2)
    up[:, :, :, 0, :, 0] = x
    return blur(up.reshape(b, c, 2 * h, 2 * w), kernel, (2, 1))


# ------------------------------------------------------------------------------------------ layers

class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with the weight scale applied at run time (equalised learning rate)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale, self.lr_mul, self.activation = lr_mul / math.sqrt(in_dim), lr_mul, activation

    def forward(self, x):
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * math.sqrt(2) if self.activation else out


class ModulatedConv2d(nn.Module):
    """Convolution whose kernel is scaled per (output filter, input channel) by the styles, then demodulated.

    `w` is B x V x D with V = 1 (W, W+: every filter shares the vector) or V = out_channels (W++).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.demodulate, self.upsample = demodulate, upsample
        self.out_channels, self.in_channels, self.kernel_size = out_channels, in_channels, kernel_size
        self.register_buffer("blur_kernel", _blur_kernel(gain=4.0 if upsample else 1.0), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        styles = self.modulation(w)  # B x V x in: one batched affine for every filter vector
        weight = self.scale * self.weight * styles[:, :, :, None, None]  # B x out x in x k x k
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        k = self.kernel_size
        x = x.reshape(1, batch * self.in_channels, height, width)
        if self.upsample:  # transposed conv (stride 2) then blur, as StyleGAN2 does
            weight = weight.transpose(1, 2).reshape(batch * self.in_channels, self.out_channels, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
            out = blur(out, self.blur_kernel, (1, 1))
        else:
            out = F.conv2d(x, weight.reshape(batch * self.out_channels, self.in_channels, k, k),
                           padding=k // 2, groups=batch)
        return out.reshape(batch, self.out_channels, *out.shape[2:])


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise):
        return x if noise is None else x + self.weight * noise


class BiasLeakyReLU(nn.Module):
    """Bias, leaky ReLU and sqrt(2) gain (rosinality's FusedLeakyReLU), optionally clamped (ADA)."""

    def __init__(self, channels: int, clamp: float | None = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.clamp = clamp

    def forward(self, x):
        x = F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * math.sqrt(2)
        return x if self.clamp is None else x.clamp(-self.clamp, self.clamp)


class StyledConv(nn.Module):
    def __init__(self, in_channels, out_channels, style_dim, upsample=False, clamp=None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = BiasLeakyReLU(out_channels, clamp)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x, w, noise=None):
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation, added to the upsampled image of the previous resolution."""

    def __init__(self, in_channels, style_dim, upsample=True, clamp=None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.clamp, self.upsample = clamp, upsample
        self.register_buffer("skip_kernel", _blur_kernel(gain=4.0), persistent=False)

    @property
    def out_channels(self) -> int:
        return 3

    def forward(self, x, w, skip=None):
        out = self.conv(x, w) + self.bias
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        return out if skip is None else out + upsample2x(skip, self.skip_kernel)


class ConstantInput(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))


# ------------------------------------------------------------------------------------------ generator

class Generator(nn.Module):
    """mapping(z) -> w; synthesis(styles in W, W+ or W++) -> image B x 3 x size x size in about [-1, 1]."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        c, d, clamp = config.channels, config.style_dim, config.conv_clamp
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(d, d, lr_mul=config.lr_mlp, activation=True)
                                                  for _ in range(config.n_mlp)])
        self.input = ConstantInput(c(4))
        self.conv1 = StyledConv(c(4), c(4), d, clamp=clamp)
        self.to_rgb1 = ToRGB(c(4), d, upsample=False, clamp=clamp)
        self.log_size = int(math.log2(config.size))
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        for i in range(3, self.log_size + 1):
            in_ch, out_ch = c(2 ** (i - 1)), c(2 ** i)
            self.convs.append(StyledConv(in_ch, out_ch, d, upsample=True, clamp=clamp))
            self.convs.append(StyledConv(out_ch, out_ch, d, clamp=clamp))
            self.to_rgbs.append(ToRGB(out_ch, d, clamp=clamp))
        self.num_noises = 2 * (self.log_size - 2) + 1
        for i in range(self.num_noises):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        self.register_buffer("latent_avg", torch.zeros(0, d))  # filled when loaded from trained weights

        # Every layer that takes a style, in order, with its W+ index (a toRGB shares the next conv's).
        self.style_layers = [self.conv1, self.to_rgb1]
        self.latent_index = [0, 1]
        for j in range(self.log_size - 2):
            self.style_layers += [self.convs[2 * j], self.convs[2 * j + 1], self.to_rgbs[j]]
            self.latent_index += [2 * j + 1, 2 * j + 2, 2 * j + 3]
        self.n_latent = self.log_size * 2 - 2  # N_L
        self.filters_per_layer = [layer.out_channels for layer in self.style_layers]
        self.n_filters = sum(self.filters_per_layer)  # N_F

    @property
    def size(self) -> int:
        return self.config.size

    @property
    def style_dim(self) -> int:
        return self.config.style_dim

    @property
    def trained(self) -> bool:
        """True once trained weights (with their latent_avg) were loaded; a random generator means nothing."""
        return self.latent_avg.numel() > 0

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 10_000, seed: int = 0) -> torch.Tensor:
        """1 x D: `latent_avg` of trained weights, else the mean of the mapping of n seeded z."""
        if self.trained:
            return self.latent_avg.reshape(1, -1).clone()
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen).to(self.input.input.device)
        return self.mapping(z).mean(dim=0, keepdim=True)

    # ---- style spaces
    def space_of(self, latents: torch.Tensor) -> str:
        if latents.ndim == 2 and latents.shape[1] == self.style_dim:
            return "W"
        if latents.ndim == 3 and latents.shape[2] == self.style_dim:
            if latents.shape[1] == self.n_latent:
                return "W+"
            if latents.shape[1] == self.n_filters:
                return "W++"
        raise ValueError(f"latents of shape {tuple(latents.shape)} are neither W (B x {self.style_dim}), "
                         f"W+ (B x {self.n_latent} x {self.style_dim}) nor W++ (B x {self.n_filters} x "
                         f"{self.style_dim})")

    def w_to_wplus(self, w: torch.Tensor) -> torch.Tensor:
        return w[:, None, :].repeat(1, self.n_latent, 1)

    def wplus_to_wplusplus(self, wplus: torch.Tensor) -> torch.Tensor:
        """Give every filter of a layer a copy of that layer's W+ vector: the image does not change."""
        counts = torch.tensor(self.filters_per_layer, device=wplus.device)
        return wplus[:, self.latent_index].repeat_interleave(counts, dim=1)

    def layer_styles(self, latents: torch.Tensor) -> list[torch.Tensor]:
        """One B x V x D tensor per style layer (V = 1 for W and W+, its filter count for W++)."""
        space = self.space_of(latents)
        if space == "W":
            return [latents[:, None, :]] * len(self.style_layers)
        if space == "W+":
            return [latents[:, i:i + 1] for i in self.latent_index]
        return list(torch.split(latents, self.filters_per_layer, dim=1))

    # ---- image
    def synthesis(self, latents: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """noise_mode: 'const' (the stored noise maps, deterministic), 'random' or 'none'."""
        styles = iter(self.layer_styles(latents))
        batch = latents.shape[0]
        noises = [self._noise(i, batch, noise_mode) for i in range(self.num_noises)]
        x = self.input.input.repeat(batch, 1, 1, 1)
        x = self.conv1(x, next(styles), noises[0])
        image = self.to_rgb1(x, next(styles))
        for j, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * j](x, next(styles), noises[2 * j + 1])
            x = self.convs[2 * j + 1](x, next(styles), noises[2 * j + 2])
            image = to_rgb(x, next(styles), image)
        return image

    def _noise(self, index: int, batch: int, mode: str) -> torch.Tensor | None:
        stored = getattr(self.noises, f"noise_{index}")
        if mode == "const":
            return stored
        if mode == "random":
            return torch.randn(batch, 1, *stored.shape[2:], device=stored.device)
        if mode == "none":
            return None
        raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {mode!r}")

    def forward(self, z: torch.Tensor, truncation: float = 1.0, noise_mode: str = "random") -> torch.Tensor:
        """Sample images from z (B x D), optionally truncated towards the mean latent."""
        w = self.mapping(z)
        if truncation != 1.0:
            w = torch.lerp(self.mean_latent().to(w), w, truncation)
        return self.synthesis(w, noise_mode=noise_mode)


def random_generator(config: GeneratorConfig, seed: int = 0) -> Generator:
    """Seeded random weights (tests, quick mode, benchmarks): its images mean nothing. The toRGB weights
    are rescaled so samples span about [-1, 1] instead of saturating, which keeps previews readable."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        generator = Generator(config)
        z = torch.randn(16, config.style_dim)
    with torch.no_grad():
        spread = generator.synthesis(generator.mapping(z)).std()
        for to_rgb in [generator.to_rgb1, *generator.to_rgbs]:
            to_rgb.conv.weight /= spread / 0.5
    return generator.eval()
