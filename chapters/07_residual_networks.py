# %% [markdown]
# # Chapter 7 — Residual networks
#
# More layers should never hurt: a deeper network could copy a shallower one and set its extra
# layers to the identity. Yet plain convolutional networks get *worse* — on the training set —
# beyond a certain depth. This chapter reproduces that degradation problem on Fashion-MNIST,
# explains why the shortcut connections of residual networks (He, Zhang, Ren and Sun, 2016) cure
# it, builds a residual block in NumPy with its backward pass, uses the book's ResNet builder
# (`helpers.models.resnet`) to train residual networks of the same depths and one of about a
# hundred layers, and regularizes residual networks with stochastic depth and shake-shake.
#
# **Learning goals.** After this chapter you can
#
# 1. state the degradation problem and tell it apart from overfitting and from vanishing
#    gradients;
# 2. explain residual learning, $H(x) = F(x) + x$, and what the "+1" in
#    $\partial L/\partial x = \partial L/\partial y \,(1 + \partial F/\partial x)$ does to
#    gradients and to the variance of activations — and what a ReLU after the addition does to it;
# 3. write a residual block's forward and backward pass in NumPy and check it;
# 4. choose between identity and projection shortcuts when a block changes the shape, and know
#    pre-activation blocks and the zero-initialized last batch-norm scale;
# 5. build plain and residual CNNs of any depth with `helpers.models`, and regularize a residual
#    network with stochastic depth (per example and per mini-batch) and shake-shake.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
DEPTHS = (8, 32)  # weighted layers of the plain and residual networks compared
WIDTHS = (8, 16, 32)  # channels of the three stages (14x14, 7x7 and 4x4 feature maps)
TRAIN_SIZE = 1920  # stratified Fashion-MNIST training subset, downsampled to 14x14
VAL_SIZE = 2000  # validation images used (of the 6,000 held out)
EPOCHS = 6  # epochs of every depth run (30 steps each, 180 in all)
N_SEEDS = 3  # paired seeds SEED, SEED + 1, ... for the degradation comparison
SHAKE_SEEDS = 3  # paired seeds for the shake-shake comparison
SHAKE_EPOCHS = 2  # epochs of each shake-shake run
BATCH_SIZE = 64
LEARNING_RATE = 0.05  # SGD with momentum 0.9, cosine-annealed to zero over the run
DEEP_DEPTH = 98  # the very deep pre-activation networks of section 7
DEEP_EPOCHS = 1
DROP_PATH = 0.2  # stochastic-depth rate of the last block
PROBE_DEPTH = 32  # depth of the single-stage networks whose gradients and variances we probe

# %%
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import checks, data, models, numpy_nn, numpy_resnet, plotting, training
from helpers.claims import claim
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
# Every convolution is followed by batch norm and a ReLU, so the forward signal is normalized
# at every layer. Counting convolutions and the classifier, a network with $n$ blocks per stage
# has $6n + 2$ layers. `models.plain_cnn` and `models.resnet` build exactly the same layers; the
# only difference is the shortcut.
#
# To fit the time budget of a chapter run on one CPU thread, the data are a stratified subset
# of `TRAIN_SIZE` Fashion-MNIST training images, each averaged down from $28 \times 28$ to
# $14 \times 14$ gray pixels (`data.downsample`), and `VAL_SIZE` validation images.

# %% tags=["nbval-check-output"]
full = data.load_fashion_mnist(train_size=TRAIN_SIZE, seed=SEED)
fashion = data.DataSplits(
    "fashion-mnist 14x14",
    data.Split(data.downsample(full.train.x), full.train.y),
    data.Split(data.downsample(full.val.x[:VAL_SIZE]), full.val.y[:VAL_SIZE]),
    data.Split(data.downsample(full.test.x), full.test.y),
    full.classes,
)
print(fashion.summary())
for depth in DEPTHS:
    net = models.plain_cnn(depth, WIDTHS)
    layers = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in net.modules())
    print(f"depth {depth:2d}: {len(net.blocks):2d} blocks, {layers} weighted layers, "
          f"{models.count_parameters(net):,} parameters")

