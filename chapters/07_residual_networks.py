# %% [markdown]
# # Chapter 7 — Residual networks
#
# More layers should never hurt: a deeper network could copy a shallower one and set its extra
# layers to the identity. Yet plain convolutional networks get *worse* — on the training set —
# beyond a certain depth. This chapter reproduces that degradation problem on the digits,
# explains why the shortcut connections of residual networks (He, Zhang, Ren and Sun, 2016) cure
# it, builds a residual block in NumPy with its backward pass, and then uses the book's ResNet
# builder (`helpers.models.resnet`) to train residual networks of the same depths.
#
# **Learning goals.** After this chapter you can
#
# 1. state the degradation problem and tell it apart from overfitting and from vanishing
#    gradients;
# 2. explain residual learning, $H(x) = F(x) + x$, and what the "+1" in
#    $\partial L/\partial x = \partial L/\partial y \,(1 + \partial F/\partial x)$ does to
#    gradients and to the variance of activations;
# 3. write a residual block's forward and backward pass in NumPy and check it;
# 4. choose between identity and projection shortcuts when a block changes the shape, and know
#    pre-activation blocks and the zero-initialized last batch-norm scale;
# 5. build plain and residual CNNs of any depth with `helpers.models`, and regularize a residual
#    network with stochastic depth (DropPath).

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
DEPTHS = (8, 14, 32)  # weighted layers of the plain and residual networks compared
WIDTHS = (8, 16, 32)  # channels of the three stages (8x8, 4x4 and 2x2 feature maps)
EPOCHS = 6  # epochs of every training run
N_SEEDS = 3  # paired seeds SEED, SEED + 1, ... for every training comparison
BATCH_SIZE = 64
LEARNING_RATE = 0.05  # SGD with momentum 0.9
DROP_PATH = 0.2  # stochastic-depth rate of the last block in the DropPath run
PROBE_DEPTH = 32  # depth of the single-stage networks whose gradients and variances we probe

# %%
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import checks, data, models, numpy_nn, numpy_resnet, plotting, training
from helpers.device import best_device, describe
from helpers.gradcheck import numerical_gradient, rel_error
from helpers.reproducibility import seed_everything

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
print("device:", describe(device))

# %% [markdown]
# ## 1. The degradation problem
#
# We build plain CNNs of increasing depth from the same parts: a $3 \times 3$ convolution, then
# three stages of two-convolution blocks (8, 16 and 32 channels; the second and third stage
# start by halving the image with stride 2), global average pooling and a linear classifier.
# Every convolution is followed by batch norm and a ReLU, so the signal is normalized at every
# layer — whatever goes wrong is not a badly scaled initialization. Counting convolutions and the
# classifier, a network with $n$ blocks per stage has $6n + 2$ layers. `models.plain_cnn` and
# `models.resnet` build exactly the same layers; the only difference is the shortcut.

# %% tags=["nbval-check-output"]
digits = data.load_digits(seed=SEED)
print(digits.summary())
for depth in DEPTHS:
    net = models.plain_cnn(depth, WIDTHS)
    layers = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in net.modules())
    print(f"depth {depth:2d}: {len(net.blocks):2d} blocks, {layers} weighted layers, "
          f"{models.count_parameters(net):,} parameters")

# %% [markdown]
# All networks are trained identically: SGD with momentum 0.9, the same learning rate, batches
# and epochs. What matters here is the **training** loss: a deeper network has more capacity, so
# if it fits the training set worse, the problem is optimization, not overfitting. One short run
# is noisy, so every depth is trained at `N_SEEDS` paired seeds: at each seed all depths (and,
# in §5, the residual networks) start from the same `torch.manual_seed` and see the batches in
# the same order.

# %%
PAIRED_SEEDS = [SEED + i for i in range(N_SEEDS)]


