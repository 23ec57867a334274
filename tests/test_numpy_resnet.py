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


def test_shake_shake_forward_and_backward_match_the_torch_function():
    from helpers import models

    rng = np.random.default_rng(3)
    b1, b2, dy = (rng.standard_normal((4, 2, 3, 3)) for _ in range(3))
    alpha, beta = rng.uniform(size=4), rng.uniform(size=4)
    y = numpy_resnet.shake_shake(b1, b2, alpha)
    db1, db2 = numpy_resnet.shake_shake_backward(dy, beta)
    t1, t2 = t(b1, True), t(b2, True)
    shape = (4, 1, 1, 1)
    out = models._ShakeShake.apply(t1, t2, t(alpha).reshape(shape), t(beta).reshape(shape))
    out.backward(t(dy))
    assert close(y, out.detach().numpy())
    assert close(db1, t1.grad.numpy()) and close(db2, t2.grad.numpy())
    assert close(numpy_resnet.shake_shake(b1, b2, np.full(4, 0.5)), 0.5 * (b1 + b2))
    assert close(db1 + db2, dy)  # the gradient is split, never scaled


def test_shake_shake_rejects_bad_input():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="same shape"):
        numpy_resnet.shake_shake(x, np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(ValueError, match=r"alpha must have shape \(2,\)"):
        numpy_resnet.shake_shake(x, x, np.zeros(3))
    with pytest.raises(ValueError, match=r"beta must have shape \(2,\)"):
        numpy_resnet.shake_shake_backward(x, 0.5)
