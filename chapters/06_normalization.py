# %% [markdown]
# # Chapter 6 — Normalization
#
# A deep network is easiest to train when the numbers flowing through it stay on a sensible
# scale. This chapter starts from standardizing the input, then moves the same idea inside the
# network: batch normalization, its backward pass (derived two ways and checked to float64
# precision), its running statistics and its train/eval switch, and the batch-independent
# alternatives — layer, group and instance normalization. Experiments on Fashion-MNIST show what
# normalization buys and where batch norm's dependence on the batch bites.
#
# **Learning goals.** After this chapter you can
#
# 1. say why standardized inputs make gradient descent easier, and what the two explanations of
#    batch norm's success (covariate shift, a smoother loss landscape) claim;
# 2. write batch norm's forward and backward passes in NumPy, and update its running statistics
#    exactly as PyTorch does;
# 3. explain the difference between training and evaluation mode, and predict a single example;
# 4. describe layer, group and instance norm as choices of the axes that share statistics, and
#    know that no group count turns group norm into batch norm;
# 5. show on Fashion-MNIST, with paired seeds, that batch norm makes training robust to the
#    initial scale and the learning rate against a baseline at its own best rate, that batch
#    norm degrades with tiny batches while group, layer and instance norm do not, and how the
#    noise of batch statistics scales with the batch size;
# 6. explain why weight decay still matters for scale-invariant weights, and set up parameter
#    groups that exempt $\gamma$ and $\beta$ from it.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch; the paired seeds are SEED, SEED + 1, ...
N_SEEDS = 2  # paired seeds of every network comparison
TRAIN_SIZE = 1000  # stratified Fashion-MNIST training subset, downsampled to 14x14
VAL_FRACTION = 0.05
VAL_SIZE = 1000  # validation images used
WIDTH = 12  # channels of each convolution
EPOCHS = 6  # epochs of each run
BATCH_SIZE = 64
LEARNING_RATE = 0.1  # SGD with momentum 0.9, unless a sweep says otherwise
LEARNING_RATES = (0.01, 0.03, 0.1, 0.3, 1.0)  # the learning-rate sweep
INIT_SCALES = (0.25, 1.0, 4.0)  # multipliers of He-initialized convolution weights
BATCH_SIZES = (2, 4, 8, 16, 32, 64)  # batch sizes at which the trained networks are measured
WEIGHT_DECAY = 5e-3  # for the weight-decay run (conv and linear weights only)
WD_EPOCHS = 8

# %%
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import checks, data, models, plotting, training
from helpers import numpy_norm as nn_np
from helpers.claims import claim
from helpers.device import best_device, describe
from helpers.gradcheck import numerical_gradient, rel_error
from helpers.reproducibility import seed_everything

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
SEEDS = [SEED + k for k in range(N_SEEDS)]
print("device:", describe(device), "| paired seeds:", SEEDS)

# %% [markdown]
# ## 1. Standardizing the input
#
# Gradient descent takes one step size for all parameters. If one input feature varies over
# $[0, 1000]$ and another over $[0, 1]$, the loss is a long, thin valley: a step small enough not
# to overshoot along the steep direction crawls along the flat one. For a linear model with
# squared loss the valley's shape is the matrix $X^\top X / n$ of the inputs, and the number of
# gradient steps needed grows with its **condition number** (largest over smallest eigenvalue).
#
# **Standardizing** each feature with the *training* set's mean and standard deviation,
# $\tilde x_j = (x_j - \mu_j) / \sigma_j$, removes the differences of scale and of offset. The
# same $\mu_j, \sigma_j$ are then applied to validation and test data. On the pixels of the
# Fashion-MNIST training subset the experiments below use (`TRAIN_SIZE` images at $14 \times 14$,
# intensities $0..255$; pixels that never vary are dropped, and a column of ones stands for the
# bias):

# %%
pixel_split = data.load_fashion_mnist(train_size=TRAIN_SIZE, val_fraction=VAL_FRACTION, seed=SEED)
pixels = data.downsample(pixel_split.train.x).reshape(TRAIN_SIZE, -1).astype(np.float64) * 255
varying = pixels.std(axis=0) > 1e-6
raw = pixels[:, varying]  # (TRAIN_SIZE, D) raw intensities
standardized = (raw - raw.mean(axis=0)) / raw.std(axis=0)


def condition_number(features):
    """Condition number of the second-moment matrix of (features, 1): (N, D) -> float."""
    design = np.hstack([features, np.ones((len(features), 1))])
    return np.linalg.cond(design.T @ design / len(design))


cond_raw, cond_std = condition_number(raw), condition_number(standardized)
print(f"{varying.sum()} of {pixels.shape[1]} pixels vary")
print(f"condition number: raw {cond_raw:.2g}, standardized {cond_std:.2g}, "
      f"ratio {cond_raw / cond_std:.2g}")  # fmt: skip

# %%
claim("standardizing improves the conditioning more than 100-fold (ratio of the condition numbers)",
      cond_raw / cond_std, above=100)
claim("the standardized condition number is still above 1,000", cond_std, above=1000)

# %% [markdown]
# The improvement is large, yet the standardized problem is still far from round: its condition
# number stays above a thousand. Standardizing fixes each pixel's scale and offset, not the
# correlations between neighbouring pixels, which make $X^\top X$ nearly singular along the
# directions in which images hardly vary. Removing those too is whitening (rotating onto the
# principal components and dividing by their standard deviations); it is expensive for large
# inputs and rarely used for images, whereas per-pixel or per-channel standardization is
# universal.

# %% [markdown]
# ## 2. Normalizing inside the network
#
# A hidden layer's input is the previous layer's output, and it has no reason to stay centred or
# of unit scale: it changes with every update of the layers below. Ioffe and Szegedy (2015)
# called this *internal covariate shift* and proposed **batch normalization** to remove it:
# standardize every channel with the statistics of the current mini-batch.
#
# Batch norm works very well, but later experiments questioned that explanation. Santurkar,
# Tsipras, Ilyas and Madry ("How Does Batch Normalization Help Optimization?", NeurIPS 2018)
# added random, time-varying noise after every batch-norm layer — deliberately shifting the
# distributions again — and the networks still trained almost as well; and they measured that
# batch norm makes the loss and its gradient change more smoothly along the training path (smaller
# Lipschitz constants), which lets larger steps be taken safely. The smoothing of the loss
# landscape is today's main explanation; section 7 shows its practical side: a much wider range
# of learning rates and initial scales that train.
#
# ## 3. Batch normalization, forward
#
# For an activation $x$ of shape $(N, C, H, W)$, batch norm computes for each channel $c$ the
# mean and the *biased* variance over the $m = N H W$ values that share it,
#
# $$\mu_c = \frac{1}{m} \sum_{n,h,w} x_{nchw}, \qquad
# \sigma_c^2 = \frac{1}{m} \sum_{n,h,w} (x_{nchw} - \mu_c)^2,$$
#
# standardizes, and applies a learned per-channel scale and shift:
#
# $$\hat x_{nchw} = \frac{x_{nchw} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}}, \qquad
# y_{nchw} = \gamma_c \hat x_{nchw} + \beta_c .$$
#
# $\gamma$ and $\beta$ give the layer back its freedom: with $\gamma_c = \sigma_c$ and
# $\beta_c = \mu_c$ it could undo the normalization. For a fully connected layer, $x$ is $(N, C)$
# and the statistics run over the batch only.
#
# `helpers.numpy_norm.batch_norm` is these two lines, vectorized over all channels. It matches
# `torch.nn.functional.batch_norm` in float64:

