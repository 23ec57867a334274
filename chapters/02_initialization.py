# %% [markdown]
# # Chapter 2 — Weight initialization
#
# Before the first gradient step, every weight of a network already has a value, and that value
# decides whether training can start at all. This chapter shows why the weights must be random,
# why their *scale* must depend on the layer's size, derives the LeCun, Xavier (Glorot) and He
# scales from one line of variance algebra, checks our NumPy initializers against `torch.nn.init`,
# and trains a deep convolutional network that learns with one initialization and not at all
# with another.
#
# **Learning goals.** After this chapter you can
#
# 1. explain why equal initial weights can never become different (the symmetry problem);
# 2. describe vanishing and exploding signals as a product of per-layer factors, and measure them
#    layer by layer in a deep network, forward and backward;
# 3. derive $\operatorname{Var}(w) = 1/n_{in}$, $2/(n_{in}+n_{out})$ and $2/n_{in}$, and the
#    matching uniform bounds;
# 4. compute the fans of a convolution weight, where the kernel area counts;
# 5. measure saturated sigmoid units and dead ReLUs at initialization;
# 6. initialize a PyTorch model from NumPy and see He initialization make a deep plain CNN
#    trainable.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
DEPTH = 40  # layers of the deep NumPy network used to follow the signal
WIDTH = 256  # its wider layers; the others have WIDTH // 2 units
SIGNAL_BATCH = 256  # random inputs pushed through it
CNN_DEPTH = 10  # convolutional layers of the plain CNN trained on the digits
EPOCHS = 12  # epochs per initialization on the digits
BATCH_SIZE = 64
LEARNING_RATE = 0.01  # SGD with momentum 0.9, the same for every initialization

# %%
import math

import numpy as np
import torch
import torch.nn as nn

from helpers import checks, data, init, numpy_nn, plotting, training
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
# After 200 steps the 32 rows of the constant network are still one row repeated (up to the last
# bits of float64 rounding), while the random network's rows are all different:

# %% tags=["nbval-check-output"]
def row_spread(w):
    """Largest difference between any hidden unit's weights and the first unit's."""
    return np.abs(w - w[0]).max()


assert row_spread(w1_const) < 1e-10 * np.abs(w1_const).max(), "symmetry was broken"
assert row_spread(w1_rand) > 0.1 and acc_rand > acc_const + 0.2
print("constant init: all 32 hidden units still identical:", row_spread(w1_const) < 1e-10)
print("random init:   hidden units differ:", row_spread(w1_rand) > 0.1)

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
INITS = {
    "N(0, 0.01²)": lambda shape, rng: rng.normal(0, 0.01, shape),
    "N(0, 0.2²)": lambda shape, rng: rng.normal(0, 0.2, shape),
    "LeCun": init.lecun_normal,
    "Xavier": init.xavier_normal,
    "He": init.kaiming_normal,
}
stds = {(act, name): signal_stds(draw, act, SEED) for act in ACTIVATIONS for name, draw in INITS.items()}
for (act, name), (fwd, bwd) in stds.items():
    print(f"{act:4s} {name:12s} activations: layer 1 {fwd[0]:8.2g}, layer {DEPTH} {fwd[-1]:8.2g}"
          f" | gradients: layer {DEPTH} {bwd[-1]:8.2g}, layer 1 {bwd[0]:8.2g}")

# %%
layers = np.arange(1, DEPTH + 1)
fig, axes = plotting.subplots(2, 2, figsize=(10, 6.5), sharex=True)
for col, act in enumerate(ACTIVATIONS):
    for name in INITS:
        fwd, bwd = stds[act, name]
        axes[0, col].plot(layers, fwd, label=name)
        axes[1, col].plot(layers, bwd, label=name)
    axes[0, col].set(title=f"{act}: activations (forward)", ylabel="std of h")
    axes[1, col].set(title=f"{act}: gradients (backward)", ylabel="std of dL/dh", xlabel="layer")
for ax in axes.flat:
    ax.set_yscale("log")
axes[0, 1].legend(fontsize=8)
fig.suptitle(f"Signal through a {DEPTH}-layer network at initialization")
fig

# %% [markdown]
# Read the figure layer by layer. The fixed scales fail: $\sigma = 0.01$ shrinks both signals
# by a constant factor per layer until nothing is left, and $\sigma = 0.2$ makes ReLU
# activations grow exponentially and tanh gradients grow on their way down. He keeps ReLU
# signals at one scale through all 40 layers. LeCun and Xavier are close to right for tanh (its
# activations still shrink slowly, because $\tanh$ flattens large inputs) but lose half of the
# second moment per ReLU layer. The claims, checked:

