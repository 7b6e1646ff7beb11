"""One GAN training loop for every registered generator/discriminator pair (helpers/models/__init__.py).

Read top to bottom: the config of defaults, the loss, one training step, validation, then `fit`, which
owns the run folder. It is pix2pix's recipe (Isola et al. 2017), which the study's seed DCGAN follows:
- the generator maps a damaged photo to a restored one; its loss is adversarial + lambda * L1 to the
  clean photo (lambda = 100), plus BCE on damage-mask logits when the model has a mask head, and
  optionally a (1 - SSIM) term; --adv-weight 0 drops the discriminator (plain regression);
- the discriminator sees the candidate alone (seed DCGAN) or cat([damaged, candidate]) (conditional);
  its loss is the mean of the real and fake losses, each backpropagated on its own as in
  pytorch/examples/dcgan, which is also the pattern DistributedDataParallel syncs cleanly;
- Adam 2e-4, beta1 0.5; the models bring their own DCGAN init.
Models work in [-1, 1]; datasets and everything outside the loop in [0, 1].

Runs are reproducible and resumable exactly: the data order of an epoch is a pure function of
(seed, epoch), so a resumed run skips the batches it already used, and the checkpoint carries the
optimizers, grad scaler, LR schedules and the python/numpy/torch RNG states (helpers/checkpoints.py).

Multi-GPU: `accelerate launch --multi_gpu -m helpers train ...`, `torchrun -m helpers train ...`, or `fit_on_all_gpus`
(accelerate's notebook_launcher) in a notebook. Each process trains on its own slice of every step's
data, DDP averages the gradients, and only the main process writes files.
"""

from __future__ import annotations

import json
import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from kornia.metrics import ssim  # 6x faster than torchmetrics' SSIM on a CPU, same values

from . import HelpersError, UsageError
from .checkpoints import git_commit, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .io import atomic_write_text

RUN_FILES = ("last.safetensors", "last.json", "best.safetensors", "best.json", "metrics.jsonl", "loss_curves.png")


