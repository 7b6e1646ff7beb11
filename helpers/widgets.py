"""Interactive aging explorer for notebook 01: a slider per operator, a preset menu, a seed box, and a live
clean / aged / mask preview.

The callbacks are plain methods (`render`, `preview`) so pytest drives them headless by setting widget
values; the pictures are ipywidgets.Image PNG bytes that are replaced in place, so no cell output is
ever cleared and nbval sees a stable notebook.
"""

from __future__ import annotations

import html

import numpy as np

from .aging import OPERATORS, PRESETS, AgingResult, age_image
from .io import encode_image, from_float, to_float

CUSTOM = "custom"


def preset_strengths(preset: str) -> dict[str, float]:
    """Slider positions that picture a preset: the middle of each operator's strength range, 0 if unused."""
    middle = {name: round((low + high) / 2, 2) for name, _, low, high in PRESETS[preset]}
    return {name: middle.get(name, 0.0) for name in OPERATORS}


def preview(img: np.ndarray, operator_strengths: dict[str, float] | None = None, preset: str = "seed",
            seed: int = 0) -> AgingResult:
    """Custom strengths when given (exactly those operators, no randomness in the choice), else the
    preset with its random choice of operators and strengths for `seed`."""
    if operator_strengths is not None:
        return age_image(img, operators=operator_strengths, seed=seed)
    return age_image(img, preset, seed=seed)


def _png(img: np.ndarray) -> bytes:
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype.kind == "f":
        img = from_float(img)
    return encode_image(img, ".png")


def describe_params(params: list[dict]) -> str:
    """'scratches 0.62, stains 0.40' – which operators ran, at what strength."""
    return ", ".join(f"{p['op']} {p['strength']:.2f}" for p in params if p["strength"] > 0) or "no damage"


class AgingExplorer:
    """The widgets and their callbacks; display the object (or `.widget`) in a notebook.

    Choosing a preset moves the sliders to picture it and ages with the preset's random draw; moving a
    slider switches the menu to 'custom' and ages with exactly the slider values.
    """

    def __init__(self, images: np.ndarray | dict[str, np.ndarray], preset: str = "seed", seed: int = 0,
                 display_px: int = 256):
        import ipywidgets as w

        self.images = {"image": images} if isinstance(images, np.ndarray) else dict(images)
        self.images = {name: to_float(img) for name, img in self.images.items()}
        self.picture = w.Dropdown(options=list(self.images), description="photo")
        self.preset = w.Dropdown(options=[*PRESETS, CUSTOM], value=preset, description="preset")
        self.seed = w.IntText(value=seed, description="seed")
        self.sliders = {name: w.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description=name,
                                            continuous_update=False, readout_format=".2f")
                        for name in OPERATORS}
        self.views = {name: w.Image(format="png", layout=w.Layout(width=f"{display_px}px"))
                      for name in ("clean", "aged", "mask")}
        self.status = w.HTML()
        self.result: AgingResult | None = None
        self._syncing = False

        if preset != CUSTOM:
            self._set_sliders(preset_strengths(preset))
        self.preset.observe(self._on_preset, names="value")
        self.seed.observe(lambda _: self.render(), names="value")
        self.picture.observe(lambda _: self.render(), names="value")
        for slider in self.sliders.values():
            slider.observe(self._on_slider, names="value")

        pictures = w.HBox([w.VBox([w.Label(name), view]) for name, view in self.views.items()])
        controls = w.VBox([self.picture, self.preset, self.seed])
        sliders = w.GridBox(list(self.sliders.values()),
                            layout=w.Layout(grid_template_columns="repeat(3, 320px)"))
        self.widget = w.VBox([w.HBox([controls, self.status]), sliders, pictures])
        self.render()

    def strengths(self) -> dict[str, float]:
        return {name: float(slider.value) for name, slider in self.sliders.items()}

    def _set_sliders(self, values: dict[str, float]) -> None:
        self._syncing = True  # the preset moved them, not the user: stay in preset mode
        try:
            for name, value in values.items():
                self.sliders[name].value = value
        finally:
            self._syncing = False

    def _on_preset(self, change) -> None:
        if change["new"] != CUSTOM:
            self._set_sliders(preset_strengths(change["new"]))
        self.render()

    def _on_slider(self, _change) -> None:
        if self._syncing:
            return
        if self.preset.value != CUSTOM:
            self.preset.value = CUSTOM  # its observer renders
        else:
            self.render()

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Age the chosen photo with the current settings and refresh the three pictures."""
        clean = self.images[self.picture.value]
        custom = self.strengths() if self.preset.value == CUSTOM else None
        self.result = preview(clean, custom, self.preset.value, int(self.seed.value))
        self.views["clean"].value = _png(clean)
        self.views["aged"].value = _png(self.result.image)
        self.views["mask"].value = _png(self.result.mask)
        destroyed = 100.0 * float(self.result.mask.mean())
        self.status.value = (f"<b>{html.escape(self.preset.value)}</b>: "
                             f"{html.escape(describe_params(self.result.params))}<br>"
                             f"mask: {destroyed:.1f}% of pixels destroyed")
        return self.result.image, self.result.mask

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