# %% [markdown]
# All networks are trained identically: SGD with momentum 0.9, the same learning rate
# annealed to zero by a cosine schedule, the same batches and epochs. Because the learning rate
# ends at zero, every run ends where its optimizer has settled: the last epochs of the curves
# below are flat. What matters here is the **training** loss, and we measure it properly: after
# every epoch, in eval mode (batch norm with its running statistics) over the whole training
# set, not as the running mean of the training batches. A deeper network has more capacity, so
# if it fits the training set worse, the problem is optimization, not overfitting. Every depth
# is trained at `N_SEEDS` paired seeds: at each seed all depths (and, in §5, the residual
# networks) start from the same `torch.manual_seed` and see the batches in the same order.

# %%
PAIRED_SEEDS = [SEED + i for i in range(N_SEEDS)]
train_eval = data.DeviceLoader(fashion.train.x, fashion.train.y, 480, device=device)
val_eval = data.DeviceLoader(fashion.val.x, fashion.val.y, 500, device=device)


class TrainLoss(training.Callback):
    """Records the eval-mode loss on the whole training set after every epoch."""

    def __init__(self):
        self.losses = []

    def on_epoch_end(self, epoch, model, history):
        self.losses.append(training.evaluate(model, train_eval).loss)


# %%
def train(model, seed, epochs=EPOCHS, desc=None, validate=True):
    """Train model with the chapter's settings, batch order `seed`.

    Returns (eval-mode training loss after each epoch, shape (epochs,), final validation
    accuracy, or None without `validate`, and fit's History)."""
    loader = data.DeviceLoader(fashion.train.x, fashion.train.y, BATCH_SIZE, shuffle=True,
                               seed=seed, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(loader))
    recorder = TrainLoss()
    history = training.fit(model, loader, None, opt, epochs, scheduler=schedule,
                           scheduler_step="batch", callbacks=[recorder], desc=desc)
    val_acc = training.evaluate(model, val_eval).accuracy if validate else None
    return np.array(recorder.losses), val_acc, history


def train_depths(build, prefix):
    """Train build(depth) at every depth and paired seed; {(depth, seed): what train returns}."""
    runs = {}
    for seed in PAIRED_SEEDS:
        for depth in DEPTHS:
            torch.manual_seed(seed)
            runs[depth, seed] = train(build(depth).to(device), seed, desc=f"{prefix}-{depth}, seed {seed}")
    return runs

# %%
def final_losses(runs, prefix):
    """Print and return {depth: final training losses over the paired seeds, shape (N_SEEDS,)}."""
    finals = {d: np.array([runs[d, s][0][-1] for s in PAIRED_SEEDS]) for d in DEPTHS}
    for d, losses in finals.items():
        val = np.mean([runs[d, s][1] for s in PAIRED_SEEDS])
        print(f"{prefix}-{d}: final training loss {losses.mean():.3f} ± {losses.std(ddof=1):.3f} "
              f"(min {losses.min():.3f}, max {losses.max():.3f}), mean validation accuracy {val:.1%}")
    return finals


plain_runs = train_depths(lambda depth: models.plain_cnn(depth, WIDTHS), "plain")
plain_final = final_losses(plain_runs, "plain")

# %% [markdown]
# The claims: **at every paired seed the deepest plain network ends with a training loss at
# least 0.1 higher than the shallowest, and in its last epoch the deep network's loss fell by
# less than half of that gap: it has settled above the shallow one, not merely fallen
# behind.** The cell prints this run's spread and each claim's measured value; the appendix
# "How robust is each claim?" shows each claim over ten seeds.

# %%
shallow, deep = min(DEPTHS), max(DEPTHS)
plain_gap = plain_final[deep] - plain_final[shallow]
last_drop = np.array([plain_runs[deep, s][0][-2] - plain_runs[deep, s][0][-1] for s in PAIRED_SEEDS])
print(f"plain-{deep} minus plain-{shallow}: {plain_gap.mean():.3f} ± {plain_gap.std(ddof=1):.3f} "
      f"(min {plain_gap.min():.3f}, max {plain_gap.max():.3f})")
print(f"plain-{deep}'s loss fell by {last_drop.mean():.3f} ± {last_drop.std(ddof=1):.3f} in its last epoch")
claim("at every paired seed the deepest plain network ends with a training loss at least 0.1 "
      "higher than the shallowest", plain_gap.min(), above=0.1)
claim("in its last epoch the deep plain network's loss fell by less than half of its smallest "
      "gap to the shallow one", last_drop.max() / plain_gap.min(), below=1 / 2)

