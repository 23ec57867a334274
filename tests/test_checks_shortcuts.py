"""Every exercise check refuses two shortcuts that the per-module tests do not all cover:

- the book's helper imported under another name into the notebook (``from helpers.numpy_norm
  import group_norm as gn``), which patching the module attribute alone would miss;
- PyTorch's own equivalent (``F.dropout``, ``torch.optim.Adam``, autograd for a backward).

Each answer below is *correct*, so a check that let it through would pass. The namespace the
answer lives in plays the notebook's globals; after the check it must hold the originals again.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import checks
from helpers.checks import compression

# (check, source of a notebook cell defining `answer` through an alias or through torch)
ALIASES = {
    "dropout": (checks.check_dropout, """
from helpers.numpy_regularization import dropout as drop
def answer(x, p, rng):
    return drop(x, p, True, rng)[0]
"""),
    "adamw": (checks.check_adamw_step, """
from helpers.numpy_optim import AdamW as Opt
def answer(p, g, m, v, t, lr, betas, eps, weight_decay):
    Opt([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    return p, m, v
"""),
    "label smoothing": (checks.check_label_smoothing_loss, """
from helpers.numpy_regularization import smooth_labels as smooth
def answer(logits, y, eps):
    smooth(y, logits.shape[1], eps)
    return 0.0
"""),
    "focal loss": (checks.check_focal_loss_grad, """
from helpers.numpy_regularization import focal_loss as focal
def answer(logits, labels, gamma):
    return focal(logits, labels, gamma)[1]
"""),
    "adam": (checks.check_adam_step, """
from helpers.numpy_optim import Adam as Opt
def answer(p, g, m, v, t, lr, betas, eps):
    Opt([p], lr=lr, betas=betas, eps=eps)
    return p, m, v
"""),
    "clip": (checks.check_clip_grad_norm, """
from helpers.numpy_optim import clip_grad_norm as clip
def answer(grads, max_norm):
    return clip(grads, max_norm)[0]
"""),
    "batch norm backward": (checks.check_batch_norm_backward, """
from helpers.numpy_norm import batch_norm_backward as bwd
def answer(dy, x, gamma, eps):
    return bwd(dy, x, gamma, eps)
"""),
    "group norm": (checks.check_group_norm, """
from helpers.numpy_norm import group_norm as gn
def answer(x, groups, gamma, beta, eps):
    return gn(x, groups, gamma, beta, eps)
"""),
    "conv backward": (checks.check_conv2d_backward_dx, """
from helpers.numpy_nn import conv2d_backward as bwd
def answer(dy, w, x_shape, stride, padding):
    return bwd(dy, np.zeros(x_shape), w, stride, padding)[0]
"""),
    "quantize": (compression.check_quantize, """
from helpers.numpy_compress import quantize as q
def answer(x, scale, zero_point, qmin, qmax):
    return q(x, scale, zero_point)
"""),
    "ste": (compression.check_ste_backward, """
from helpers.numpy_compress import fake_quantize_backward as ste
def answer(dy, x, scale, zero_point, qmin, qmax):
    return ste(dy, x, scale, zero_point, qmin, qmax)
"""),
    "prune": (compression.check_magnitude_prune_mask, """
from helpers.numpy_compress import magnitude_prune_mask as mask
def answer(w, amount):
    return mask(w, amount)
"""),
}


@pytest.mark.parametrize("key", sorted(ALIASES))
def test_a_helper_imported_under_another_name_is_refused_and_restored(key):
    check, source = ALIASES[key]
    namespace = {"np": np}
    exec(source, namespace)
    before = {k: v for k, v in namespace.items() if k != "__builtins__"}
    with pytest.raises(AssertionError, match="write it yourself"):
        check(namespace["answer"])
    assert {k: v for k, v in namespace.items() if k != "__builtins__"} == before


def _torch_dropout(x, p, rng):
    return F.dropout(torch.from_numpy(x), p, training=True).numpy()


def _torch_adamw(p, g, m, v, t, lr, betas, eps, weight_decay):
    tp = torch.tensor(p, requires_grad=True)
    torch.optim.AdamW([tp], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    return p, m, v


def _torch_adam(p, g, m, v, t, lr, betas, eps):
    torch.optim.Adam([torch.tensor(p, requires_grad=True)], lr=lr, betas=betas, eps=eps)
    return p, m, v


def _torch_label_smoothing(logits, y, eps):
    return F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y), label_smoothing=eps).item()


def _torch_focal_grad(logits, labels, gamma):
    z = torch.tensor(logits, requires_grad=True)
    log_py = F.log_softmax(z, dim=1).gather(1, torch.from_numpy(labels)[:, None])[:, 0]
    (-((1 - log_py.exp()) ** gamma) * log_py).mean().backward()
    return z.grad.numpy()


def _torch_clip(grads, max_norm):
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.from_numpy(g)
    torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    return [t.grad.numpy() for t in tensors]


def _torch_bn_backward(dy, x, gamma, eps):
    xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(gamma, requires_grad=True)
    bt = torch.zeros_like(gt, requires_grad=True)
    F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps).backward(torch.from_numpy(dy))
    return xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


def _torch_group_norm(x, groups, gamma, beta, eps):
    return F.group_norm(torch.from_numpy(x), groups, torch.from_numpy(gamma),
                        torch.from_numpy(beta), eps).numpy()  # fmt: skip


def _torch_conv_backward_dx(dy, w, x_shape, stride, padding):
    x = torch.zeros(x_shape, dtype=torch.float64, requires_grad=True)
    F.conv2d(x, torch.from_numpy(w), stride=stride, padding=padding).backward(torch.from_numpy(dy))
    return x.grad.numpy()


def _torch_quantize(x, scale, zero_point, qmin, qmax):
    return torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), scale, zero_point, qmin,
                                                 qmax).div(scale).round().add(zero_point).long().numpy()  # fmt: skip


def _torch_ste(dy, x, scale, zero_point, qmin, qmax):
    xt = torch.tensor(x, requires_grad=True)
    out = torch.fake_quantize_per_tensor_affine(xt, scale, zero_point, qmin, qmax)
    out.backward(torch.from_numpy(dy))
    return xt.grad.numpy()


def _torch_prune_mask(w, amount):
    module = torch.nn.Linear(1, 1, bias=False)
    module.weight = torch.nn.Parameter(torch.from_numpy(w))
    return torch.nn.utils.prune.l1_unstructured(module, "weight", amount).weight_mask.numpy()


TORCH = {
    "dropout": (checks.check_dropout, _torch_dropout),
    "adamw": (checks.check_adamw_step, _torch_adamw),
    "adam": (checks.check_adam_step, _torch_adam),
    "label smoothing": (checks.check_label_smoothing_loss, _torch_label_smoothing),
    "focal loss": (checks.check_focal_loss_grad, _torch_focal_grad),
    "clip": (checks.check_clip_grad_norm, _torch_clip),
    "batch norm backward": (checks.check_batch_norm_backward, _torch_bn_backward),
    "group norm": (checks.check_group_norm, _torch_group_norm),
    "conv backward": (checks.check_conv2d_backward_dx, _torch_conv_backward_dx),
    "quantize": (compression.check_quantize, _torch_quantize),
    "ste": (compression.check_ste_backward, _torch_ste),
    "prune": (compression.check_magnitude_prune_mask, _torch_prune_mask),
}


@pytest.mark.parametrize("key", sorted(TORCH))
def test_torchs_equivalent_is_refused_and_restored(key):
    check, answer = TORCH[key]
    originals = (F.dropout, F.cross_entropy, F.log_softmax, F.group_norm, torch.optim.Adam,
                 torch.optim.AdamW, torch.nn.utils.clip_grad_norm_, torch.autograd.backward,
                 torch.autograd.grad, torch.fake_quantize_per_tensor_affine,
                 torch.nn.utils.prune.l1_unstructured)  # fmt: skip
    with pytest.raises(AssertionError, match="write it yourself"):
        check(answer)
    assert (F.dropout, F.cross_entropy, F.log_softmax, F.group_norm, torch.optim.Adam,
            torch.optim.AdamW, torch.nn.utils.clip_grad_norm_, torch.autograd.backward,
            torch.autograd.grad, torch.fake_quantize_per_tensor_affine,
            torch.nn.utils.prune.l1_unstructured) == originals  # fmt: skip
