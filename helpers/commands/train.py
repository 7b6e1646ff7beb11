"""`python -m helpers train --model seed-dcgan --data DIR --out RUN_DIR`: train a restorer on aged pairs.

--data is one of
- a folder of clean photos (any layout, searched recursively): aged on the fly, new damage every epoch;
- a pre-aged folder written by `python -m helpers age --masks` (manifest.csv, aged/, clean/, masks/);
- a folder with train/ and val/ subfolders of either kind (data_prep/age_dataset.py writes this): the
  validation set is val/, as in the study, and --val-fraction is not used.
Unreadable photos are skipped, each named, and the exit status is then 1. Multi-GPU:
`accelerate launch --multi_gpu -m helpers train ...` or `torchrun --nproc-per-node 2 -m helpers train ...`
(torchrun also rehearses it on a CPU, with gloo).
With REPAIR_QUICK=1 and no --data: one epoch of two bundled sample photos, validated on a third.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import warnings
from pathlib import Path

from .. import UsageError, env
from ..cli import Report, device_option, info, out_folder

QUICK_TRAIN_PHOTOS = 2


def add_arguments(parser):
    from ..models import model_names

    parser.add_argument("--model", default="seed-dcgan", choices=model_names(), help="model to train")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an argument of the model's builder, repeatable: e.g. --model-option width=64 "
                             "--model-option max_width=192 for a wider U-Net (see helpers/models/unet.py)")
    parser.add_argument("--data", help="clean photos, a pre-aged folder, or train/ + val/ (quick mode: samples)")
    parser.add_argument("--out", required=True, type=out_folder,
                        help="run folder: checkpoints, metrics.jsonl, plots, samples/")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.safetensors")
    parser.add_argument("--overwrite", action="store_true", help="start again in an existing run folder")
    parser.add_argument("--epochs", type=int, help="passes over the training set (default 10; quick mode 1)")
    parser.add_argument("--steps", type=int, help="stop after this many steps in total (a checkpoint is kept)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per step and process (default 1)")
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    parser.add_argument("--beta1", type=float, default=0.5,
                        help="Adam's first-moment decay (default 0.5, pix2pix's; 0.9 for plain regression)")
    parser.add_argument("--lr-decay-start", type=float, default=1.0,
                        help="fraction of the run after which the rate decays linearly to 0 (pix2pix: 0.5)")
    parser.add_argument("--l1-weight", type=float, help="lambda of the L1 loss (default: the model's, 100)")
    parser.add_argument("--mask-weight", type=float, help="weight of the mask loss (models with a mask head)")
    parser.add_argument("--adv-weight", type=float, default=1.0,
                        help="weight of the adversarial loss (default 1; 0 trains by regression alone)")
    parser.add_argument("--cost-weight", type=float, default=0.0,
                        help="detector: weight each pixel's BCE by 1 + this x what a mistake there costs the "
                             "fill (missed damage: its contrast; a false alarm: the detail a fill erases)")
    parser.add_argument("--ssim-weight", type=float, default=0.0, help="weight of a (1 - SSIM) loss (default 0)")
    parser.add_argument("--init", help="start from this checkpoint's weights (a fresh optimizer and schedule), "
                                       "e.g. the bundled helpers/weights/unet_default.safetensors; with "
                                       "--model-option it grows that model (e.g. context=true, gain=true), new layers "
                                       "starting at their init")
    parser.add_argument("--train-only", action="append", default=[], metavar="PREFIX",
                        help="train only the generator parameters whose names start with PREFIX (repeatable), "
                             "e.g. context. after growing a model with --init and --model-option context=true; "
                             "the rest keeps its weights (the discriminator still trains)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of the photos kept for validation")
    parser.add_argument("--presets", default="seed", help="aging presets, comma separated (clean photos only)")
    parser.add_argument("--exposure-jitter", type=float, default=0.0, metavar="SHARE",
                        help="share of training photos re-exposed (gamma and gain) before aging (default 0)")
    parser.add_argument("--size", type=int, default=256, help="training image size (seed-dcgan: 256 only)")
    parser.add_argument("--crop", type=int, help="train on random crops of this size of the aged --size images "
                                                 "(fully convolutional models; validation stays whole)")
    parser.add_argument("--rgb", action="store_true", help="colour (default: grayscale, as in the study)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the data order and the init")
    parser.add_argument("--workers", type=int, default=2, help="data loader processes (0: load in this one)")
    parser.add_argument("--amp", choices=["none", "fp16", "bf16", "auto"], default="none",
                        help="mixed precision (auto: fp16 on a T4, bf16 on Ampere and newer, none on a CPU)")
    parser.add_argument("--session-epochs", type=int,
                        help="stop after this many epochs in this call; --resume goes on (time-limited sessions)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models")
    parser.add_argument("--device", type=device_option, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--log-every", type=int, default=50, help="steps between metrics/plot file updates")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _split(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, val) by a permutation fixed by the seed; at least one of each when there are two items."""
    import numpy as np

    if not 0.0 <= fraction < 1.0:
        raise UsageError(f"--val-fraction must lie in [0, 1), got {fraction}")
    count = 0 if fraction == 0 or len(items) < 2 else max(1, round(len(items) * fraction))
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order[count:]], [items[i] for i in order[:count]]