def train(model, seed, epochs=EPOCHS, desc=None):
    """Train model on the digits with the chapter's settings, batch order `seed`; returns its History."""
    train_loader, val_loader, _ = digits.loaders(BATCH_SIZE, device=device, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    return training.fit(model, train_loader, val_loader, opt, epochs, desc=desc)


def train_depths(build, prefix):
    """Train build(depth) at every depth and paired seed; returns {(depth, seed): History}."""
    histories = {}
    for seed in PAIRED_SEEDS:
        for depth in DEPTHS:
            torch.manual_seed(seed)
            histories[depth, seed] = train(build(depth).to(device), seed, desc=f"{prefix}-{depth}, seed {seed}")
    return histories

# %%
def final_losses(histories, prefix):
    """Print and return {depth: final training losses over the paired seeds, shape (N_SEEDS,)}."""
    finals = {d: np.array([histories[d, s].train_loss[-1] for s in PAIRED_SEEDS]) for d in DEPTHS}
    for d, losses in finals.items():
        val = np.mean([histories[d, s].val_acc[-1] for s in PAIRED_SEEDS])
        print(f"{prefix}-{d}: final training loss {losses.mean():.3f} ± {losses.std(ddof=1):.3f} "
              f"(min {losses.min():.3f}, max {losses.max():.3f}), mean validation accuracy {val:.1%}")
    return finals


plain_histories = train_depths(lambda depth: models.plain_cnn(depth, WIDTHS), "plain")
plain_final = final_losses(plain_histories, "plain")

# %% [markdown]
# The claims: **at every paired seed the deepest plain network ends with a training loss at
# least 0.3 higher than the shallowest, and on average over the seeds more than five times as
# high.** The cell prints the gap's spread over the seeds.

# %%
shallow, deep = min(DEPTHS), max(DEPTHS)
plain_gap = plain_final[deep] - plain_final[shallow]
plain_ratio = plain_final[deep].mean() / plain_final[shallow].mean()
print(f"plain-{deep} minus plain-{shallow}: {plain_gap.mean():.3f} ± {plain_gap.std(ddof=1):.3f} "
      f"(min {plain_gap.min():.3f}); ratio of the means {plain_ratio:.1f}")
assert plain_gap.min() > 0.3, f"no degradation at some seed: {plain_final}"
assert plain_ratio > 5, f"no degradation on average: {plain_final}"

# %% [markdown]
# This is not overfitting (the training loss itself is worse) and not a badly initialized
# signal (batch norm keeps every layer's activations standardized). The solver simply fails to
# find the good solutions that exist: the deeper network *could* represent the shallower one
# with its extra blocks set to the identity, but a stack of convolutions, ReLUs and
# normalizations does not find the identity easily.
#
# ## 2. Residual learning
#
# He et al. proposed to let each block learn only a correction to the identity. Instead of
# asking a block to compute the desired mapping $H(x)$, it computes $F(x) = H(x) - x$ and adds its
# input back through a **shortcut connection**:
#
# $$y = F(x) + x .$$
#
# If the identity is what is needed, the block only has to drive $F$ to zero, which weight decay
# and small weights do anyway. The shortcut also changes the backward pass. By the chain rule,
#
# $$\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
#   \left(1 + \frac{\partial F}{\partial x}\right),$$
#
# and through a stack of blocks $x_{l+1} = x_l + F_l(x_l)$ the gradient at block $l$ is
# $\frac{\partial L}{\partial x_L} \prod_{k=l}^{L-1} (1 + \partial F_k / \partial x_k)$: expanding
# the product, one term is $\partial L / \partial x_L$ itself, delivered to every block
# unattenuated. In a plain stack only the product $\prod_k \partial F_k/\partial x_k$ exists,
# and it can shrink or grow exponentially with depth.
#
# ### Gradients at initialization
#
# We measure it. For single-stage networks of depth 32 (fifteen blocks of 16 channels, so all
# layers have the same shape), with batch norm and without, we compute the gradient of the loss on
# one batch of digits at initialization and plot the norm of each convolution's weight gradient,
# input side on the left.

# %%
probe_x = torch.from_numpy(digits.train.x[:BATCH_SIZE]).to(device)
probe_y = torch.from_numpy(digits.train.y[:BATCH_SIZE]).to(device)


def gradient_norms(model):
    """Norm of each convolution's weight gradient (input side first) for one batch."""
    model.zero_grad()
    F.cross_entropy(model(probe_x), probe_y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Conv2d)]


grad_norms = {}
for norm in ("batch", "none"):
    for residual in (False, True):
        torch.manual_seed(SEED)
        net = models.resnet(PROBE_DEPTH, (16,), residual=residual, norm=norm).to(device)
        name = f"{'residual' if residual else 'plain'}, {'batch norm' if norm == 'batch' else 'no norm'}"
        grad_norms[name] = np.array(gradient_norms(net))
spread = {name: g.min() / g.max() for name, g in grad_norms.items()}
for name, s in spread.items():
    print(f"{name:22s} smallest / largest layer gradient norm: {s:.1e}")