@dataclass
class TrainConfig:
    """Defaults of a real run; every field is a `python -m helpers train` option (see commands/train.py)."""

    model: str = "seed-dcgan"
    model_config: dict[str, Any] = field(default_factory=dict)  # build() arguments, e.g. {"channels": 3}
    epochs: int = 10
    max_steps: int | None = None  # stop after this many steps in total (a checkpoint is written there)
    session_epochs: int | None = None  # epochs per call: a resumed call goes on (Kaggle's session time limit)
    batch_size: int = 1  # per process
    lr: float = 2e-4
    beta1: float = 0.5
    lr_decay_start: float = 1.0  # fraction of the run after which the LR decays linearly to 0 (pix2pix: 0.5)
    l1_weight: float | None = None  # None: the model's default (100)
    adv_weight: float = 1.0  # weight of the adversarial term (0: plain regression, no discriminator step)
    ssim_weight: float = 0.0  # weight of (1 - SSIM) to the clean photo; favours structure over texture
    mask_weight: float | None = None  # None: the model's default
    cost_weight: float = 0.0  # detector: BCE weighted by 1 + this x what a mistake costs the fill (mistake_cost)
    train_only: tuple[str, ...] = ()  # generator parameter-name prefixes to train (the rest frozen); () = all
    seed: int = 0
    workers: int = 0  # DataLoader worker processes
    amp: str = "none"  # none | fp16 (with GradScaler; T4) | bf16 (A100, H100, recent CPUs) | auto (env.amp_mode)
    channels_last: bool = False
    compile: bool = False  # torch.compile both models
    device: str | None = None  # None: CUDA when present, else CPU; "cpu" forces the CPU
    log_every: int = 50  # steps between rewrites of metrics.jsonl and loss_curves.png
    samples: int = 3  # validation images in each epoch's clean/damaged/restored triptych
    progress: bool = True  # tqdm bar on stderr (or a widget in notebooks)

    def check(self) -> None:
        if self.amp not in ("none", "fp16", "bf16", "auto"):
            raise UsageError(f"--amp must be none, fp16, bf16 or auto, not {self.amp!r}")
        for name in ("epochs", "batch_size", "log_every", "session_epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"--steps must be at least 1, got {self.max_steps}")
        if not 0.0 <= self.lr_decay_start <= 1.0 or self.lr <= 0:
            raise UsageError("--lr must be positive and lr_decay_start within [0, 1]")
        for name in ("adv_weight", "ssim_weight", "cost_weight"):
            if not getattr(self, name) >= 0:  # also refuses NaN
                raise UsageError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    """Cross-entropy on 2 logits (class 1 = real) for "ce2", BCE on logits for "bce"; in float32."""
    logits = logits.float()
    if kind == "ce2":
        target = torch.full((logits.shape[0],), int(real), dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


def mistake_cost(damaged: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per pixel, in [0, 1] units, what the detector's mistake there costs the repaired photo: a missed
    damaged pixel stays as it is (|damaged - clean|), a false alarm is filled from its surroundings, which
    erases what the clean pixel had that they lack (|clean - its 5 x 5 mean|: nothing on a flat ground,
    much on a thin line). Plain BCE prices every pixel alike, and the detector learned to be sure of
    scratches on a saucer's rim or brick mortar, where a fill costs most (docs/pipeline_experiments.md)."""
    left = (damaged - target).abs() / 2  # images in [-1, 1]
    erased = (target - F.avg_pool2d(target, 5, stride=1, padding=2, count_include_pad=False)).abs() / 2
    return torch.where(mask.to(target.device) > 0.5, left, erased).mean(dim=1, keepdim=True)


def split_output(output) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(image, mask_logits or None) from a generator that may or may not have a mask head."""
    return (output[0], output[1]) if isinstance(output, (tuple, list)) else (output, None)


@torch.no_grad()
def restore_batch(generator: torch.nn.Module, damaged: torch.Tensor) -> torch.Tensor:
    """Restored images in [0, 1] from damaged ones in [0, 1] (B x C x H x W), on the generator's device."""
    device = next(generator.parameters()).device
    image, _ = split_output(generator(damaged.to(device) * 2 - 1))
    return ((image.float() + 1) / 2).clamp(0, 1)


class GanTrainer:
    """The models, optimizers, schedules and grad scaler of one run, and what one step does with them."""

    def __init__(self, config: TrainConfig, models, accelerator, schedule_steps: int):
        self.config, self.accelerator, self.device = config, accelerator, accelerator.device
        self.generator, self.discriminator, self.spec = models
        self.l1_weight = self.spec.l1_weight if config.l1_weight is None else config.l1_weight
        self.mask_weight = self.spec.mask_weight if config.mask_weight is None else config.mask_weight
        self.task = self.spec.task
        if self.discriminator is None:  # a pipeline stage (the detector): no adversary to train
            self.discriminator = torch.nn.Module()
            config.adv_weight = 0.0
        trained = self._trainable(self.generator, tuple(config.train_only))
        memory = torch.channels_last if config.channels_last else torch.contiguous_format
        for module in (self.generator, self.discriminator):
            module.to(self.device, memory_format=memory)
        # Training goes through the DDP/compiled wrappers; saving and validation use the plain modules.
        self.g_train = accelerator.prepare_model(self.generator)
        has_adversary = any(True for _ in self.discriminator.parameters())
        self.d_train = accelerator.prepare_model(self.discriminator) if has_adversary else self.discriminator
        if config.compile:
            self.g_train, self.d_train = torch.compile(self.g_train), torch.compile(self.d_train)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(trained, lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters() if has_adversary else
                                      [torch.nn.Parameter(torch.zeros(1))], lr=config.lr, betas=betas)
        decay_from = int(config.lr_decay_start * schedule_steps)

        def lr_factor(step: int) -> float:
            return 1.0 if step < decay_from else max(0.0, (schedule_steps - step) / max(1, schedule_steps - decay_from))

        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lr_factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lr_factor)
        self.amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(config.amp)
        if config.amp == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UsageError("this GPU has no bfloat16 support (a T4 does not); use --amp fp16")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp == "fp16")
        self.selection_metric = "val_l1" if self.task in ("restore", "deblock") else "val_loss"  # lower is better
        if self.task == "verify":  # its inputs come from the bundled detectors, run on each aged batch
            from .verify_training import ComponentMemory, ComponentSource

            self.components, self.memory = ComponentSource(self.device), ComponentMemory(config.seed)
        if self.task == "blend":  # its crops come from the bundled detectors too (blend_training.py)
            from .blend_training import CropMemory, CropSource

            self.crops, self.memory = CropSource(self.device), CropMemory(config.seed)
            self.crop_rng = np.random.default_rng([config.seed, 21])

    @staticmethod
    def _trainable(generator: torch.nn.Module, prefixes: tuple[str, ...]) -> list[torch.nn.Parameter]:
        """The generator parameters to train: all, or those named by `prefixes` (the others are frozen), e.g.
        the layers a grown checkpoint added, trained first on their own so they cannot disturb the rest."""
        prefixes = prefixes or ("",)  # every name starts with ""
        chosen = [param for name, param in generator.named_parameters() if name.startswith(prefixes)]
        if not chosen:
            names = sorted({name.split(".")[0] for name, _ in generator.named_parameters()})
            raise UsageError(f"--train-only {' '.join(prefixes)}: no generator parameter is named so; "
                             f"its parts: {', '.join(names)}")
        for name, param in generator.named_parameters():
            param.requires_grad_(name.startswith(prefixes))
        return chosen

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _prepare(self, tensor: torch.Tensor) -> torch.Tensor:
        memory = torch.channels_last if self.config.channels_last else torch.contiguous_format
        return (tensor.to(self.device, non_blocking=True) * 2 - 1).contiguous(memory_format=memory)

    def _judge(self, damaged: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        x = torch.cat([damaged, candidate], dim=1) if self.spec.conditional else candidate
        return self.d_train(x, return_logits=True) if self.spec.loss == "ce2" else self.d_train(x)

    def stage_losses(self, output: torch.Tensor, mask: torch.Tensor, damaged: torch.Tensor,
                     target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The detector's losses: BCE + soft Dice on the damage logits (Dice over the batch: per image, photos
        with no damage at all push every prediction to zero); with `cost_weight`, the BCE of each pixel is
        weighted by what a mistake there costs (`mistake_cost`)."""
        mask = mask.to(self.device)
        logits = output.float()
        probability = logits.sigmoid()
        overlap, total = (probability * mask).sum(), probability.sum() + mask.sum()
        weight = (1 + self.config.cost_weight * mistake_cost(damaged.float(), target.float(), mask)
                  if self.config.cost_weight > 0 else None)
        return {"bce": F.binary_cross_entropy_with_logits(logits, mask, weight=weight),
                "dice": 1 - (2 * overlap + 1) / (total + 1)}

    def fill_losses(self, clean: torch.Tensor, mask: torch.Tensor, model=None) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """The learned fill's loss, L1 inside the hole: clean photos with the damage masks (widened by a
        pixel, as the pipeline widens what it fills) cut out and filled by Telea first, as the pipeline
        will hand them over. Returns (losses, filled, hole)."""
        from .models.inpainter import conditioned, prefilled

        target = self._prepare(clean)
        hole = F.max_pool2d((mask.to(self.device) > 0.5).float(), 3, stride=1, padding=1)
        x = conditioned(prefilled(target, hole), hole)
        with self.autocast():
            filled = (model or self.g_train)(x)
        error = ((filled.float() - target.float()).abs() * hole).sum()
        return {"l1_in_hole": error / (hole.sum() * target.shape[1]).clamp_min(1)}, filled, hole

    def verify_step(self, aged: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
        """The component verifier's step: the batch's components join the memory of recent ones
        (verify_training.ComponentMemory), and the verifier learns from minibatches drawn from it."""
        from .verify_training import verify_loss

        self.memory.add(*self.components.batch(aged, clean))
        lr, losses = self.sched_g.get_last_lr()[0], []
        for features, benefit in self.memory.draws():
            self.opt_g.zero_grad(set_to_none=True)
            loss = verify_loss(self.g_train(features.to(self.device)).float(), benefit.to(self.device))
            loss.backward()
            self.opt_g.step()
            losses.append(loss.item())
        self.sched_g.step()
        return {"bce": float(np.mean(losses)) if losses else 0.0, "lr": lr}

    def blend_step(self, aged: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
        """The rims blender's step: the batch's crops join the memory of recent ones, and the blender takes
        blend_training.STEPS_PER_BATCH steps on minibatches drawn from it."""
        from .blend_training import blend_losses

        self.memory.add(self.crops.batch(aged, clean, self.crop_rng))
        lr, losses, today = self.sched_g.get_last_lr()[0], [], []
        for crops in self.memory.draws():
            self.opt_g.zero_grad(set_to_none=True)
            loss, baseline, _ = blend_losses(self.g_train, crops.to(self.device))
            loss.backward()
            self.opt_g.step()
            losses.append(loss.item())
            today.append(baseline.item())
        self.sched_g.step()
        return {"crop_db": float(np.mean(losses)) if losses else 0.0,
                "today_db": float(np.mean(today)) if today else 0.0, "lr": lr}

    def train_step(self, aged: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        if self.task == "verify":
            return self.verify_step(aged, clean)
        if self.task == "blend":
            return self.blend_step(aged, clean)
        damaged, target = self._prepare(aged), self._prepare(clean)
        if self.task in ("detect", "inpaint"):
            self.opt_g.zero_grad(set_to_none=True)
            if self.task == "detect":
                with self.autocast():
                    output = self.g_train(damaged)
                losses = self.stage_losses(output, mask, damaged, target)
            else:
                losses = self.fill_losses(clean, mask)[0]
            self.scaler.scale(sum(losses.values())).backward()
            self.scaler.step(self.opt_g)
            self.scaler.update()
            lr = self.sched_g.get_last_lr()[0]
            self.sched_g.step()
            return {name: value.item() for name, value in losses.items()} | {"lr": lr}
        with self.autocast():
            fake, mask_logits = split_output(self.g_train(damaged))

        losses = {}
        if self.config.adv_weight > 0:
            self.opt_d.zero_grad(set_to_none=True)
            with self.autocast():
                losses["d_real"] = adversarial_loss(self._judge(damaged, target), True, self.spec.loss)
            self.scaler.scale(0.5 * losses["d_real"]).backward()
            with self.autocast():
                losses["d_fake"] = adversarial_loss(self._judge(damaged, fake.detach()), False, self.spec.loss)
            self.scaler.scale(0.5 * losses["d_fake"]).backward()
            self.scaler.step(self.opt_d)

        self.opt_g.zero_grad(set_to_none=True)
        losses["g_l1"] = F.l1_loss(fake.float(), target.float())
        loss = self.l1_weight * losses["g_l1"]
        if self.config.adv_weight > 0:
            with self.autocast():
                losses["g_adv"] = adversarial_loss(self._judge(damaged, fake), True, self.spec.loss)
            loss = loss + self.config.adv_weight * losses["g_adv"]
        if self.config.ssim_weight > 0:
            losses["g_ssim"] = 1 - ssim((fake.float() + 1) / 2, (target.float() + 1) / 2, 11).mean()
            loss = loss + self.config.ssim_weight * losses["g_ssim"]
        if mask_logits is not None:
            losses["g_mask"] = F.binary_cross_entropy_with_logits(mask_logits.float(), mask.to(self.device))
            loss = loss + self.mask_weight * losses["g_mask"]
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()
        lr = self.sched_g.get_last_lr()[0]  # the rate this step used
        self.sched_g.step()
        if self.config.adv_weight > 0:  # the discriminator's schedule counts its own steps
            self.sched_d.step()
        return {name: value.item() for name, value in losses.items()} | {"lr": lr}

    @torch.no_grad()
    def validate_stage(self, loader, samples: int) -> tuple[dict[str, float], list[tuple]]:
        """The detector's validation: its training losses (their sum is `val_loss`, which picks the best
        checkpoint), and pixel precision, recall and F1 at the probability threshold (of 0.05, 0.10, ...
        0.95) with the best F1, which the restorer then uses (`val_threshold`)."""
        thresholds = torch.arange(1, 20, device=self.device) / 20
        totals, count, triptychs = {}, 0, []
        hits = torch.zeros(3, len(thresholds), device=self.device)  # true positives, predicted, actual
        for aged, clean, mask in loader:
            damaged = self._prepare(aged)
            with self.autocast():
                output = self.generator(damaged)
            losses = self.stage_losses(output, mask, damaged, self._prepare(clean))
            for name, value in losses.items():
                totals[f"val_{name}"] = totals.get(f"val_{name}", 0.0) + value.item() * len(aged)
            count += len(aged)
            shown = output.float().sigmoid()
            found = shown.flatten()[None] > thresholds[:, None]
            actual = mask.to(self.device).flatten()[None] > 0.5
            hits += torch.stack([(found & actual).sum(1), found.sum(1), actual.sum(1).expand(len(thresholds))])
            for a, r, c in zip(aged, shown.cpu(), clean):
                if len(triptychs) < samples:
                    triptychs.append((c.numpy(), a.numpy(), r.numpy()))
        metrics = {name: total / max(count, 1) for name, total in totals.items()}
        metrics["val_loss"] = sum(metrics.values())
        precision, recall = hits[0] / hits[1].clamp_min(1), hits[0] / hits[2].clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-9)
        best = int(f1.argmax())
        metrics |= {"val_threshold": round(thresholds[best].item(), 2), "val_precision": precision[best].item(),
                    "val_recall": recall[best].item(), "val_f1": f1[best].item()}
        return metrics, triptychs

    @torch.no_grad()
    def validate_fill(self, loader, samples: int) -> tuple[dict[str, float], list[tuple]]:
        """The learned fill's validation: L1 inside the holes (`val_loss`, which picks the best checkpoint)
        and the PSNR over the filled pixels, the measure Telea and Navier-Stokes are compared by."""
        error, squared, pixels, triptychs = 0.0, 0.0, 0.0, []
        for _, clean, mask in loader:
            _, filled, hole = self.fill_losses(clean, mask, self.generator)
            difference = ((filled.float() - self._prepare(clean).float()) / 2) * hole  # in [0, 1] units
            error += difference.abs().sum().item()
            squared += (difference ** 2).sum().item()
            pixels += hole.sum().item() * clean.shape[1]
            for c, h, f in zip(clean, hole.cpu(), filled.float().cpu()):
                if len(triptychs) < samples:
                    triptychs.append((c.numpy(), (c * (1 - h)).numpy(), ((f + 1) / 2).clamp(0, 1).numpy()))
        mse = squared / max(pixels, 1)
        return {"val_loss": error / max(pixels, 1), "val_psnr_in_hole": 10 * math.log10(1 / max(mse, 1e-10))}, triptychs

    @torch.no_grad()
    def validate_verify(self, loader, samples: int) -> tuple[dict[str, float], list[tuple]]:
        """The verifier's validation: its loss over every component of the validation photos (`val_loss`,
        which picks the best checkpoint), and the share of a perfect keep-or-drop choice's gain its own
        choice reaches (`val_kept_share_of_oracle`; 0 is filling everything the detectors found). Its inputs
        are numbers, not pictures: no triptychs, whatever `samples` asks."""
        from .verify_training import kept_benefit, verify_loss

        tables, benefits = [], []
        for aged, clean, _ in loader:
            features, benefit = self.components.batch(aged, clean)
            tables.append(features)
            benefits.append(benefit)
        features, benefit = torch.cat(tables), torch.cat(benefits)
        if len(features) == 0:
            return {"val_loss": math.inf}, []
        logits = self.generator(features.to(self.device)).float().cpu()
        return {"val_loss": verify_loss(logits, benefit).item()} | {
            f"val_{name}": value for name, value in kept_benefit(logits, benefit).items()}, []

    @torch.no_grad()
    def validate_blend(self, loader, samples: int) -> tuple[dict[str, float], list[tuple]]:
        """The blender's validation: its mean crop dB over one crop per validation photo (`val_loss`, which
        picks the best checkpoint), today's choice on the same crops (`val_today`) and their difference
        (`val_gain_db`, positive when the blender does better). The crops are drawn by a fixed generator,
        the same every epoch. Triptychs: the clean crop, the aged one and the blend, for the first crops."""
        from .blend_training import blend_losses

        rng, losses, today, count, triptychs = np.random.default_rng([self.config.seed, 22]), 0.0, 0.0, 0, []
        for aged, clean, _ in loader:
            crops = self.crops.batch(aged, clean, rng)
            if not len(crops):
                continue
            loss, baseline, blend = blend_losses(self.generator, crops.to(self.device))
            losses, today = losses + loss.item() * len(crops), today + baseline.item() * len(crops)
            count += len(crops)
            for crop, out in zip(crops[: max(0, samples - len(triptychs))], blend.float().cpu().numpy()):
                planes = crop.float().numpy()[:, None] / 255
                triptychs.append((planes[1], planes[0], out))
        if not count:
            return {"val_loss": math.inf}, []
        return {"val_loss": losses / count, "val_today": today / count,
                "val_gain_db": (today - losses) / count}, triptychs

    @torch.no_grad()
    def validate(self, dataset, samples: int) -> tuple[dict[str, float], list[tuple]]:
        """Mean L1, MSE and PSNR (in [0, 1]) over the validation set; the first `samples` triptychs.
        The pipeline's stages report their own measures instead (`validate_stage`, `validate_fill`,
        `validate_verify`, `validate_blend`)."""
        self.generator.eval()
        if self.task in ("detect", "inpaint", "verify", "blend"):
            loader = torch.utils.data.DataLoader(dataset, batch_size=self.config.batch_size,
                                                 num_workers=self.config.workers, generator=torch.Generator())
            validation = {"detect": self.validate_stage, "inpaint": self.validate_fill, "verify": self.validate_verify,
                          "blend": self.validate_blend}
            result = validation[self.task](loader, samples)
            self.generator.train()
            return result
        totals, count, triptychs = {"val_l1": 0.0, "val_mse": 0.0, "val_psnr": 0.0}, 0, []
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.config.batch_size,
                                             num_workers=self.config.workers, generator=torch.Generator())
        for aged, clean, _ in loader:
            with self.autocast():
                restored = restore_batch(self.generator, aged)
            clean = clean.to(self.device)
            mse = ((restored - clean) ** 2).flatten(1).mean(1)
            totals["val_l1"] += (restored - clean).abs().flatten(1).mean(1).sum().item()
            totals["val_mse"] += mse.sum().item()
            totals["val_psnr"] += (10 * torch.log10(1 / mse.clamp_min(1e-10))).sum().item()
            count += len(aged)
            for a, r, c in zip(aged, restored.cpu(), clean.cpu()):
                if len(triptychs) < samples:
                    triptychs.append((c.numpy(), a.numpy(), r.numpy()))
        self.generator.train()
        return {name: total / max(count, 1) for name, total in totals.items()}, triptychs

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
                "scheduler_g": self.sched_g.state_dict(), "scheduler_d": self.sched_d.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.sched_g.load_state_dict(state["scheduler_g"])
        self.sched_d.load_state_dict(state["scheduler_d"])
        if state["scaler"] and self.scaler.is_enabled():  # a run may switch --amp when it resumes
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])


def epoch_batches(length: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1
                  ) -> list[list[int]]:
    """This process's batches of one epoch: a permutation fixed by (seed, epoch), cut into steps of
    `world` batches each; short data sets repeat so every process gets the same number of full steps."""
    steps = max(1, length // (batch_size * world))
    order = np.resize(np.random.default_rng([seed, epoch]).permutation(length), steps * world * batch_size)
    return order.reshape(steps, world, batch_size)[:, rank].tolist()


def _loader(dataset, config: TrainConfig, epoch: int, first_step: int, rank: int, world: int):
    if hasattr(dataset, "set_epoch"):  # fresh damage every epoch (AgedDataset); set before workers copy it
        dataset.set_epoch(epoch)
    batches = epoch_batches(len(dataset), config.batch_size, config.seed, epoch, rank, world)
    # Its own generator, so the worker seeds never draw from (and shift) the global torch RNG.
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches[first_step:], num_workers=config.workers,
                                       generator=generator), len(batches)


def _prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (run_dir / "last.safetensors").is_file():
            raise HelpersError(f"{run_dir}: nothing to resume (no last.safetensors); drop --resume to start")
        return
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise HelpersError(f"{run_dir}: run folder exists and is not empty (use --resume to continue "
                               "it or --overwrite to start again)")
        for name in RUN_FILES:  # only what a run writes: anything else the user keeps there stays
            (run_dir / name).unlink(missing_ok=True)
        for sample in (run_dir / "samples").glob("epoch_*.png"):
            sample.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def read_history(run_dir: str | Path, up_to_step: float = math.inf) -> list[dict]:
    """The step and epoch records of a run folder's metrics.jsonl (those up to a checkpoint's step)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if r["step"] <= up_to_step]


