"""StyleGAN inversion in the objective evaluation (notebook 04). It repairs faces only, and an objective
score needs the clean face, so the clean photos are faces the generator itself draws (seeded): each is
aged like every other photo and inverted back with the old-photo f̂. Only meaningful with trained FFHQ
weights; without them the evaluation says so and skips the method rather than score random blobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .restore.restorers import Restorer


def generated_faces(generator, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """count seeded faces from the generator, gray uint8 at its resolution: clean photos with a known truth."""
    from .invert import render, to_numpy
    from .io import from_float, to_gray

    gen = torch.Generator().manual_seed(seed)
    device = generator.input.input.device
    faces = {}
    with torch.no_grad():
        for index in range(count):
            z = torch.randn(1, generator.style_dim, generator=gen).to(device)
            image = render(generator, generator.mapping(z))
            faces[f"face_{index}"] = from_float(to_gray(to_numpy(image)), np.uint8)
    return faces


def inversion_restorer(generator, steps=(150, 150, 150), loss_fn=None) -> Restorer:
    """A Restorer that inverts each photo (at the generator's size) with the old-photo degradation."""
    from .degradations import OldPhoto
    from .invert import invert, to_numpy

    def run(planes: np.ndarray, tile: int, overlap: int):
        if planes.shape[-2:] != (generator.size, generator.size):
            raise ValueError(f"StyleGAN inversion needs {generator.size}x{generator.size} photos, "
                             f"got {planes.shape[-1]}x{planes.shape[-2]}")
        observation = torch.from_numpy(np.repeat(planes[:1], 3, 0)).float()
        result = invert(generator, observation, OldPhoto(None), steps=steps, progress=False, loss_fn=loss_fn)
        return to_numpy(result.image).mean(2, keepdims=True).transpose(2, 0, 1), None

    return Restorer("stylegan-inversion", 1, run, False, {"steps": list(steps)})


def stylegan_method(search_root: str | Path, cache_dir: str | Path) -> tuple[object | None, str]:
    """(the trained generator, what it is) when StyleGAN2 weights are attached, else (None, why not)."""
    from .stylegan_weights import trained_generator

    generator, path = trained_generator(search_root, cache_dir)
    if generator is None:
        return None, (f"skipped: no StyleGAN2 weights under {search_root} (on Kaggle attach the FFHQ weights, "
                      "see notebook 03); a random generator's inversions would score nothing real")
    return generator, f"trained {generator.size} px generator from {path}"
