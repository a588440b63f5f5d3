"""Fixtures shared by the test modules; helper code lives in tests/helpers/."""

import atexit
import os
import shutil
import tempfile

import pytest
import torch

# torch.compile's kernel cache in a folder of this test session: a cache shared with other processes that compiled
# at the same time was once left corrupt, and a later compiled test then aborted Python when loading from it.
if 'TORCHINDUCTOR_CACHE_DIR' not in os.environ:
    os.environ['TORCHINDUCTOR_CACHE_DIR'] = tempfile.mkdtemp(prefix='edm_bdia_tests_inductor_')
    atexit.register(shutil.rmtree, os.environ['TORCHINDUCTOR_CACHE_DIR'], ignore_errors=True)


@pytest.fixture
def one_thread():
    """Tiny networks are dominated by per-op overhead, and two OpenMP threads stall whenever the shared cores are
    busy: run the in-process tests single-threaded (subprocesses get OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
