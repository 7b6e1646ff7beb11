"""Notebook 04's charts, from `evaluation.gain_table` lines: what each method gains over doing nothing,
per operator (bars with their 95 % intervals) and against the damage's strength (lines)."""

from __future__ import annotations

import numpy as np

from .plots import ImageFigure


def _lines(table: list[dict], method: str, kind: str) -> list[dict]:
    return [line for line in table if line["method"] == method and line["kind"] == kind]


def gain_bars(table: list[dict], methods: list[str], *, strength: float | None = None,
              kind: str = "operator", width: float = 11.0) -> ImageFigure:
    """Grouped bars: PSNR gain per condition and method, whiskers the bootstrap interval. Operators at one
    `strength` (the highest measured by default), or every preset with kind="preset"."""
    if kind == "operator" and strength is None:
        strength = max(line["strength"] for line in table if line["kind"] == "operator")
    chosen = {m: {line["condition"]: line for line in _lines(table, m, kind)
                  if kind == "preset" or line["strength"] == strength} for m in methods}
    names = list(next(iter(chosen.values())))
    fig = ImageFigure(figsize=(width, 3.6), layout="constrained")
    ax = fig.subplots()
    step = 0.8 / len(methods)
    for i, method in enumerate(methods):
        lines = [chosen[method][n] for n in names]
        gains = np.array([line["psnr_gain"] for line in lines])
        low = gains - np.array([line["psnr_gain_ci_low"] for line in lines])
        high = np.array([line["psnr_gain_ci_high"] for line in lines]) - gains
        ax.bar(np.arange(len(names)) + (i - (len(methods) - 1) / 2) * step, gains, step, yerr=[low, high],
               capsize=2, label=method)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(names)), names, rotation=35, ha="right")
    ax.set_ylabel("PSNR gain over doing nothing (dB)")
    title = f"each operator alone at strength {strength:g}" if kind == "operator" else "each preset"
    ax.set_title(f"{title}; whiskers: 95 % bootstrap interval")
    ax.legend(ncols=len(methods), fontsize=8)
    return fig


def gain_vs_strength(table: list[dict], methods: list[str], *, width: float = 11.0) -> ImageFigure:
    """Mean PSNR gain over all operators against strength, one line per method, and the default method's
    gain per operator beside it: where a method starts to help or to hurt."""
    fig = ImageFigure(figsize=(width, 3.6), layout="constrained")
    overall, per_operator = fig.subplots(1, 2)
    for method in methods:
        lines = _lines(table, method, "operator")
        strengths = sorted({line["strength"] for line in lines})
        overall.plot(strengths, [np.mean([line["psnr_gain"] for line in lines if line["strength"] == s])
                                 for s in strengths], marker="o", label=method)
    lines = _lines(table, methods[0], "operator")
    for name in dict.fromkeys(line["condition"] for line in lines):
        points = sorted((line["strength"], line["psnr_gain"]) for line in lines if line["condition"] == name)
        per_operator.plot(*zip(*points), marker=".", label=name)
    for ax, title in ((overall, "mean over operators"), (per_operator, f"{methods[0]}, per operator")):
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel("strength")
        ax.set_ylabel("PSNR gain (dB)")
        ax.set_title(title)
    overall.legend(fontsize=8)
    per_operator.legend(fontsize=6, ncols=2)
    return fig
