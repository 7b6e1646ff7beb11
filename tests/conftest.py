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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared CPU: two OpenMP threads spin against other work and run 5-10x slower.

    Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`; the thread count is restored.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
