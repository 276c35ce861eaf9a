import sys
from pathlib import Path

import pytest
import torch

# The stage scripts live at the top level of the repository; make them importable from the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture
def one_torch_thread():
    # Small torch ops on a shared 2-core machine: a second torch thread makes them slower, not faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test (minutes); deselect with -m 'not slow'")