# %%
def ratio(act, name, direction):
    """Last layer's std over the first layer's, along the direction the signal travels."""
    fwd, bwd = stds[act, name]
    return fwd[-1] / fwd[0] if direction == "forward" else bwd[0] / bwd[-1]


assert 0.25 < ratio("relu", "He", "forward") < 4 and 0.25 < ratio("relu", "He", "backward") < 4
for name in ("LeCun", "Xavier"):
    assert ratio("relu", name, "forward") < 1e-3 and ratio("relu", name, "backward") < 1e-3
for act in ACTIVATIONS:
    assert ratio(act, "N(0, 0.01²)", "forward") < 1e-20 and ratio(act, "N(0, 0.01²)", "backward") < 1e-20
assert ratio("relu", "N(0, 0.2²)", "forward") > 20, "too-large ReLU init should explode forward"
assert ratio("tanh", "N(0, 0.2²)", "backward") > 5, "too-large tanh init should explode backward"
print({f"relu He {d}": round(ratio("relu", "He", d), 2) for d in ("forward", "backward")})

# %% [markdown]
# ## 3. The derivation
#
# Take one unit $z = \sum_{i=1}^{d} w_i x_i$ with $d$ inputs, weights drawn independently of the
# inputs with mean 0 and variance $\sigma^2$. The terms are independent with mean 0, so the
# variances add:
#
# $$\operatorname{Var}(z) = \sum_{i=1}^d \operatorname{Var}(w_i)\, \mathbb{E}[x_i^2]
#   = d\, \sigma^2\, \mathbb{E}[x^2].$$
#
# - **Linear or tanh near 0 (LeCun).** If $\mathbb{E}[x^2] = \operatorname{Var}(x)$, keeping
#   $\operatorname{Var}(z) = \operatorname{Var}(x)$ needs $\sigma^2 = 1/d = 1/n_{in}$.
# - **ReLU (He).** $z$ is symmetric around 0, and ReLU keeps exactly the positive half, so
#   $\mathbb{E}[\operatorname{relu}(z)^2] = \tfrac12 \operatorname{Var}(z)$: each ReLU layer keeps
#   half of the second moment. The factor 2 restores it: $\sigma^2 = 2/n_{in}$.
# - **Backward.** The gradient flows through $W^\top$, which sums over the $n_{out}$ units a
#   unit feeds, so the same argument asks for $\sigma^2 = 1/n_{out}$ there. **Xavier (Glorot)**
#   takes the compromise $\sigma^2 = 2/(n_{in} + n_{out})$, the harmonic mean of the two.
# - **Uniform bounds.** $U(-a, a)$ has variance $a^2/3$, so the bound is $a = \sqrt{3}\,\sigma$:
#   $\sqrt{3/n_{in}}$ (LeCun), $\sqrt{6/(n_{in}+n_{out})}$ (Xavier) and $\sqrt{6/n_{in}}$ (He).
#   One of the source slide decks prints Xavier's bound as $6/(n_{in}+n_{out})$ without the square
#   root; for 256 + 256 units that is $0.012$ instead of $0.108$, ten times too small.
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
# ### Fans of a convolution
#
# For a convolution weight of shape $(F, C, K_H, K_W)$, each output value sums
# $n_{in} = C K_H K_W$ products, and each input value is used by $n_{out} = F K_H K_W$ of them:
# the kernel area multiplies both fans. `init.fan_in_fan_out` follows PyTorch's rule, shape
# (out, in, *kernel):

# %% tags=["nbval-check-output"]
for shape in [(128, 256), (64, 32, 3, 3), (16, 3, 5, 5)]:
    fan_in, fan_out = init.fan_in_fan_out(shape)
    print(f"weight {str(shape):15s} fan_in {fan_in:5d}  fan_out {fan_out:5d}  He std {math.sqrt(2 / fan_in):.4f}")

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
assert saturated["N(0, 1)"] > 0.7 and saturated["Xavier"] < 0.01

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
assert dead[0] == 0 and dead[-10:].mean() > 0.05

# %%
plotting.plot_lines(layers, {"He init, 3 seeds averaged": 100 * dead}, xlabel="layer",
                    ylabel="dead units (%)", title="ReLUs that are off for every input, at initialization")

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
# ## 6. Experiment: a deep plain CNN on the digits
#
# The claim: a deep convolutional network without normalization layers trains with He
# initialization and does not train at all with small fixed-scale weights. The network stacks
# `CNN_DEPTH` $3 \times 3$ convolutions of 16 channels with "same" padding and ReLU on the
# $8 \times 8$ digits, then one linear classifier. We set its weights from NumPy with
# `helpers.init` (biases 0) and train each version identically with SGD and momentum on the
# device. PyTorch's default initialization runs alongside for comparison.