# %% tags=["nbval-check-output"]
x = rng.standard_normal((8, 3, 5, 5)) * 2.5 + 1.0
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
y = nn_np.batch_norm(x, gamma, beta, None, None, training=True)
y_torch = F.batch_norm(torch.from_numpy(x), None, None, torch.from_numpy(gamma),
                       torch.from_numpy(beta), training=True)
forward_error = rel_error(y, y_torch.numpy())
assert forward_error < 1e-12, "NumPy batch_norm disagrees with torch"
x_hat = nn_np.batch_norm(x, None, None, None, None, training=True)
print("x_hat per channel: mean 0:", np.allclose(x_hat.mean(axis=(0, 2, 3)), 0),
      "| variance 1:", np.allclose(x_hat.var(axis=(0, 2, 3)), 1, atol=1e-4))
print("batch_norm matches torch.nn.functional.batch_norm (relative error < 1e-12):", forward_error < 1e-12)

# %% [markdown]
# ## 4. Batch normalization, backward — two ways
#
# Let $\delta_{nchw} = \partial L / \partial y_{nchw}$. The scale and shift are easy:
# $\partial L/\partial \beta_c = \sum \delta$ and $\partial L/\partial \gamma_c = \sum \delta\, \hat x$,
# sums over $(n, h, w)$. The input's gradient is harder, because $x$ enters three times: directly,
# through $\mu_c$ and through $\sigma_c^2$.
#
# **The three-term way** (the chain rule through the graph, as in the source notes). With
# $g = \gamma \delta = \partial L/\partial \hat x$ and sums over one channel's $m$ values,
#
# $$\frac{\partial L}{\partial \sigma^2} = -\frac{1}{2} (\sigma^2 + \epsilon)^{-3/2}
#   \sum_i g_i (x_i - \mu), \qquad
# \frac{\partial L}{\partial \mu} = -\frac{1}{\sqrt{\sigma^2 + \epsilon}} \sum_i g_i
#   + \frac{\partial L}{\partial \sigma^2} \cdot \frac{-2}{m} \sum_i (x_i - \mu),$$
#
# $$\frac{\partial L}{\partial x_i} = \frac{g_i}{\sqrt{\sigma^2+\epsilon}}
#   + \frac{\partial L}{\partial \sigma^2} \frac{2 (x_i - \mu)}{m}
#   + \frac{1}{m} \frac{\partial L}{\partial \mu}.$$
#
# (The second term of $\partial L/\partial\mu$ is zero, since deviations from the mean sum to
# zero. Beware of the shortcut $\partial\,\mathrm{BN}(x)/\partial x = \gamma / \sqrt{\sigma^2 +
# \epsilon}$ found in some notes: it is only the first term, and it is wrong for a batch.)
#
# **The compact way.** Substituting the first two into the third and writing means over the
# channel's values:
#
# $$\frac{\partial L}{\partial x_i} = \frac{1}{\sqrt{\sigma^2+\epsilon}}
#   \Bigl(g_i - \overline{g} - \hat x_i\, \overline{g \hat x}\Bigr).$$
#
# The gradient is $g$ with its mean and its component along $\hat x$ removed: shifting all
# inputs of a channel, or scaling them, does not change $\hat x$, so the gradient has no
# component in those directions. Both ways in NumPy:

# %%
def batch_norm_backward_three_terms(dy, x, gamma, eps=1e-5):
    """dx of training-mode batch norm by the chain rule through mu and sigma^2, x (N, C, H, W)."""
    axes, m = (0, 2, 3), x.size // x.shape[1]
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    g = dy * gamma.reshape(1, -1, 1, 1)
    d_var = -0.5 * (var + eps) ** -1.5 * (g * (x - mu)).sum(axis=axes, keepdims=True)
    d_mu = -g.sum(axis=axes, keepdims=True) / np.sqrt(var + eps)
    return g / np.sqrt(var + eps) + d_var * 2 * (x - mu) / m + d_mu / m


# %% [markdown]
# `nn_np.batch_norm_backward` implements the compact form. Both agree with each other, with
# PyTorch's autograd and with centred differences:

# %% tags=["nbval-check-output"]
dy = rng.standard_normal(x.shape)
x_t = torch.from_numpy(x).requires_grad_()
g_t, b_t = torch.from_numpy(gamma).requires_grad_(), torch.from_numpy(beta).requires_grad_()
F.batch_norm(x_t, None, None, g_t, b_t, training=True).backward(torch.from_numpy(dy))
dx, dgamma, dbeta = nn_np.batch_norm_backward(dy, x, gamma)
dx_three = batch_norm_backward_three_terms(dy, x, gamma)
small = x[:3, :, :2, :2].copy()  # a small input for the numerical gradient
dy_small = dy[:3, :, :2, :2]
numeric = numerical_gradient(
    lambda: np.sum(nn_np.batch_norm(small, gamma, beta, None, None, True) * dy_small), small)
backward_errors = {
    "three-term vs compact": rel_error(dx_three, dx),
    "compact vs autograd (dx)": rel_error(dx, x_t.grad.numpy()),
    "dgamma vs autograd": rel_error(dgamma, g_t.grad.numpy()),
    "dbeta vs autograd": rel_error(dbeta, b_t.grad.numpy()),
}
numeric_error = rel_error(nn_np.batch_norm_backward(dy_small, small, gamma)[0], numeric)
backward_ok = max(backward_errors.values()) < 1e-9 and numeric_error < 1e-6
assert backward_ok, "a backward form disagrees with autograd or the numerical gradient"
print("both backward forms agree with autograd and numerical gradients:", backward_ok)
cosine = (dx * x_hat).sum(axis=(0, 2, 3)) / np.sqrt((dx**2).sum(axis=(0, 2, 3)) * (x_hat**2).sum(axis=(0, 2, 3)))
print("dx sums to 0 per channel:", np.allclose(dx.sum(axis=(0, 2, 3)), 0),
      "| dx is orthogonal to x_hat (up to eps):", bool(np.all(np.abs(cosine) < 1e-5)))

# %%
for name, err in {**backward_errors, "compact vs numerical": numeric_error}.items():
    print(f"{name:26s} relative error {err:.1e}")

# %% [markdown]
# ## 5. Running statistics, training and evaluation
#
# At test time a prediction must not depend on which other images share its batch, and a single
# image has no batch statistics at all. So during training batch norm also keeps an exponential
# moving average of each channel's statistics, and evaluation uses those instead. PyTorch's rule,
# with `momentum` $= 0.1$ by default, is
#
# $$\hat\mu \leftarrow (1 - \text{momentum})\,\hat\mu + \text{momentum}\cdot\mu_B, \qquad
# \hat\sigma^2 \leftarrow (1 - \text{momentum})\,\hat\sigma^2 + \text{momentum}\cdot
#   \frac{m}{m-1}\sigma_B^2 .$$
#
# Note the **unbiased** variance $\frac{m}{m-1}\sigma_B^2$ in the running estimate, while the
# normalization itself uses the biased $\sigma_B^2$. (PyTorch's `momentum` weighs the *new*
# value; Keras' `momentum` weighs the old one — $0.99$ there is $0.01$ here.)
#
# `nn_np.batch_norm` updates the running arrays in place when `training=True`. After sixty
# mini-batches from channels of mean 3 and variances 1, 4 and 0.25, its running statistics equal
# those of `nn.BatchNorm2d` and are close to the true ones:

