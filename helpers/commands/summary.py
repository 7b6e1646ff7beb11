"""`python -m helpers summary --model NAME`: the torchsummary tables of a model's generator and
discriminator (the pipeline's stages have none), as the study printed them; with --json, the rows as data
instead.

StyleGAN2 has no discriminator here (inversion only needs the generator): its one table is the compact
generator at --size, fed a latent z."""

from __future__ import annotations

import contextlib
import io
import json
import re

from ..cli import Report

ROW = re.compile(r"^\s*(?P<layer>\S+-\d+)\s+(?P<shape>\[.*\])\s+(?P<params>[\d,]+)$")
TOTAL = re.compile(r"^Total params: (?P<total>[\d,]+)$")


def add_arguments(parser):
    from ..models import model_names

    parser.add_argument("--model", default="seed-dcgan", choices=[*model_names(), "stylegan2"],
                        help="registered model name, or stylegan2 (the compact inversion generator)")
    parser.add_argument("--size", type=int, default=256, help="input height and width (fixed for seed-dcgan)")
    parser.add_argument("--rgb", action="store_true", help="3 colour channels instead of gray")


def _table(module, input_shape: tuple[int, ...]) -> dict:
    """torchsummary's printed table (run without autograd: it only needs shapes) and its parsed rows."""
    import torch
    from torchsummary import summary

    text = io.StringIO()
    with contextlib.redirect_stdout(text), torch.no_grad():
        summary(module, input_shape, device="cpu")
    lines = text.getvalue().splitlines()
    rows = []
    for match in filter(None, map(ROW.match, lines)):
        rows.append({"layer": match["layer"], "output_shape": json.loads(match["shape"]),
                     "params": int(match["params"].replace(",", ""))})
    total = next(int(m["total"].replace(",", "")) for m in map(TOTAL.match, lines) if m)
    return {"input_shape": list(input_shape), "rows": rows, "total_params": total, "text": text.getvalue()}


def tables(name: str = "seed-dcgan", size: int = 256, channels: int = 1) -> dict:
    """{"generator": table, "discriminator": table} for a registered model; each table has "text" (what
    torchsummary prints), "rows" (layer, output_shape, params) and "total_params"."""
    from .. import UsageError
    from ..models import build_models

    if name == "stylegan2":
        from ..models.stylegan2 import Generator, compact_config

        config = compact_config(size)
        return {"generator": _table(Generator(config), (config.style_dim,))}
    generator, discriminator, spec = build_models(name, channels=channels)
    if spec.image_size and size != spec.image_size:
        raise UsageError(f"{name} takes {spec.image_size}x{spec.image_size} inputs only, not {size}")
    shape = ((spec.config["features"],) if spec.task == "verify"  # a component's numbers, not an image
             else (spec.notes.get("input_channels", spec.channels), size, size))
    result = {"generator": _table(generator, shape)}
    if discriminator is not None:  # the pipeline's stages have none
        result["discriminator"] = _table(discriminator, (spec.discriminator_channels, size, size))
    return result


def run(args) -> Report:
    result = tables(args.model, args.size, 3 if args.rgb else 1)
    report = Report({"model": args.model})
    for part, table in result.items():
        if args.json:
            report.payload[part] = {k: v for k, v in table.items() if k != "text"}
        else:
            print(f"{args.model} {part}, input {' x '.join(map(str, table['input_shape']))}")
            print(table["text"], end="")
    return report