class TrainingDiverged(HelpersError):
    """A loss became NaN or infinite; the last good checkpoint is left as it was."""


def fit(config: TrainConfig, train_set, val_set=None, run_dir: str | Path = "run", *, resume: bool = False,
        overwrite: bool = False, models=None, data_info: dict | None = None, command: str | None = None,
        callbacks: list[Callable[[list[dict], list | None], None]] = ()) -> dict[str, Any]:
    """Train on `train_set` (any Dataset of (aged, clean, mask) in [0, 1]); write the run folder.

    Run folder: last.safetensors (everything needed to resume, each epoch and at --steps),
    best.safetensors (the generator with the lowest validation L1), their .json metadata,
    metrics.jsonl (one record per step and per epoch), loss_curves.png, samples/epoch_XXX.png.
    `models` = (generator, discriminator, spec) replaces `build_models(config.model, **config.model_config)`.
    Each callback is called after every step with (history, triptychs); triptychs (clean, damaged,
    restored) arrays come at an epoch's end only, else None. Returns a summary of the run.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from .models import build_models
    from .training_plots import save_loss_curves, save_triptychs

    config.check()
    run_dir = Path(run_dir)
    on_cpu = config.device == "cpu" or (config.device is None and not torch.cuda.is_available())
    if config.amp == "auto":  # decided here, in the launched process: asking the parent would initialise CUDA
        from .env import amp_mode

        config.amp = "none" if on_cpu else amp_mode()
    accelerator = Accelerator(cpu=on_cpu)
    main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    if main:
        _prepare_run_dir(run_dir, resume, overwrite)
    accelerator.wait_for_everyone()

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)  # same seed on every process: the replicas start identical
    models = models or build_models(config.model, **config.model_config)
    spec = models[2]
    steps_per_epoch = len(epoch_batches(len(train_set), config.batch_size, config.seed, 0, rank, world))
    trainer = GanTrainer(config, models, accelerator, config.epochs * steps_per_epoch)  # --steps only stops
    total_steps = min(config.max_steps or math.inf, config.epochs * steps_per_epoch)

    epoch, step, first_step, best_val, history = 0, 0, 0, math.inf, []
    if resume:
        state, meta = load_checkpoint(run_dir / "last.safetensors", expected_model=spec.name)
        epoch, step, first_step = meta["epoch"], meta["step"], meta["step_in_epoch"]
        best_val = meta.get("best_val_l1") or math.inf
        history = read_history(run_dir, step)
        trainer.load_state(state)

    def metadata(extra: dict) -> dict:
        return {"model": spec.name, "model_config": spec.config, "epoch": epoch, "step": step,
                "step_in_epoch": first_step, "best_val_l1": None if best_val == math.inf else best_val,
                "best_val_metric": trainer.selection_metric, "seed": config.seed, "git_commit": git_commit(), "command": command, "data": data_info or {},
                "train_config": asdict(config), "torch": torch.__version__} | extra

    def write_history() -> None:
        atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history),
                          overwrite=True)
        save_loss_curves(run_dir / "loss_curves.png", history)

    def save_last() -> None:
        if main:
            last_losses = next((r for r in reversed(history) if r["kind"] == "epoch"), history[-1] if history else {})
            save_checkpoint(run_dir / "last.safetensors", trainer.state(), metadata({"losses": last_losses}))
            write_history()

    status = "finished"
    last_epoch = min(config.epochs, epoch + (config.session_epochs or config.epochs))
    while epoch < last_epoch and step < total_steps:
        loader, steps_this_epoch = _loader(train_set, config, epoch, first_step, rank, world)
        bar = tqdm(total=steps_this_epoch, initial=first_step, desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not (main and config.progress), leave=False)
        started, epoch_losses = time.time(), []
        for aged, clean, mask in loader:
            losses = trainer.train_step(aged, clean, mask)
            step, first_step = step + 1, first_step + 1
            if not all(math.isfinite(v) for v in losses.values()):
                if main:
                    write_history()
                kept = ("the last good checkpoint is kept" if (run_dir / "last.safetensors").is_file()
                        else "no checkpoint had been written yet")
                values = ", ".join(f"{name}={value:.4g}" for name, value in losses.items())
                raise TrainingDiverged(f"step {step}: a loss is not finite ({values}); training stopped, "
                                       f"{kept} in {run_dir} (try a lower --lr or --amp none)")
            history.append({"kind": "step", "epoch": epoch, "step": step} | losses)
            epoch_losses.append(losses)
            bar.update()
            bar.set_postfix({name: f"{value:.3f}" for name, value in losses.items() if name != "lr"})
            if main:
                for callback in callbacks:
                    callback(history, None)
                if step % config.log_every == 0:
                    write_history()
            if step >= total_steps:
                break
        bar.close()
        if first_step < steps_this_epoch:  # stopped inside the epoch by --steps: checkpoint right here
            status = "stopped at --steps"
            save_last()
            break

        epoch, first_step = epoch + 1, 0
        record = {"kind": "epoch", "epoch": epoch, "step": step, "seconds": round(time.time() - started, 3)}
        record |= {f"train_{k}": float(np.mean([l[k] for l in epoch_losses])) for k in epoch_losses[0]}
        if main and val_set is not None:  # the other processes go on to the next step's all-reduce and wait
            val, triptychs = trainer.validate(val_set, config.samples)
            history.append(record | val)
            if val[trainer.selection_metric] < best_val:
                best_val = val[trainer.selection_metric]
                save_checkpoint(run_dir / "best.safetensors", {"generator": trainer.generator.state_dict()},
                                metadata({"losses": history[-1]}))
            if triptychs:  # the verifier's inputs are numbers, not pictures
                save_triptychs(run_dir / "samples" / f"epoch_{epoch:03d}.png", triptychs, f"epoch {epoch}")
        else:
            history.append(record)
            triptychs = []
        save_last()
        if main:
            for callback in callbacks:
                callback(history, triptychs)
    if status == "finished" and epoch < config.epochs and step < total_steps:
        status = f"paused after {config.session_epochs} epochs this session (resume to go on)"
    accelerator.wait_for_everyone()
    return {"run_dir": str(run_dir), "status": status, "epochs": epoch, "steps": step,
            "best_val_l1": None if best_val == math.inf else best_val,
            "last_checkpoint": str(run_dir / "last.safetensors"),
            "best_checkpoint": str(run_dir / "best.safetensors") if best_val < math.inf else None,
            "history": history}


def fit_on_all_gpus(*args, **kwargs) -> None:
    """`fit` in one process per GPU through accelerate's notebook_launcher (Kaggle's 2 x T4), or in this
    process when there is at most one GPU. The launcher forks, and a forked process cannot use CUDA once
    the parent has initialised it, so this counts GPUs through NVML only (torch.cuda.device_count) and
    leaves everything else, mixed precision included (amp="auto"), to the launched processes. They cannot
    show live plots; read the run folder (loss_curves.png, samples/) afterwards."""
    import socket

    from accelerate import notebook_launcher
    from accelerate.state import AcceleratorState

    gpus = torch.cuda.device_count()
    if gpus < 2:
        fit(*args, **kwargs)
        return
    # An earlier in-process `fit` (or Accelerator) leaves accelerate's shared state behind, and the launcher
    # refuses to start while it exists; that state belongs to a finished run, so it is dropped here.
    AcceleratorState._reset_state(reset_partial_state=True)
    with socket.socket() as sock:  # a free rendezvous port: another run on this machine may hold 29500
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notebook_launcher(_fit_in_fork, args=(args, kwargs), num_processes=gpus, use_port=str(port))


def _fit_in_fork(args: tuple, kwargs: dict) -> None:
    """`fit` in a forked process, on one CPU thread. A parent that has already run a parallel CPU region
    (an earlier cell, an earlier test) leaves OpenMP's thread pool behind, and a forked child entering its
    next parallel region with more threads waits forever for threads that were never forked (CI hung here
    for 90 minutes). The GPUs do the work in these processes; their CPU side is light."""
    torch.set_num_threads(1)
    fit(*args, **kwargs)
