"""helpers.checks.residual (chapter 7): each check passes on a correct answer and fails on a stub
or a plausible mistake."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import stub

from helpers import checks, models, numpy_nn, numpy_resnet


def test_check_pad_shortcut(capsys):
    def answer(x, out_channels, stride):
        x = x[:, :, ::stride, ::stride]
        return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))

    checks.check_pad_shortcut(answer)
    assert "passed" in capsys.readouterr().out
    block = models.BasicBlock(4, 8, stride=2)  # the builder's own shortcut agrees
    assert torch.equal(block.shortcut(x := torch.randn(2, 4, 6, 6)), answer(x, 8, 2))
    with pytest.raises(NotImplementedError):
        checks.check_pad_shortcut(stub)

    def pads_in_front(x, out_channels, stride):
        x = x[:, :, ::stride, ::stride]
        return F.pad(x, (0, 0, 0, 0, out_channels - x.shape[1], 0))

    with pytest.raises(AssertionError, match="max error"):
        checks.check_pad_shortcut(pads_in_front)
    with pytest.raises(AssertionError, match="output shape"):
        checks.check_pad_shortcut(lambda x, c, s: F.avg_pool2d(x, s, s))
    with pytest.raises(AssertionError, match="torch.Tensor"):
        checks.check_pad_shortcut(lambda x, c, s: answer(x, c, s).numpy())


def drop_path(x, p, training):
    if not training or p == 0:
        return x
    keep = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype) >= p
    return x * keep / (1 - p)


def test_check_drop_path(capsys):
    checks.check_drop_path(drop_path)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_drop_path(stub)

    def per_element(x, p, training):  # ordinary dropout, not whole examples
        return F.dropout(x, p, training)

    def keep_probability(x, p, training):  # p read as the keep probability
        return drop_path(x, 1 - p, training) if training and p > 0 else x

    def no_rescale(x, p, training):
        return drop_path(x, p, training) * (1 - p)

    def always_random(x, p, training):
        return drop_path(x, p, True)

    with pytest.raises(AssertionError, match="neither all zero"):
        checks.check_drop_path(per_element)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_drop_path(keep_probability)

    def drops_too_often(x, p, training):  # right scaling, wrong rate
        if not training or p == 0:
            return x
        keep = (torch.rand(x.shape[0], *([1] * (x.ndim - 1))) >= 2 * p).to(x.dtype)
        return x * keep / (1 - p)

    with pytest.raises(AssertionError, match="expected about"):
        checks.check_drop_path(drops_too_often)
    with pytest.raises(AssertionError, match="neither all zero"):
        checks.check_drop_path(no_rescale)
    with pytest.raises(AssertionError, match="eval"):
        checks.check_drop_path(always_random)
    with pytest.raises(AssertionError, match="tensor shaped like x"):
        checks.check_drop_path(lambda x, p, training: x[:1])


def test_check_preact_block(capsys):
    def answer(x, w1, w2):
        def bn_relu(z):
            return F.relu(F.batch_norm(z, None, None, training=True))

        return x + F.conv2d(bn_relu(F.conv2d(bn_relu(x), w1, padding=1)), w2, padding=1)

    checks.check_preact_block(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_preact_block(stub)

    def post_activation(x, w1, w2):
        def bn(z):
            return F.batch_norm(z, None, None, training=True)

        return F.relu(x + bn(F.conv2d(F.relu(bn(F.conv2d(x, w1, padding=1))), w2, padding=1)))

    with pytest.raises(AssertionError, match="max error"):
        checks.check_preact_block(post_activation)
    with pytest.raises(AssertionError, match="max error"):
        checks.check_preact_block(lambda x, w1, w2: F.relu(answer(x, w1, w2)))


def _in_notebook(source: str, **names):
    """The function ``answer`` defined by ``source`` in a fresh namespace holding ``names``,
    as a notebook cell defines it in the kernel's globals."""
    namespace = {"torch": torch, "models": models, **names}
    exec(source, namespace)
    return namespace["answer"]


def _models_names():
    return tuple(getattr(models, n) for n in ("BasicBlock", "ResNet", "resnet", "drop_path",
                                              "DropPath"))  # fmt: skip


@pytest.mark.parametrize("source", [
    "def answer(x, c, s):\n    return models.BasicBlock(x.shape[1], c, s).shortcut(x)",
    "from helpers.models import BasicBlock\n"
    "def answer(x, c, s):\n    return BasicBlock(x.shape[1], c, s).shortcut(x)",
    "def answer(x, c, s):\n    return models.resnet(8).blocks[0].shortcut(x)",
])  # fmt: skip
def test_check_pad_shortcut_refuses_basic_block_and_restores_it(source):
    originals = _models_names()
    with pytest.raises(AssertionError, match="write it yourself; do not call helpers.models"):
        checks.check_pad_shortcut(_in_notebook(source))
    assert _models_names() == originals
    assert models.BasicBlock(4, 8, stride=2).shortcut(torch.zeros(1, 4, 4, 4)).shape == (1, 8, 2, 2)


@pytest.mark.parametrize("source", [
    "def answer(x, p, training):\n    return models.drop_path(x, p, training)",
    "from helpers.models import drop_path\n"
    "def answer(x, p, training):\n    return drop_path(x, p, training)",
    "def answer(x, p, training):\n"
    "    layer = models.DropPath(p)\n    layer.train(training)\n    return layer(x)",
])  # fmt: skip
def test_check_drop_path_refuses_the_helpers_and_restores_them(source):
    originals = _models_names()
    with pytest.raises(AssertionError, match="write it yourself; do not call helpers.models"):
        checks.check_drop_path(_in_notebook(source))
    assert _models_names() == originals
    assert models.DropPath(0.5)(torch.ones(8, 2)).shape == (8, 2)