# %% [markdown]
# This is not overfitting: the training loss itself is worse. Is it a badly initialized
# signal? Batch norm standardizes every layer's *activations* in the forward pass, so the
# forward signal is well scaled. It does not standardize the *gradients* of the backward pass,
# and §2 measures that in a deep plain batch-norm network they grow from the last layer to the
# first, their layer norms spreading over about two orders of magnitude (§2 prints the span) —
# badly conditioned, though not vanishing. The
# deeper network *could* represent the shallower one with its extra blocks set to the identity,
# but a stack of convolutions, ReLUs and normalizations trained by SGD does not find it.
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
# **The ReLU after the addition.** The original block computes $y = \operatorname{relu}(x + F(x))$,
# not $x + F(x)$. Writing $s = x + F(x)$, its gradient is
#
# $$\frac{\partial L}{\partial x} = \Bigl(\frac{\partial L}{\partial y} \odot [s > 0]\Bigr)
#   \left(1 + \frac{\partial F}{\partial x}\right):$$
#
# the "+1" path is gated by the ReLU's mask. Where the sum is negative, the shortcut delivers
# nothing either, and through a stack the unattenuated term becomes the upstream gradient times
# the *product of the masks* of all later blocks — an identity only for the units that stay
# positive throughout. The pre-activation block of §4 moves the ReLU into the branch, so that
# the stack formula holds exactly.
#
# ### Gradients at initialization
#
# We measure it. For single-stage networks of depth 32 (fifteen blocks of 16 channels, so all
# layers have the same shape), with batch norm and without, all **He-initialized**
# (`kaiming_normal_`, as chapter 2 recommends — PyTorch's default for `nn.Conv2d` is a
# `kaiming_uniform_` with $a = \sqrt 5$, a weight variance of $1/(3\,\text{fan-in})$ instead of
# $2/\text{fan-in}$, which shrinks the signal's variance by a factor of six per layer and, without
# normalization, makes any deep plain network's gradient vanish), we compute the gradient of the
# loss on one batch of training images and plot the norm of each convolution's weight gradient,
# input side on the left.

# %%
probe_x = torch.from_numpy(fashion.train.x[:BATCH_SIZE]).to(device)
probe_y = torch.from_numpy(fashion.train.y[:BATCH_SIZE]).to(device)


def he_init(model):
    """He-initialize (kaiming_normal_, ReLU gain) every convolution of model, in place."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def gradient_norms(model):
    """Norm of each convolution's weight gradient (input side first) for one batch."""
    model.zero_grad()
    F.cross_entropy(model(probe_x), probe_y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Conv2d)]


# %%
grad_norms = {}
for norm in ("batch", "none"):
    for residual in (False, True):
        torch.manual_seed(SEED)
        net = he_init(models.resnet(PROBE_DEPTH, (16,), residual=residual, norm=norm)).to(device)
        name = f"{'residual' if residual else 'plain'}, {'batch norm' if norm == 'batch' else 'no norm'}"
        grad_norms[name] = np.array(gradient_norms(net))
span = {name: np.log10(g.max() / g.min()) for name, g in grad_norms.items()}  # orders of magnitude
for name, g in grad_norms.items():
    print(f"{name:22s} layer gradient norms span {span[name]:.2f} orders of magnitude; "
          f"first / last layer: {g[0] / g[-1]:.1e}")

# %%
plotting.plot_lines(np.arange(1, PROBE_DEPTH), grad_norms, xlabel="convolution (input side first)",
                    ylabel="weight-gradient norm", logy=True,
                    title=f"Per-layer gradient norms at He initialization, depth {PROBE_DEPTH}")

# %% [markdown]
# With He initialization and no normalization, the plain network's gradient does shrink towards
# the input — the first layer's gradient norm is the printed fraction of the last one's — but
# mildly: by about two orders of magnitude over 31 convolutions. With batch norm the plain network's
# gradient *grows* towards the input (a known effect of deep batch-normalized plain networks at
# initialization) — the spread mentioned in §1. In both residual networks the gradient norms
# span less than one order of magnitude across all layers. How wide a span is varies from one
# initialization to the next, so the claims leave room for it: **with batch norm, the plain
# network's layer gradient norms span at least 0.3 orders of magnitude more than the residual
# network's (its smallest-to-largest ratio is less than half the residual one's); without
# normalization, the He-initialized plain network's span less than four orders of magnitude.**

# %%
claim("with batch norm, the plain network's layer gradient norms span at least 0.3 orders of "
      "magnitude more than the residual network's",
      span["plain, batch norm"] - span["residual, batch norm"], above=0.3)
