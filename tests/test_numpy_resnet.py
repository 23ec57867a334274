"""helpers.numpy_resnet: the residual block against torch (float64), numerical gradients,
bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import numpy_resnet
from helpers.gradcheck import numerical_gradient, rel_error

TOL = 1e-9


def close(a, b, tol=TOL):
    """max |a - b| <= tol * max(1, max |b|): relative for large values, absolute near 0."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.max(np.abs(a - b), initial=0) <= tol * max(1, np.max(np.abs(b)))


def t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def test_residual_block_matches_torch_and_numerical_gradient():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 4))
    params = numpy_resnet.init_residual_block(3, rng)
    params["gamma1"] = rng.uniform(0.5, 1.5, 3)
    params["beta2"] = rng.standard_normal(3) * 0.1
    dy = rng.standard_normal(x.shape)
    for residual in (True, False):
        y, cache = numpy_resnet.residual_block(x, params, residual=residual)
        xt = t(x, True)
        pt = {k: t(v, True) for k, v in params.items()}
        z = F.relu(F.batch_norm(F.conv2d(xt, pt["w1"], padding=1), None, None, pt["gamma1"], pt["beta1"],
                                training=True))
        z = F.batch_norm(F.conv2d(z, pt["w2"], padding=1), None, None, pt["gamma2"], pt["beta2"],
                         training=True)
        yt = F.relu(z + xt if residual else z)
        assert close(y, yt.detach().numpy())
        yt.backward(t(dy))
        dx, grads = numpy_resnet.residual_block_backward(dy, cache)
        assert close(dx, xt.grad.numpy())
        for k in params:
            assert close(grads[k], pt[k].grad.numpy()), k

    def loss():
        return np.sum(numpy_resnet.residual_block(x, params)[0] * dy)

    dx, grads = numpy_resnet.residual_block_backward(dy, numpy_resnet.residual_block(x, params)[1])
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-5
    assert rel_error(grads["w2"], numerical_gradient(loss, params["w2"])) < 1e-5


def test_residual_block_bad_input():
    rng = np.random.default_rng(8)
    params = numpy_resnet.init_residual_block(2, rng)
    assert params["w1"].shape == (2, 2, 3, 3) and params["gamma2"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"must be \(N, C, H, W\)"):
        numpy_resnet.residual_block(np.zeros((2, 3, 3)), params)
    with pytest.raises(ValueError, match=r"w1 must have shape \(3, 3, 3, 3\)"):
        numpy_resnet.residual_block(np.zeros((1, 3, 3, 3)), params)
    with pytest.raises(ValueError, match=r"missing \['beta2'\]"):
        numpy_resnet.residual_block(np.zeros((1, 2, 3, 3)), {k: v for k, v in params.items() if k != "beta2"})
    with pytest.raises(ValueError, match="channels must be an int >= 1"):
        numpy_resnet.init_residual_block(0, rng)
