# %% [markdown]
# # Chapter 6 — Normalization
#
# A deep network is easiest to train when the numbers flowing through it stay on a sensible
# scale. This chapter starts from standardizing the input, then moves the same idea inside the
# network: batch normalization, its backward pass (derived two ways and checked to float64
# precision), its running statistics and its train/eval switch, and the batch-independent
# alternatives — layer, group and instance normalization. Experiments on the digits show what
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
# 5. show on real data that normalization makes training robust to the initial scale and the
#    learning rate, that batch norm degrades with tiny batches while group and layer norm do not,
#    and why weight decay still matters for scale-invariant weights.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
EPOCHS = 6  # epochs of each run in the init-scale and learning-rate sweeps
BATCH_SIZE = 64
LEARNING_RATE = 0.05  # SGD with momentum 0.9, unless a sweep says otherwise
INIT_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # multipliers of He-initialized convolution weights
LEARNING_RATES = (0.03, 0.3, 1.0)  # the learning-rate sweep
BATCH_SIZES = (2, 4, 8, 16, 32, 64)  # batch sizes at which the trained networks are measured
WEIGHT_DECAY = 5e-3  # for the weight-decay run
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
from helpers.device import best_device, describe
from helpers.gradcheck import numerical_gradient, rel_error
from helpers.reproducibility import seed_everything

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
print("device:", describe(device))

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
# same $\mu_j, \sigma_j$ are then applied to validation and test data. On the digits' 64 pixels
# (constant pixels dropped; a column of ones stands for the bias):

# %% tags=["nbval-check-output"]
digits = data.load_digits(seed=SEED)
pixels = digits.train.x.reshape(len(digits.train.x), -1).astype(np.float64)
varying = pixels.std(axis=0) > 1e-6
raw = pixels[:, varying] * 16  # the original 0..16 intensities
standardized = (raw - raw.mean(axis=0)) / raw.std(axis=0)


def condition_number(features):
    design = np.hstack([features, np.ones((len(features), 1))])
    return np.linalg.cond(design.T @ design / len(design))


cond_raw, cond_std = condition_number(raw), condition_number(standardized)
print(f"{varying.sum()} varying pixels of 64")
print(f"condition number: raw {cond_raw:.2g}, standardized {cond_std:.2g}")
print("standardizing improves the conditioning by more than 10x:", cond_raw > 10 * cond_std)

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
print("batch_norm matches torch.nn.functional.batch_norm:", True)

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
assert max(backward_errors.values()) < 1e-9 and numeric_error < 1e-6
print("both backward forms agree with autograd and numerical gradients:", True)
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
# value; Keras' `momentum` weighs the old one — 0.99 there is 0.01 here.)
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
print("running mean and variance match nn.BatchNorm2d:", True)
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
# value per channel, its variance is 0 and $\hat x$ would be $0/0$. Both PyTorch and the NumPy
# version refuse:

# %% tags=["raises-exception", "nbval-check-output"]
nn_np.batch_norm(np.ones((1, 3)), None, None, None, None, training=True)

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
n_ex, n_ch, groups = 4, 6, 2
ex, ch = np.meshgrid(np.arange(n_ex), np.arange(n_ch), indexing="ij")
shared = {
    "batch norm: over (N, H, W)": ch,
    "layer norm: over (C, H, W)": ex,
    f"group norm, G={groups}: over (C/G, H, W)": ex * groups + ch // (n_ch // groups),
    "instance norm: over (H, W)": ex * n_ch + ch,
}
fig, axes = plotting.subplots(1, 4, figsize=(12, 3.2))
for ax, (title, ids) in zip(axes, shared.items(), strict=True):
    ax.imshow(ids % 20, cmap="tab20", vmin=0, vmax=19)
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
for name in parity:
    print(f"{name}: match")

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
    print(f"{kind:8s} norm on the device matches NumPy float64:", True)

# %% [markdown]
# The experiments use one small CNN on the digits: four $3 \times 3$ convolutions of 16 channels,
# each followed by a normalization layer (or none) and a ReLU, a $2 \times 2$ max pool after the
# second, global average pooling and a linear classifier. Convolutions are He-initialized and
# then multiplied by a scale; training is SGD with momentum 0.9.