claim("without normalization, the He-initialized plain network's layer gradient norms span less "
      "than four orders of magnitude", span["plain, no norm"], below=4)

# %% [markdown]
# ### The variance of the residual stream
#
# The shortcut also changes the forward pass. If $F(x)$ is roughly uncorrelated with $x$,
# $\operatorname{Var}(x + F(x)) = \operatorname{Var}(x) + \operatorname{Var}(F(x))$: every block
# adds its branch's variance to the stream. With batch norm at the end of the branch
# ($\operatorname{Var} F = 1$ per channel at initialization) the sum would grow by one unit per
# block — but the ReLU after the addition takes its share: it zeroes the negative part of
# $x + F(x)$, so what the stream keeps per block is clearly less than one unit (the cell prints the
# measured mean increase per block); the growth is still about *linear* in depth. Without
# normalization and with He-initialized convolutions, the branch's variance is proportional to
# its input's, so each block multiplies the variance by a constant and it grows *exponentially*.
# A plain batch-norm network re-normalizes at every block and stays flat; zero-initializing the
# last batch-norm scale of each branch (§4) makes every block the identity at the start, so the
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


# %%
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
per_block = np.diff(variances["residual, batch norm"])
print(f"residual, batch norm: variance added per block {per_block.mean():.2f} "
      f"(min {per_block.min():.2f}, max {per_block.max():.2f})")

# %%
plotting.plot_lines(np.arange(len(variances["plain, batch norm"])), variances, logy=True,
                    xlabel="block (0 = stem output)", ylabel="activation variance",
                    title="The residual stream's variance at initialization")

# %% [markdown]
# Without normalization, how much the variance grows differs a lot from one initialization to
# the next, so its claim averages the growth per block (the geometric mean over the fifteen
# blocks) over five initializations. The claims: **without normalization each block multiplies
# the variance by more than 1.5 on average — exponential growth; with batch norm it grows by
# less than one unit per block on average (the cell above prints the smallest and largest
# increase), and in all between 3 and 50 times; the plain batch-norm network stays within a
# factor of 2.** The zero-initialized residual network's variance does not change at all: every
# block computes $\operatorname{relu}(x) = x$ on the non-negative output of the stem.

# %%
def growth_per_block(seed):
    """Geometric mean over the blocks of the variance's growth, He-initialized ResNet without norm."""
    torch.manual_seed(seed)
    v = block_variances(he_init(models.resnet(PROBE_DEPTH, (16,), norm="none")).to(device).train())
    return (v[-1] / v[0]) ** (1 / (len(v) - 1))


no_norm_factor = np.mean([growth_per_block(SEED + i) for i in range(5)])
print(f"residual, no norm: variance multiplied per block by {no_norm_factor:.2f}, mean of 5 initializations")
claim("without normalization each block multiplies the variance by more than 1.5 on average",
      no_norm_factor, above=1.5)
claim("with batch norm the variance grows by between 3 and 50 times over the fifteen blocks",
      growth["residual, batch norm"], above=3, below=50)
claim("with batch norm the variance grows by less than one unit per block on average",
      per_block.mean(), below=1)
claim("the plain batch-norm network's variance stays within a factor of 2",
      growth["plain, batch norm"], above=0.5, below=2)
assert growth["residual, batch norm, zero-init last BN"] == 1.0, "each block is relu(x) = x at x >= 0"

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
# The backward pass passes a numerical gradient check. Two details make it hold for any
# draw: centred differences with step $h = 10^{-5}$ lose about $10^{-10}$ to rounding, so each
# gradient's largest error is compared with its largest entry (an entry-by-entry relative error
# blows that up on entries near zero); and $x$ is drawn again while an input of either ReLU lies
# within $10^{-3}$ of zero, where a difference step could straddle the kink.

# %%
x_np = rng.standard_normal((2, 3, 5, 5))
params = numpy_resnet.init_residual_block(3, rng)
params["gamma2"] = rng.uniform(0.5, 1.5, 3)  # non-trivial scales and shifts
params["beta1"] = 0.1 * rng.standard_normal(3)
dy_np = rng.standard_normal(x_np.shape)


def kink_distance(x):
    """The smallest |input| of the block's two ReLUs: batch-normed conv(x, w1) and the sum s."""
    _, (_, _, n1, _, _, s, *_) = numpy_resnet.residual_block(x, params)
    return min(np.abs(n1).min(), np.abs(s).min())


while kink_distance(x_np) < 1e-3:  # 100 difference steps
    x_np = rng.standard_normal(x_np.shape)

