"""Encoder tests run torch single-threaded: tiny tensors only lose from intra-op threads on a
busy 2-core runner (pretraining a tiny model took 18 s with 2 threads vs 0.14 s with 1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