# %% tags=["nbval-check-output"]
bn = nn.BatchNorm2d(3, dtype=torch.float64)
running_mean, running_var = np.zeros(3), np.ones(3)
for _ in range(60):
    batch = rng.standard_normal((4, 3, 5, 5)) * np.array([1.0, 2.0, 0.5]).reshape(1, 3, 1, 1) + 3
    bn(torch.from_numpy(batch))
    nn_np.batch_norm(batch, None, None, running_mean, running_var, training=True)
running_error = max(rel_error(running_mean, bn.running_mean.numpy()),
                    rel_error(running_var, bn.running_var.numpy()))
assert running_error < 1e-12, "running statistics disagree with nn.BatchNorm2d"
print("running mean and variance match nn.BatchNorm2d (relative error < 1e-12):", running_error < 1e-12)
print("running mean near 3:", np.allclose(running_mean, 3, rtol=0.1),
      "| running variance near 1, 4, 0.25:", np.allclose(running_var, [1, 4, 0.25], rtol=0.25))

# %% [markdown]
# In evaluation mode the layer is a fixed affine map per channel, so a single example can be
# predicted, and its prediction does not depend on its neighbours. In training mode the output
# for one example changes with the rest of the batch:

# %% tags=["nbval-check-output"]
one = batch[:1]
others_a, others_b = np.concatenate([one, batch[1:]]), np.concatenate([one, 3 * batch[1:]])
train_a = nn_np.batch_norm(others_a, gamma, beta, None, None, training=True)[0]
train_b = nn_np.batch_norm(others_b, gamma, beta, None, None, training=True)[0]
eval_single = nn_np.batch_norm(one, gamma, beta, running_mean, running_var, training=False)
eval_a = nn_np.batch_norm(others_a, gamma, beta, running_mean, running_var, training=False)[0]
print("training mode: example 0 depends on the rest of its batch:", not np.allclose(train_a, train_b))
print("eval mode: example 0 alone = example 0 in a batch:", np.allclose(eval_single[0], eval_a))
bn.eval()
eval_error = rel_error(bn(torch.from_numpy(one)).detach().numpy(),
                       nn_np.batch_norm(one, None, None, running_mean, running_var, False))
print("eval mode matches nn.BatchNorm2d.eval():", eval_error < 1e-12)

# %% [markdown]
# A batch of one cannot be normalized in training mode for an $(N, C)$ input: there is a single
# value per channel, its variance is 0 and $\hat x$ would be $0/0$. The NumPy version refuses:

# %% tags=["raises-exception", "nbval-check-output"]
nn_np.batch_norm(np.ones((1, 3)), None, None, None, None, training=True)

# %% [markdown]
# and so does PyTorch's:

# %% tags=["raises-exception"]
F.batch_norm(torch.ones(1, 3), None, None, training=True)

# %% [markdown]
# Forgetting `model.eval()` before testing is a classic bug: predictions then depend on the test
# batch's composition and on its size. `training.evaluate` switches the model to evaluation mode
# for you and back afterwards.
#
# ## 6. Layer, group and instance normalization
#
# Batch norm shares statistics across the examples of a batch. The alternatives compute them
# **per example**, so they behave identically in training and evaluation and do not care about
# the batch size. They differ only in which axes share a mean and a variance:
#
# | method | statistics over | one pair $(\mu, \sigma^2)$ per |
# |---|---|---|
# | batch norm | $(N, H, W)$ | channel |
# | layer norm | $(C, H, W)$ | example |
# | group norm, $G$ groups | $(C/G, H, W)$ | example and group of $C/G$ channels |
# | instance norm | $(H, W)$ | example and channel |
#
# Group norm (Wu and He, 2018) contains the other two per-example methods: $G = 1$ is layer norm
# and $G = C$ is instance norm. All of them keep the per-channel $\gamma_c, \beta_c$. In the
# figure, each colour is one set of statistics; every cell stands for all $H \times W$ pixels of
# one channel of one example.

# %%
n_ex, n_ch, groups = 3, 6, 2  # 18 instance-norm sets: each of the 20 colours used once at most
ex, ch = np.meshgrid(np.arange(n_ex), np.arange(n_ch), indexing="ij")
shared = {
    "batch norm: over (N, H, W)": ch,
    "layer norm: over (C, H, W)": ex,
    f"group norm, G={groups}: over (C/G, H, W)": ex * groups + ch // (n_ch // groups),
    "instance norm: over (H, W)": ex * n_ch + ch,
}
fig, axes = plotting.subplots(1, 4, figsize=(12, 3.2))
for ax, (title, ids) in zip(axes, shared.items(), strict=True):
    assert ids.max() < 20, "more sets than tab20 colours"
    ax.imshow(ids, cmap="tab20", vmin=0, vmax=19)
    for (n, c), k in np.ndenumerate(ids):
        ax.text(c, n, str(k), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(n_ch)), ax.set_yticks(range(n_ex))
    ax.set(title=title, xlabel="channel c", ylabel="example n")
    ax.grid(False)
fig.suptitle("Which values share a mean and variance (one colour = one set)")
fig

# %% [markdown]
# `nn_np.group_norm` reshapes $x$ to $(N, G, C/G \cdot H W)$ and standardizes each row;
# `layer_norm` and `instance_norm` call it with $G = 1$ and $G = C$. Against PyTorch:

# %% tags=["nbval-check-output"]
x = rng.standard_normal((4, 6, 5, 5)) * 3 - 1
gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
xt, gt, bt = (torch.from_numpy(a) for a in (x, gamma, beta))
per_channel = (gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1))
parity = {
    "group_norm, G=2 vs F.group_norm": rel_error(nn_np.group_norm(x, 2, gamma, beta),
                                                 F.group_norm(xt, 2, gt, bt).numpy()),
    "group_norm, G=3 vs F.group_norm": rel_error(nn_np.group_norm(x, 3, gamma, beta),
                                                 F.group_norm(xt, 3, gt, bt).numpy()),
    "layer_norm vs F.layer_norm": rel_error(
        nn_np.layer_norm(x, gamma, beta),
        F.layer_norm(xt, x.shape[1:]).numpy() * per_channel[0] + per_channel[1]),
    "instance_norm vs F.instance_norm": rel_error(nn_np.instance_norm(x, gamma, beta),
                                                  F.instance_norm(xt, weight=gt, bias=bt).numpy()),
}
dy = rng.standard_normal(x.shape)
xg = xt.clone().requires_grad_()
F.group_norm(xg, 3, gt, bt).backward(torch.from_numpy(dy))
parity["group_norm_backward vs autograd"] = rel_error(
    nn_np.group_norm_backward(dy, x, 3, gamma)[0], xg.grad.numpy())
assert max(parity.values()) < 1e-9, parity
for name, err in parity.items():
    print(f"{name}: relative error < 1e-9:", err < 1e-9)

# %%
for name, err in parity.items():
    print(f"{name:34s} relative error {err:.1e}")

# %% [markdown]
# ### No group count gives batch norm
#
# It is sometimes said that group norm with $G$ equal to the batch size is "approximately batch
# norm". It is not, for any $G$: every group lies inside one example, so group norm never mixes
# statistics across examples, while batch norm always does. With $G = 1$ it is layer norm
# (over $C, H, W$), with $G = C$ instance norm. Checked for every divisor of $C = 6$:

