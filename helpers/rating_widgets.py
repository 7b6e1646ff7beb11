"""Notebook 05's widgets: a before/after wipe per photo and the blind A/B rater.

As in helpers/widgets.py, the callbacks are plain methods (`show`, `choose`), so tests and quick mode drive
them by calling them, and the pictures are ipywidgets.Image bytes replaced in place.
"""

from __future__ import annotations

import html

import numpy as np

from .io import encode_image, from_float, to_float, to_rgb
from .rating import Pair, RatingLog


def wipe(before: np.ndarray, after: np.ndarray, position: float) -> np.ndarray:
    """`after` left of the line at `position` (0..1 of the width), `before` right of it, a thin line between."""
    a, b = to_rgb(to_float(after)), to_rgb(to_float(before))
    if a.shape != b.shape:
        raise ValueError(f"before {b.shape} and after {a.shape} differ in size")
    cut = int(round(np.clip(position, 0.0, 1.0) * a.shape[1]))
    out = b.copy()
    out[:, :cut] = a[:, :cut]
    out[:, max(cut - 1, 0):cut + 1] = (1.0, 0.85, 0.2)
    return out


def _jpeg(img: np.ndarray) -> bytes:
    """JPEG, not PNG: these are photographs, and a notebook stores every widget's picture in its state."""
    return encode_image(from_float(img) if img.dtype.kind == "f" else img, ".jpg", jpeg_quality=85)


class WipeViewer:
    """A slider that wipes between the original (right) and one restoration (left); a menu picks which."""

    def __init__(self, original: np.ndarray, restored: dict[str, np.ndarray], title: str = "",
                 display_px: int = 512):
        import ipywidgets as w

        self.original, self.restored = original, restored
        self.method = w.Dropdown(options=list(restored), description="restored by")
        self.position = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="wipe",
                                      continuous_update=True, readout=False)
        self.image = w.Image(format="jpeg", layout=w.Layout(width=f"{display_px}px"))
        self.method.observe(lambda _: self.show(), names="value")
        self.position.observe(lambda _: self.show(), names="value")
        self.widget = w.VBox([w.HTML(f"<b>{html.escape(title)}</b> (left of the line: restored; right: original)"),
                              w.HBox([self.method, self.position]), self.image])
        self.show()

    def show(self) -> np.ndarray:
        picture = wipe(self.original, self.restored[self.method.value], self.position.value)
        self.image.value = _jpeg(picture)
        return picture

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class ABRater:
    """Two restorations of one photo, sides blinded; three buttons record the choice in the log and move on.
    The method names are shown only after all pairs are rated."""

    def __init__(self, pairs: list[Pair], pictures: dict[tuple[str, str], np.ndarray], log: RatingLog,
                 rater: str = "anonymous", display_px: int = 384):
        import ipywidgets as w

        self.pairs, self.pictures, self.log, self.rater = pairs, pictures, log, rater
        self.index = 0
        self.views = [w.Image(format="jpeg", layout=w.Layout(width=f"{display_px}px")) for _ in range(2)]
        self.buttons = {choice: w.Button(description=label) for choice, label in
                        (("left", "left is better"), ("same", "about the same"), ("right", "right is better"))}
        for choice, button in self.buttons.items():
            button.on_click(lambda _, c=choice: self.choose(c))
        self.status = w.HTML()
        self.widget = w.VBox([self.status, w.HBox(self.views), w.HBox(list(self.buttons.values()))])
        self.show()

    @property
    def done(self) -> bool:
        return self.index >= len(self.pairs)

    def show(self) -> None:
        if self.done:
            self.status.value = f"all {len(self.pairs)} pairs rated, thank you; the tallies are below"
            for button in self.buttons.values():
                button.disabled = True
            return
        pair = self.pairs[self.index]
        self.views[0].value = _jpeg(self.pictures[(pair.photo, pair.left)])
        self.views[1].value = _jpeg(self.pictures[(pair.photo, pair.right)])
        self.status.value = f"pair {self.index + 1} of {len(self.pairs)}: which repair of this photo looks better?"

    def choose(self, choice: str) -> dict:
        """Record the rater's choice for the pair on screen and show the next one."""
        if self.done:
            raise IndexError("every pair is rated already")
        row = self.log.add(self.rater, self.pairs[self.index], choice)
        self.index += 1
        self.show()
        return row

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