# %% tags=["nbval-check-output"]
def make_cnn(norm, width=16, depth=4, scale=1.0):
    """depth conv-norm-ReLU layers on (N, 1, 8, 8) digits, a max pool halfway, pooled head."""
    layers, channels = [], 1
    for i in range(depth):
        conv = nn.Conv2d(channels, width, 3, padding=1, bias=norm == "none")
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        with torch.no_grad():
            conv.weight.mul_(scale)
        layers += [conv, models.norm_layer(norm, width), nn.ReLU()]
        if i == depth // 2 - 1:
            layers.append(nn.MaxPool2d(2))
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    return nn.Sequential(*layers)


def train_run(norm, scale=1.0, lr=LEARNING_RATE, batch_size=BATCH_SIZE, epochs=EPOCHS,
              weight_decay=0.0, split=digits.train, callbacks=()):
    """Train make_cnn(norm, scale); returns its History (a diverged run: loss inf)."""
    torch.manual_seed(SEED)
    model = make_cnn(norm, scale=scale).to(device)
    train = data.DeviceLoader(*split, batch_size, shuffle=True, seed=SEED, device=device)
    val = data.DeviceLoader(*digits.val, 256, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    try:
        return training.fit(model, train, val, opt, epochs, callbacks=callbacks, progress=False)
    except FloatingPointError:  # diverged
        return training.History(train_loss=[math.inf], val_acc=[0.0])


print("parameters with batch norm:", models.count_parameters(make_cnn("batch")),
      "| without:", models.count_parameters(make_cnn("none")))

# %% [markdown]
# ### Robustness to the initial scale
#
# Without normalization, multiplying every convolution's weights by $s$ multiplies the logits by
# about $s^4$ through four layers: at $s = 1/4$ the signal all but vanishes, at $s = 4$ it
# explodes. With batch norm every layer's output is re-standardized, so the forward pass does not
# depend on $s$ at all; only the effective step size does (larger weights, smaller steps, as the
# last experiment of this section explains), so large scales train more slowly.
# The claim: **with batch norm, every initial scale in the sweep trains to less than half the
# chance-level loss $\ln 10 \approx 2.30$; without it, the extreme scales stay above 1.8.**

# %%
init_sweep = {norm: [train_run(norm, scale=s).train_loss[-1] for s in INIT_SCALES]
              for norm in ("batch", "none")}
for norm, losses in init_sweep.items():
    print(f"{norm:6s} final training loss per scale:", np.round(losses, 3))

# %%
bn_losses, plain_losses = np.array(init_sweep["batch"]), np.array(init_sweep["none"])
assert bn_losses.max() < 1.2, f"batch norm failed at some scale: {bn_losses}"
assert plain_losses[0] > 1.8 and plain_losses[-1] > 1.8, f"no-norm extremes trained: {plain_losses}"
assert plain_losses.max() > bn_losses.max() + 1.0

# %%
plotting.plot_lines(np.array(INIT_SCALES), {"batch norm": np.minimum(bn_losses, 3),
                                            "no normalization": np.minimum(plain_losses, 3)},
                    xlabel="initial weight scale s (x He init)", ylabel="final training loss",
                    title=f"Init-scale sweep: 4-layer CNN, {EPOCHS} epochs", logx=True)

# %% [markdown]
# ### A larger learning rate
#
# The smoother loss landscape of §2 shows as tolerance to large steps. The claim: **the batch-norm
# network trains (training loss below 0.6) at every rate of the sweep; the unnormalized one makes
# progress only at the smallest rate and stays at chance level (above 1.8) or diverges at 10 and
# 30 times that rate.**

# %%
lr_sweep = {norm: [train_run(norm, lr=lr).train_loss[-1] for lr in LEARNING_RATES]
            for norm in ("batch", "none")}
for norm, losses in lr_sweep.items():
    print(f"{norm:6s} final training loss per learning rate:", np.round(losses, 3))

# %%
bn_lr, plain_lr = np.array(lr_sweep["batch"]), np.array(lr_sweep["none"])
assert np.all(bn_lr < 0.6), f"batch norm failed at some learning rate: {bn_lr}"
assert plain_lr[0] < plain_lr[1:].min() - 0.3, f"no progress even at the modest rate: {plain_lr}"
assert np.all(plain_lr[1:] > 1.8), f"the unnormalized net trained at a large rate: {plain_lr}"

# %%
plotting.plot_lines(np.array(LEARNING_RATES), {"batch norm": np.minimum(bn_lr, 3),
                                               "no normalization": np.minimum(plain_lr, 3)},
                    xlabel="learning rate (SGD, momentum 0.9)", ylabel="final training loss",
                    title="Learning-rate sweep (diverged runs drawn at 3)", logx=True)

# %% [markdown]
# ### Batch norm needs a batch
#
# Batch norm estimates each channel's mean and variance from the mini-batch. With 64 images the
# estimates are good; with 2, every example is normalized with statistics dominated by itself and
# its single partner. Group and layer norm use one example at a time and cannot care.
#
# We train the network once with each normalization (batch size 64), then ask what it computes
# *in training mode* — with the statistics of the batch, as it does during training — when the
# validation digits (256 of them) come in batches of 2 to 64, and compare with evaluation mode. Group norm uses
# 4 groups of 4 channels. (Training mode also updates the running statistics, so each
# measurement runs on a copy of the network.)
#
# The claim: **with batches of 2, batch norm's loss with batch statistics is more than twice its
# evaluation-mode loss and higher than with batches of 64, while group and layer norm give the
# same loss at every batch size and in both modes.**

# %%
trained = {}
for norm in ("batch", "group", "layer"):
    torch.manual_seed(SEED)
    trained[norm] = make_cnn(norm).to(device)
    train_loader, val_loader, _ = digits.loaders(BATCH_SIZE, device=device, seed=SEED)
    opt = torch.optim.SGD(trained[norm].parameters(), lr=LEARNING_RATE, momentum=0.9)
    training.fit(trained[norm], train_loader, val_loader, opt, EPOCHS, desc=f"{norm} norm")


probe_set = data.Split(digits.val.x[:256], digits.val.y[:256])  # 256: every batch size divides it


def batch_statistics_loss(model, batch_size):
    """Mean loss on probe_set in training mode, cut into random batches of batch_size."""
    model = copy.deepcopy(model).train()
    loader = data.DeviceLoader(*probe_set, batch_size, shuffle=True, seed=SEED, device=device)
    with torch.no_grad():
        losses = [F.cross_entropy(model(xb), yb).item() for xb, yb in loader]
    return float(np.mean(losses))


probe_loader = data.DeviceLoader(*probe_set, 256, device=device)
batch_sweep = {f"{norm} norm": [batch_statistics_loss(m, b) for b in BATCH_SIZES]
               for norm, m in trained.items()}
eval_loss = {norm: training.evaluate(m, probe_loader).loss for norm, m in trained.items()}
for name, losses in batch_sweep.items():
    print(f"{name:10s} loss with batch statistics per batch size:", np.round(losses, 3))
print("evaluation-mode loss:", {k: round(v, 3) for k, v in eval_loss.items()})

# %%
bn_sweep = np.array(batch_sweep["batch norm"])
assert bn_sweep[0] > 2 * eval_loss["batch"], f"batch 2: {bn_sweep[0]:.3f} vs eval {eval_loss['batch']:.3f}"
assert bn_sweep[0] > bn_sweep[-1] + 0.1, f"no batch-size dependence: {bn_sweep}"
for norm in ("group", "layer"):
    spread = np.ptp(batch_sweep[f"{norm} norm"] + [eval_loss[norm]])
    assert spread < 1e-4, f"{norm} norm depends on the batch: spread {spread:.1e}"

# %%
curves = {**batch_sweep, "batch norm, eval mode": [eval_loss["batch"]] * len(BATCH_SIZES)}
plotting.plot_lines(np.array(BATCH_SIZES), curves, xlabel="batch size (validation digits)",
                    ylabel="cross-entropy loss", logx=True,
                    title="Training-mode loss against the batch size")

# %% [markdown]
# The noisy statistics are what a network trained with tiny batches sees at every step, and what
# it is then tested without: training and evaluation no longer compute the same function. Wu and
# He (2018) measured the consequence on ImageNet — batch norm's error rose steeply below about 8
# images per batch while group norm's stayed flat — which is why detection and segmentation
# models, trained with one or two large images per GPU, use group norm (or batch norm frozen in
# evaluation mode).

# %% [markdown]
# ### Weight decay and scale invariance
#
# A convolution followed by batch norm is **scale invariant** in its weights: replacing $w$ by
# $a w$ ($a > 0$) scales the convolution's output and its batch standard deviation by $a$, and
# $\hat x$ is unchanged (exactly so as $\epsilon \to 0$; the check below uses a tiny
# $\epsilon$). The gradient then scales by $1/a$: $\nabla_{a w} L = \frac{1}{a} \nabla_w L$.
# Checked with autograd:

# %% tags=["nbval-check-output"]
probe = torch.from_numpy(digits.train.x[:32]).double()
conv_w = torch.randn(8, 1, 3, 3, dtype=torch.float64)
target = torch.randn(32, 8, 8, 8, dtype=torch.float64)


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
# $w$), so plain SGD steps only *grow* the norm, and a step moves the direction $w/\lVert w\rVert$
# by about $\eta \lVert\nabla_w L\rVert / \lVert w\rVert \propto \eta / \lVert w\rVert^2$.
# Without weight decay the norm grows and learning slows down by itself; weight decay keeps the
# norm small and the effective step large (van Laarhoven, 2017; Zhang et al., 2019).
#
# The claim, on the batch-norm CNN: **without weight decay the convolution weights' norm grows
# above its initial value; with weight decay it ends smaller than without.**

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


norm_runs, wd_histories = {}, {}
for wd in (0.0, WEIGHT_DECAY):
    recorder = WeightNorms()
    wd_histories[f"weight decay {wd:g}"] = train_run("batch", epochs=WD_EPOCHS, weight_decay=wd,
                                                     callbacks=[recorder])
    norm_runs[f"weight decay {wd:g}"] = recorder.norms
for name, norms in norm_runs.items():
    h = wd_histories[name]
    print(f"{name}: conv weight norm {norms[0]:.2f} -> {norms[-1]:.2f}, "
          f"training loss {h.train_loss[-1]:.3f}, validation accuracy {h.val_acc[-1]:.1%}")

# %%
no_wd, with_wd = norm_runs["weight decay 0"], norm_runs[f"weight decay {WEIGHT_DECAY:g}"]
assert no_wd[-1] > 1.02 * no_wd[0], f"norm did not grow without weight decay: {no_wd}"
assert with_wd[-1] < 0.8 * no_wd[-1], f"weight decay did not keep the norm smaller: {with_wd}"

# %%
plotting.plot_lines(np.arange(WD_EPOCHS + 1), norm_runs, xlabel="epoch",
                    ylabel="norm of all conv weights", title="Scale-invariant weights with and without weight decay")

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
# **Exercise 4 — explore.** (a) Train the batch-norm network *with* batches of 2 (learning rate
# scaled down by 32) and measure it as in §7: how far apart are its training-mode and
# evaluation-mode losses now? (b) Give group norm 1, 2, 8 and 16 groups: which is layer norm,
# which instance norm, and which trains best here? (c) Why can batch norm not be used as is by a
# network that learns from one example at a time?

# %% [markdown]
# ## Summary
#
# - Standardizing inputs with training-set statistics improves the conditioning of the loss;
#   on the digits' pixels the condition number falls by orders of magnitude.
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
# - On the digits, batch norm made every initial scale from 1/4 to 4 and learning rates up to 1
#   trainable, while the unnormalized network stayed at chance at the extreme scales and at the
#   large rates; with batches of 2 its
#   batch-statistics loss was several times its evaluation loss, while group and layer norm do not
#   depend on the batch at all; and with it, weight decay controls the weights' norm and hence the
#   effective learning rate rather than the function.