def test_check_preact_block_refuses_basic_block_and_restores_it():
    def shortcut(x, w1, w2):  # the builder's pre-activation block with the given weights
        c = x.shape[1]
        block = models.BasicBlock(c, c, preact=True).double()
        block.conv1.weight.data, block.conv2.weight.data = w1, w2
        return block(x)

    originals = _models_names()
    with pytest.raises(AssertionError, match="write it yourself; do not call helpers.models"):
        checks.check_preact_block(shortcut)
    assert _models_names() == originals
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    w1, w2 = (torch.randn(3, 3, 3, 3, dtype=torch.float64) for _ in range(2))
    ref = checks.residual._preact_reference(x, w1, w2)
    assert torch.allclose(shortcut(x, w1, w2), ref)  # the shortcut was right: it is refused


def residual_block_backward(dy, x, w1, w2):
    z1 = numpy_nn.conv2d(x, w1, padding=1)
    a1 = numpy_nn.relu(z1)
    s = x + numpy_nn.conv2d(a1, w2, padding=1)
    ds = numpy_nn.relu_backward(dy, s)  # the ReLU after the addition gates both paths
    da1, dw2, _ = numpy_nn.conv2d_backward(ds, a1, w2, padding=1)
    dx, dw1, _ = numpy_nn.conv2d_backward(numpy_nn.relu_backward(da1, z1), x, w1, padding=1)
    return dx + ds, dw1, dw2


def test_check_residual_block_backward(capsys):
    checks.check_residual_block_backward(residual_block_backward)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_residual_block_backward(stub)

    def no_shortcut(dy, x, w1, w2):  # the branch only: the identity path's ds is missing
        z1 = numpy_nn.conv2d(x, w1, padding=1)
        a1 = numpy_nn.relu(z1)
        ds = numpy_nn.relu_backward(dy, x + numpy_nn.conv2d(a1, w2, padding=1))
        da1, dw2, _ = numpy_nn.conv2d_backward(ds, a1, w2, padding=1)
        dx, dw1, _ = numpy_nn.conv2d_backward(numpy_nn.relu_backward(da1, z1), x, w1, padding=1)
        return dx, dw1, dw2

    def no_mask_after_add(dy, x, w1, w2):  # as if y = x + F(x), without the last ReLU
        z1 = numpy_nn.conv2d(x, w1, padding=1)
        a1 = numpy_nn.relu(z1)
        da1, dw2, _ = numpy_nn.conv2d_backward(dy, a1, w2, padding=1)
        dx, dw1, _ = numpy_nn.conv2d_backward(numpy_nn.relu_backward(da1, z1), x, w1, padding=1)
        return dx + dy, dw1, dw2

    def mask_only_on_the_branch(dy, x, w1, w2):  # the shortcut gets the unmasked dy
        dx, dw1, dw2 = residual_block_backward(dy, x, w1, w2)
        s = x + numpy_nn.conv2d(numpy_nn.relu(numpy_nn.conv2d(x, w1, padding=1)), w2, padding=1)
        return dx - numpy_nn.relu_backward(dy, s) + dy, dw1, dw2

    for wrong in (no_shortcut, no_mask_after_add, mask_only_on_the_branch):
        with pytest.raises(AssertionError, match="dx differs"):
            checks.check_residual_block_backward(wrong)
    with pytest.raises(AssertionError, match="dw2 differs"):
        checks.check_residual_block_backward(
            lambda dy, x, w1, w2: (*residual_block_backward(dy, x, w1, w2)[:2], np.zeros_like(w2))
        )
    with pytest.raises(AssertionError, match="expected a tuple"):
        checks.check_residual_block_backward(
            lambda dy, x, w1, w2: residual_block_backward(dy, x, w1, w2)[0]
        )


def test_check_residual_block_backward_refuses_the_helpers_and_restores_them():
    def book_block(dy, x, w1, w2):  # the chapter's block, batch norm made harmless
        params = {"w1": w1, "w2": w2}
        params |= {k: np.ones(x.shape[1]) for k in ("gamma1", "gamma2")}
        params |= {k: np.zeros(x.shape[1]) for k in ("beta1", "beta2")}
        _, cache = numpy_resnet.residual_block(x, params)
        dx, grads = numpy_resnet.residual_block_backward(dy, cache)
        return dx, grads["w1"], grads["w2"]

    def autograd(dy, x, w1, w2):
        xt, w1t, w2t = (torch.tensor(a, requires_grad=True) for a in (x, w1, w2))
        y = F.relu(xt + F.conv2d(F.relu(F.conv2d(xt, w1t, padding=1)), w2t, padding=1))
        y.backward(torch.from_numpy(dy))
        return xt.grad.numpy(), w1t.grad.numpy(), w2t.grad.numpy()

    originals = (
        numpy_resnet.residual_block,
        numpy_resnet.residual_block_backward,
        torch.autograd.backward,
        torch.autograd.grad,
    )
    with pytest.raises(AssertionError, match="do not call helpers.numpy_resnet.residual_block"):
        checks.check_residual_block_backward(book_block)
    with pytest.raises(AssertionError, match="do not call torch.autograd.backward"):
        checks.check_residual_block_backward(autograd)
    assert (
        numpy_resnet.residual_block,
        numpy_resnet.residual_block_backward,
        torch.autograd.backward,
        torch.autograd.grad,
    ) == originals
    with torch.enable_grad():  # autograd works again after the check
        w = torch.ones(2, requires_grad=True)
        (w * w).sum().backward()
    assert torch.equal(w.grad, torch.full((2,), 2.0))