# %% tags=["nbval-check-output"]
bn_out = nn_np.batch_norm(x, None, None, None, None, training=True)
rescaled = x.copy()
rescaled[1:] *= 5  # change the other examples only
for g in (1, 2, 3, 6):
    gn_out = nn_np.group_norm(x, g, None, None)
    independent = np.allclose(gn_out[0], nn_np.group_norm(rescaled, g, None, None)[0])
    print(f"G={g}: equals batch norm: {np.allclose(gn_out, bn_out, atol=1e-3)}, "
          f"example 0 independent of the others: {independent}")
print("batch norm: example 0 independent of the others:",
      np.allclose(bn_out[0], nn_np.batch_norm(rescaled, None, None, None, None, True)[0]))

# %% [markdown]
# ### Weight standardization, briefly
#
# Qiao et al. (2019) normalize the *weights* instead of the activations: each filter $w_f$ of a
# convolution is standardized over its $C K_H K_W$ entries before use,
# $\hat w_f = (w_f - \operatorname{mean}(w_f)) / \operatorname{std}(w_f)$. Paired with group norm
# it recovers much of batch norm's benefit without any dependence on the batch. A standardized
# convolution ignores the scale of its raw weights:

# %% tags=["nbval-check-output"]
def standardize_weights(w, eps=1e-5):
    """w (F, C, KH, KW) -> each filter with mean 0 and variance 1 over (C, KH, KW)."""
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    return (w - mean) / torch.sqrt(w.var(dim=(1, 2, 3), keepdim=True, unbiased=False) + eps)


w = torch.randn(8, 6, 3, 3, dtype=torch.float64)
y1 = F.conv2d(xt, standardize_weights(w))
y10 = F.conv2d(xt, standardize_weights(10 * w + 3))
print("standardized conv: output unchanged by w -> 10 w + 3:", torch.allclose(y1, y10, atol=1e-6))

# %% [markdown]
# ### Instance norm and image style
#
# Instance norm standardizes every channel of every image over its own pixels, so it removes
# each image's brightness and contrast: $a x + b$ (for $a > 0$) and $x$ give the same output.
# That is why it appeared in fast style transfer (Ulyanov, Vedaldi and Lempitsky, 2016): a
# stylization network should not care about the contrast of the photo it is given, and adaptive
# instance norm (Huang and Belongie, 2017) goes one step further, replacing each channel's mean
# and standard deviation by those of a style image. A small demonstration on four clothing
# images, each given a different contrast and brightness:

# %% tags=["nbval-check-output"]
clothes = data.load_fashion_mnist(train_size=100, val_fraction=0.05, seed=SEED).train.x[:4].astype(np.float64)
contrast = np.array([0.3, 1.0, 2.0, 4.0]).reshape(4, 1, 1, 1)
shifted = contrast * clothes + np.array([0.5, 0.0, -1.0, 2.0]).reshape(4, 1, 1, 1)
restored = nn_np.instance_norm(shifted, None, None, eps=1e-12)
contrast_error = np.abs(restored - nn_np.instance_norm(clothes, None, None, eps=1e-12)).max()
print("instance norm removes per-image contrast and brightness (max difference < 1e-6):",
      contrast_error < 1e-6)

# %%
fig, axes = plotting.subplots(2, 4, figsize=(8, 4.2))
for k in range(4):
    axes[0, k].imshow(shifted[k, 0], cmap="gray", vmin=-1, vmax=6)
    axes[0, k].set_title(f"{contrast[k, 0, 0, 0]:g} x + b")
    axes[1, k].imshow(restored[k, 0], cmap="gray")
    axes[1, k].set_title("instance norm")
for ax in axes.ravel():
    ax.set_axis_off()
fig.suptitle("Contrast and brightness changed (top, one grey scale), and after instance norm")
fig

# %% [markdown]
# ## 7. Normalization on the device, and what it buys
#
# In a network we use `nn.BatchNorm2d` and `nn.GroupNorm` (layer norm of feature maps is
# `nn.GroupNorm(1, C)`, instance norm `nn.GroupNorm(C, C)`), on the device in float32:

# %% tags=["nbval-check-output"]
x32 = torch.from_numpy(x).float().to(device)
layers = {"batch": nn.BatchNorm2d(6), "group": nn.GroupNorm(3, 6), "layer": nn.GroupNorm(1, 6),
          "instance": nn.GroupNorm(6, 6)}
numpy_versions = {
    "batch": lambda a: nn_np.batch_norm(a, None, None, None, None, True),
    "group": lambda a: nn_np.group_norm(a, 3, None, None),
    "layer": lambda a: nn_np.layer_norm(a, None, None),
    "instance": lambda a: nn_np.instance_norm(a, None, None),
}
for kind, layer in layers.items():
    with torch.no_grad():
        out = layer.to(device).train()(x32).double().cpu().numpy()
    err = np.abs(out - numpy_versions[kind](x)).max()
    assert err < 1e-4, f"{kind} norm on {device} disagrees with NumPy: {err:.1e}"
    print(f"{kind:8s} norm on the device matches NumPy float64 (max error < 1e-4):", err < 1e-4)

# %% [markdown]
# The experiments use Fashion-MNIST, downsampled to $14 \times 14$ (`data.downsample`) and cut
# to a stratified subset of `TRAIN_SIZE` training images, so that the many runs of this section
# fit the chapter's time budget on one CPU thread. The network: four $3 \times 3$ convolutions of `WIDTH` channels, each
# followed by a normalization layer (or none) and a ReLU, a $2 \times 2$ max pool after the
# second, global average pooling and a linear classifier. Convolutions are He-initialized and
# then multiplied by a scale; training is SGD with momentum 0.9. Every comparison runs both arms
# on the same `N_SEEDS` paired seeds (same initialization and data order) and prints the spread.

# %%
fashion = data.load_fashion_mnist(train_size=TRAIN_SIZE, val_fraction=VAL_FRACTION, seed=SEED)
fashion_train = data.Split(data.downsample(fashion.train.x), fashion.train.y)
fashion_val = data.Split(data.downsample(fashion.val.x)[:VAL_SIZE], fashion.val.y[:VAL_SIZE])
print(f"training images {fashion_train.x.shape}, validation images {fashion_val.x.shape}")
print("paired seeds:", SEEDS)