def _is_paired(folder: Path) -> bool:
    return (folder / "aged").is_dir() and (folder / "clean").is_dir()


def _aged(files, args, train: bool, report: Report | None = None):
    from ..data import AgedDataset

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each skipped file is reported below instead
        dataset = AgedDataset(files, size=args.size, gray=not args.rgb, presets=presets, seed=args.seed,
                              train=train, crop=args.crop if train else None,
                              exposure=args.exposure_jitter if train else 0.0)
    for problem in dataset.skipped if report is not None else ():
        report.fail(problem.split(": ", 1)[0], problem)
    return dataset


def datasets(args, report: Report):
    """(train set, validation set or None, description for the checkpoint metadata)."""
    import torch

    from ..data import PairedFolderDataset

    if not args.data and not env.quick_mode():
        raise UsageError("--data is required (a folder of clean photos or of aged pairs)")
    root = Path(args.data) if args.data else env.samples_dir() / "clean"
    if not root.is_dir():
        raise UsageError(f"--data {root}: no such folder")
    described = {"source": str(root), "size": args.size}
    if (root / "train").is_dir() and (root / "val").is_dir():
        described["split"] = "train/ and val/"
        if _is_paired(root / "train") and _is_paired(root / "val"):
            return (PairedFolderDataset(root / "train"), PairedFolderDataset(root / "val"),
                    described | {"kind": "pre-aged pairs"})
        return (_aged([root / "train"], args, True, report), _aged([root / "val"], args, False, report),
                described | {"kind": "clean photos aged on the fly", "presets": args.presets,
                             "exposure_jitter": args.exposure_jitter})
    described["split"] = f"{args.val_fraction:g} of the items for validation, by seed {args.seed}"
    if _is_paired(root):
        pairs = PairedFolderDataset(root)
        train_idx, val_idx = _split(list(range(len(pairs))), args.val_fraction, args.seed)
        return (torch.utils.data.Subset(pairs, train_idx), torch.utils.data.Subset(pairs, val_idx) if val_idx else None,
                described | {"kind": "pre-aged pairs"})
    usable = _aged([root], args, True, report).files  # unreadable files are named and left out of both sets
    train_files, val_files = _split(usable, args.val_fraction, args.seed)
    return (_aged(train_files, args, True), _aged(val_files, args, False) if val_files else None,
            described | {"kind": "clean photos aged on the fly", "presets": args.presets,
                         "exposure_jitter": args.exposure_jitter})


def _check_fits(dataset, spec, data: str) -> None:
    """The first pair must have the model's channels and, for a fixed-size model, its size."""
    aged, _, _ = dataset[0]
    if aged.shape[0] != spec.channels:
        kind = {1: "gray", 3: "colour"}.get(aged.shape[0], f"{aged.shape[0]}-channel")
        raise UsageError(f"{data}: the pairs are {kind} but the model was built for {spec.channels} channel(s) "
                         "(add or drop --rgb)")
    if spec.image_size and tuple(aged.shape[1:]) != (spec.image_size, spec.image_size):
        raise UsageError(f"{data}: pairs are {aged.shape[2]}x{aged.shape[1]} but {spec.name} takes "
                         f"{spec.image_size}x{spec.image_size} only")


def model_config(args) -> dict:
    """The builder arguments from --rgb and every --model-option KEY=VALUE (VALUE read as JSON: 64, 0.5, true)."""
    config = {"channels": 3 if args.rgb else 1}
    for option in args.model_option:
        key, sep, value = option.partition("=")
        if not sep or not key.isidentifier() or key == "channels":
            raise UsageError(f"--model-option {option!r}: expected KEY=VALUE (channels comes from --rgb)")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def _build(model: str, config: dict):
    """build_models, with a builder's complaint about --model-option values turned into a usage error."""
    from ..models import build_models

    try:
        return build_models(model, **config)
    except (TypeError, ValueError, RuntimeError) as err:  # an option the builder does not take, or a bad value
        raise UsageError(f"--model-option for {model}: {err}") from None


