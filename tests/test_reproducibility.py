"""helpers.reproducibility: one call seeds NumPy, torch and a returned Generator."""

import numpy as np
import pytest
import torch

from helpers.reproducibility import seed_everything


def test_seed_everything_makes_numpy_torch_and_generator_repeat():
    g1 = seed_everything(3)
    a = (np.random.rand(3), torch.rand(3), g1.standard_normal(3))  # noqa: NPY002
    g2 = seed_everything(3)
    b = (np.random.rand(3), torch.rand(3), g2.standard_normal(3))  # noqa: NPY002
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert torch.are_deterministic_algorithms_enabled()
    seed_everything(3, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)