# %%
class WSConv2d(nn.Conv2d):
    """A convolution whose filters are standardized before use (weight standardization)."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / torch.sqrt(
            w.var(dim=(1, 2, 3), keepdim=True, unbiased=False) + 1e-5)
        return F.conv2d(x, w, self.bias, padding=self.padding)


def make_cnn(norm, scale=1.0, after_relu=False, ws=False, width=WIDTH, depth=4):
    """depth conv-norm-ReLU layers (conv-ReLU-norm with after_relu) on (N, 1, 14, 14) images."""
    layers, channels = [], 1
    for i in range(depth):
        conv = (WSConv2d if ws else nn.Conv2d)(channels, width, 3, padding=1, bias=norm == "none")
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        with torch.no_grad():
            conv.weight.mul_(scale)
        pair = [nn.ReLU(), models.norm_layer(norm, width)]
        layers += [conv, *(pair if after_relu else pair[::-1])]
        if i == depth // 2 - 1:
            layers.append(nn.MaxPool2d(2))
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    return nn.Sequential(*layers)


# %%
def train_run(norm, seed, lr=LEARNING_RATE, epochs=EPOCHS, weight_decay=0.0, callbacks=(), **kw):
    """Train make_cnn(norm, **kw) at one seed; returns (model, History); diverged: loss inf."""
    torch.manual_seed(seed)
    model = make_cnn(norm, **kw).to(device)
    train = data.DeviceLoader(*fashion_train, BATCH_SIZE, shuffle=True, seed=seed, device=device)
    val = data.DeviceLoader(*fashion_val, 500, device=device)
    # decay on conv and linear weights only, not on biases, gamma and beta (chapter 4, §2)
    opt = torch.optim.SGD(training.decay_groups(model, weight_decay), lr=lr, momentum=0.9)
    try:
        return model, training.fit(model, train, val, opt, epochs, callbacks=callbacks, progress=False)
    except FloatingPointError:  # diverged
        return model, training.History(train_loss=[math.inf], val_acc=[0.0])


def capped(loss):
    """A final loss for the claims: a diverged run (loss inf) counts as 3, as in the plots."""
    return min(loss, 3.0)


print("parameters with batch norm:", models.count_parameters(make_cnn("batch")),
      "| without:", models.count_parameters(make_cnn("none")))

# %% [markdown]
# ### A larger learning rate
#
# The smoother loss landscape of §2 shows as tolerance to large steps. To give the network
# without normalization a fair try, the sweep goes down to 0.01, where it learns only slowly,
# and each network is judged at its **own best** rate. The claims: **at every seed, the best
# batch-norm run ends with a training loss more than 0.1 lower than the best unnormalized run,
# and batch norm still trains (loss below 1.5) at the largest rate, where the unnormalized
# network stays at chance level (above 2.0) or diverges.**

# %%
lr_loss = {(norm, lr, s): train_run(norm, s, lr=lr)[1].train_loss[-1]
           for norm in ("batch", "none") for lr in LEARNING_RATES for s in SEEDS}
for norm in ("batch", "none"):
    per_lr = np.array([[lr_loss[norm, lr, s] for s in SEEDS] for lr in LEARNING_RATES])
    print(f"{norm:6s} final training loss per rate (rows) and seed (columns):\n", np.round(per_lr, 3))

# %%
best_lr = {norm: LEARNING_RATES[int(np.argmin([np.mean([lr_loss[norm, lr, s] for s in SEEDS])
                                               for lr in LEARNING_RATES]))] for norm in ("batch", "none")}
best_gap = np.array([min(lr_loss["none", lr, s] for lr in LEARNING_RATES)
                     - min(lr_loss["batch", lr, s] for lr in LEARNING_RATES) for s in SEEDS])
print("best rate per network:", best_lr)
print(f"best no-norm loss minus best batch-norm loss: {best_gap.mean():.3f} ± {best_gap.std(ddof=1):.3f}"
      f" (per seed {np.round(best_gap, 3)})")
top = LEARNING_RATES[-1]
claim("at its best rate batch norm ends with a training loss more than 0.1 below the unnormalized network's at its best (smallest paired gap)",
      best_gap.min(), above=0.1)
claim("batch norm still trains at the largest rate (worst final loss over the seeds)",
      max(capped(lr_loss["batch", top, s]) for s in SEEDS), below=1.5)
claim("the unnormalized network stays at chance or diverges at the largest rate (lowest final loss)",
      min(capped(lr_loss["none", top, s]) for s in SEEDS), above=2.0)

# %%
curves = {f"{norm} ({'batch norm' if norm == 'batch' else 'no normalization'})":
          np.minimum([np.mean([lr_loss[norm, lr, s] for s in SEEDS]) for lr in LEARNING_RATES], 3)
          for norm in ("batch", "none")}
plotting.plot_lines(np.array(LEARNING_RATES), curves, xlabel="learning rate (SGD, momentum 0.9)",
                    ylabel="final training loss (mean over seeds)", logx=True,
                    title="Learning-rate sweep (diverged runs drawn at 3)")

# %% [markdown]
# ### Robustness to the initial scale
#
# Without normalization, multiplying every convolution's weights by $s$ multiplies the logits by
# about $s^4$ through four layers: at $s = 1/4$ the signal all but vanishes, at $s = 4$ it
# explodes. With batch norm every layer's output is re-standardized, so the forward pass does not
# depend on $s$; only the effective step size does (larger weights, smaller steps, as the last
# experiment of this section explains). Each network runs at its own best rate from the sweep.
# The claims: **with batch norm every initial scale trains to a loss below 1.6 at every seed;
# without it, the extreme scales end at every seed more than 0.1 worse than $s = 1$, and more
# than 0.2 worse than batch norm.**

# %%
init_loss = {(norm, sc, s): lr_loss[norm, best_lr[norm], s] if sc == 1.0 else
             train_run(norm, s, lr=best_lr[norm], scale=sc)[1].train_loss[-1]
             for norm in ("batch", "none") for sc in INIT_SCALES for s in SEEDS}
for norm in ("batch", "none"):
    per_scale = np.array([[init_loss[norm, sc, s] for s in SEEDS] for sc in INIT_SCALES])
    print(f"{norm:6s} (lr {best_lr[norm]}) loss per scale {INIT_SCALES} (rows), seed (columns):\n",
          np.round(per_scale, 3))

# %%
extremes = [sc for sc in INIT_SCALES if sc != 1.0]
bn_worst = max(init_loss["batch", sc, s] for sc in INIT_SCALES for s in SEEDS)
extreme_gap = np.array([capped(init_loss["none", sc, s]) - init_loss["batch", sc, s]
                        for sc in extremes for s in SEEDS])
print(f"batch norm's worst loss over scales and seeds: {bn_worst:.3f}")
print(f"no-norm minus batch-norm loss at the extreme scales: {extreme_gap.mean():.3f} ± "
      f"{extreme_gap.std(ddof=1):.3f} (min {extreme_gap.min():.3f})")
claim("with batch norm every initial scale trains to a loss below 1.6 (worst over scales and seeds)",
      capped(bn_worst), below=1.6)
claim("without normalization the extreme scales end worse than batch norm at every seed (smallest gap)",
      extreme_gap.min(), above=0.2)
claim("without normalization the extreme scales end worse than the scale 1 at every seed (smallest gap)",
      min(capped(init_loss["none", sc, s]) - init_loss["none", 1.0, s] for sc in extremes for s in SEEDS),
      above=0.1)

# %%
plotting.plot_lines(np.array(INIT_SCALES),
                    {name: np.minimum([np.mean([init_loss[norm, sc, s] for s in SEEDS])
                                       for sc in INIT_SCALES], 3)
                     for name, norm in (("batch norm", "batch"), ("no normalization", "none"))},
                    xlabel="initial weight scale s (x He init)", ylabel="final training loss",
                    title=f"Init-scale sweep: 4-layer CNN, {EPOCHS} epochs, each at its best rate",
                    logx=True)

# %% [markdown]
# ### Batch norm needs a batch
#
# Batch norm estimates each channel's mean and variance from the mini-batch. First, how noisy is
# that estimate? The mean of $B$ independent draws has standard deviation $\sigma/\sqrt{B}$, and
# a batch mean over $B$ images (and their pixels) behaves the same way, because the pixels of one
# image are correlated and the images are the independent units. We draw 400 random batches of
# each size from the training images and measure the spread of their mean pixel value. The
# claim: **on a log-log scale the spread falls with slope between −0.6 and −0.4, i.e. about
# $1/\sqrt{B}$.**

# %%
noise_rng = np.random.default_rng(SEED)
noise_sizes = np.array(BATCH_SIZES)
image_means = fashion_train.x.mean(axis=(1, 2, 3))
batch_mean_std = np.array([np.std([image_means[noise_rng.choice(len(image_means), b, replace=False)].mean()
                                   for _ in range(400)]) for b in noise_sizes])
slope = np.polyfit(np.log(noise_sizes), np.log(batch_mean_std), 1)[0]
for b, spread in zip(noise_sizes, batch_mean_std, strict=True):
    print(f"B = {b:2d}: spread of the batch mean {spread:.4f}, times sqrt(B) {spread * np.sqrt(b):.4f}")
print(f"log-log slope: {slope:.3f} (1/sqrt(B) is -0.5)")
claim("the spread of the batch mean falls like 1/sqrt(B) (log-log slope)", slope, above=-0.6, below=-0.4)

# %% [markdown]
# We then train the network once per seed with each normalization (batch size 64; group norm
# with 4 groups of 3 channels, as `WIDTH` is 12; instance norm is group norm with one channel per group), and ask
# what it computes *in training mode* — with the statistics of the batch, as it does during
# training — when 256 validation images come in batches of 2 to 64, and compare with evaluation
# mode. (Training mode also updates the running statistics, so each measurement runs on a copy.)
#
# The claim: **at every seed, with batches of 2 batch norm's loss with batch statistics is more
# than 0.5 above its loss with batches of 64.** Checked as well, as a fact of the arithmetic
# rather than a measurement: group, layer and instance norm give the same loss at every batch
# size and in both modes. Batch norm's evaluation-mode loss is printed
# beside, not compared: it uses the running statistics, which can lag behind the final weights
# (the next subsection measures by how much).

# %%
trained = {(norm, s): train_run(norm, s) for norm in ("batch", "group", "layer", "instance") for s in SEEDS}
probe_set = data.Split(fashion_val.x[:256], fashion_val.y[:256])  # 256: every batch size divides it
probe_loader = data.DeviceLoader(*probe_set, 256, device=device)


def batch_statistics_loss(model, batch_size, seed):
    """Mean loss on probe_set in training mode, cut into random batches of batch_size."""
    model = copy.deepcopy(model).train()
    loader = data.DeviceLoader(*probe_set, batch_size, shuffle=True, seed=seed, device=device)
    with torch.no_grad():
        return float(np.mean([F.cross_entropy(model(xb), yb).item() for xb, yb in loader]))


# %%
batch_sweep = {(norm, s): [batch_statistics_loss(m, b, s) for b in BATCH_SIZES]
               for (norm, s), (m, _) in trained.items()}
eval_loss = {key: training.evaluate(m, probe_loader).loss for key, (m, _) in trained.items()}
for (norm, s), losses in batch_sweep.items():
    print(f"{norm:8s} seed {s}: loss with batch statistics per batch size", np.round(losses, 3),
          f"| eval mode {eval_loss[norm, s]:.3f}")

# %%
tiny_gap = np.array([batch_sweep["batch", s][0] - batch_sweep["batch", s][-1] for s in SEEDS])
tiny_vs_eval = np.array([batch_sweep["batch", s][0] - eval_loss["batch", s] for s in SEEDS])
print(f"batch norm, loss with batches of 2 minus batches of 64: {tiny_gap.mean():.3f} ± "
      f"{tiny_gap.std(ddof=1):.3f} (per seed {np.round(tiny_gap, 3)})")
print(f"batch norm, loss with batches of 2 minus eval mode (not compared): per seed {np.round(tiny_vs_eval, 3)}")
claim("with batches of 2 batch norm's loss is more than 0.5 above its loss with batches of 64 (smallest gap over the seeds)",
      tiny_gap.min(), above=0.5)
for norm in ("group", "layer", "instance"):
    spread = max(np.ptp(batch_sweep[norm, s] + [eval_loss[norm, s]]) for s in SEEDS)
    print(f"{norm:8s} norm: largest spread over batch sizes and modes {spread:.1e}")
    assert spread < 1e-4, f"{norm} norm depends on the batch: spread {spread:.1e}"

# %%
curves = {f"{norm} norm": np.mean([batch_sweep[norm, s] for s in SEEDS], axis=0)
          for norm in ("batch", "group", "layer", "instance")}
curves["batch norm, eval mode"] = [np.mean([eval_loss["batch", s] for s in SEEDS])] * len(BATCH_SIZES)
plotting.plot_lines(np.array(BATCH_SIZES), curves, xlabel="batch size (validation images)",
                    ylabel="cross-entropy loss (mean over seeds)", logx=True,
                    title="Training-mode loss against the batch size")

# %% [markdown]
# Instance norm is batch-independent too, but it trains poorly here (its loss is the highest of
# the four in the printout): it removes every channel's mean over the image's pixels at every
# layer, and this classifier reads exactly those means through its global average pooling —
# the per-image contrast that instance norm is *meant* to discard (§6) carries the class here.
#
# The noisy statistics are what a network trained with tiny batches sees at every step, and what
# it is then tested without: training and evaluation no longer compute the same function. Wu and
# He (2018) measured the consequence on ImageNet — batch norm's error rose steeply below about 8
# images per batch while group norm's stayed flat — which is why detection and segmentation
# models, trained with one or two large images per GPU, use group norm (or batch norm frozen in
# evaluation mode).
#
# ### The train/eval gap at a normal batch size
#
# Even at batch 64 the two modes differ. Two things separate them: (a) evaluation uses the
# **running** statistics, an exponential average over roughly the last $1/\text{momentum} = 10$
# steps, taken while the weights were still changing, so they lag behind the final network; and
# (b) in training mode each batch is normalized with its own statistics, which differ from the
# population's by the noise just measured. (a) can be removed: recompute the running statistics
# with the final weights, as the exact average over the training set (PyTorch does that with
# `momentum=None`), and evaluate again.

# %%
def recomputed_eval_loss(model):
    """Eval-mode loss on probe_set after re-estimating BN statistics over the training set."""
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for xb, _ in data.DeviceLoader(*fashion_train, 250, device=device):
            model(xb)
    return training.evaluate(model, probe_loader).loss


gap_rows = np.array([(batch_sweep["batch", s][-1], eval_loss["batch", s],
                      recomputed_eval_loss(trained["batch", s][0])) for s in SEEDS])
for s, (train_mode, ev, ev_fresh) in zip(SEEDS, gap_rows, strict=True):
    print(f"seed {s}: training mode, batches of 64 {train_mode:.3f} | eval, running statistics "
          f"{ev:.3f} | eval, recomputed statistics {ev_fresh:.3f}")

# %% [markdown]
# The claim, checked at every seed: **with recomputed statistics the evaluation loss is within
# 0.2 of the training-mode loss with batches of 64.** The evaluation loss with the running
# statistics is reported as measured, in the printout above: the running statistics lag when the
# weights still move in the last steps, because the running averages then mix in statistics of
# older weights, and how much that costs varies from run to run (compare the second and third
# columns above). Recomputing removes (a) whatever its size. What
# remains is (b), the noise of each batch's own statistics, small at batch 64 and growing as the
# batch shrinks, as the $1/\sqrt{B}$ measurement predicts and the batch-of-2 losses show in the
# extreme.

# %%
fresh_gap = np.abs(gap_rows[:, 2] - gap_rows[:, 0])
print(f"|recomputed eval loss - training-mode loss at batch 64|: per seed {np.round(fresh_gap, 3)}")
claim("with recomputed statistics the evaluation loss is within 0.2 of the training-mode loss at batch 64 (largest distance)",
      fresh_gap.max(), below=0.2)

# %% [markdown]
# ### Batch norm before or after the activation
#
# The original paper puts batch norm between the convolution and the ReLU; many later codes put
# it after the ReLU. Both arms below train at the default rate `LEARNING_RATE` on the same
# seeds (the "before" arm is the network of the batch-size experiment); the difference is
# reported as measured, without a claim.

# %%
order = {**{("before ReLU", s): trained["batch", s][1] for s in SEEDS},
         **{("after ReLU", s): train_run("batch", s, after_relu=True)[1] for s in SEEDS}}
order_gap = np.array([order["after ReLU", s].val_acc[-1] - order["before ReLU", s].val_acc[-1] for s in SEEDS])
order_loss = np.array([order["after ReLU", s].train_loss[-1] - order["before ReLU", s].train_loss[-1] for s in SEEDS])
for key, h in order.items():
    print(f"{key[0]:11s} seed {key[1]}: training loss {h.train_loss[-1]:.3f}, validation accuracy {h.val_acc[-1]:.1%}")
print(f"after minus before: validation accuracy {order_gap.mean():+.1%} ± {order_gap.std(ddof=1):.1%}, "
      f"training loss {order_loss.mean():+.3f} ± {order_loss.std(ddof=1):.3f}")

# %% [markdown]
# ### Weight standardization in a network
#
# Weight standardization (§6) is meant to be paired with group norm. The `WSConv2d` above
# standardizes each filter in its forward pass; here it replaces the convolutions of the
# group-norm network, trained on the same seeds and learning rate. Reported as measured:

# %%
ws_runs = {s: train_run("group", s, ws=True)[1] for s in SEEDS}
ws_gain = np.array([ws_runs[s].val_acc[-1] - trained["group", s][1].val_acc[-1] for s in SEEDS])
ws_loss = np.array([ws_runs[s].train_loss[-1] - trained["group", s][1].train_loss[-1] for s in SEEDS])
for s in SEEDS:
    print(f"seed {s}: group norm {trained['group', s][1].val_acc[-1]:.1%}, "
          f"group norm + weight standardization {ws_runs[s].val_acc[-1]:.1%} validation accuracy")
print(f"weight standardization's change: validation accuracy {ws_gain.mean():+.1%} ± {ws_gain.std(ddof=1):.1%}, "
      f"training loss {ws_loss.mean():+.3f} ± {ws_loss.std(ddof=1):.3f}")

# %% [markdown]
# ### Weight decay and scale invariance
#
# Chapter 4, §3 checks the identity below and measures the effective learning rate it implies;
# here we derive it and follow its consequence for weight decay. A convolution
# followed by batch norm is **scale invariant** in its weights: replacing $w$ by $a w$ ($a > 0$)
# scales the convolution's output and its batch standard deviation by $a$, and $\hat x$ is
# unchanged (exactly so as $\epsilon \to 0$; the check below uses a tiny $\epsilon$). The
# gradient then scales by $1/a$: $\nabla_{a w} L = \frac{1}{a} \nabla_w L$. Checked with autograd:

# %% tags=["nbval-check-output"]
probe = torch.from_numpy(fashion_train.x[:32]).double()
conv_w = torch.randn(8, 1, 3, 3, dtype=torch.float64)
target = torch.randn(32, 8, 14, 14, dtype=torch.float64)


def loss_and_grad(weight):
    weight = weight.clone().requires_grad_()
    out = F.batch_norm(F.conv2d(probe, weight, padding=1), None, None, training=True, eps=1e-12)
    loss = ((out - target) ** 2).mean()
    loss.backward()
    return loss.item(), weight.grad


(l1, g1), (l10, g10) = loss_and_grad(conv_w), loss_and_grad(10 * conv_w)
print("loss unchanged by w -> 10 w:", math.isclose(l1, l10, rel_tol=1e-8))
print("gradient divided by 10:", rel_error(10 * g10.numpy(), g1.numpy()) < 1e-6)

# %% [markdown]
# So for these weights, weight decay cannot act as a regularizer in the usual sense — the
# function does not depend on $\lVert w\rVert$. What it changes is the **effective learning
# rate**. The gradient is orthogonal to $w$ (a scale-invariant function does not change along
# $w$), so a plain SGD step only *grows* the norm, and it moves the direction $w/\lVert w\rVert$
# by about $\eta \lVert\nabla_w L\rVert / \lVert w\rVert \propto \eta / \lVert w\rVert^2$.
# Without weight decay the norm grows and learning slows down by itself; weight decay keeps the
# norm small and the effective step large (van Laarhoven, 2017; Zhang et al., 2019). The runs
# use momentum 0.9, which sums past gradients; each of them is orthogonal to the weights of its
# own step, not of the current one, so the argument holds only approximately there.
#
# The linear classifier at the end is *not* scale invariant, and neither are $\gamma$ and
# $\beta$. Following chapter 4's advice, the optimizer gets two **parameter groups**: weight
# decay on the convolution and linear weights, none on $\gamma$, $\beta$ and the biases
# (`train_run` builds them from the parameters' dimensions). The claim, on the batch-norm CNN:
# **at every seed, without weight decay the convolution weights' norm grows to more than 1.02
# times its initial value; with weight decay it ends below 0.8 times the norm without.** The
# accuracy effect is reported as measured.

# %%
class WeightNorms(training.Callback):
    """Records the norm of all convolution weights after every epoch."""

    def __init__(self):
        self.norms = []

    def on_train_begin(self, model, history):
        self.norms.append(self.norm(model))

    def on_epoch_end(self, epoch, model, history):
        self.norms.append(self.norm(model))

    @staticmethod
    def norm(model):
        convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
        return float(torch.sqrt(sum((w.detach() ** 2).sum() for w in convs)))


# %%
wd_runs = {}
for wd in (0.0, WEIGHT_DECAY):
    for s in SEEDS:
        recorder = WeightNorms()
        history = train_run("batch", s, epochs=WD_EPOCHS, weight_decay=wd, callbacks=[recorder])[1]
        wd_runs[wd, s] = (recorder.norms, history)
        print(f"weight decay {wd:g}, seed {s}: conv weight norm {recorder.norms[0]:.2f} -> "
              f"{recorder.norms[-1]:.2f}, training loss {history.train_loss[-1]:.3f}, "
              f"validation accuracy {history.val_acc[-1]:.1%}")

# %%
wd_acc = np.array([wd_runs[WEIGHT_DECAY, s][1].val_acc[-1] - wd_runs[0.0, s][1].val_acc[-1] for s in SEEDS])
print(f"weight decay's change in validation accuracy: {wd_acc.mean():+.1%} ± {wd_acc.std(ddof=1):.1%} "
      f"(per seed {', '.join(f'{a:+.1%}' for a in wd_acc)})")
growth = min(wd_runs[0.0, s][0][-1] / wd_runs[0.0, s][0][0] for s in SEEDS)
kept = max(wd_runs[WEIGHT_DECAY, s][0][-1] / wd_runs[0.0, s][0][-1] for s in SEEDS)
claim("without weight decay the conv weights' norm grows (smallest final/initial ratio)",
      growth, above=1.02)
claim("with weight decay the conv weights' norm ends below 0.8 times the norm without (largest ratio)",
      kept, below=0.8)

# %% [markdown]
# The norms behave as the argument predicts. The accuracy effect is printed above as measured:
# weight decay's change in validation accuracy differs widely between the two seeds (printed per
# seed), so these short runs on 1,000 images show no reliable accuracy effect of the larger
# effective step, either way. The last-epoch accuracy of these batch-norm runs also moves a lot
# from epoch to epoch (evaluation uses running statistics of a network trained at a large step).

# %%
plotting.plot_lines(np.arange(WD_EPOCHS + 1),
                    {f"weight decay {wd:g}": wd_runs[wd, SEED][0] for wd in (0.0, WEIGHT_DECAY)},
                    xlabel="epoch", ylabel="norm of all conv weights",
                    title=f"Scale-invariant weights with and without weight decay (seed {SEED})")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — batch norm backward.** Write `my_batch_norm_backward(dy, x, gamma, eps)` for
# training mode, returning `(dx, dgamma, dbeta)`, for $x$ of shape $(N, C)$ or $(N, C, H, W)$.
# Use the compact form of §4; no loops.

# %%
def my_batch_norm_backward(dy, x, gamma, eps):
    ### BEGIN SOLUTION
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) * inv_std
    g = dy * gamma.reshape(shape)
    dx = inv_std * (g - g.mean(axis=axes, keepdims=True)
                    - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))
    return dx, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_batch_norm_backward(my_batch_norm_backward)

# %% [markdown]
# **Exercise 2 — group norm.** Write `my_group_norm(x, num_groups, gamma, beta, eps)` for
# $x$ of shape $(N, C, H, W)$: consecutive channels form a group, statistics per example and
# group, a per-channel affine at the end.

# %%
def my_group_norm(x, num_groups, gamma, beta, eps):
    ### BEGIN SOLUTION
    n, c = x.shape[:2]
    xg = x.reshape(n, num_groups, -1)
    xg = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    return xg.reshape(x.shape) * gamma.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_group_norm(my_group_norm)

# %% [markdown]
# **Exercise 3 — folding batch norm into the convolution.** In evaluation mode, batch norm after
# a convolution is a fixed per-channel affine map, so it can be merged into the convolution's
# weights and bias — inference engines do this to save a layer. Write
# `fold_batch_norm(w, b, gamma, beta, mean, var, eps)` returning `(w_folded, b_folded)` such that
# `conv2d(x, w_folded, b_folded)` equals eval-mode batch norm (running statistics `mean`, `var`)
# of `conv2d(x, w, b)`. Shapes: `w` $(F, C, K_H, K_W)$, the others $(F,)$.

# %%
def fold_batch_norm(w, b, gamma, beta, mean, var, eps):
    ### BEGIN SOLUTION
    scale = gamma / np.sqrt(var + eps)
    return w * scale[:, None, None, None], scale * (b - mean) + beta
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_fold_batch_norm(fold_batch_norm)

# %% [markdown]
# **Exercise 4 — written: one image in training mode.** A colleague forgets `model.eval()` and
# classifies test images one at a time with the batch-norm CNN of §7, input $(1, 1, 14, 14)$.
# (a) Unlike the $(1, C)$ case of §5, nothing raises. Why? (b) What does each batch-norm layer
# then compute, and why are the predictions poor even though the network trained well?
# (c) Name two fixes, and say why group norm would not have had the problem.
#
# <details><summary>Answer</summary>
#
# (a) For a $(1, C, H, W)$ input the statistics of channel $c$ run over the
# $m = H W$ pixels of the one image ($m = 196$ in the first layer), so $m > 1$ and the variance
# is not zero. (b) Each layer standardizes every channel with that single image's own spatial
# mean and variance — it acts as instance norm, not as the batch norm the network was trained
# with, whose statistics were shared by 64 images. Per-image brightness and contrast, and the
# information of which channels are on average strongly active for this image, are removed, and
# the later layers see inputs unlike those of training; §7 measured that already batches of 2
# raise the loss far above its value with batches of 64. (The running statistics are also
# overwritten with this one image's.) (c) Call `model.eval()` (or use `training.evaluate`, which
# does) so that the running statistics are used; or, when single-example training-mode behaviour
# is needed, use a per-example normalization. Group norm computes the same statistics in both
# modes and never mixes examples, so a batch of one gives exactly what a batch of 64 gives (the
# spread < 1e-4 asserted in §7).
# </details>
#
# **Exercise 5 — explore (no check).** (a) Train the batch-norm network *with* batches of 2
# (learning rate scaled down by 32) and measure it as in §7: how far apart are its training-mode
# and evaluation-mode losses now? (b) Give group norm 1, 2, 6 and 12 groups: which is layer norm,
# which instance norm, and which trains best here?
#
# <details><summary>Answer</summary>
#
# (a) Now every training step normalizes with the statistics of two images, so the network
# learns to work with that noise, and its training-mode loss with batches of 2 is the one it was
# optimized for. Evaluation mode, though, uses running averages, which are much less noisy
# than any one batch of 2: the two modes still compute different functions, and the gap between
# their losses is what you measure (compare it with §7's network, trained with batches of 64).
# Reduce the learning rate as asked, or the noisy steps may not train at all.
# (b) With `WIDTH` = 12 channels, $G = 1$ is layer norm and $G = 12$ instance norm; 2 and 6 are
# group norms in between ($G$ must divide 12). Expect $G = 12$ to train worst, for the reason §7
# gives for instance norm (it removes the channel means that the global average pooling reads);
# which of 1, 2 and 6 is best is for the run to say, against the spread between paired seeds.
# </details>

# %% [markdown]
# ## Summary
#
# - Standardizing inputs with training-set statistics improves the conditioning of the loss;
#   on Fashion-MNIST's pixels the condition number falls more than 100-fold, though
#   correlated pixels keep it above a thousand.
# - Batch norm standardizes each channel over $(N, H, W)$ with the batch's biased variance and
#   re-scales with $\gamma, \beta$. Introduced against internal covariate shift, it is today
#   mainly understood as smoothing the loss landscape (Santurkar et al., 2018).
# - Its backward pass, derived through $\mu$ and $\sigma^2$ or in the compact form
#   $(g - \bar g - \hat x\,\overline{g\hat x})/\sqrt{\sigma^2+\epsilon}$, matches autograd to
#   float64 precision; the gradient has no component along the shift or the scale of the input.
# - Training keeps running averages (PyTorch's `momentum` weighs the new value; the running
#   variance is unbiased); evaluation uses them, so a single example can be predicted and
#   predictions do not depend on the batch. Forgetting `model.eval()` is a real bug.
# - Layer, group and instance norm use per-example statistics over $(C,H,W)$, $(C/G,H,W)$ and
#   $(H,W)$; no group count turns group norm into batch norm.
# - On Fashion-MNIST (1,000 images at 14x14, paired seeds), batch norm trained better than the
#   unnormalized network at each one's best learning rate, trained at every initial scale from
#   1/4 to 4 and at the largest rate, where the unnormalized network stayed at chance or diverged.
# - Batch statistics are noisy, about as $1/\sqrt{B}$; with batches of 2 batch norm's loss with
#   batch statistics rose far above its loss with batches of 64, while group, layer and instance
#   norm do not depend on the batch at all (instance norm, which removes each image's channel
#   means, trained poorly on this task). Batch norm's evaluation loss with running statistics
#   can lag behind the final weights; recomputing the statistics removes the lag. Weight
#   standardization helped group norm in the default run; batch norm before or after the ReLU
#   and weight decay are reported as measured, without a claim, and weight decay with parameter
#   groups controls the weights' norm and hence the effective learning rate rather than the
#   function.