# %%
plotting.plot_lines(np.arange(1, PROBE_DEPTH), grad_norms, xlabel="convolution (input side first)",
                    ylabel="weight-gradient norm", logy=True,
                    title=f"Per-layer gradient norms at initialization, depth {PROBE_DEPTH}")

# %% [markdown]
# Without normalization the plain network's gradient vanishes towards the input by many orders of
# magnitude; with batch norm it does the opposite and grows towards the input (a known effect of
# deep batch-normalized plain networks at initialization). In both residual networks the
# gradient norms stay within about one order of magnitude across all layers. The claim,
# checked: **for each normalization, the residual network's smallest-to-largest ratio of
# layer gradient norms is at least five times the plain network's.**

# %%
for label in ("batch norm", "no norm"):
    plain_s, res_s = spread[f"plain, {label}"], spread[f"residual, {label}"]
    assert res_s > 5 * plain_s, f"{label}: residual spread {res_s:.1e} vs plain {plain_s:.1e}"

# %% [markdown]
# ### The variance of the residual stream
#
# The shortcut also changes the forward pass. If $F(x)$ is roughly uncorrelated with $x$,
# $\operatorname{Var}(x + F(x)) = \operatorname{Var}(x) + \operatorname{Var}(F(x))$: every block
# adds its branch's variance to the stream. With batch norm at the end of the branch, each block
# adds about one unit, so the variance grows *linearly* with depth. Without normalization and
# with He-initialized convolutions, the branch's variance is proportional to its input's, so
# each block multiplies the variance by a constant and it grows *exponentially*. A plain
# batch-norm network re-normalizes at every block and stays flat; zero-initializing the last
# batch-norm scale of each branch (§4) makes every block the identity at the start, so the
# residual stream is flat too.

# %%
def block_variances(model):
    """Variance of the activations after the stem and after every block, at initialization."""
    with torch.no_grad():
        h = model.stem(probe_x)
        variances = [h.var().item()]
        for block in model.blocks:
            h = block(h)
            variances.append(h.var().item())
    return np.array(variances)


