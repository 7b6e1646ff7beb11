"""Shared fixtures: small images made on the fly, and the optional ../shared/data folder."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import env


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def shared_data():
    """../shared/data of a development checkout; a user's fresh clone has none, so the test skips."""
    root = env.shared_data_dir()
    if root is None:
        pytest.skip("../shared/data absent (a fresh clone has no development data); nothing to read")
    return root


@pytest.fixture(autouse=True)
def _quiet_quick_mode(monkeypatch):
    """Tests choose their own sizes; quick mode only matters for notebooks."""
    monkeypatch.delenv("REPAIR_QUICK", raising=False)