# %% tags=["nbval-check-output"]
y_np, cache = numpy_resnet.residual_block(x_np, params)
dx_np, grads = numpy_resnet.residual_block_backward(dy_np, cache)


def block_loss():
    return np.sum(numpy_resnet.residual_block(x_np, params)[0] * dy_np)


def scaled_error(ours, numeric):
    """The largest difference relative to the largest entry of our gradient."""
    return np.abs(ours - numeric).max() / np.abs(ours).max()


numeric_errors = {"x": scaled_error(dx_np, numerical_gradient(block_loss, x_np))}
for name in ("w1", "w2", "gamma1", "beta2"):
    numeric_errors[name] = scaled_error(grads[name], numerical_gradient(block_loss, params[name]))
assert max(numeric_errors.values()) < 1e-6, numeric_errors
print("output:", y_np.shape, "| gradients match centred differences:",
      max(numeric_errors.values()) < 1e-6)

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
print("NumPy residual block matches models.BasicBlock (forward and backward):",
      max(parity.values()) < 1e-9)

# %%
for name, err in parity.items():
    print(f"{name:14s} relative error {err:.1e}")
for name, err in numeric_errors.items():
    print(f"numerical d{name:7s} largest error / largest entry {err:.1e}")

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
# a training loss at least 0.15 below the plain network of the same depth; and at every seed the
# deep ResNet's gap to the shallow one is smaller than the plain networks' gap, on average at
# least three times smaller.** (The cell prints this run's spread beside each claim's measured
# value.)

# %%
residual_runs = train_depths(lambda depth: models.resnet(depth, WIDTHS), "ResNet")
res_final = final_losses(residual_runs, "ResNet")

# %%
res_gap = res_final[deep] - res_final[shallow]
cure = plain_final[deep] - res_final[deep]
print(f"plain-{deep} minus ResNet-{deep}: {cure.mean():.3f} ± {cure.std(ddof=1):.3f} (min {cure.min():.3f})")
print(f"ResNet-{deep} minus ResNet-{shallow}: {res_gap.mean():.3f} ± {res_gap.std(ddof=1):.3f} "
      f"(min {res_gap.min():.3f}, max {res_gap.max():.3f}); the deep ResNet ended below the shallow "
      f"one at {int((res_gap < 0).sum())} of {N_SEEDS} seeds")
claim("at every paired seed the deepest residual network ends with a training loss at least "
      "0.15 below the plain network of the same depth", cure.min(), above=0.15)
claim("at every paired seed the deep ResNet's gap to the shallow one is smaller than the plain "
      "networks' gap", (plain_gap - res_gap).min(), above=0)
claim("the deep ResNet's gap to the shallow one is on average less than a third of the plain "
      "networks' gap", res_gap.mean() / plain_gap.mean(), below=1 / 3)

# %% [markdown]
# With shortcuts the depth no longer hurts the fit: the deepest and the shallowest ResNet end
# close together (the cell counts at how many seeds the deeper one is lower), far below the
# deep plain network. The figure in the style of the ResNet paper's: the eval-mode training loss
# against epochs, averaged over the paired seeds, plain networks on the left and residual networks
# on the right.

# %%
def mean_curve(runs, depth):
    """Eval-mode training loss per epoch averaged over the paired seeds, shape (EPOCHS,)."""
    return np.mean([runs[depth, s][0] for s in PAIRED_SEEDS], axis=0)


fig, axes = plotting.subplots(1, 2, figsize=(11, 3.8), sharey=True)
panels = {"plain": ("plain", plain_runs), "residual": ("ResNet", residual_runs)}
for ax, (kind, (prefix, runs)) in zip(axes, panels.items(), strict=True):
    for depth in DEPTHS:
        ax.plot(np.arange(1, EPOCHS + 1), mean_curve(runs, depth), marker="o", markersize=3,
                label=f"{prefix}-{depth}")
    ax.set(yscale="log", xlabel="epoch", title=f"{kind} networks")
    ax.legend()
axes[0].set_ylabel(f"training loss (eval mode), mean of {N_SEEDS} seeds")
fig.suptitle("Fashion-MNIST 14x14: plain networks degrade with depth, ResNets do not")
fig

