"""The demo's HTML page: before/after sliders, the grids, and the metrics, in one self-contained file.

It must open from disk anywhere (a browser on a laptop, a Kaggle output viewer): so plain HTML, CSS and
a few lines of JavaScript, every image referenced relatively from the demo folder, no network resources.
A slider shows the "before" image with the "after" image on top, clipped from the left at the slider's
position (CSS clip-path), so dragging it wipes between the two.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from .io import atomic_write_text

METHOD_LABELS = {"pipeline": "pipeline", "unet": "U-Net", "classical": "classical", "identity": "aged (no repair)"}

STYLE = """body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}img{max-width:100%}
td,th{border-bottom:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.note{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em}
.cards{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.cmp,.still{margin:0}
.wipe{position:relative;line-height:0}
.wipe img,.still img{display:block;width:100%;height:auto}
.wipe img.after{position:absolute;top:0;left:0;clip-path:inset(0 0 0 50%)}
.wipe input{position:absolute;left:0;bottom:4px;width:100%;margin:0}
figcaption{line-height:1.3;font-size:12px;padding-top:4px}"""

SCRIPT = """document.querySelectorAll('.wipe input').forEach(function (slider) {
  var after = slider.parentElement.querySelector('.after');
  slider.addEventListener('input', function () { after.style.clipPath = 'inset(0 0 0 ' + slider.value + '%)'; });
});"""


def slider(before: str, after: str, caption: str, width: int) -> str:
    """A before/after wipe of two images of the same size (paths relative to the page). The slider sits in
    the images' own box and the caption below it, so a caption never covers a slider, whatever the height
    of the other cards in the row (which do not stretch this one: align-items is flex-start)."""
    return (f'<figure class="cmp" style="width:{width}px"><div class="wipe">'
            f'<img src="{html.escape(before)}" alt="before" loading="lazy">'
            f'<img class="after" src="{html.escape(after)}" alt="after" loading="lazy">'
            f'<input type="range" min="0" max="100" value="50" aria-label="{html.escape(caption)}"></div>'
            f'<figcaption>{html.escape(caption)}</figcaption></figure>')


def still(src: str, caption: str, width: int) -> str:
    return (f'<figure class="still" style="width:{width}px"><img src="{html.escape(src)}" alt="{html.escape(caption)}" '
            f'loading="lazy"><figcaption>{html.escape(caption)}</figcaption></figure>')


def means_table(means: dict[str, dict[str, dict]]) -> str:
    """Methods x presets: PSNR / SSIM / edge contrast (1 = as sharp as the clean photo) means."""
    def cell(stats):
        values = [stats.get("psnr", math.nan), stats.get("ssim", math.nan), stats.get("edge_contrast", math.nan)]
        return "<td>" + " / ".join(f"{v:.2f}" if k else f"{v:.1f}" for k, v in enumerate(values)) + "</td>"

    presets = list(next(iter(means.values())))
    head = "<tr><th>method</th>" + "".join(f"<th>{html.escape(p)}</th>" for p in presets) + "</tr>"
    body = "\n".join(f"<tr><td>{html.escape(METHOD_LABELS.get(m, m))}</td>"
                     + "".join(cell(by_preset[p]) for p in presets) + "</tr>" for m, by_preset in means.items())
    return f"<table>{head}\n{body}</table>"


def operators_table(operators_used: dict[str, dict[str, int]], n_samples: int) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(preset)}</td><td style='text-align:left'>"
        + ", ".join(f"{html.escape(op)} ({count}/{n_samples})" for op, count in ops.items()) + "</td></tr>"
        for preset, ops in operators_used.items())
    return f"<table><tr><th>preset</th><th style='text-align:left'>operators (on how many samples)</th></tr>\n{rows}</table>"


def describe_stages(notes: dict) -> str:
    """One sentence from what the pipeline's stages decided for a photo (`restore_image`'s notes), so a
    reader sees why it came back darker, sharper or untouched."""
    tone, focus, fill, deblock = notes["tone"], notes["focus"], notes["fill"], notes["deblock"]
    black = "" if tone.get("black_point") is None else f" (black point {tone['black_point']:.0f} of 255 levels)"
    toned = (f"tone corrected{black}, {tone['kept']:.0%} of the U-Net's {tone['curves']:.0f}-level change kept"
             if tone.get("kept") else f"tone left as it was{black}")
    dropped = fill.get("dropped") or 0.0
    kept = (f"{fill['found']:.2%} of the pixels found as damage, {fill['found'] - dropped:.2%} filled "
            "(the rest judged not worth a fill)" if dropped
            else f"{fill['found']:.2%} of the pixels found as damage and filled")
    rims = (notes.get("rims") or {}).get("changed") or 0.0
    kept += f", {rims:.2%} more at the rims of what was found" if rims else ""
    return (f"Pipeline: {kept}; {toned}; "
            + (f"deblurred (blur {focus['blur_px']:.2f} px)" if focus["ran"] else "not deblurred")
            + ("; JPEG blocks taken out." if deblock["ran"] else "."))


def build_page(summary: dict, metrics: dict | None) -> str:
    """The page's HTML; image paths follow the demo's folder layout (aged/, restored/, old/)."""
    samples, presets, methods = summary["samples"], summary["presets"], summary["methods"]
    parts = [f"<h1>Old-photo repair demo</h1>\n<p>{len(samples)} bundled clean photos (never seen in training) "
             f"aged with each preset (seed {summary['seed']}), then restored by "
             f"{', '.join(METHOD_LABELS[m] for m in methods)}. Drag a slider to wipe between before and after.</p>"]
    if summary.get("restoration_skipped"):
        parts.append(f'<p class="note">{html.escape(summary["restoration_skipped"])}</p>')
    if summary.get("restored_grid"):
        parts.append(f'<h2>Before and after</h2>\n<img src="{summary["restored_grid"]}" '
                     f'alt="rows are samples; columns: clean, then aged and restored per preset">')
    if metrics:
        parts.append("<h2>Mean quality against the clean photo</h2>\n<p>PSNR (dB) / SSIM / edge contrast "
                     "(gradient on the clean photo's strongest edges, restored / clean: below 1 is blurrier). Per image in "
                     "<a href=\"metrics.json\">metrics.json</a>.</p>\n" + means_table(metrics["means"]))
    if summary.get("old_photos"):
        parts.append("<h2>Real old photos</h2>\n<p>No clean original exists for these, so only your eyes judge "
                     "them. First the damage the pipeline's detector found (red), then each method's repair.</p>")
        for name, width in summary["old_photos"].items():
            cards = ([still(f"old/pipeline_mask/{name}.png", f"{name}: detected damage", min(width, 400))]
                     if "pipeline" in methods else [])
            cards += [slider(f"old/original/{name}.png", f"old/{m}/{name}.png", f"{name}: original | {METHOD_LABELS[m]}",
                             min(width, 400)) for m in methods]
            parts.append("<div class=\"cards\">" + "\n".join(cards) + "</div>")
            if name in summary.get("old_photo_stages", {}):
                parts.append(f"<p>{html.escape(describe_stages(summary['old_photo_stages'][name]))}</p>")
    if methods:
        parts.append("<h2>Aged samples, restored</h2>")
        for index, preset in enumerate(presets):
            cards = [slider(f"aged/{preset}/{name}.png", f"restored/{m}/{preset}/{name}.png",
                            f"{name}: aged | {METHOD_LABELS[m]}", 256) for name in samples for m in methods]
            parts.append(f"<details{' open' if index == 0 else ''}><summary>{html.escape(preset)}</summary>"
                         f"<div class=\"cards\">\n" + "\n".join(cards) + "\n</div></details>")
    parts.append(f'<h2>Aging</h2>\n<p>Each aged image and its damage mask are in <code>aged/&lt;preset&gt;/</code>.'
                 f'</p>\n<img src="{summary["grid"]}" alt="grid: rows are samples, columns are clean and each preset">')
    parts.append("<h3>Operators used per preset</h3>\n" + operators_table(summary["operators_used"], len(samples)))
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Old-photo repair demo</title>\n'
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(parts) + f"\n<script>{SCRIPT}</script>\n"
            "</body></html>\n")


def write_html(out: Path, summary: dict, metrics: dict | None, overwrite: bool) -> Path:
    return atomic_write_text(Path(out) / "index.html", build_page(summary, metrics), overwrite=overwrite)