# %%
def make_plain_cnn(depth=CNN_DEPTH, channels=16):
    layers = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 8 * 8, 10))


def initialize_(model, draw, rng):
    """Set every conv/linear weight from a NumPy initializer and every bias to 0."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                weight = draw(tuple(module.weight.shape), rng)
                module.weight.copy_(torch.from_numpy(weight))
                module.bias.zero_()
    return model


train_loader, val_loader, test_loader = digits.loaders(BATCH_SIZE, device=device, seed=SEED)
print(digits.summary())

# %%
CNN_INITS = {"N(0, 0.01²)": INITS["N(0, 0.01²)"], "PyTorch default": None, "He": init.kaiming_normal}
histories = {}
for name, draw in CNN_INITS.items():
    torch.manual_seed(SEED)
    model = make_plain_cnn()
    if draw is not None:
        initialize_(model, draw, np.random.default_rng(SEED))
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    histories[name] = training.fit(model, train_loader, val_loader, optimizer, EPOCHS, desc=name)
    print(f"{name:16s} final train loss {histories[name].train_loss[-1]:.3f}, "
          f"val accuracy {histories[name].val_acc[-1]:.1%}")

# %% [markdown]
# The claims, with margins that hold across seeds: with He initialization the network reaches at
# least 85% validation accuracy; with $N(0, 0.01^2)$ weights each layer multiplies the signal by
# about $\sqrt{144 \cdot 10^{-4}/2} \approx 0.085$, so what reaches the classifier is below
# $10^{-10}$ of the input, the gradients of the early layers are as small,
# and the loss stays at $\ln 10 \approx 2.30$ (chance, 10% accuracy). PyTorch's default scale
# also stalls at this depth with this optimizer.

# %%
he, small, default = (histories[k] for k in ("He", "N(0, 0.01²)", "PyTorch default"))
assert he.val_acc[-1] >= 0.85, f"He init reached only {he.val_acc[-1]:.1%}"
assert small.val_acc[-1] <= 0.25 and small.train_loss[-1] > 2.2, "the tiny init should not train"
assert default.val_acc[-1] <= he.val_acc[-1] - 0.5, "the default init should lag far behind He"

# %%
plotting.plot_history(histories, title=f"A {CNN_DEPTH}-layer plain CNN on the digits, three initializations")

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
# **Exercise 4 — explore.** (a) With your `forward_stds`, find by bisection the weight scale
# $c$ in $\sigma = c/\sqrt{n_{in}}$ for which a 40-layer tanh network keeps its activations'
# standard deviation between 0.5 and 1 at the top. How does it compare with LeCun's $c = 1$?
# (b) Train the plain CNN of §6 with Adam instead of SGD from the $N(0, 0.01^2)$ start. Adam
# divides each gradient by its own running size: does that rescue the tiny initialization, and
# why might it?

# %% [markdown]
# ## Summary
#
# - Equal initial weights stay equal: every unit gets the same gradient. Random weights break
#   the symmetry.
# - The gradient at a layer is a product of one factor per layer above it; factors consistently
#   above or below 1 make signals explode or vanish exponentially with depth. In a 40-layer
#   network, fixed scales of 0.01 and 0.1 vanish or explode, LeCun and Xavier lose half the second
#   moment per ReLU layer, and He keeps ReLU signals at one scale forward and backward.
# - $\operatorname{Var}(z) = d\,\sigma^2\,\mathbb{E}[x^2]$ gives LeCun $1/n_{in}$; ReLU keeps
#   half the second moment, hence He's $2/n_{in}$; Xavier's $2/(n_{in}+n_{out})$ balances the
#   forward and backward passes. Uniform bounds are $\sqrt{3}$ standard deviations, e.g.
#   $\sqrt{6/(n_{in}+n_{out})}$.
# - For a convolution both fans include the kernel area: $n_{in} = C K_H K_W$, $n_{out} = F K_H K_W$.
# - Sigmoid derivatives are at most $1/4$ and vanish when units saturate (most of them with
#   $N(0,1)$ weights); ReLUs pass gradients unchanged but some are dead for every input, more of
#   them deeper in a plain network.
# - `helpers.init` matches `torch.nn.init` statistically; PyTorch's default layer init has a
#   third of LeCun's variance. A 10-layer plain CNN on the digits trains with He initialization
#   and stays at chance with $N(0, 0.01^2)$ weights.
