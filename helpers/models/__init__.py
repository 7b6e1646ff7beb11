"""The model registry: one name -> (generator, discriminator, spec), so training, restoring, checkpoints
and `summary` handle every model the same way.

Adding a model takes two steps:
1. In its module write `build(**config) -> (generator, discriminator, ModelSpec)`; `config` holds only
   JSON-friendly keyword arguments (they are stored in checkpoints and passed back to `build` on load).
2. Add one line to `BUILDERS` below: `"unet": "helpers.models.unet:build"`. (A value may also be the
   build function itself; tests register tiny pairs that way.)

What the training loop (helpers/train.py) expects from the pair, as the spec declares it:
- generator(x) with x in [-1, 1], B x channels x H x W, returns the restored image in [-1, 1], or the
  tuple (image, mask_logits B x 1 x H x W) when `spec.mask_head` is true (trained with BCE against the
  damage mask, weighted by `spec.mask_weight`);
- discriminator(candidate), or discriminator(cat([damaged, candidate], dim=1)) when `spec.conditional`;
  with `spec.loss == "bce"` it returns logits of any shape (a PatchGAN map), real = 1, fake = 0; with
  `spec.loss == "ce2"` it is called as discriminator(x, return_logits=True) and returns B x 2 logits
  for cross-entropy (class 1 = real), while its plain forward may end in a Softmax;
- generator loss = adversarial + spec.l1_weight * L1 (+ spec.mask_weight * BCE(mask_logits, mask)).
The repair pipeline's stages are registered the same way, each with a `spec.task` of its own and no
discriminator (None): the detector, "detect" (generator(x) = damage logits), and the learned fill,
"inpaint" (generator(holed(image, mask)) = the image with the masked pixels filled), and the deblocker,
"deblock" (trained as "restore" is, by L1 alone, on photos JPEG-compressed after aging: `data.Recompressed`),
and the component verifier, "verify" (generator(features) = logits of "filling this detected component
helps", trained on the bundled detectors' components of aged photos: restore/verify.py), and the rims
stage's blender, "blend" (generator(features) = per-pixel logits of keep, fill or a wider fill, trained on
crops around what the bundled detectors mark: restore/rims.py).

This file imports no torch, so the command line can list model names without loading it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .. import UsageError

BUILDERS = {
    "seed-dcgan": "helpers.models.seed_dcgan:build",
    "unet": "helpers.models.unet:build",
    "detector": "helpers.models.detector:build",
    "specks": "helpers.models.specks:build",
    "inpainter": "helpers.models.inpainter:build",
    "deblocker": "helpers.models.deblocker:build",
    "verifier": "helpers.models.verifier:build",
    "blender": "helpers.models.blender:build",
}

TASKS = ("restore", "detect", "inpaint", "deblock", "verify", "blend")

LOSSES = ("ce2", "bce")


@dataclass(frozen=True)
class ModelSpec:
    """What the training loop and restore code need to know about a generator/discriminator pair."""

    name: str
    config: dict[str, Any]  # the build() keyword arguments, stored in checkpoints to rebuild the model
    channels: int  # image channels in and out of the generator (1 gray, 3 RGB)
    conditional: bool  # the discriminator sees cat([damaged, candidate]) rather than the candidate alone
    loss: str  # "ce2": 2-logit head with cross-entropy; "bce": logits (e.g. PatchGAN) with BCE
    l1_weight: float = 100.0  # pix2pix's lambda
    mask_head: bool = False  # the generator returns (image, mask_logits)
    mask_weight: float = 1.0  # weight of the mask BCE when mask_head is true
    image_size: int | None = None  # a fixed input size (the seed DCGAN: 256), None = any size
    notes: dict[str, Any] = field(default_factory=dict)  # free-form extras a model wants recorded
    # "restore": image -> restored image (GAN + L1); "detect": image -> damage logits (BCE + Dice, no
    # discriminator); "inpaint": holed clean image + mask -> filled image (L1 inside the mask); "deblock":
    # JPEG-compressed aged image -> the aged image (L1); "verify": a detected component's features -> the
    # logit that filling it helps (BCE weighted by how much); "blend": the rims stage's features -> per-pixel
    # logits of keep, fill, wider fill (the crop's mean dB of squared error)
    task: str = "restore"

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {TASKS}, not {self.task!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"{self.name}: loss must be one of {LOSSES}, not {self.loss!r}")

    @property
    def discriminator_channels(self) -> int:
        return 2 * self.channels if self.conditional else self.channels


def model_names() -> list[str]:
    return list(BUILDERS)


def build_models(name: str, **config):
    """(generator, discriminator, spec) for a registered model name, freshly initialised on the CPU."""
    if name not in BUILDERS:
        raise UsageError(f"unknown model {name!r} (choose from {', '.join(BUILDERS)})")
    builder = BUILDERS[name]
    if isinstance(builder, str):
        module_name, function = builder.split(":")
        builder = getattr(importlib.import_module(module_name), function)
    return builder(**config)
