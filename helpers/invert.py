"""Robust unsupervised StyleGAN inversion (Poirier-Ginter & Lalonde, CVPR 2023, Algorithm 1).

Given an observation y of a degraded photo and a differentiable model f̂ of the degradation, find the
clean image G(w) with f̂(G(w)) close to y, in three phases of increasing freedom:

  Phase I    W:   w starts at the mean latent; 150 steps at lr 0.08. One vector for the whole image finds
                  the right face (pose, identity) but not its details.
  Phase II   W+:  w+ = repeat(w, N_L); 150 steps at lr 0.02. One vector per layer: finer control.
  Phase III  W++: w++ = repeat(w+, N_F); 150 steps at lr 0.005. One vector per output filter: the
                  details, while the small rate keeps the result near the generator's image manifold.

Each step is normalized gradient descent: every latent vector moves by lr * g / ||g|| (its own gradient
direction, a fixed length), not Adam. Repeating at a phase boundary leaves the image unchanged, so each
phase starts exactly where the previous one ended. The loss is multiscale LPIPS + 0.1 L1 (helpers.losses).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .degradations import Degradation
from .losses import MultiscaleLoss, make_loss
from .models.stylegan2 import Generator

PHASES = ("W", "W+", "W++")
DEFAULT_STEPS = (150, 150, 150)
DEFAULT_LRS = (0.08, 0.02, 0.005)


@dataclass
class InversionStep:
    """What a callback sees after every step: e.g. a live preview updates its image every few steps."""

    phase: str
    step: int  # within the phase
    total_step: int
    loss: float
    image: torch.Tensor  # 1 x 3 x S x S in [0, 1], before this step's update


@dataclass
class InversionResult:
    image: torch.Tensor  # 3 x S x S in [0, 1]: the restored photo, G at the last W++ latents
    latents: dict[str, torch.Tensor]  # phase -> latents at the end of it (1 x D, 1 x N_L x D, 1 x N_F x D)
    loss_history: dict[str, list[float]]  # phase -> loss at each of its steps
    phase_images: dict[str, torch.Tensor] = field(default_factory=dict)  # phase -> 3 x S x S at its end
    loss_kind: str = ""  # "lpips-vgg" or "fallback-l1-ssim"
    seconds: float = 0.0

    def final_losses(self) -> dict[str, float | None]:
        return {phase: (h[-1] if h else None) for phase, h in self.loss_history.items()}


@torch.no_grad()
def ngd_step(latent: torch.Tensor, lr: float) -> None:
    """Move every latent vector (last dimension) by lr along its normalized negative gradient."""
    grad = latent.grad
    norm = grad.norm(dim=-1, keepdim=True)
    direction = torch.where(norm > 0, grad / norm.clamp_min(1e-30), torch.zeros_like(grad))
    latent -= lr * direction
    latent.grad = None


def render(generator: Generator, latents: torch.Tensor) -> torch.Tensor:
    """Generator output mapped from [-1, 1] to [0, 1] (not clamped: the loss needs the gradient)."""
    return (generator.synthesis(latents, noise_mode="const") + 1) / 2


def _as_batch(observation: torch.Tensor) -> torch.Tensor:
    observation = torch.as_tensor(observation, dtype=torch.float32)
    if observation.ndim == 3:
        observation = observation[None]
    if observation.ndim != 4 or observation.shape[:2] != (1, 3):
        raise ValueError(f"observation must be 3 x H x W (or 1 x 3 x H x W), got {tuple(observation.shape)}")
    return observation


def invert(generator: Generator, observation: torch.Tensor, degradation: Degradation,
           steps=DEFAULT_STEPS, lrs=DEFAULT_LRS, seed: int = 0,
           callback: Callable[[InversionStep], None] | None = None, progress: bool = True,
           loss_fn: MultiscaleLoss | None = None) -> InversionResult:
    """Restore `observation` (3 x h x w in [0, 1], h = degradation.observation_size(generator.size)).

    The generator's weights are frozen (requires_grad off); only the latents are optimized. `seed`
    picks the z samples of the mean latent when the generator has no stored latent_avg.
    """
    from tqdm.auto import tqdm

    if len(steps) != 3 or len(lrs) != 3:
        raise ValueError(f"steps and lrs need one value per phase {PHASES}, got {steps} and {lrs}")
    device = generator.input.input.device
    y = _as_batch(observation).to(device)
    side = degradation.observation_size(generator.size)
    if y.shape[-2:] != (side, side):
        raise ValueError(f"a {generator.size} px generator with {degradation.name} expects a {side} x {side} "
                         f"observation, got {y.shape[-2]} x {y.shape[-1]}")
    generator.requires_grad_(False)
    degradation = degradation.to(device)
    target = degradation.target(y)
    loss_fn = (loss_fn if loss_fn is not None else make_loss()).to(device)
    start = time.perf_counter()

    latent = generator.mean_latent(seed=seed).to(device)
    latents, history, phase_images, total = {}, {}, {}, 0
    for phase, n_steps, lr in zip(PHASES, steps, lrs):
        if phase == "W+":
            latent = generator.w_to_wplus(latent)
        elif phase == "W++":
            latent = generator.wplus_to_wplusplus(latent)
        latent = latent.detach().clone().requires_grad_(True)
        history[phase] = []
        bar = tqdm(range(int(n_steps)), desc=f"phase {phase}", disable=not progress, leave=False)
        for step in bar:
            image = render(generator, latent)
            loss = loss_fn(degradation(image), target)
            loss.backward()
            ngd_step(latent, lr)
            history[phase].append(loss.item())
            bar.set_postfix(loss=f"{history[phase][-1]:.4f}")
            if callback is not None:
                callback(InversionStep(phase, step, total, history[phase][-1], image.detach().clamp(0, 1)))
            total += 1
        latents[phase] = latent.detach().clone()
        with torch.no_grad():
            phase_images[phase] = render(generator, latent)[0].clamp(0, 1)
    return InversionResult(phase_images["W++"], latents, history, phase_images, loss_fn.kind,
                           time.perf_counter() - start)


# ------------------------------------------------------------------------------------------ reporting

def to_numpy(image: torch.Tensor) -> np.ndarray:
    """3 x H x W (or 1 x 3 x H x W) tensor in [0, 1] -> H x W x 3 float32 array for plots and io."""
    image = image.detach().cpu().float().clamp(0, 1)
    return (image[0] if image.ndim == 4 else image).permute(1, 2, 0).numpy()


def align_square(img: np.ndarray, side: int) -> tuple[np.ndarray, str | None]:
    """Centre-crop an H x W (x 3) array to a square and resize it to side x side (area when shrinking,
    cubic when enlarging). Returns the image and a note saying what was changed, or None if nothing."""
    import cv2

    h, w = img.shape[:2]
    notes = []
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = img[top:top + s, left:left + s]
        notes.append(f"centre-cropped {w}x{h} to {s}x{s}")
    if img.shape[0] != side:
        method = cv2.INTER_AREA if img.shape[0] > side else cv2.INTER_CUBIC
        notes.append(f"resized {img.shape[0]}x{img.shape[0]} to {side}x{side}")
        img = cv2.resize(img, (side, side), interpolation=method)
    return img, ("; ".join(notes) or None)


def image_tensor(img: np.ndarray) -> torch.Tensor:
    """H x W (gray) or H x W x 3 array (uint8/uint16/float in [0, 1]) -> 3 x H x W float tensor."""
    from .io import to_float, to_rgb

    return torch.from_numpy(np.ascontiguousarray(to_rgb(to_float(img)))).permute(2, 0, 1).float()


def display_size(image: torch.Tensor, size: int) -> torch.Tensor:
    """Nearest-neighbour upscale of a (small) observation so it sits beside the result at the same size."""
    image = image if image.ndim == 4 else image[None]
    return torch.nn.functional.interpolate(image, size=(size, size), mode="nearest")[0]


def comparison_strip(observation: torch.Tensor, result: InversionResult, degradation: Degradation) -> np.ndarray:
    """observation | f̂(result) | result per phase, side by side, as one H x W x 3 float array."""
    size = result.image.shape[-1]
    with torch.no_grad():
        refit = degradation(result.image[None].to(next(iter(result.latents.values())).device))
    panels = [display_size(_as_batch(observation), size), display_size(refit.cpu(), size)]
    panels += [result.phase_images[p].cpu() for p in PHASES]
    gap = torch.ones(3, size, 4)
    row = [torch.cat([p.clamp(0, 1), gap], dim=2) for p in panels]
    return to_numpy(torch.cat(row, dim=2)[:, :, :-4])


STRIP_LABELS = ("observation", "f̂(result)", "after W", "after W+", "after W++")


def loss_curve_figure(result: InversionResult, title: str = ""):
    """The loss at every step, one colour per phase, on a log scale (a Figure that notebooks display)."""
    from .plots import ImageFigure

    fig = ImageFigure(figsize=(6, 3), layout="constrained")
    ax = fig.add_subplot()
    offset = 0
    for phase in PHASES:
        values = result.loss_history.get(phase, [])
        ax.plot(range(offset, offset + len(values)), values, label=f"phase {phase}")
        offset += len(values)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss ({result.loss_kind})")
    ax.legend()
    ax.set_title(title or "inversion loss")
    return fig


def progression_figure(observations: dict[str, torch.Tensor], results: dict[str, InversionResult]):
    """One row per run: observation (shown at the result's size), then the image after each phase."""
    from .plots import image_grid

    rows = [[to_numpy(display_size(observations[name], r.image.shape[-1]))]
            + [to_numpy(r.phase_images[p]) for p in PHASES] for name, r in results.items()]
    return image_grid(rows, row_labels=list(results), col_labels=["observation"] + [f"after {p}" for p in PHASES])


class LivePreview:
    """An invert() callback for notebooks: observation | current image in one display handle, redrawn
    every `every` steps (handle.update, so the cell's output is replaced, not appended)."""

    def __init__(self, observation: torch.Tensor, every: int = 10, size: int | None = None):
        from IPython.display import display

        self.observation = to_numpy(display_size(_as_batch(observation), size or observation.shape[-1]))
        self.every = every
        self.handle = display(self._figure(None, "starting"), display_id=True)

    def _figure(self, image, label):
        from .plots import image_grid

        return image_grid([[self.observation, image]], col_labels=["observation", label], cell_inches=2.2)

    def __call__(self, step: InversionStep) -> None:
        if step.total_step % self.every == 0:
            label = f"{step.phase} step {step.step}, loss {step.loss:.3f}"
            self.handle.update(self._figure(to_numpy(step.image), label))