# %% [markdown]
# ## 6. A hundred layers
#
# The ResNet papers trained networks of hundreds of layers; with shortcuts that is routine. We
# build a pre-activation ResNet of `DEEP_DEPTH` layers (16 blocks per stage) and the plain
# network with the same layers, and train both for `DEEP_EPOCHS` epoch at seed `SEED` — a short
# budget, and one seed only, because every step runs through 48 blocks where ResNet-8 runs
# through 3. After so few steps, the eval-mode loss of §1 mostly measures whether batch norm's
# running statistics describe the activations yet, so the measure here is the accuracy on the
# epoch's training batches, in train mode (batch norm normalizing with each batch's own
# statistics, as while training). The claims: **over its epoch the ResNet classifies its
# training batches at least ten points more accurately than the plain network, whose accuracy
# stays below 15%, near the one in ten of guessing.**

# %%
deep_acc = {}
for kind, build in {"ResNet": models.resnet, "plain": models.plain_cnn}.items():
    torch.manual_seed(SEED)
    net = build(DEEP_DEPTH, WIDTHS, preact=True).to(device)
    losses, _, history = train(net, SEED, epochs=DEEP_EPOCHS, validate=False,
                               desc=f"pre-activation {kind}-{DEEP_DEPTH}")
    deep_acc[kind] = history.train_acc[-1]
    print(f"pre-activation {kind}-{DEEP_DEPTH}: {models.count_parameters(net):,} parameters; "
          f"training accuracy over its last epoch {deep_acc[kind]:.1%}; afterwards, "
          f"eval-mode training loss {losses[-1]:.4g}")
claim("over its epoch the ResNet-98 classifies its training batches at least ten points more "
      "accurately than the plain network of the same layers",
      deep_acc["ResNet"] - deep_acc["plain"], above=0.10)
claim("the plain hundred-layer network's training accuracy over its epoch stays below 15%",
      deep_acc["plain"], below=0.15)

# %% [markdown]
# The plain hundred-layer network does not learn in this budget: it classifies its training
# batches about as well as guessing, and in eval mode its loss is far above chance ($\ln 10
# \approx 2.30$), because its running batch-norm statistics do not describe its badly
# conditioned activations. The residual network of the same layers already classifies far more
# of them correctly.
#
# ## 7. Stochastic depth (DropPath)
#
# A residual network works even if a block is skipped: its shortcut still carries the signal.
# **Stochastic depth** (Huang et al., 2016) uses this as a regularizer. During training, block
# $l$ is skipped with a **drop rate** $d_l$ — the block computes $y = x$ (post-activation:
# $\operatorname{relu}(x)$) — and at test time every block is used. Deeper blocks are dropped
# more often: $d_l = d_L \cdot l / L$ for block $l$ of $L$ (the "linear decay" rule).
#
# Conventions differ. Huang et al. (and the source notes of this book) write the rule with the
# **survival probability** $p_l = 1 - \frac{l}{L}(1 - p_L)$, keep the branch with a
# $\operatorname{Bernoulli}(p_l)$ coin, and scale the branch by $p_l$ *at test time*. This book
# uses the drop rate $d_l = 1 - p_l$ (PyTorch's meaning of `p` in `nn.Dropout(p)`), and scales the
# kept branch by $1/(1 - d_l)$ *during training* (the inverted convention); the two agree in
# expectation. `drop_path=0.2` here is a final survival probability of 0.8.
#
# There are also two ways to flip the coin:
#
# - **per mini-batch**, as Huang et al. do: one coin per block and step; a dropped block is skipped
#   for the whole batch, its branch is not computed, and training gets cheaper.
#   `models.drop_block_batch(block, x, d, training)` runs a `BasicBlock` this way.
# - **per example**, as `models.drop_path(x, d, training)` and the module `models.DropPath(d)`
#   do (the common form in later architectures): one coin per example; the branch is computed for
#   the whole batch and multiplied by the per-example mask, so *nothing* is saved — it is a
#   regularizer only, with less noise in each step's gradient.
#
# The builder takes `drop_path=d_L` and uses the per-example form:

# %% tags=["nbval-check-output"]
net = models.resnet(20, WIDTHS, drop_path=DROP_PATH)
print("drop rates by block:", [round(b.drop_path.p, 3) for b in net.blocks])
torch.manual_seed(SEED)
ones = torch.ones(10_000, 4, 2, 2)
dropped = models.drop_path(ones, 0.3, training=True)
per_example = dropped.flatten(1)
print("each example all-zero or all 1/(1-p):",
      bool(((per_example == 0).all(1) | torch.isclose(per_example, torch.tensor(1 / 0.7)).all(1)).all()))
