# %% [markdown]
# # Chapter 2 — Weight initialization
#
# Before the first gradient step, every weight of a network already has a value, and that value
# decides whether training can start at all. This chapter shows why the weights must be random,
# why their *scale* must depend on the layer's size, derives the LeCun, Xavier (Glorot) and He
# scales from one line of variance algebra, forward and backward, checks our NumPy
# initializers against `torch.nn.init`, and trains deep networks on Fashion-MNIST that learn
# with one initialization and not at all with another.
#
# **Learning goals.** After this chapter you can
#
# 1. explain why equal initial weights can never become different (the symmetry problem);
# 2. describe vanishing and exploding signals as a product of per-layer factors, and measure them
#    layer by layer in a deep network, forward and backward;
# 3. derive $\operatorname{Var}(w) = 1/n_{in}$, $2/(n_{in}+n_{out})$ and $2/n_{in}$, the gain of
#    a nonlinearity and the matching uniform bounds, and say what the derivation assumes about
#    the inputs (zero mean, unit variance) and about the terms of a sum (uncorrelated);
# 4. show why fan-in He initialization keeps the *gradients* stable too, although the backward
#    factor of each layer is $n_{out}/n_{in}$;
# 5. compute the fans of a convolution weight, where the kernel area counts;
# 6. measure saturated sigmoid units, dead ReLUs, and the vanishing of a deep sigmoid network;
# 7. initialize a PyTorch model from NumPy and see He initialization make a deep plain CNN
#    trainable on Fashion-MNIST.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
DEPTH = 40  # layers of the deep NumPy network used to follow the signal
WIDTH = 256  # its wider layers; the others have WIDTH // 2 units
SIGNAL_BATCH = 256  # random inputs pushed through it
TRAIN_SIZE = 4000  # stratified Fashion-MNIST training subset, downsampled to 14x14
VAL_SIZE = 2000  # stratified validation images
MLP_DEPTH = 10  # hidden layers of the sigmoid / ReLU network of section 4
MLP_WIDTH = 128
CNN_DEPTH = 10  # convolutional layers of the plain CNN of section 6
CNN_CHANNELS = 16
EPOCHS = 4  # epochs per training run of the networks of section 4
CNN_EPOCHS = 3  # epochs per initialization of the CNN
BATCH_SIZE = 64
LEARNING_RATE = 0.01  # SGD with momentum 0.9, the same for every run

# %%
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import checks, data, init, numpy_nn, plotting, training
from helpers.claims import claim
from helpers.device import best_device, describe
from helpers.reproducibility import seed_everything

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
print("device:", describe(device))

# %% [markdown]
# ## 1. Why the weights must be random: symmetry
#
# Take a network with one hidden layer and give every weight the same value. Every hidden unit
# then computes the same function of the input, so every hidden unit receives the same
# gradient, so after the update they are all equal again — forever. Gradient descent cannot
# tell identical units apart, and a layer of 32 units behaves like a layer of one.
#
# We train such a network on the digits in NumPy (64 pixels → 32 ReLU units → 10 classes) with
# plain gradient descent, once with all weights 0.1 and once with random weights, and compare
# the rows of the first weight matrix (one row per hidden unit) after training.

# %%
digits = data.load_digits(seed=SEED)
x_digits = digits.train.x.reshape(len(digits.train.x), -1).astype(np.float64)  # (N, 64)
y_digits = digits.train.y


def train_two_layer(w1, w2, steps=200, lr=0.5):
    """Full-batch gradient descent on x -> relu(x W1^T + b1) W2^T + b2; returns W1, accuracy."""
    w1, w2 = w1.copy(), w2.copy()
    b1, b2 = np.zeros(w1.shape[0]), np.zeros(w2.shape[0])
    for _ in range(steps):
        z = numpy_nn.linear(x_digits, w1, b1)
        h = numpy_nn.relu(z)
        logits = numpy_nn.linear(h, w2, b2)
        _, dlogits = numpy_nn.softmax_cross_entropy(logits, y_digits)
        dh, dw2, db2 = numpy_nn.linear_backward(dlogits, h, w2)
        _, dw1, db1 = numpy_nn.linear_backward(numpy_nn.relu_backward(dh, z), x_digits, w1)
        w1, b1, w2, b2 = w1 - lr * dw1, b1 - lr * db1, w2 - lr * dw2, b2 - lr * db2
    accuracy = np.mean(logits.argmax(1) == y_digits)
    return w1, accuracy


w1_const, acc_const = train_two_layer(np.full((32, 64), 0.1), np.full((10, 32), 0.1))
w1_rand, acc_rand = train_two_layer(init.kaiming_normal((32, 64), rng), init.xavier_normal((10, 32), rng))
print(f"constant init: training accuracy {acc_const:.1%}; random init: {acc_rand:.1%}")

# %% [markdown]
# After 200 steps the 32 rows of the constant network are still one row repeated (they differ
# by less than $10^{-10}$ of the largest weight, asserted), while the random network's rows are
# all different, and the random network trains to a far higher accuracy (claimed: at least 20
# points higher):

# %% tags=["nbval-check-output"]
def row_spread(w):
    """Largest difference between any hidden unit's weights and the first unit's."""
    return np.abs(w - w[0]).max()


assert row_spread(w1_const) < 1e-10 * np.abs(w1_const).max(), "symmetry was broken"
print("constant init: all 32 hidden units still identical:", row_spread(w1_const) < 1e-10)

# %%
claim("with random weights the hidden units end up different (largest difference from the first unit)",
      row_spread(w1_rand), above=0.1)
claim("random weights train to at least 20 points more training accuracy than equal ones",
      100 * (acc_rand - acc_const), above=20)

# %% [markdown]
# ## 2. Vanishing and exploding signals
#
# Randomness breaks the symmetry, but the *scale* of the random weights matters just as much.
# For a plain network $h^{(l)} = \varphi(z^{(l)})$, $z^{(l)} = W^{(l)} h^{(l-1)}$, the chain rule
# makes the gradient reaching layer $l$ a product with one factor per layer above it:
#
# $$\frac{\partial L}{\partial h^{(l)}} = \frac{\partial L}{\partial h^{(L)}}
#   \prod_{k=L}^{l+1} \operatorname{diag}\!\big(\varphi'(z^{(k)})\big)\, W^{(k)} .$$
#
# If each factor multiplies the gradient's size by a number a little above 1, the product
# grows exponentially with depth (**exploding gradients**); a little below 1 and it shrinks
# exponentially (**vanishing gradients**), and the first layers stop learning. The forward pass
# is the same story for the activations.
#
# We build a NumPy network of `DEPTH` layers without biases, alternating between `WIDTH` and
# `WIDTH // 2` units, push a batch of standard-normal inputs through it, and then push a
# standard-normal gradient back from the top. At every layer we record the standard deviation
# of the activations $h^{(l)}$ and of the gradients $\partial L / \partial h^{(l)}$.

