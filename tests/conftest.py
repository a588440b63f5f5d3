"""Fixtures shared by the test modules; helper code lives in tests/helpers/."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny networks are dominated by per-op overhead, and two OpenMP threads stall whenever the shared cores are
    busy: run the in-process tests single-threaded (subprocesses get OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