def initial_models(args, config: dict):
    """Models holding the weights of --init (generator, and discriminator when saved), or None: `fit` then
    builds fresh ones after seeding, so the initial weights follow --seed. `config` is `model_config(args)`."""
    from ..checkpoints import load_checkpoint

    if not args.init:
        return None
    if args.resume:
        raise UsageError("--init starts a new run from a checkpoint's weights; --resume continues one: choose one")
    state, metadata = load_checkpoint(args.init, expected_model=args.model)
    if metadata.get("model_config", {}).get("channels", 1) != config["channels"]:
        raise UsageError(f"--init {args.init}: built for {metadata['model_config']['channels']} channel(s), "
                         f"this run for {config['channels']} (add or drop --rgb)")
    # --model-option grows the checkpoint's model: layers it adds start at their init, the rest keep the weights
    options = {key: value for key, value in config.items() if key != "channels"}
    models = _build(args.model, metadata.get("model_config", {}) | options)
    for module, group in zip(models[:2], ("generator", "discriminator")):
        if module is None or group not in state or not state[group]:  # a pipeline stage has no discriminator
            continue
        try:  # copies into the float32 model (a bundle is fp16); a changed shape raises here
            missing, unexpected = module.load_state_dict(state[group], strict=not options)
        except RuntimeError as err:
            raise UsageError(f"--init {args.init}: its {group} does not fit the model these --model-option "
                             f"values build: {str(err).splitlines()[1].strip()}") from None
        if options and unexpected:
            raise UsageError(f"--init {args.init}: the model built with {', '.join(args.model_option)} has no "
                             f"{', '.join(unexpected[:3])} to load the checkpoint's weights into")
        if missing:
            info(f"--init: {group} layers new to this model start fresh: "
                 f"{', '.join(sorted({key.rsplit('.', 2)[0] for key in missing}))}")
    return models


def _command_line() -> str:
    if Path(sys.argv[0]).name == "__main__.py":  # python -m helpers ..., accelerate launch -m helpers ...
        return "python -m helpers " + shlex.join(sys.argv[1:])
    return shlex.join(sys.argv)


def run(args) -> Report:
    from ..train import TrainConfig, fit

    import torch

    quick = env.quick_mode()
    report = Report()
    builder_config = model_config(args)
    models = initial_models(args, builder_config)
    spec = (models or _build(args.model, builder_config))[2]
    if spec.image_size and args.size != spec.image_size:
        raise UsageError(f"{args.model} takes {spec.image_size}x{spec.image_size} images only, not --size {args.size}")
    if args.crop is not None and (spec.image_size or not 0 < args.crop <= args.size):
        raise UsageError(f"--crop must lie in [1, --size] and needs a fully convolutional model, not {args.model}")
    train_set, val_set, data_info = datasets(args, report)
    if spec.task == "deblock":  # JPEG-compressed after aging, the aged photo the target
        from ..data import Recompressed

        train_set = Recompressed(train_set, seed=args.seed)
        val_set = None if val_set is None else Recompressed(val_set, seed=args.seed)
        data_info["recompressed"] = "JPEG at the jpeg operator's quality for a strength in [0.05, 1], after aging"
    if quick and not args.data:  # two steps and a validation: every part of a run, in seconds per step
        train_set = torch.utils.data.Subset(train_set, range(min(QUICK_TRAIN_PHOTOS, len(train_set))))
    _check_fits(train_set, spec, args.data or "bundled samples")
    config = TrainConfig(model=args.model, model_config=builder_config,
                         epochs=args.epochs or (1 if quick else 10), max_steps=args.steps,
                         session_epochs=args.session_epochs,
                         batch_size=args.batch_size, lr=args.lr, beta1=args.beta1,
                         lr_decay_start=args.lr_decay_start,
                         l1_weight=args.l1_weight, mask_weight=args.mask_weight, adv_weight=args.adv_weight,
                         ssim_weight=args.ssim_weight, cost_weight=args.cost_weight,
                         train_only=tuple(args.train_only), seed=args.seed,
                         workers=args.workers, amp=args.amp, channels_last=args.channels_last, compile=args.compile,
                         device=args.device, log_every=args.log_every, progress=not args.quiet)
    data_info |= {"crop": args.crop, "init": args.init} if args.crop or args.init else {}
    data_info |= {"train": len(train_set), "val": len(val_set) if val_set is not None else 0,
                  "skipped": len(report.failures)}
    speaks = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch / torchrun, one process talks
    if speaks:
        info(f"training {args.model} on {data_info['train']} pairs ({data_info['val']} for validation) "
             f"into {args.out}")
    result = fit(config, train_set, val_set, args.out, resume=args.resume, overwrite=args.overwrite,
                 models=models, data_info=data_info, command=_command_line())
    history = result.pop("history")
    report.payload = result | {"data": data_info, "final": history[-1] if history else None}
    if speaks:
        info(f"{result['status']} after {result['steps']} steps; checkpoints in {args.out}")
    return report