print("mean preserved within 2%:", abs(dropped.mean().item() - 1) < 0.02,
      "| eval mode is the identity:", torch.equal(models.drop_path(ones, 0.3, training=False), ones))

# %% [markdown]
# The per-batch form saves work. We run ResNet-20's nine blocks with their linear-rule drop
# rates per mini-batch for 200 training steps and count how often each block's branch was
# computed (a forward hook on its first convolution). The claim: **the fraction of branch
# computations skipped is within 0.05 of the mean drop rate**, while the per-example form computes
# every branch at every step.

# %%
net = models.resnet(20, WIDTHS, drop_path=DROP_PATH).to(device).train()
computed = [0] * len(net.blocks)
for i, b in enumerate(net.blocks):
    b.conv1.register_forward_hook(lambda *args, i=i: computed.__setitem__(i, computed[i] + 1))
torch.manual_seed(SEED)
steps = 200
with torch.no_grad():
    for _ in range(steps):
        h = net.stem(probe_x)
        for b in net.blocks:
            h = models.drop_block_batch(b, h, b.drop_path.p, training=True)
rates = np.array([b.drop_path.p for b in net.blocks])
skipped = 1 - np.array(computed) / steps
print(f"mean drop rate {rates.mean():.3f}; branches skipped per mini-batch: {skipped.mean():.3f}")
claim("the fraction of branch computations skipped per mini-batch is within 0.05 of the mean "
      "drop rate", abs(skipped.mean() - rates.mean()), below=0.05)

# %% [markdown]
# Stochastic depth pays off on long runs of deep networks, where Huang et al. measured it. This
# chapter does not train with it: its runs are far too short for a regularizer's benefit to
# show, and what the per-batch form saves is counted above, not timed.
#
# ## 8. Shake-shake regularization
#
# Gastaldi (2017) gave each residual block **two** branches of the same shape and mixed them
# with random weights:
#
# $$y = x + \alpha\, F^{(1)}(x) + (1 - \alpha)\, F^{(2)}(x), \qquad \alpha \sim U[0, 1]$$
#
# drawn afresh for every example at every forward pass. The backward pass uses an
# **independent** $\beta \sim U[0, 1]$: it sends $\beta\, \partial L/\partial y$ to the first
# branch and $(1 - \beta)\, \partial L/\partial y$ to the second, which is not the derivative of
# the forward computation. At test time $\alpha = 0.5$. In NumPy the two halves are one line each
# (`numpy_resnet.shake_shake`, `numpy_resnet.shake_shake_backward`), and they match the torch
# version, a custom `torch.autograd.Function` whose `backward` uses $\beta$
# (`models.shake_shake`):

# %% tags=["nbval-check-output"]
b1_np, b2_np, dy_shake = (rng.standard_normal((4, 3, 2, 2)) for _ in range(3))
alpha, beta = rng.uniform(size=4), rng.uniform(size=4)
y_shake = numpy_resnet.shake_shake(b1_np, b2_np, alpha)
db1_np, db2_np = numpy_resnet.shake_shake_backward(dy_shake, beta)

b1_t, b2_t = (torch.tensor(b, requires_grad=True) for b in (b1_np, b2_np))
a_t, be_t = (torch.tensor(c).reshape(4, 1, 1, 1) for c in (alpha, beta))
out_t = models._ShakeShake.apply(b1_t, b2_t, a_t, be_t)
out_t.backward(torch.tensor(dy_shake))
# the same with the "detach trick": forward value alpha-mix, gradient beta-mix
b1_d, b2_d = (torch.tensor(b, requires_grad=True) for b in (b1_np, b2_np))
trick = be_t * b1_d + (1 - be_t) * b2_d + ((a_t - be_t) * (b1_d - b2_d)).detach()
trick.backward(torch.tensor(dy_shake))
shake_errors = [rel_error(y_shake, out_t.detach().numpy()), rel_error(db1_np, b1_t.grad.numpy()),
                rel_error(db2_np, b2_t.grad.numpy()), rel_error(y_shake, trick.detach().numpy()),
                rel_error(db1_np, b1_d.grad.numpy())]
print("NumPy shake-shake matches the autograd Function and the detach trick:", max(shake_errors) < 1e-12)