def he_init(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


variances = {}
for name, kwargs in {
    "residual, batch norm": dict(norm="batch"),
    "residual, no norm (He init)": dict(norm="none"),
    "residual, batch norm, zero-init last BN": dict(norm="batch", zero_init_residual=True),
    "plain, batch norm": dict(norm="batch", residual=False),
}.items():
    torch.manual_seed(SEED)
    variances[name] = block_variances(he_init(models.resnet(PROBE_DEPTH, (16,), **kwargs)).to(device).train())
growth = {name: v[-1] / v[0] for name, v in variances.items()}
for name, g in growth.items():
    print(f"{name:40s} variance after the last block / after the stem: {g:10.3g}")

# %%
plotting.plot_lines(np.arange(len(variances["plain, batch norm"])), variances, logy=True,
                    xlabel="block (0 = stem output)", ylabel="activation variance",
                    title="The residual stream's variance at initialization")

# %% [markdown]
# The claims, checked: **without normalization the variance grows by more than 100 times over
# the fifteen blocks (a constant factor per block); with batch norm it grows, but by less than 50 times and at least 3 times, about
# linearly; the plain batch-norm network and the zero-initialized residual network stay within a
# factor of 2.**

# %%
assert growth["residual, no norm (He init)"] > 100, growth
assert 3 < growth["residual, batch norm"] < 50, growth
v = variances["residual, batch norm"]
assert np.all(np.diff(v) > 0), "with batch norm the variance should increase at every block"
for name in ("plain, batch norm", "residual, batch norm, zero-init last BN"):
    assert 0.5 < growth[name] < 2, growth

# %% [markdown]
# ## 3. A residual block in NumPy
#
# `helpers.numpy_resnet` builds the basic block of the ResNet paper from the NumPy layers of
# the earlier chapters (`numpy_nn.conv2d`, `numpy_nn.relu`, `numpy_norm.batch_norm`): with $x$ of
# shape $(N, C, H, W)$ and two $3 \times 3$ convolutions of $C$ filters,
#
# $$z = \operatorname{relu}(\operatorname{BN}(\operatorname{conv}(x, w_1))), \qquad
# y = \operatorname{relu}\bigl(\operatorname{BN}(\operatorname{conv}(z, w_2)) + x\bigr).$$
#
# Its backward pass is the chain rule run in reverse through the same layers; the shortcut adds
# the gradient arriving at the sum directly to $\partial L/\partial x$ — the "1" of §2:
#
# ```python
# ds = relu_backward(dy, s)                       # s = BN(conv(z, w2)) + x
# dz2, dg2, db2 = batch_norm_backward(ds, z2, g2)
# ...
# dx, dw1, _ = conv2d_backward(dz1, x, w1, padding=1)
# dx = dx + ds                                    # the shortcut
# ```
#
# The backward pass passes a numerical gradient check:

# %% tags=["nbval-check-output"]
x_np = rng.standard_normal((2, 3, 5, 5))
params = numpy_resnet.init_residual_block(3, rng)
params["gamma2"] = rng.uniform(0.5, 1.5, 3)  # non-trivial scales and shifts
params["beta1"] = 0.1 * rng.standard_normal(3)
dy_np = rng.standard_normal(x_np.shape)
y_np, cache = numpy_resnet.residual_block(x_np, params)
dx_np, grads = numpy_resnet.residual_block_backward(dy_np, cache)


def block_loss():
    return np.sum(numpy_resnet.residual_block(x_np, params)[0] * dy_np)


numeric_errors = {"x": rel_error(dx_np, numerical_gradient(block_loss, x_np))}
for name in ("w1", "w2", "gamma1", "beta2"):
    numeric_errors[name] = rel_error(grads[name], numerical_gradient(block_loss, params[name]))
assert max(numeric_errors.values()) < 1e-6, numeric_errors
print("output:", y_np.shape, "| gradients match centred differences:", True)

# %% [markdown]
# And forward and backward match PyTorch: we copy the weights into the builder's
# `models.BasicBlock` (in float64, training mode) and compare with autograd.

# %% tags=["nbval-check-output"]
block = models.BasicBlock(3, 3).double().train()
with torch.no_grad():
    block.conv1.weight.copy_(torch.from_numpy(params["w1"]))
    block.conv2.weight.copy_(torch.from_numpy(params["w2"]))
    for bn, g, b in ((block.norm1, "gamma1", "beta1"), (block.norm2, "gamma2", "beta2")):
        bn.weight.copy_(torch.from_numpy(params[g]))
        bn.bias.copy_(torch.from_numpy(params[b]))
x_t = torch.from_numpy(x_np).requires_grad_()
y_t = block(x_t)
y_t.backward(torch.from_numpy(dy_np))
parity = {
    "output": rel_error(y_np, y_t.detach().numpy()),
    "dx": rel_error(dx_np, x_t.grad.numpy()),
    "dw1": rel_error(grads["w1"], block.conv1.weight.grad.numpy()),
    "dw2": rel_error(grads["w2"], block.conv2.weight.grad.numpy()),
    "dgamma2": rel_error(grads["gamma2"], block.norm2.weight.grad.numpy()),
}
assert max(parity.values()) < 1e-9, parity
print("NumPy residual block matches models.BasicBlock (forward and backward):", True)

# %%
for name, err in {**parity, **{f"numerical d{k}": e for k, e in numeric_errors.items()}}.items():
    print(f"{name:14s} relative error {err:.1e}")

# %% [markdown]
# ## 4. Blocks in PyTorch: shortcuts, pre-activation, zero init
#
# ### When the shape changes
#
# The first block of a stage halves the image with a stride-2 convolution and doubles the
# channels, so $x$ and $F(x)$ no longer have the same shape. The ResNet paper offers two
# shortcuts:
#
# - **identity with zero padding** (option A): take every second pixel of $x$ and append zero
#   channels. No parameters; the new channels start empty.
# - **projection** (option B): a $1 \times 1$ convolution with stride 2, followed by batch norm,
#   $W_s x$. It learns how to map the old channels to the new ones, at a cost in parameters.
#
# Between blocks of the same shape both are the identity. `models.resnet(..., shortcut=...)`
# chooses:

# %% tags=["nbval-check-output"]
x_stage = torch.randn(2, 8, 8, 8)
for kind in ("identity", "projection"):
    blk = models.BasicBlock(8, 16, stride=2, shortcut=kind)
    net = models.resnet(20, WIDTHS, shortcut=kind)
    print(f"{kind:10s}: block output {tuple(blk(x_stage).shape)}, shortcut parameters "
          f"{models.count_parameters(blk) - models.count_parameters(models.BasicBlock(8, 16, stride=2))}, "
          f"ResNet-20 parameters {models.count_parameters(net):,}")
padded = models.BasicBlock(8, 16, stride=2).shortcut(x_stage)
print("identity shortcut: first 8 channels are x[:, :, ::2, ::2]:",
      torch.equal(padded[:, :8], x_stage[:, :, ::2, ::2]), "| the other 8 are zero:",
      bool((padded[:, 8:] == 0).all()))

# %% [markdown]
# ### Pre-activation blocks
#
# In the original block a ReLU follows the addition, so the shortcut path is not a pure
# identity: the stream is rectified at every block. He et al.'s follow-up ("Identity Mappings in
# Deep Residual Networks", 2016) moves batch norm and ReLU *before* each convolution,
#
# $$y = x + \operatorname{conv}(\operatorname{relu}(\operatorname{BN}(
#   \operatorname{conv}(\operatorname{relu}(\operatorname{BN}(x)))))),$$
#
# so that $x_L = x_l + \sum_{k=l}^{L-1} F_k(x_k)$ holds exactly and the gradient's
# unattenuated term of §2 is exact. A pre-activation network ends with a final BN and ReLU
# before pooling. `models.resnet(..., preact=True)` builds one (Exercise 3 writes the block).
#
# ### Zero-initialized last batch norm
#
# Goyal et al. (2017) initialize the scale $\gamma$ of the last batch norm in every residual
# branch to zero. Then $F(x) = 0$ at the start, every block is the identity (followed by a ReLU),
# and the whole network behaves like a shallow one until the branches learn something — the
# flat variance curve of §2. `zero_init_residual=True` does this; the gradients still reach
# every parameter, because the zero scale itself receives a gradient:

# %% tags=["nbval-check-output"]
torch.manual_seed(SEED)
zero_block = models.BasicBlock(16, 16, zero_init_residual=True)
x_zero = torch.randn(4, 16, 6, 6)
print("zero-init block computes relu(x):", torch.allclose(zero_block(x_zero), F.relu(x_zero)))
zero_block(x_zero).sum().backward()
print("the zero scale gets a nonzero gradient:", bool(zero_block.norm2.weight.grad.abs().sum() > 0))
preact_zero = models.BasicBlock(16, 16, zero_init_residual=True, preact=True)
print("pre-activation zero-init block computes x:", torch.allclose(preact_zero(x_zero), x_zero))

# %% [markdown]
# ## 5. The cure: residual networks of the same depths
#
# The same depths, the same layers, the same training at the same paired seeds — now with
# identity shortcuts. The claims: **at every paired seed the deepest residual network ends with
# a training loss at least 0.5 below the plain network of the same depth, and on average at
# least five times lower; and the shortcut removes most of the degradation: on average the gap
# between the deepest and the shallowest ResNet is at least five times smaller than between the
# deepest and the shallowest plain network.**

# %%
residual_histories = train_depths(lambda depth: models.resnet(depth, WIDTHS), "ResNet")
res_final = final_losses(residual_histories, "ResNet")

# %%
res_gap = res_final[deep] - res_final[shallow]
cure = plain_final[deep] - res_final[deep]
print(f"plain-{deep} minus ResNet-{deep}: {cure.mean():.3f} ± {cure.std(ddof=1):.3f} (min {cure.min():.3f}); "
      f"ratio of the means {plain_final[deep].mean() / res_final[deep].mean():.1f}")
print(f"ResNet-{deep} minus ResNet-{shallow}: {res_gap.mean():.3f} ± {res_gap.std(ddof=1):.3f}; "
      f"the deep ResNet ended above the shallow one at {int((res_gap > 0).sum())} of {N_SEEDS} seeds")
assert cure.min() > 0.5, f"plain {plain_final}, residual {res_final}"
assert plain_final[deep].mean() > 5 * res_final[deep].mean(), f"plain {plain_final}, residual {res_final}"
assert res_gap.mean() < plain_gap.mean() / 5, f"the deep ResNet degraded: {res_final}"

# %% [markdown]
# What is *not* claimed is that the deepest ResNet trains as well as the shallowest. In these
# six-epoch runs it typically still ends somewhat above it (the cell counts at how many seeds):
# the shortcut removes most of the degradation, not all of it, in a run this short.
#
# The figure in the style of the ResNet paper's: training loss against epochs, averaged over
# the paired seeds, plain networks on the left and residual networks on the right. On the left
# the curves separate by depth, the deepest far above the others; on the right the three depths
# stay close together, far below the deep plain network.

# %%
def mean_curve(histories, depth):
    """Training loss per epoch averaged over the paired seeds, shape (EPOCHS,)."""
    return np.mean([histories[depth, s].train_loss for s in PAIRED_SEEDS], axis=0)


fig, axes = plotting.subplots(1, 2, figsize=(11, 3.8), sharey=True)
panels = {"plain": ("plain", plain_histories), "residual": ("ResNet", residual_histories)}
for ax, (kind, (prefix, histories)) in zip(axes, panels.items(), strict=True):
    for depth in DEPTHS:
        ax.plot(np.arange(1, EPOCHS + 1), mean_curve(histories, depth), marker="o", markersize=3,
                label=f"{prefix}-{depth}")
    ax.set(yscale="log", xlabel="epoch", title=f"{kind} networks")
    ax.legend()
axes[0].set_ylabel(f"training loss, mean of {N_SEEDS} seeds (log)")
fig.suptitle("Training loss on the digits: plain networks degrade with depth, ResNets far less")
fig

# %% [markdown]
# ## 6. Stochastic depth (DropPath)
#
# A residual network works even if a block is skipped: its shortcut still carries the signal.
# **Stochastic depth** (Huang et al., 2016) uses this as a regularizer. During training, each
# block's branch is dropped for each example with probability $p_l$ — the block computes
# $y = x$ for that example — and the kept branches are scaled by $1/(1 - p_l)$ so that the
# expected output is unchanged; at test time every branch is used. Deeper blocks are dropped
# more often: $p_l = p_L \cdot l / L$ for block $l$ of $L$ (the "linear decay" rule). Like dropout
# it trains an implicit ensemble, here of networks of different depths, and it shortens the
# average forward pass during training.
#
# `models.drop_path(x, p, training)` and the module `models.DropPath(p)` implement it; the
# builder takes `drop_path=p_L`:

# %% tags=["nbval-check-output"]
net = models.resnet(20, WIDTHS, drop_path=DROP_PATH)
print("drop probabilities by block:", [round(b.drop_path.p, 3) for b in net.blocks])
torch.manual_seed(SEED)
ones = torch.ones(10_000, 4, 2, 2)
dropped = models.drop_path(ones, 0.3, training=True)
per_example = dropped.flatten(1)
print("each example all-zero or all 1/(1-p):",
      bool(((per_example == 0).all(1) | torch.isclose(per_example, torch.tensor(1 / 0.7)).all(1)).all()))
print("mean preserved within 2%:", abs(dropped.mean().item() - 1) < 0.02,
      "| eval mode is the identity:", torch.equal(models.drop_path(ones, 0.3, training=False), ones))

# %% [markdown]
# We train the middle-depth ResNet again with DropPath, at the same paired seeds. As a
# regularizer it makes the training set harder to fit; the claim: **on average over the paired
# seeds the final training loss with DropPath is higher than without, and the DropPath runs
# still generalize (validation accuracy above 90% on average over the seeds, above 80% in every
# run)**. On a data set this small and a run this
# short, whether it also *improves* validation accuracy is within the noise; its benefit shows
# on long training runs of deep networks, where Huang et al. measured it.

# %%
middle = sorted(DEPTHS)[len(DEPTHS) // 2]
drop_histories = {}
for seed in PAIRED_SEEDS:
    torch.manual_seed(seed)
    drop_histories[seed] = train(models.resnet(middle, WIDTHS, drop_path=DROP_PATH).to(device), seed,
                                 desc=f"ResNet-{middle}, DropPath {DROP_PATH}, seed {seed}")
drop_loss = np.array([drop_histories[s].train_loss[-1] for s in PAIRED_SEEDS])
base_loss = np.array([residual_histories[middle, s].train_loss[-1] for s in PAIRED_SEEDS])
drop_val = np.array([drop_histories[s].val_acc[-1] for s in PAIRED_SEEDS])
drop_gap = drop_loss - base_loss
print(f"ResNet-{middle} training loss without DropPath {base_loss.mean():.3f}, "
      f"with DropPath {DROP_PATH} {drop_loss.mean():.3f}")
print(f"with minus without: {drop_gap.mean():.3f} ± {drop_gap.std(ddof=1):.3f} (min {drop_gap.min():.3f}); "
      f"DropPath validation accuracy {drop_val.mean():.1%} ± {drop_val.std(ddof=1):.1%} (min {drop_val.min():.1%})")

# %%
assert drop_gap.mean() > 0, "DropPath should make fitting harder"
assert drop_val.mean() > 0.9 and drop_val.min() > 0.8, f"DropPath runs: validation accuracy {drop_val}"

# %%
base, drop_history = residual_histories[middle, SEED], drop_histories[SEED]
plotting.plot_history({f"ResNet-{middle}": base, f"ResNet-{middle} + DropPath": drop_history},
                      title=f"Stochastic depth, seed {SEED}: training (solid) and validation (dashed)")

# %% [markdown]
# ## 7. The builder, for later chapters
#
# `helpers.models.resnet` collects everything in this chapter behind one call; the capstone
# chapter reuses it on larger images:
#
# ```python
# models.resnet(depth=20, widths=(16, 32, 64), in_channels=3, num_classes=10,
#               residual=True, norm="batch",          # or "group", "layer", "instance", "none"
#               shortcut="identity",                  # or "projection"
#               preact=False, zero_init_residual=False, drop_path=0.0)
# ```
#
# The same network works on the $32 \times 32$ colour textures of the augmentation chapter:

# %% tags=["nbval-check-output"]
for kwargs in ({}, {"preact": True, "norm": "group"}, {"shortcut": "projection", "drop_path": 0.1}):
    net = models.resnet(20, (16, 32, 64), in_channels=3, num_classes=6, **kwargs).eval()
    out = net(torch.zeros(2, 3, 32, 32))
    print(f"ResNet-20 {kwargs or 'default'}: output {tuple(out.shape)}, "
          f"{models.count_parameters(net):,} parameters")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — the zero-padding shortcut.** Write `pad_shortcut(x, out_channels, stride)` for a
# tensor $x$ of shape $(N, C, H, W)$: keep every `stride`-th pixel along $H$ and $W$ and append
# `out_channels - C` channels of zeros.

# %%
def pad_shortcut(x, out_channels, stride):
    ### BEGIN SOLUTION
    x = x[:, :, ::stride, ::stride]
    zeros = x.new_zeros(x.shape[0], out_channels - x.shape[1], *x.shape[2:])
    return torch.cat([x, zeros], dim=1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_pad_shortcut(pad_shortcut)

# %% [markdown]
# **Exercise 2 — DropPath.** Write `my_drop_path(x, p, training)`: in training, zero each
# example's whole tensor `x[i]` with probability `p` and divide the kept ones by `1 - p`; in
# evaluation return `x` unchanged.

# %%
def my_drop_path(x, p, training):
    ### BEGIN SOLUTION
    if not training or p == 0:
        return x
    keep = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device) >= p
    return x * keep / (1 - p)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_drop_path(my_drop_path)

# %% [markdown]
# **Exercise 3 — a pre-activation block.** Write `preact_block(x, w1, w2)` with the functions of
# `torch.nn.functional`: batch norm in training mode without scale and shift
# (`F.batch_norm(z, None, None, training=True)`), ReLU, a $3 \times 3$ convolution with padding 1
# and no bias, again, and the shortcut added at the end (no ReLU after it).

# %%
def preact_block(x, w1, w2):
    ### BEGIN SOLUTION
    def bn_relu(z):
        return F.relu(F.batch_norm(z, None, None, training=True))

    out = F.conv2d(bn_relu(x), w1, padding=1)
    return x + F.conv2d(bn_relu(out), w2, padding=1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_preact_block(preact_block)

# %% [markdown]
# **Exercise 4 — the residual block's backward.** Take the basic block without batch norm,
#
# $$z = \operatorname{conv}(x, w_1), \qquad a = \operatorname{relu}(z), \qquad
#   s = x + \operatorname{conv}(a, w_2), \qquad y = \operatorname{relu}(s),$$
#
# with $x$ of shape $(N, C, H, W)$, $w_1, w_2$ of shape $(C, C, 3, 3)$, padding 1 and no bias.
# Write `residual_block_backward(dy, x, w1, w2)` that returns `(dx, dw1, dw2)`, the gradients
# of $L = \sum y \odot dy$ for an upstream gradient `dy` shaped like $y$. Derive it before you
# code it: the ReLU *after* the addition sees $s$, so its mask $[s > 0]$ gates both the branch
# and the shortcut; the gradient at $s$ then splits into two paths and the two contributions
# to $\partial L/\partial x$ add up (§2's "1 +"). Recompute the forward pass inside the function
# and use `numpy_nn.conv2d`, `numpy_nn.conv2d_backward`, `numpy_nn.relu` and
# `numpy_nn.relu_backward` from chapter 1. The check compares with torch autograd in float64;
# while it runs, `numpy_resnet`'s block and its backward and torch's autograd refuse to be called.

# %%
def residual_block_backward(dy, x, w1, w2):
    ### BEGIN SOLUTION
    z = numpy_nn.conv2d(x, w1, padding=1)
    a = numpy_nn.relu(z)
    s = x + numpy_nn.conv2d(a, w2, padding=1)
    ds = numpy_nn.relu_backward(dy, s)  # the mask of the ReLU after the addition: both paths
    da, dw2, _ = numpy_nn.conv2d_backward(ds, a, w2, padding=1)
    dx_branch, dw1, _ = numpy_nn.conv2d_backward(numpy_nn.relu_backward(da, z), x, w1, padding=1)
    return dx_branch + ds, dw1, dw2  # the shortcut adds ds itself to dx
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_residual_block_backward(residual_block_backward)

# %% [markdown]
# **Exercise 5 — explore.** (a) Train the deepest plain network without batch norm
# (`norm="none"`): does it degrade more or less? (b) Train the deepest ResNet with projection
# shortcuts, with pre-activation blocks and with `zero_init_residual=True`: which trains fastest
# in the first epochs? (c) A residual network of depth $L$ contains $2^{L'}$ paths of different
# lengths through its $L'$ blocks (each block: through the branch or the shortcut). What is the
# distribution of path lengths, and what does DropPath do to it?
#
# <details><summary>Answer</summary>
#
# (a) Expect it to degrade more, and possibly not to train at all: §2 measured that without
# normalization the plain network's gradient at initialization shrinks by many orders of
# magnitude towards the input, so its first layers barely move, while batch norm at least keeps
# every layer's activations standardized. Compare its final training loss with the plain
# batch-norm network's over the same paired seeds, not at one seed.
#
# (b) There is no answer to quote without running it, and in runs this short the differences
# may be within the spread between seeds, so train each variant at the paired seeds and compare
# the first epochs' mean losses with that spread. What to expect: `zero_init_residual=True` starts
# every block as the identity (§4), so the deep network begins like a shallow one and usually
# drops fastest at first; pre-activation makes the shortcut path exact; projection shortcuts add
# parameters only at the two stage transitions, so they change little.
#
# (c) A path picks, in each of the $L'$ blocks, the branch or the shortcut, so the number of
# paths through $k$ branches is $\binom{L'}{k}$: the path lengths follow a binomial
# distribution $B(L', 1/2)$ with mean $L'/2$ and standard deviation $\sqrt{L'}/2$, and most paths
# are much shorter than the network (Veit et al., 2016). DropPath removes each branch $l$ with
# probability $p_l$ at every training step, so only the paths through kept branches exist in
# that step: the longest path has as many branches as were kept, on average
# $\sum_l (1 - p_l)$, and the distribution shifts towards shorter paths. At test time all
# branches are used and the full binomial distribution is back.
#
# </details>

# %% [markdown]
# ## Summary
#
# - **Degradation:** plain batch-normalized CNNs trained identically on the digits fit the
#   *training* set worse as they get deeper — an optimization failure, not overfitting.
# - **Residual learning** lets a block learn $F(x) = H(x) - x$ and add $x$ back. The gradient
#   $\partial L/\partial x = \partial L/\partial y\,(1 + \partial F/\partial x)$ keeps an
#   unattenuated path to every block; at initialization the layer gradient norms of residual
#   networks stay within about an order of magnitude where plain ones vanish or explode.
# - With batch norm in the branch, the residual stream's variance grows about linearly with the
#   number of blocks; without normalization it grows exponentially; zero-initializing the last
#   batch-norm scale makes every block start as the identity.
# - The NumPy residual block's backward pass is the chain rule plus one addition for the
#   shortcut, and matches autograd and numerical gradients; the ReLU after the addition gates
#   the gradient of both paths (Exercise 4).
# - Shape changes need identity-with-zero-padding or projection ($1 \times 1$, stride 2)
#   shortcuts; pre-activation blocks make the shortcut path a pure identity.
# - Residual networks of the same depths as the degraded plain ones remove most of the
#   degradation: the deepest trains far better than the plain network of its depth, though in
#   these short runs not quite as well as the shallowest. DropPath randomly skips branches as a
#   regularizer.
# - `helpers.models.resnet` builds all of these (depth, widths, normalization, shortcut type,
#   pre-activation, zero init, DropPath) for the chapters that follow.
