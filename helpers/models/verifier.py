"""The component verifier: is filling this detected component worth it?

A few thousand parameters over the numbers restore/verify.py measures per connected component of the
detectors' mask (its size and shape, both detectors' confidence, how far it departs from what the fill
would put there against its surroundings' texture, whether it lies along the picture's own edges). The
features come in their own units (levels, pixels, logs), so the first layer standardises them with
statistics learned in training (a batch norm without scale or shift) and stored with the weights.
"""

from __future__ import annotations

import torch.nn as nn


class ComponentVerifier(nn.Module):
    """B x features -> B x 1 logits of "filling this component helps"."""

    def __init__(self, features: int, width: int = 32):
        super().__init__()
        self.features = features
        self.body = nn.Sequential(nn.BatchNorm1d(features, affine=False), nn.Linear(features, width), nn.SiLU(),
                                  nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 1))

    def forward(self, x):
        return self.body(x)


def build(channels: int = 1, features: int | None = None, width: int = 32):
    """The registry's entry point (see helpers/models/__init__.py); task "verify", so no discriminator.
    `features` defaults to the number restore/verify.py measures; they are read off the luma, so it is
    trained on gray photos (`channels` 1) and judges colour ones' components as well."""
    from .. import UsageError
    from . import ModelSpec

    if channels != 1:
        raise UsageError("the verifier reads the components of gray photos' luma: train it without --rgb")
    if features is None:
        from ..restore.verify import FEATURES

        features = len(FEATURES)
    config = {"channels": 1, "features": features, "width": width}
    return (ComponentVerifier(features, width), None,
            ModelSpec(name="verifier", config=config, channels=1, conditional=False, loss="bce", task="verify"))