# %% [markdown]
# `models.shake_shake_resnet(depth, widths, shake=...)` builds the book's ResNet with two-branch
# `models.ShakeShakeBlock`s. We compare ResNet-8 with shake-shake against the same two-branch
# network with the branches always averaged ($\alpha = \beta = 0.5$), at `SHAKE_SEEDS` paired seeds.
# Each run is `SHAKE_EPOCHS` epochs (60 steps). Shake-shake is a strong regularizer; Gastaldi
# trained for 1,800 epochs. In a run this short we expect the noise mostly to make fitting
# harder. The claim: **at every paired seed shake-shake ends with a training loss at least 0.03
# higher.** Its validation accuracy is printed and not asserted.

# %%
shake = {}
for seed in range(SEED, SEED + SHAKE_SEEDS):
    for kind in (True, False):
        torch.manual_seed(seed)
        net = models.shake_shake_resnet(min(DEPTHS), WIDTHS, shake=kind).to(device)
        losses, val_acc, _ = train(net, seed, epochs=SHAKE_EPOCHS,
                                desc=f"{'shake-shake' if kind else 'even mix'}, seed {seed}")
        shake[kind, seed] = (losses[-1], val_acc)
shake_gap = np.array([shake[True, s][0] - shake[False, s][0] for s in range(SEED, SEED + SHAKE_SEEDS)])
acc_gap = np.array([shake[True, s][1] - shake[False, s][1] for s in range(SEED, SEED + SHAKE_SEEDS)])
print(f"shake-shake minus even mix, training loss: {shake_gap.mean():.3f} ± {shake_gap.std(ddof=1):.3f} "
      f"(min {shake_gap.min():.3f}); validation accuracy: {acc_gap.mean():+.1%} "
      f"(min {acc_gap.min():+.1%}, max {acc_gap.max():+.1%})")
claim("at every paired seed shake-shake ends with a training loss at least 0.03 higher than the "
      "even mix", shake_gap.min(), above=0.03)

# %% [markdown]
# ## 9. The builder, for later chapters
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
# The same network works on $32 \times 32$ images with any number of channels, here three:

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
# (a) There is no answer to quote without running it. What to expect: it depends on the
# initialization. With PyTorch's default initialization the gradient of a deep plain network
# without normalization vanishes towards the input, and it barely trains; §2 measured that with
# He initialization the gradient at initialization is within a couple of orders of magnitude
# across layers, so it may train, though without batch norm a learning rate of 0.05 may also be
# too large. Compare its final training loss with the plain batch-norm network's over the same
# paired seeds, not at one seed.
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
# - **Degradation:** plain batch-normalized CNNs trained identically on Fashion-MNIST (14×14,
#   a subset) fit the *training* set worse as they get deeper — measured in eval mode on the
#   whole training set after the learning rate has annealed to zero: an optimization failure,
#   not overfitting. Batch norm standardizes the forward signal, not the gradients.
# - **Residual learning** lets a block learn $F(x) = H(x) - x$ and add $x$ back. The gradient
#   $\partial L/\partial x = \partial L/\partial y\,(1 + \partial F/\partial x)$ keeps an
#   unattenuated path to every block; a ReLU after the addition gates that path with its mask,
#   which pre-activation blocks remove. At He initialization the layer gradient norms of residual
#   networks stay within about an order of magnitude.
# - With batch norm in the branch, the residual stream's variance grows about linearly with the
#   number of blocks (by less than one unit per block, because of the ReLU after the addition);
#   without normalization it grows exponentially; zero-initializing the last batch-norm scale
#   makes every block start as the identity.
# - The NumPy residual block's backward pass is the chain rule plus one addition for the
#   shortcut, and matches autograd and numerical gradients (Exercise 4 derives it).
# - Shape changes need identity-with-zero-padding or projection ($1 \times 1$, stride 2)
#   shortcuts; pre-activation blocks make the shortcut path a pure identity.
# - Residual networks of the same depths remove the degradation in these runs, and a
#   pre-activation ResNet of about a hundred layers learns in a budget where the plain one does not.
# - Stochastic depth skips blocks: per mini-batch (Huang et al.) it saves their compute, per
#   example (`DropPath`) it only regularizes; drop rate $d_l = 1 - p_l$ for survival probability
#   $p_l$. Shake-shake mixes two branches with random $\alpha$ forward and independent $\beta$
#   backward; in this chapter's short runs it made the training set harder to fit (stochastic
#   depth is not trained here).
# - `helpers.models.resnet` builds all of these (depth, widths, normalization, shortcut type,
#   pre-activation, zero init, DropPath) for the chapters that follow.