# %%
def widths(depth, width):
    """Units of layers 0..depth: WIDTH, WIDTH // 2, WIDTH, ..."""
    return [width if k % 2 == 0 else width // 2 for k in range(depth + 1)]


ACTIVATIONS = {  # phi and phi' as functions of z
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (numpy_nn.relu, lambda z: (z > 0).astype(z.dtype)),
}


def signal_stds(draw, activation, seed):
    """std of h^(l) (forward) and of dL/dh^(l) (backward) for l = 1..DEPTH."""
    rng = np.random.default_rng(seed)
    phi, dphi = ACTIVATIONS[activation]
    sizes = widths(DEPTH, WIDTH)
    weights = [draw((n_out, n_in), rng) for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
    h, zs, forward = rng.standard_normal((SIGNAL_BATCH, sizes[0])), [], []
    for w in weights:
        zs.append(h @ w.T)
        h = phi(zs[-1])
        forward.append(h.std())
    grad, backward = rng.standard_normal(h.shape), []
    for w, z in zip(weights[::-1], zs[::-1], strict=True):
        backward.append(grad.std())
        grad = (grad * dphi(z)) @ w  # through phi, then through the layer
    return np.array(forward), np.array(backward[::-1])


# %% [markdown]
# Five initializations: two fixed scales that ignore the layer size ("too small" $\sigma = 0.01$
# and "too large" $\sigma = 0.2$ — a layer with 128 inputs then multiplies the second moment of
# its pre-activations by $0.2^2 \cdot 128 = 5.12$), and the three scaled rules of `helpers.init`
# derived in the next section. Because the layers alternate between 256 and 128 units, LeCun
# ($1/n_{in}$) and Xavier ($2/(n_{in}+n_{out})$) differ here.

# %%
FIXED = {
    "N(0, 0.01²)": lambda shape, rng: rng.normal(0, 0.01, shape),
    "N(0, 0.2²)": lambda shape, rng: rng.normal(0, 0.2, shape),
}
SCALED = {"LeCun": init.lecun_normal, "Xavier": init.xavier_normal, "He": init.kaiming_normal}
INITS = FIXED | SCALED
stds = {(act, name): signal_stds(draw, act, SEED) for act in ACTIVATIONS for name, draw in INITS.items()}
for (act, name), (fwd, bwd) in stds.items():
    print(f"{act:4s} {name:12s} activations: layer 1 {fwd[0]:8.2g}, layer {DEPTH} {fwd[-1]:8.2g}"
          f" | gradients: layer {DEPTH} {bwd[-1]:8.2g}, layer 1 {bwd[0]:8.2g}")

# %% [markdown]
# First the three scaled rules. The vertical axis is logarithmic and limited to the range
# these curves span, so that LeCun, Xavier and He can be told apart:

# %%
layers = np.arange(1, DEPTH + 1)
scaled_values = np.concatenate([np.concatenate(stds[act, name]) for act in ACTIVATIONS for name in SCALED])
y_range = (scaled_values.min() / 3, scaled_values.max() * 3)
fig, axes = plotting.subplots(2, 2, figsize=(10, 6.5), sharex=True, sharey=True)
for col, act in enumerate(ACTIVATIONS):
    for name in SCALED:
        fwd, bwd = stds[act, name]
        axes[0, col].plot(layers, fwd, label=name)
        axes[1, col].plot(layers, bwd, label=name)
    axes[0, col].set(title=f"{act}: activations (forward)", ylabel="std of h")
    axes[1, col].set(title=f"{act}: gradients (backward)", ylabel="std of dL/dh", xlabel="layer")
for ax in axes.flat:
    ax.set(yscale="log", ylim=y_range)
axes[0, 1].legend(fontsize=8)
fig.suptitle(f"Signal through a {DEPTH}-layer network at initialization: the scaled rules")
fig

# %% [markdown]
# Then the two fixed scales, on their own axis (it has to reach far lower), with He on ReLU as
# the reference line:

# %%
fig, axes = plotting.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for act in ACTIVATIONS:
    for name in FIXED:
        fwd, bwd = stds[act, name]
        axes[0].plot(layers, fwd, label=f"{act}, {name}")
        axes[1].plot(layers, bwd, label=f"{act}, {name}")
for ax, signal in zip(axes, stds["relu", "He"], strict=True):
    ax.plot(layers, signal, color="gray", linestyle=":", label="relu, He")
    ax.set(yscale="log", xlabel="layer")
axes[0].set(title="activations (forward)", ylabel="std of h")
axes[1].set(title="gradients (backward)", ylabel="std of dL/dh")
axes[1].legend(fontsize=8)
fig.suptitle("Fixed scales that ignore the layer size")
fig

# %% [markdown]
# Read the figures layer by layer. The fixed scales fail: $\sigma = 0.01$ shrinks both signals
# by a constant factor per layer until nothing is left (by more than $10^{20}$ over the 40
# layers), and $\sigma = 0.2$ makes ReLU activations grow exponentially (by more than a
# millionfold) and tanh gradients grow on their way down (more than a thousandfold). He keeps
# the ReLU signals of the 40th layer within a factor of 4 of the first layer's, forward and
# backward. LeCun and Xavier lose more than a factor of $10^5$ through the ReLU network, where
# each layer keeps only half of the second moment; for tanh they shrink the activations too, but
# slowly (tanh flattens large inputs): by less than a factor of 100. Each claim below prints
# the ratio it measured (for the exploding ReLU activations, its base-10 logarithm):

# %%
def ratio(act, name, direction):
    """Last layer's std over the first layer's, along the direction the signal travels."""
    fwd, bwd = stds[act, name]
    return fwd[-1] / fwd[0] if direction == "forward" else bwd[0] / bwd[-1]


both, fwd_bwd = [(a, d) for a in ACTIVATIONS for d in ("forward", "backward")], ("forward", "backward")
he_factor = max(max(r, 1 / r) for r in (ratio("relu", "He", d) for d in fwd_bwd))
claim("He keeps the ReLU signal at layer 40 within a factor of 4 of layer 1's, both ways", he_factor, below=4)
claim("LeCun and Xavier lose more than a factor 1e5 of the ReLU signal, both ways",
      max(ratio("relu", n, d) for n in ("LeCun", "Xavier") for d in fwd_bwd), below=1e-5)
claim("N(0, 0.01²) loses more than a factor 1e20 of both signals in both networks",
      max(ratio(a, "N(0, 0.01²)", d) for a, d in both), below=1e-20)
claim("tanh with LeCun or Xavier loses less than a factor 100 of the activations",
      min(ratio("tanh", n, "forward") for n in ("LeCun", "Xavier")), above=0.01)
claim("tanh with LeCun or Xavier does shrink the activations",
      max(ratio("tanh", n, "forward") for n in ("LeCun", "Xavier")), below=1)
claim("N(0, 0.2²) makes the ReLU activations explode (log10 of the growth)",
      math.log10(ratio("relu", "N(0, 0.2²)", "forward")), above=6)
claim("N(0, 0.2²) makes the tanh gradients grow more than a thousandfold",
      ratio("tanh", "N(0, 0.2²)", "backward"), above=1000)

# %% [markdown]
# ## 3. The derivation
#
# ### Forward: the variance of a sum
#
# Take one unit $z = \sum_{i=1}^{d} w_i x_i$ with $d$ inputs, weights drawn independently of
# each other and of the inputs, with mean 0 and variance $\sigma^2$. The variance of a sum is
# the sum of the variances *plus the covariances of every pair of terms*. The terms are **not**
# independent — neighbouring pixels of an image are strongly correlated, and so are the units
# of a hidden layer — but they are **uncorrelated**, and that is all the sum needs. For $i \ne j$,
#
# $$\operatorname{Cov}(w_i x_i, w_j x_j) = \mathbb{E}[w_i]\,\mathbb{E}[w_j]\,\mathbb{E}[x_i x_j]
#   - \mathbb{E}[w_i]\,\mathbb{E}[x_i]\;\mathbb{E}[w_j]\,\mathbb{E}[x_j] = 0,$$
#
# because each $w$ is independent of everything else and has mean 0, however $x_i$ and $x_j$
# are related. Each term has $\operatorname{Var}(w_i x_i) = \sigma^2\,\mathbb{E}[x_i^2]$, so
#
# $$\operatorname{Var}(z) = \sum_{i=1}^d \operatorname{Var}(w_i)\, \mathbb{E}[x_i^2]
#   = d\, \sigma^2\, \overline{\mathbb{E}[x^2]},$$
#
# with $\overline{\mathbb{E}[x^2]}$ the average second moment of the inputs. Note the *second
# moment*, not the variance: $\mathbb{E}[x^2] = \operatorname{Var}(x) + \mathbb{E}[x]^2$.
#
# - **Linear or tanh near 0 (LeCun).** If the inputs have mean 0, $\mathbb{E}[x^2] =
#   \operatorname{Var}(x)$, and keeping $\operatorname{Var}(z) = \operatorname{Var}(x)$ needs
#   $\sigma^2 = 1/d = 1/n_{in}$.
# - **ReLU (He).** $z$ is symmetric around 0, and ReLU keeps exactly the positive half, so
#   $\mathbb{E}[\operatorname{relu}(z)^2] = \tfrac12 \operatorname{Var}(z)$: each ReLU layer keeps
#   half of the second moment. The factor 2 restores it: $\sigma^2 = 2/n_{in}$.
#
# Each layer multiplies the second moment by $d\sigma^2$ times the fraction $\varphi$ keeps; the
# network multiplies these factors, which is why a factor of $1/2$ per layer becomes $2^{-40}$
# after 40 layers. Two of the facts used, checked on a million samples:

# %% tags=["nbval-check-output"]
z = rng.normal(0, 3.0, 1_000_000)
half = np.mean(numpy_nn.relu(z) ** 2) / np.var(z)
a = 0.7
uniform_var = np.var(rng.uniform(-a, a, 1_000_000))
print("E[relu(z)^2] / Var(z) is 1/2:", abs(half - 0.5) < 0.01)
print("Var(U(-a, a)) is a^2 / 3:", abs(uniform_var / (a**2 / 3) - 1) < 0.01)

# %% [markdown]
# ### The precondition: standardized inputs
#
# The argument starts from the first layer's input, and it assumes that input has mean 0 and
# variance 1; one of the source slide decks notes that normalizing the inputs is what allows a
# systematic use of weight initialization. Raw pixels are not like that. We load a stratified subset of Fashion-MNIST
# (`TRAIN_SIZE` training and `VAL_SIZE` validation images, 10 classes of clothing) and, to keep
# the many training runs of this chapter within its time budget, average each $2 \times 2$
# block of pixels into a $14 \times 14$ image. Standardizing subtracts the training pixels'
# mean $\mu$ and divides by their standard deviation $s$ (two numbers for the whole data set,
# the same for validation images).

# %%
fashion = data.load_fashion_mnist(train_size=TRAIN_SIZE, val_fraction=VAL_SIZE / 60_000, seed=SEED)
print(fashion.summary())



x_raw, x_val_raw = data.downsample(fashion.train.x), data.downsample(fashion.val.x)
mu, s = float(x_raw.mean()), float(x_raw.std())
x_std, x_val_std = (x_raw - mu) / s, (x_val_raw - mu) / s
print(f"raw pixels: mean {mu:.3f}, variance {s**2:.3f}, second moment {np.mean(x_raw**2):.3f}")

# %% [markdown]
# The raw pixels' second moment is their variance plus the square of their mean, and both are
# far from 1. We push `SIGNAL_BATCH` images, raw and standardized, through one wide linear layer
# with LeCun weights ($\sigma^2 = 1/196$) and measure $\operatorname{Var}(z)$. We also measure
# how much of $\mathbb{E}[z^2]$ is the part every image shares — each unit's mean over the
# images, $\sum_i w_i \mathbb{E}[x_i]$, an offset that carries no information about which
# image came in.

# %%
def first_layer(x, seed, units=2048):
    """Var(z) and the share of E[z^2] that is each unit's mean over the images."""
    x = x[:SIGNAL_BATCH].reshape(SIGNAL_BATCH, -1).astype(np.float64)
    z = x @ init.lecun_normal((units, x.shape[1]), np.random.default_rng(seed)).T
    return z.var(), np.mean(z.mean(axis=0) ** 2) / np.mean(z**2)


for name, x in [("raw", x_raw), ("standardized", x_std)]:
    var_z, shared = first_layer(x, SEED)
    second = np.mean(x[:SIGNAL_BATCH] ** 2)
    print(f"{name:12s} E[x^2] {second:.3f}  Var(x) {x[:SIGNAL_BATCH].var():.3f}  "
          f"Var(z) {var_z:.3f}  shared by all images: {shared:.0%}")

# %% [markdown]
# $\operatorname{Var}(z)$ follows the second moment of the input, as derived (the pixels are
# correlated, and the formula holds anyway: only uncorrelated terms were needed). With raw
# pixels it is far below 1 — the "variance-preserving" layer preserves a signal that started
# too small — and most of it is an offset shared by all images. Standardized, the input has
# $\mathbb{E}[x^2] = \operatorname{Var}(x) = 1$ and the layer keeps that. The shared offset
# shrinks but does not vanish: subtracting one global mean centres the average pixel, not each
# pixel. A pixel near the frame's edge is dark in nearly every image, so after standardizing it
# is still below zero in nearly every image, and the weighted sum of such pixel means is an
# offset all images share. Centring each pixel by its own mean would remove it. The claims,
# with margins wider than the sampling noise of 256 images and 2048 units:

# %%
raw_var, raw_shared = first_layer(x_raw, SEED)
std_var, std_shared = first_layer(x_std, SEED)
claim("Var(z) follows the raw pixels' second moment (Var(z) / E[x^2])",
      raw_var / np.mean(x_raw[:SIGNAL_BATCH] ** 2), above=0.75, below=1.25)
claim("standardized pixels give Var(z) near 1", std_var, above=0.75, below=1.25)
claim("raw pixels give a far smaller signal, Var(z) below 0.4", raw_var, below=0.4)
claim("more than half of E[z^2] is an offset shared by all images on raw pixels", raw_shared, above=0.5)
claim("standardizing shrinks the shared part by more than 15 points of E[z^2]", raw_shared - std_shared, above=0.15)

# %% [markdown]
# Every network trained in this chapter gets standardized inputs.
#
# ### Backward: the factor $n_{out}/n_{in}$, and why it telescopes
#
# Write $g^{(l)} = \partial L / \partial h^{(l)}$ for the gradient at the output of layer $l$,
# which has $n_l$ units; layer $l$ maps $n_{l-1}$ units to $n_l$ with $W^{(l)}$ of shape
# $(n_l, n_{l-1})$. The backward pass is
#
# $$g^{(l-1)}_j = \sum_{k=1}^{n_l} W^{(l)}_{kj}\; \varphi'\big(z^{(l)}_k\big)\; g^{(l)}_k ,$$
#
# a sum of $n_l$ terms. With the same argument — the weights independent with mean 0, and, as
# He et al. assume, $\varphi'(z)$ and $g$ independent of the weight they meet — the terms are
# uncorrelated and
#
# $$\operatorname{Var}\big(g^{(l-1)}\big) = n_l\, \operatorname{Var}(w)\,
#   \mathbb{E}\big[\varphi'(z)^2\big]\, \operatorname{Var}\big(g^{(l)}\big).$$
#
# For ReLU, $\varphi'$ is 1 on half of the units and 0 on the others, so
# $\mathbb{E}[\varphi'^2] = \tfrac12$. With fan-in He, $\operatorname{Var}(w) = 2/n_{l-1}$, and
# the backward factor of layer $l$ is $n_l \cdot \tfrac{2}{n_{l-1}} \cdot \tfrac12 =
# n_l / n_{l-1} = n_{out}/n_{in}$: not 1. Why is that still stable? Because the factors
# **telescope**: from the top layer $L$ down to layer $k$,
#
# $$\frac{\operatorname{Var}(g^{(k)})}{\operatorname{Var}(g^{(L)})}
#   = \prod_{l=k+1}^{L} \frac{n_l}{n_{l-1}} = \frac{n_L}{n_k}.$$
#
# The product does not grow with depth: it is the ratio of two widths, exactly 1 wherever the
# width is constant. (Fan-out He, $\operatorname{Var}(w) = 2/n_{out}$, makes every backward
# factor 1 and moves the width ratios to the forward pass instead; Xavier splits the
# difference.) Our network alternates 256 and 128 units, so the steps alternate $\times 2$ and
# $\times \tfrac12$ and the variance at layer $k$ should be $n_L/n_k \in \{1, 2\}$ times the
# top's. Measured on the ReLU He network of §2:

# %%
sizes = np.array(widths(DEPTH, WIDTH))
_, bwd = stds["relu", "He"]  # bwd[l - 1] = std of g^(l), l = 1..DEPTH
step = (bwd[:-1] / bwd[1:]) ** 2  # Var(g^(l-1)) / Var(g^(l)) for l = 2..DEPTH
predicted = sizes[2:] / sizes[1:-1]  # n_l / n_(l-1)
measured = {factor: np.exp(np.mean(np.log(step[predicted == factor]))) for factor in (2.0, 0.5)}
for factor, value in measured.items():
    print(f"steps with n_out/n_in = {factor}: geometric mean of the measured factor {value:.3f}")
telescoped = bwd**2 / bwd[-1] ** 2  # Var(g^(k)) / Var(g^(L))
off = telescoped / (sizes[-1] / sizes[1:])  # measured over predicted n_L / n_k
print(f"Var(g^(k)) / Var(g^(L)): {telescoped.min():.2f} to {telescoped.max():.2f}; "
      f"measured / predicted n_L / n_k: {off.min():.2f} to {off.max():.2f}")
claim("on average each backward step multiplies the variance by n_out/n_in within 20%",
      max(abs(value / factor - 1) for factor, value in measured.items()), below=0.2)
claim("the telescoped product stays within a factor of 5 of n_L/n_k at every layer",
      max(off.max(), 1 / off.min()), below=5)

# %%
plotting.plot_lines(layers, {"measured": telescoped, "predicted n_L / n_k": sizes[-1] / sizes[1:]},
                    xlabel="layer k", ylabel="Var(g^(k)) / Var(g^(L))",
                    title="Fan-in He, ReLU: the backward factors telescope")

# %% [markdown]
# On average each step's factor is within 20% of its $n_{out}/n_{in}$ (claimed), and the
# telescoped product stays within a factor of 5 of the predicted width ratio at every layer
# (claimed; the printed range is what this run measured). The deviations are the random
# fluctuations of finite layers: they add up along the depth, but they do not compound the way
# a factor of $\tfrac12$ per layer does.
#
# ### The gain of a nonlinearity
#
# All the rules have the form $\operatorname{Var}(w) = g^2 / n$ with $n$ a fan, where the
# **gain** $g$ makes up for what the nonlinearity does to the second moment:
# $g^2 = \operatorname{Var}(z)/\mathbb{E}[\varphi(z)^2]$ when that ratio does not depend on the
# scale of $z$.
#
# - linear (and convolution) layers: $g = 1$;
# - ReLU: $g = \sqrt 2$, as derived;
# - leaky ReLU with slope $a$ for negative inputs: $\mathbb{E}[\varphi(z)^2] = \tfrac{1 + a^2}{2}
#   \operatorname{Var}(z)$, so $g = \sqrt{2/(1 + a^2)}$;
# - tanh: $g = 5/3$, a chosen value rather than a derived one (tanh's slope is 1 at 0, so small
#   signals need $g = 1$; larger ones are flattened and need more);
# - sigmoid: PyTorch uses $g = 1$, which preserves nothing in particular — its slope at 0 is
#   $1/4$ and its outputs have mean $1/2$. Section 4 measures what that does in depth.
#
# `init.calculate_gain` returns these values; they agree with `torch.nn.init.calculate_gain`,
# and the leaky-ReLU formula is checked on a million samples:

# %% tags=["nbval-check-output"]
for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                    ("relu", None), ("leaky_relu", 0.2)]:
    ours, theirs = init.calculate_gain(name, param), nn.init.calculate_gain(name, param)
    assert math.isclose(ours, theirs, rel_tol=1e-12)
    print(f"{name:10s} {'' if param is None else f'a={param}':6s} gain {ours:.4f}  (torch {theirs:.4f})")
z = rng.standard_normal(1_000_000)
kept = np.mean(np.where(z > 0, z, 0.2 * z) ** 2) / np.var(z)
print("leaky ReLU (a = 0.2) keeps (1 + a^2) / 2 of the second moment:", abs(kept / 0.52 - 1) < 0.01)

# %% [markdown]
# For tanh on a standard-normal input, the fraction of the second moment kept is
# $\mathbb{E}[\tanh(z)^2]$, printed below; $1/\sqrt{\cdot}$ of it is near $5/3$, which is one way
# to see where the chosen value comes from:

# %%
tanh_kept = np.mean(np.tanh(z) ** 2)
print(f"E[tanh(z)^2] for z ~ N(0, 1): {tanh_kept:.3f}; 1 / sqrt of it: {1 / math.sqrt(tanh_kept):.3f}"
      f"; 5/3 = {5 / 3:.3f}")

# %% [markdown]
# ### Uniform bounds, and two errors in the source notes
#
# $U(-a, a)$ has variance $a^2/3$, so the bound is $a = \sqrt{3}\,\sigma$: $\sqrt{3/n_{in}}$
# (LeCun), $\sqrt{6/(n_{in}+n_{out})}$ (Xavier) and $\sqrt{6/n_{in}}$ (He); with a gain, $g$
# times these. The source notes contain two errors a reader may meet elsewhere:
#
# - one slide deck prints Xavier's (Glorot's) uniform bound as $6/(n_{in}+n_{out})$, without the
#   square root; for 256 + 256 units that bound is several times too small (the cell below
#   prints both);
# - one lecture calls $N(0, 1/n_{in})$ "Xavier". That variance is **LeCun's**; Xavier (Glorot)
#   is $\operatorname{Var}(w) = 2/(n_{in} + n_{out})$, the harmonic mean of the forward
#   requirement $1/n_{in}$ and the backward requirement $1/n_{out}$.

# %% tags=["nbval-check-output"]
bound, no_root = math.sqrt(6 / (256 + 256)), 6 / (256 + 256)
print(f"Xavier uniform bound for 256 + 256 units: {bound:.3f}; without the square root: {no_root:.3f}, "
      f"{bound / no_root:.1f} times too small")

# %% [markdown]
# ### Fans of a convolution
#
# For a convolution weight of shape $(C_{out}, C_{in}, K_H, K_W)$ — $C_{out}$ filters over
# $C_{in}$ input channels with a $K_H \times K_W$ kernel — each output value sums
# $n_{in} = C_{in} K_H K_W$ products, and each input value is used by
# $n_{out} = C_{out} K_H K_W$ of them: the kernel area multiplies both fans.
# `init.fan_in_fan_out` follows PyTorch's rule, shape (out, in, *kernel):

# %% tags=["nbval-check-output"]
for shape in [(128, 256), (64, 32, 3, 3), (16, 3, 5, 5)]:
    fan_in, fan_out = init.fan_in_fan_out(shape)
    print(f"weight {str(shape):15s} fan_in {fan_in:5d}  fan_out {fan_out:5d}  He std {math.sqrt(2 / fan_in):.4f}")

# %% [markdown]
# The count $n_{out} = C_{out} K_H K_W$ assumes **stride 1**. With stride $s$ the kernel visits
# only every $s$-th position in each direction, so an input pixel feeds about
# $C_{out} K_H K_W / s^2$ outputs. PyTorch's fan (and ours) ignores the stride. We count the
# uses directly: convolving with all-ones weights and back-propagating a gradient of ones puts
# into each input pixel the number of outputs it feeds.

# %% tags=["nbval-check-output"]
def uses_per_pixel(c_out, k, stride, size=16):
    """Average number of outputs each interior pixel of a (1, 1, size, size) input feeds."""
    x = torch.ones(1, 1, size, size, requires_grad=True)
    F.conv2d(x, torch.ones(c_out, 1, k, k), stride=stride, padding=k // 2).sum().backward()
    return x.grad[0, 0, k : size - k, k : size - k].mean().item()  # away from the borders


for stride in (1, 2):
    print(f"C_out = 4, 3x3 kernel, stride {stride}: each pixel feeds {uses_per_pixel(4, 3, stride):g}"
          f" outputs; C_out K_H K_W / s^2 = {4 * 9 / stride**2:g}")

# %% [markdown]
# ## 4. Sigmoid against ReLU
#
# The derivative of the logistic sigmoid, $\sigma'(z) = \sigma(z)\,(1 - \sigma(z))$, is at most
# $1/4$ (at $z = 0$) and essentially zero once $|z|$ is more than a few units: a **saturated**
# unit passes almost no gradient back, and even an unsaturated one divides it by at least 4.
# ReLU's derivative is exactly 1 for positive inputs and 0 for negative ones: it neither
# shrinks nor amplifies the gradient of an active unit — but a unit that is negative for every
# input (**dead**) passes nothing.

# %%
zz = np.linspace(-6, 6, 601)
sigmoid = 1 / (1 + np.exp(-zz))
plotting.plot_lines(zz, {"sigmoid'": sigmoid * (1 - sigmoid), "tanh'": 1 - np.tanh(zz) ** 2,
                         "relu'": (zz > 0).astype(float)},
                    xlabel="pre-activation z", ylabel="derivative", title="Derivatives of three activations")

# %% [markdown]
# How many units are in trouble *at initialization*? For a layer of 256 sigmoid units on 256
# standard-normal inputs, we count the units with $|z| > 4$ (where $\sigma'(z) < 0.018$, under a
# tenth of its maximum) for weights from $N(0, 1)$ — a common naive choice — and from Xavier:

# %%
x_in = rng.standard_normal((SIGNAL_BATCH, 256))
saturated = {}
for name, w in [("N(0, 1)", rng.standard_normal((256, 256))), ("Xavier", init.xavier_normal((256, 256), rng))]:
    saturated[name] = np.mean(np.abs(x_in @ w.T) > 4)
    print(f"{name:8s} weights: {saturated[name]:.1%} of the sigmoid units saturated")
claim("with N(0, 1) weights more than 70% of the sigmoid units are saturated", 100 * saturated["N(0, 1)"], above=70)
claim("with Xavier weights fewer than 1% of the sigmoid units are saturated", 100 * saturated["Xavier"], below=1)

# %% [markdown]
# Dead ReLUs: we count, layer by layer, the units of the deep He-initialized ReLU network of
# §2 that output 0 for *every* input of the batch. The first layer has none; deeper down the
# representations of different inputs grow alike, and more and more units are switched off for
# all of them together, even with the right scale.

# %%
def dead_fraction_per_layer(seed):
    rng = np.random.default_rng(seed)
    sizes = widths(DEPTH, WIDTH)
    h, dead = rng.standard_normal((SIGNAL_BATCH, sizes[0])), []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        h = numpy_nn.relu(h @ init.kaiming_normal((n_out, n_in), rng).T)
        dead.append(np.mean(np.all(h == 0, axis=0)))
    return np.array(dead)


dead = np.mean([dead_fraction_per_layer(SEED + s) for s in range(3)], axis=0)
print(f"dead ReLUs: layer 1 {dead[0]:.1%}, layers {DEPTH - 9}-{DEPTH} on average {dead[-10:].mean():.1%}")
claim("no unit of the first layer is dead (percent dead; one unit would be 0.78%)", 100 * dead[0], below=0.5)
claim("more than 5% of the units of the last ten layers are dead, on average", 100 * dead[-10:].mean(), above=5)

# %%
plotting.plot_lines(layers, {"He init, 3 seeds averaged": 100 * dead}, xlabel="layer",
                    ylabel="dead units (%)", title="ReLUs that are off for every input, at initialization")

# %% [markdown]
# ### A sigmoid network in depth
#
# One of the source lectures contrasts sigmoid and ReLU networks through depth. We build both in
# PyTorch on the standardized $14 \times 14$ Fashion-MNIST images: `MLP_DEPTH` hidden layers of
# `MLP_WIDTH` units, then a linear classifier. Each gets the initialization meant for it —
# Xavier for the sigmoid, He for the ReLU — and every bias starts at 0. For one batch of
# `SIGNAL_BATCH` training images we measure (in float64 on the CPU, so that tiny values are not
# rounded to zero), per hidden layer, how much the activations differ
# *between images* (each unit's standard deviation over the batch, averaged over the units) and
# the standard deviation of the gradient $\partial L/\partial h$ of the cross-entropy loss.

# %%
def make_mlp(activation, depth=MLP_DEPTH, width=MLP_WIDTH):
    layers = [nn.Flatten(), nn.Linear(14 * 14, width), activation()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), activation()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def initialize_(model, draw, rng):
    """Every conv/linear weight from a NumPy initializer (None: keep PyTorch's), every bias 0."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                if draw is not None:
                    module.weight.copy_(torch.from_numpy(draw(tuple(module.weight.shape), rng)))
                module.bias.zero_()
    return model

# %%
def layer_signals(model, x, y):
    """Per hidden layer: between-image std of h, and std of dL/dh, for one batch."""
    h, hidden = x, []
    for module in model:
        h = module(h)
        if isinstance(module, nn.Sigmoid | nn.ReLU):
            h.retain_grad()
            hidden.append(h)
    F.cross_entropy(h, y).backward()
    return (np.array([a.std(dim=0).mean().item() for a in hidden]),
            np.array([a.grad.std().item() for a in hidden]))


MLP_ARMS = {"sigmoid, Xavier": (nn.Sigmoid, init.xavier_normal), "ReLU, He": (nn.ReLU, init.kaiming_normal)}
x_batch = torch.from_numpy(x_std[:SIGNAL_BATCH]).double()
y_batch = torch.from_numpy(fashion.train.y[:SIGNAL_BATCH])
signals = {}
for name, (activation, draw) in MLP_ARMS.items():
    torch.manual_seed(SEED)
    mlp = initialize_(make_mlp(activation).double(), draw, np.random.default_rng(SEED))
    signals[name] = layer_signals(mlp, x_batch, y_batch)
    between, grad = signals[name]
    print(f"{name:16s} between-image std: layer 1 {between[0]:.2g}, layer {MLP_DEPTH} {between[-1]:.2g}"
          f" | std of dL/dh: layer {MLP_DEPTH} {grad[-1]:.2g}, layer 1 {grad[0]:.2g}")

# %%
hidden_layers = np.arange(1, MLP_DEPTH + 1)
fig, axes = plotting.subplots(1, 2, figsize=(10, 3.8))
for name, (between, grad) in signals.items():
    axes[0].plot(hidden_layers, between, marker="o", label=name)
    axes[1].plot(hidden_layers, grad, marker="o", label=name)
axes[0].set(yscale="log", xlabel="hidden layer", ylabel="std over the images",
            title="how much activations differ between images")
axes[1].set(yscale="log", xlabel="hidden layer", ylabel="std of dL/dh", title="gradients")
axes[1].legend(fontsize=8)
fig.suptitle(f"A {MLP_DEPTH}-layer network on Fashion-MNIST at initialization")
fig

# %% [markdown]
# Both signals vanish in the sigmoid network; the margins claimed below are orders of
# magnitude. Every sigmoid layer multiplies the backward variance by at most
# $n\,\sigma^2 \cdot \tfrac1{16}$ (its slope is at most $\tfrac14$). Forward, its outputs all
# have mean near $\tfrac12$, so each next layer's input is, like the raw pixels above, far from
# zero mean, and a large part of each pre-activation is an offset shared by all images. By the
# top, the images are nearly indistinguishable. The ReLU He network keeps both within a factor
# of 10 (claimed; the top layer's share of the differences between images, which varies by a
# factor from seed to seed, is claimed on a log scale: its base-10 logarithm is above $-1$).

# %%
sig_between, sig_grad = signals["sigmoid, Xavier"]
relu_between, relu_grad = signals["ReLU, He"]
claim("sigmoid: the top layer's activations differ between images 100 times less than layer 1's",
      sig_between[-1] / sig_between[0], below=1e-2)
claim("sigmoid: the gradient at layer 1 is 10,000 times smaller than at the top",
      sig_grad[0] / sig_grad[-1], below=1e-4)
claim("ReLU He: the top layer's activations keep more than a tenth of layer 1's difference between images (log10)",
      math.log10(relu_between[-1] / relu_between[0]), above=-1)
claim("ReLU He: the gradient at layer 1 is within a factor of 10 of the top's", relu_grad[0] / relu_grad[-1],
      above=0.1, below=10)

# %% [markdown]
# Does it matter for training? Both networks train for `EPOCHS` epochs with the same SGD with
# momentum, data order and seed (training through `helpers.training.fit`):

# %%
train_loader = data.DeviceLoader(x_std, fashion.train.y, BATCH_SIZE, shuffle=True, seed=SEED, device=device)
val_loader = data.DeviceLoader(x_val_std, fashion.val.y, 500, device=device)


def train(model, desc, epochs=EPOCHS):
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    history = training.fit(model, train_loader, val_loader, optimizer, epochs, desc=desc)
    print(f"{desc:16s} final train loss {history.train_loss[-1]:.3f}, "
          f"val accuracy {history.val_acc[-1]:.1%}")
    return history


mlp_histories = {}
for name, (activation, draw) in MLP_ARMS.items():
    torch.manual_seed(SEED)
    mlp_histories[name] = train(initialize_(make_mlp(activation), draw, np.random.default_rng(SEED)), name)

# %% [markdown]
# The ReLU network learns; the sigmoid network, with the scale that is right for a linear
# layer, stays at chance (10 classes: loss $\ln 10 \approx 2.30$, 10% accuracy) for the whole
# run. The claims, with wide margins: the sigmoid network's training loss never drops below 2.2
# and its validation accuracy never reaches 20%, while the ReLU network ends above 65%.

# %%
sig_h, relu_h = mlp_histories["sigmoid, Xavier"], mlp_histories["ReLU, He"]
claim("the sigmoid network's training loss stays above 2.2 in every epoch", min(sig_h.train_loss), above=2.2)
claim("the sigmoid network's validation accuracy stays below 20% in every epoch", 100 * max(sig_h.val_acc), below=20)
claim("the ReLU network ends above 65% validation accuracy", 100 * relu_h.val_acc[-1], above=65)

# %%
plotting.plot_history(mlp_histories, title=f"{MLP_DEPTH} hidden layers on Fashion-MNIST (14x14)")

# %% [markdown]
# ## 5. PyTorch: `torch.nn.init`
#
# PyTorch's initializers work in place on a tensor: `nn.init.xavier_normal_`,
# `xavier_uniform_`, `kaiming_normal_`, `kaiming_uniform_` (He; `nonlinearity="relu"` and fan-in
# mode are the scale derived above). There is no `lecun_normal_`; `kaiming_normal_` with
# `nonlinearity="linear"` (gain 1) is the same distribution. Random draws differ between NumPy
# and torch, so we compare *statistics*: the sample standard deviation of a large weight against
# the formula, for a linear and a convolution weight.

# %%
TORCH_INITS = {
    "lecun_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear"),
    "xavier_normal": nn.init.xavier_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
}
FORMULAS = {  # std as a function of (fan_in, fan_out)
    "lecun_normal": lambda fi, fo: math.sqrt(1 / fi),
    "xavier_normal": lambda fi, fo: math.sqrt(2 / (fi + fo)),
    "xavier_uniform": lambda fi, fo: math.sqrt(2 / (fi + fo)),
    "kaiming_normal": lambda fi, fo: math.sqrt(2 / fi),
    "kaiming_uniform": lambda fi, fo: math.sqrt(2 / fi),
}
worst = 0.0
for shape in [(256, 512), (128, 64, 3, 3)]:
    fan_in, fan_out = init.fan_in_fan_out(shape)
    for name, torch_init in TORCH_INITS.items():
        want = FORMULAS[name](fan_in, fan_out)
        ours = getattr(init, name)(shape, rng).std()
        theirs = torch_init(torch.empty(shape, dtype=torch.float64)).std().item()
        worst = max(worst, abs(ours / want - 1), abs(theirs / want - 1))
        print(f"{str(shape):15s} {name:16s} formula {want:.4f}  helpers.init {ours:.4f}  torch {theirs:.4f}")

# %% [markdown]
# With at least 70,000 draws per weight, a sample standard deviation is within about 0.3% of the
# true one; we allow 2%:

# %% tags=["nbval-check-output"]
assert worst < 0.02, f"an initializer is off its formula by {worst:.1%}"
print("helpers.init and torch.nn.init agree with the formulas within 2%:", True)

# %% [markdown]
# The fans agree too: PyTorch's `kaiming_normal_` on a $(128, 64, 3, 3)$ tensor has standard
# deviation $\sqrt{2/576}$, so it also counts $64 \cdot 3 \cdot 3 = 576$ inputs.
#
# Note what PyTorch does *by default*. `nn.Conv2d` and `nn.Linear` initialize their weights with
# `kaiming_uniform_(w, a=math.sqrt(5))`, a leaky-ReLU gain that works out to
# $\operatorname{Var}(w) = 1/(3 n_{in})$: a third of LeCun's variance and a sixth of He's. It is
# a fine start for shallow networks, but a deep plain ReLU network built from default layers
# loses a factor $\sqrt{6}$ of its signal per layer:

# %%
conv = nn.Conv2d(32, 64, 3)
scaled = conv.weight.std().item() * math.sqrt(32 * 3 * 3)
print(f"default Conv2d: std x sqrt(fan_in) = {scaled:.3f}; 1/sqrt(3) = {1 / math.sqrt(3):.3f}, "
      f"He: sqrt(2) = {math.sqrt(2):.3f}")
assert abs(scaled - 1 / math.sqrt(3)) < 0.03, "the default init is not kaiming_uniform_(a=sqrt(5))"

# %% [markdown]
# ## 6. Experiment: a deep plain CNN on Fashion-MNIST
#
# The claim: a deep convolutional network without normalization layers trains with He
# initialization and does not train at all with badly scaled weights. The network stacks
# `CNN_DEPTH` $3 \times 3$ convolutions of `CNN_CHANNELS` channels with "same" padding and ReLU
# on the standardized $14 \times 14$ images of §3, then one linear classifier. Three versions
# differ only in their weights:
#
# - $N(0, 0.01^2)$, a small fixed scale;
# - PyTorch's default weights, `kaiming_uniform_(a=√5)`, with $\operatorname{Var}(w) =
#   1/(3 n_{in})$ (§5);
# - He, $N(0, 2/n_{in})$ from `helpers.init`.
#
# Every bias starts at 0 in all three, so the weights are the only difference (PyTorch's default
# would also draw the biases from $U(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})$; we zero them in the
# default version too). Each trains for `CNN_EPOCHS` epochs with the same SGD with momentum,
# data order and seed.

# %%
def make_plain_cnn(depth=CNN_DEPTH, channels=CNN_CHANNELS):
    layers = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 14 * 14, 10))


def signal_at_classifier(model):
    """std of what reaches the classifier over the std of the input, for one batch."""
    x = torch.from_numpy(x_std[:SIGNAL_BATCH]).to(device)
    with torch.no_grad():
        return (model[:-1](x).std() / x.std()).item()


CNN_INITS = {"N(0, 0.01²)": FIXED["N(0, 0.01²)"], "PyTorch default": None, "He": init.kaiming_normal}
histories, reach = {}, {}
for name, draw in CNN_INITS.items():
    torch.manual_seed(SEED)  # the same PyTorch draw for the default version
    model = initialize_(make_plain_cnn(), draw, np.random.default_rng(SEED)).to(device)
    reach[name] = signal_at_classifier(model)
    print(f"{name:16s} at initialization, std at the classifier / std of the input: {reach[name]:.1e}")
    histories[name] = train(model, name, epochs=CNN_EPOCHS)

# %% [markdown]
# The claims, with margins that leave room for the spread from seed to seed: with He
# initialization the network reaches more than 60% validation accuracy within `CNN_EPOCHS`
# epochs. With $N(0, 0.01^2)$ weights each layer multiplies the signal's standard deviation by
# about $\sqrt{144 \cdot 10^{-4}/2} \approx 0.085$, and with PyTorch's default weights by
# $1/\sqrt 6 \approx 0.41$. The printed ratios measure what is left after 10 layers: less than
# $10^{-6}$ of the input's scale with the tiny weights and less than $10^{-3}$ with the default
# ones, against more than $10^{-2}$ with He (He's ratio varies by a factor from seed to seed,
# because ten random layers of 16 channels multiply their fluctuations, hence the loose bound,
# claimed on its base-10 logarithm), and the gradients of the early layers are shrunk by the
# same per-layer factors on the way back. Both badly scaled networks stay at chance for the
# whole run: training loss above 2.2 (chance is $\ln 10 \approx 2.30$) and validation accuracy
# below 20% in every epoch.

# %%
bad = [histories[k] for k in ("N(0, 0.01²)", "PyTorch default")]
claim("with He initialization the plain CNN reaches more than 60% validation accuracy",
      100 * histories["He"].val_acc[-1], above=60)
claim("N(0, 0.01²) leaves less than 1e-6 of the input's scale at the classifier", reach["N(0, 0.01²)"], below=1e-6)
claim("PyTorch's default leaves less than 1e-3 of the input's scale at the classifier",
      reach["PyTorch default"], below=1e-3)
claim("He leaves more than 1e-2 of the input's scale at the classifier (log10)", math.log10(reach["He"]), above=-2)
claim("both badly scaled CNNs keep a training loss above 2.2 in every epoch",
      min(min(h.train_loss) for h in bad), above=2.2)
claim("both badly scaled CNNs stay below 20% validation accuracy in every epoch",
      100 * max(max(h.val_acc) for h in bad), below=20)

# %%
plotting.plot_history(histories, title=f"A {CNN_DEPTH}-layer plain CNN on Fashion-MNIST (14x14), three initializations")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — fans.** Write `my_fan_in_fan_out(shape)` returning `(fan_in, fan_out)` for a
# weight of shape (out, in, *kernel) with any number of kernel dimensions (none for a linear
# layer), as PyTorch computes them.

# %%
def my_fan_in_fan_out(shape):
    ### BEGIN SOLUTION
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_fan_in_fan_out(my_fan_in_fan_out)

# %% [markdown]
# **Exercise 2 — Xavier uniform.** Write `my_xavier_uniform(shape, rng, gain)` that draws a
# weight of the given shape from the Glorot uniform distribution, using `rng.uniform` and your
# fans. (Mind the square root that one of the source decks forgot.)

# %%
def my_xavier_uniform(shape, rng, gain=1.0):
    ### BEGIN SOLUTION
    fan_in, fan_out = my_fan_in_fan_out(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_xavier_uniform(my_xavier_uniform)

# %% [markdown]
# **Exercise 3 — following the signal.** Write `forward_stds(x, weights, activation)`: starting
# from `x` of shape $(N, D_0)$, apply each weight $W_l$ of shape $(D_l, D_{l-1})$ as
# $h_l = \varphi(h_{l-1} W_l^\top)$ (no bias), with $\varphi$ = `"relu"` or `"tanh"`, and
# return the list of `h_l.std()` for $l = 1, \dots, L$.

# %%
def forward_stds(x, weights, activation):
    ### BEGIN SOLUTION
    phi = {"relu": numpy_nn.relu, "tanh": np.tanh}[activation]
    h, out = x, []
    for w in weights:
        h = phi(h @ w.T)
        out.append(h.std())
    return out
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_forward_stds(forward_stds)

# %% [markdown]
# **Exercise 4 — the backward pass, derived.** Write `backward_stds(x, weights, grad_top)` for
# the ReLU network $h_0 = x$, $h_l = \operatorname{relu}(h_{l-1} W_l^\top)$ (no bias), with
# `x` of shape $(N, D_0)$ and $W_l$ of shape $(D_l, D_{l-1})$. `grad_top` of shape $(N, D_L)$ is
# $\partial L / \partial h_L$. Derive the gradient with respect to $h_{l-1}$ from the one with
# respect to $h_l$ (first through the ReLU, then through the matrix product), and return the
# list of the standard deviations of $\partial L / \partial h_l$ for $l = 0, \dots, L-1$,
# bottom layer first. Do not use autograd.

# %%
def backward_stds(x, weights, grad_top):
    ### BEGIN SOLUTION
    zs, h = [], x
    for w in weights:
        zs.append(h @ w.T)
        h = numpy_nn.relu(zs[-1])
    grad, out = grad_top, []
    for w, z in zip(weights[::-1], zs[::-1], strict=True):
        grad = (grad * (z > 0)) @ w
        out.append(grad.std())
    return out[::-1]
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_backward_stds(backward_stds)

# %% [markdown]
# **Exercise 5 — the gain and the fan mode.** Write `my_kaiming_normal(shape, rng, nonlinearity,
# a, mode)` that draws from $N(0, g^2/n)$, with $g$ the gain of §3 for `"linear"`, `"sigmoid"`,
# `"tanh"`, `"relu"` or `"leaky_relu"` (negative slope `a`) and $n$ the fan in (`mode="fan_in"`)
# or out (`"fan_out"`), as `torch.nn.init.kaiming_normal_(w, a, mode, nonlinearity)`. Write the
# gains yourself; your `my_fan_in_fan_out` is welcome.

# %%
def my_kaiming_normal(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    ### BEGIN SOLUTION
    gains = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2.0),
             "leaky_relu": math.sqrt(2.0 / (1 + a**2))}
    fan_in, fan_out = my_fan_in_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return rng.normal(0.0, gains[nonlinearity] / math.sqrt(fan), size=shape)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_kaiming_normal(my_kaiming_normal)

# %% [markdown]
# **Exercise 6 — explore (written).** (a) With your `forward_stds`, find by bisection the
# weight scale $c$ in $\sigma = c/\sqrt{n_{in}}$ for which a 40-layer tanh network keeps its
# activations' standard deviation between 0.5 and 1 at the top. How does it compare with
# LeCun's $c = 1$ and with the tanh gain $5/3$? (b) Train the plain CNN of §6 with Adam instead
# of SGD from the $N(0, 0.01^2)$ start. Adam divides each gradient by its own running size:
# does that rescue the tiny initialization, and why might it? (c) Train the sigmoid network of
# §4 on *raw* pixels and on standardized ones, and with `MLP_DEPTH = 2`. Which change matters,
# and what do the measurements of §3 and §4 predict?
#
# <details><summary>Answer</summary>
#
# (a) Since $|\tanh| \le 1$, the upper bound always holds and the bisection looks for the
# smallest $c$ whose top standard deviation still reaches 0.5. It lies between LeCun's $c = 1$
# and the gain $5/3$: at $c = 1$ the signal shrinks slowly but steadily over 40 layers and ends
# well below 0.5 (§2 prints it for LeCun), while a larger $c$ such as $\sqrt 2$ (§2's "He" row
# for tanh) already ends inside the band, and $5/3$ more so. tanh's slope is below 1 away from 0,
# so each layer must amplify its input a little ($c > 1$) to make up for what tanh squeezes off;
# $5/3$ errs on the large side, which tanh's saturation tolerates. (b) Adam's step is
# $\eta\,\hat m / (\sqrt{\hat v} + \epsilon)$, about $\eta$ in size whatever the scale of the
# gradient, so one would hope that vanishing gradients no longer mean vanishing steps. Expect
# it not to rescue the network: with Adam's default rate $10^{-3}$ the loss stays at chance,
# $\ln 10$, for all `CNN_EPOCHS` epochs. The normalization only works for gradients that are
# large compared with $\epsilon = 10^{-8}$; after ten layers that each shrink the signal about
# twelvefold forward and the gradient as much backward, the gradients are far smaller than
# that, and then the step is $\eta\, g/\epsilon$, as tiny as SGD's. Even the
# classifier, whose gradient is not shrunk, sees inputs that are nearly the same for every
# image, so it can only learn the class frequencies. A good initialization is the cure; an
# adaptive optimizer does not replace it. (c) §3 predicts that raw pixels give the first
# layer a far smaller pre-activation with a large offset shared by all images; standardizing
# fixes that, but only for the first layer: every sigmoid layer's outputs have mean near ½ and
# its slope is at most ¼, so the backward variance shrinks layer after layer (§4). With ten
# hidden layers that compounding dominates whatever the inputs; with `MLP_DEPTH = 2` there is
# little of it, and the sigmoid network trains. So expect this: with ten layers the network
# stays at chance on raw and on standardized pixels alike; with two it trains on both, and
# clearly faster on standardized ones. Depth is the change that decides whether it trains at
# all; standardizing then decides how fast.
# </details>

# %% [markdown]
# ## Summary
#
# - Equal initial weights stay equal: every unit gets the same gradient. Random weights break
#   the symmetry.
# - The gradient at a layer is a product of one factor per layer above it; factors consistently
#   above or below 1 make signals explode or vanish exponentially with depth. In a 40-layer
#   network, the fixed scales $\sigma = 0.01$ and $\sigma = 0.2$ vanish or explode, LeCun and
#   Xavier lose half the second moment per ReLU layer, and He keeps ReLU signals at one scale
#   forward and backward.
# - $\operatorname{Var}(z) = d\,\sigma^2\,\mathbb{E}[x^2]$ needs only *uncorrelated* terms, which
#   zero-mean weights drawn independently of the inputs guarantee; it gives LeCun $1/n_{in}$,
#   and ReLU's halving gives He's $2/n_{in}$. It follows the *second moment* of the input: it
#   assumes standardized inputs, and raw $[0, 1]$ pixels give a far smaller signal, mostly an
#   offset shared by every image. Standardizing with one global mean and standard deviation
#   fixes the scale and shrinks that offset; only centring each pixel on its own mean removes it.
# - Backward, each layer multiplies the gradient variance by $n_{out} \operatorname{Var}(w)
#   \mathbb{E}[\varphi'^2]$, which is $n_{out}/n_{in}$ for fan-in He; these factors telescope to
#   $n_L/n_k$, a width ratio that does not grow with depth. Xavier's $2/(n_{in}+n_{out})$
#   balances the two passes.
# - The gain $g$ in $\operatorname{Var}(w) = g^2/n$: 1 for linear layers and sigmoid, $5/3$ for
#   tanh, $\sqrt 2$ for ReLU, $\sqrt{2/(1+a^2)}$ for leaky ReLU. Uniform bounds are $\sqrt 3$
#   standard deviations, e.g. $\sqrt{6/(n_{in}+n_{out})}$ — with the square root.
# - For a convolution both fans include the kernel area: $n_{in} = C_{in} K_H K_W$,
#   $n_{out} = C_{out} K_H K_W$, the latter for stride 1 (about $C_{out} K_H K_W / s^2$ with
#   stride $s$).
# - Sigmoid derivatives are at most $1/4$ and vanish when units saturate (most of them with
#   $N(0,1)$ weights); a 10-layer sigmoid network on Fashion-MNIST loses both the differences
#   between images and its gradients, and does not train, where the ReLU He network does. ReLUs
#   pass gradients unchanged but some are dead for every input, more of them deeper.
# - `helpers.init` matches `torch.nn.init` statistically; PyTorch's default layer init has a
#   third of LeCun's variance. A 10-layer plain CNN on Fashion-MNIST trains with He
#   initialization and stays at chance for the whole (short) run with $N(0, 0.01^2)$ weights and
#   with PyTorch's default weights, all with zero biases.
