# %% [markdown]
# # Chapter 4 — Regularization
#
# A network with more parameters than training examples can memorize its training set. This
# chapter makes that failure visible on real handwritten digits, then takes apart the standard
# remedies one at a time: weight decay (and why Adam needs AdamW), its odd interaction with batch
# normalization, early stopping, dropout and its variants, and label smoothing. Each is built in
# NumPy, checked against PyTorch, and measured; the chapter ends with an ablation table.
#
# **Learning goals.** After this chapter you can
#
# 1. recognise overfitting in learning curves and in the gap between training and test accuracy;
# 2. write the weight-decay update $\theta \leftarrow (1 - \eta\lambda)\theta - \eta\nabla L$,
#    explain why it equals an L2 penalty for SGD but not for Adam, and use AdamW with parameter
#    groups that leave biases and normalization parameters undecayed;
# 3. explain why weight decay in front of batch norm changes the effective learning rate, not the
#    function;
# 4. use early stopping with patience and restore the best weights;
# 5. implement dropout with PyTorch's meaning of $p$ (the *drop* probability), relate the two
#    scaling conventions, and say why dropout placed before batch norm shifts its statistics;
# 6. build spatial dropout, DropConnect and DropBlock, with DropBlock's seed rate set so that the
#    dropped fraction is the one you asked for;
# 7. measure over-confidence with the expected calibration error and reduce it with label smoothing.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
PER_CLASS = 20  # training digits per class in the low-data task (200 in all)
EPOCHS = 40  # epochs for each run on the low-data task
BATCH_SIZE = 32
LEARNING_RATE = 3e-3  # Adam / AdamW step size
WEIGHT_DECAY = 0.5  # AdamW's decoupled decay (multiplied by the learning rate each step)
DROPOUT = 0.5  # drop probability in the regularized CNN
ABLATION_SEEDS = 3  # seeds averaged in the ablation table
MC_SAMPLES = 50  # thinned networks in the Monte-Carlo dropout ensemble

# %%
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import checks, data, models, plotting, training
from helpers import numpy_regularization as reg
from helpers.callbacks import EarlyStopping
from helpers.device import best_device, describe
from helpers.reproducibility import seed_everything

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
print("device:", describe(device))

# %% [markdown]
# ## 1. Overfitting made visible
#
# The handwritten digits have 1,797 images; we keep the validation and test splits whole but train
# on only `PER_CLASS` images of each digit. With 200 training images and a CNN of about 40,000
# parameters, nothing stops the network from memorizing every training image.

# %% tags=["nbval-check-output"]
digits = data.load_digits(seed=SEED)


def subset(split, per_class, seed):
    """A class-balanced random subset of a Split: per_class images of each class."""
    pick = np.random.default_rng(seed)
    idx = np.concatenate([pick.choice(np.flatnonzero(split.y == c), per_class, replace=False)
                          for c in range(10)])
    return data.Split(split.x[idx], split.y[idx])


small_train = subset(digits.train, PER_CLASS, SEED)
val_loader = data.DeviceLoader(*digits.val, 512, device=device)
test_loader = data.DeviceLoader(*digits.test, 512, device=device)
print("training images:", len(small_train.y), "| per class:", np.bincount(small_train.y).tolist())
print("validation:", len(digits.val.y), "| test:", len(digits.test.y))

# %% [markdown]
# The CNN: two $3 \times 3$ convolutions, a max pool, and two linear layers; dropout with
# probability `p` sits in front of each linear layer (and is off, `p = 0`, for now).

# %% tags=["nbval-check-output"]
def make_cnn(p=0.0):
    """Two convolutions, a max pool, a hidden layer of 64 units; dropout p before each linear."""
    return models.small_cnn(hidden=64, dropout=p)


def train_loader_for(seed, per_class=PER_CLASS):
    return data.DeviceLoader(*subset(digits.train, per_class, seed), BATCH_SIZE, shuffle=True,
                             seed=seed, device=device)


print("parameters:", models.count_parameters(make_cnn()))

# %%
torch.manual_seed(SEED)
plain = make_cnn().to(device)
history_plain = training.fit(plain, train_loader_for(SEED), val_loader,
                             torch.optim.Adam(plain.parameters(), lr=LEARNING_RATE), EPOCHS,
                             desc="no regularization")
plotting.plot_history(history_plain, title="200 training digits: the network memorizes them")

# %% [markdown]
# Training accuracy reaches 100% within a few epochs, and the training loss keeps falling toward
# zero; validation accuracy stalls well below, and the validation loss, after an early minimum,
# creeps back up — the network grows more confident on the examples it gets wrong. The claim,
# checked: training accuracy at least 99%, and test accuracy at least three points lower.

# %%
train_acc = training.evaluate(plain, data.DeviceLoader(*small_train, 512, device=device)).accuracy
test_acc = training.evaluate(plain, test_loader).accuracy
print(f"train accuracy {train_acc:.1%}, test accuracy {test_acc:.1%}, gap {train_acc - test_acc:.1%}")
assert train_acc >= 0.99 and train_acc - test_acc >= 0.03, "expected a clear overfitting gap"

# %% [markdown]
# ## 2. L2 penalty and weight decay
#
# An **L2 penalty** adds $\frac{\lambda}{2}\lVert\theta\rVert^2$ to the loss, so its gradient adds
# $\lambda\theta$ (some texts write $\lambda\lVert\theta\rVert^2$ and get $2\lambda\theta$; some
# drop the $\lambda$ by mistake — the gradient is $\nabla L + \lambda\theta$). One SGD step is then
#
# $$\theta \leftarrow \theta - \eta(\nabla L + \lambda\theta) = (1 - \eta\lambda)\,\theta - \eta\nabla L,$$
#
# which is **weight decay**: shrink every weight by the factor $1 - \eta\lambda$, then take the
# ordinary step. For plain SGD the two are the same thing. For Adam they are not. Adam divides
# the gradient, penalty included, by a running root-mean-square $\sqrt{\hat v}$:
#
# $$\text{Adam + L2:}\quad \theta \leftarrow \theta - \eta\,\frac{\hat m}{\sqrt{\hat v} + \epsilon},
#   \quad m, v \text{ built from } g = \nabla L + \lambda\theta;$$
#
# $$\text{AdamW:}\quad \theta \leftarrow \theta - \eta\left(\frac{\hat m}{\sqrt{\hat v} + \epsilon}
#   + \lambda\theta\right), \quad m, v \text{ built from } g = \nabla L .$$
#
# With the L2 form, a weight whose gradients are large gets a large $\sqrt{\hat v}$ and so almost
# no decay; AdamW (Loshchilov and Hutter) *decouples* the decay and shrinks every weight at the
# same rate. PyTorch's `Adam(weight_decay=...)` is the L2 form; `AdamW` is the decoupled one.
#
# First the SGD case: `torch.optim.SGD(weight_decay=λ)` adds $\lambda\theta$ to the gradient, and
# ten of its steps equal ten steps of "shrink by $1 - \eta\lambda$, then step":

# %% tags=["nbval-check-output"]
lr, wd = 0.1, 0.01
theta_sgd, grads_sgd = rng.standard_normal(6), rng.standard_normal((10, 6))
p_sgd = torch.tensor(theta_sgd, requires_grad=True)
sgd = torch.optim.SGD([p_sgd], lr=lr, weight_decay=wd)
for g in grads_sgd:
    p_sgd.grad = torch.from_numpy(g.copy())
    sgd.step()
    theta_sgd = (1 - lr * wd) * theta_sgd - lr * g
print("SGD + L2 gradient == decay then step:", np.allclose(theta_sgd, p_sgd.detach().numpy(), rtol=0, atol=1e-14))

# %% [markdown]
# For Adam, both steps in a few lines of NumPy, checked against PyTorch over ten steps in float64:

# %% tags=["nbval-check-output"]
def adam_like_step(theta, grad, m, v, t, lr, wd, decoupled, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam step with an L2 penalty (decoupled=False) or decoupled decay (AdamW)."""
    if not decoupled:
        grad = grad + wd * theta
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    step = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return theta - lr * (step + (wd * theta if decoupled else 0.0)), m, v


theta0, grads = rng.standard_normal(6), rng.standard_normal((10, 6))
for decoupled, Opt in [(False, torch.optim.Adam), (True, torch.optim.AdamW)]:
    p = torch.tensor(theta0, requires_grad=True)
    opt = Opt([p], lr=0.01, weight_decay=0.1)
    theta, m, v = theta0.copy(), np.zeros(6), np.zeros(6)
    for t, g in enumerate(grads, start=1):
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        theta, m, v = adam_like_step(theta, g, m, v, t, 0.01, 0.1, decoupled)
    print(f"{Opt.__name__:5s} (decoupled={decoupled}) matches NumPy:",
          bool(np.allclose(theta, p.detach().numpy(), rtol=0, atol=1e-12)))

# %% [markdown]
# The difference, measured. Two groups of 2,000 weights start at 1 and see only gradient *noise*
# (mean zero), of standard deviation 0.01 in one group and 10 in the other, so any systematic
# shrinkage comes from the decay. After 300 steps with $\eta = 0.01$ and $\lambda = 0.1$:

# %%
def mean_weight_after(Opt, noise_std, steps=300, lr=0.01, wd=0.1, n=2000):
    gen = torch.Generator().manual_seed(SEED)
    p = torch.ones(n, requires_grad=True)
    opt = Opt([p], lr=lr, weight_decay=wd)
    for _ in range(steps):
        p.grad = noise_std * torch.randn(n, generator=gen)
        opt.step()
    return p.detach().mean().item()


shrink = {(Opt.__name__, s): mean_weight_after(Opt, s) for Opt in (torch.optim.Adam, torch.optim.AdamW)
          for s in (0.01, 10.0)}
for (name, s), value in shrink.items():
    print(f"{name:5s} gradient noise std {s:5}: mean weight {value:.3f}")
print(f"pure decay (1 - lr * wd)^300 = {(1 - 0.01 * 0.1) ** 300:.3f}")

# %% [markdown]
# With AdamW both groups shrink to the pure-decay value $(1 - \eta\lambda)^{300} \approx 0.74$,
# whatever their gradients. With Adam + L2 the quiet weights collapse (the penalty dominates their
# tiny $\sqrt{\hat v}$, so they shrink by about $\eta$ per step) while the noisy ones are barely
# decayed at all:

# %%
assert abs(shrink["AdamW", 0.01] - 0.741) < 0.02 and abs(shrink["AdamW", 10.0] - 0.741) < 0.02
assert shrink["Adam", 0.01] < 0.3 and shrink["Adam", 10.0] > 0.95

# %% [markdown]
# ### Which parameters to decay
#
# Decay is meant to keep the *weights* small. A bias only shifts a unit and a normalization layer's
# scale and shift set the size of its output on purpose; shrinking them toward zero gains nothing
# and can hurt. PyTorch optimizers take **parameter groups**, each with its own settings; the usual
# rule puts tensors with more than one dimension (convolution and linear weights) in a decayed
# group and everything else (biases, batch-norm $\gamma$ and $\beta$) in a group with decay 0.

# %% tags=["nbval-check-output"]
def param_groups(model, weight_decay):
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


groups = param_groups(make_cnn(), WEIGHT_DECAY)
for group in groups:
    print(f"weight_decay={group['weight_decay']}: {len(group['params'])} tensors, "
          f"{sum(p.numel() for p in group['params'])} numbers")

# %% [markdown]
# ## 3. Weight decay meets batch normalization
#
# Batch norm (chapter 6) standardizes each channel over the batch, so scaling the weights in front
# of it by any $\alpha > 0$ changes nothing: $\mathrm{BN}(\alpha W x) = \mathrm{BN}(W x)$. The loss is
# scale-invariant in $W$, and differentiating $L(\alpha W) = L(W)$ gives
# $\nabla L(\alpha W) = \nabla L(W)/\alpha$: larger weights get *smaller* gradients. Both facts, in
# float64 (with batch norm's $\epsilon$, added to the variance for safety, set negligible so that
# the identity is exact):

# %% tags=["nbval-check-output"]
torch.manual_seed(SEED)
conv_bn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, eps=1e-12)).double()
x_bn = torch.from_numpy(digits.train.x[:64]).double()
target = torch.randn(64, 8, 8, 8, dtype=torch.float64)
results = {}
for alpha in (1.0, 10.0):
    layer = copy.deepcopy(conv_bn)
    with torch.no_grad():
        layer[0].weight.mul_(alpha)
    out = layer(x_bn)
    ((out - target) ** 2).mean().backward()
    results[alpha] = (out.detach(), layer[0].weight.grad.clone())
same_output = torch.allclose(results[1.0][0], results[10.0][0], rtol=0, atol=1e-9)
grad_scaled = torch.allclose(results[10.0][1] * 10, results[1.0][1], rtol=1e-7, atol=1e-12)
print("BN(10 W x) == BN(W x):", same_output, "| grad at 10 W == grad at W / 10:", grad_scaled)

# %% [markdown]
# So for a weight $W$ in front of batch norm, decay does not make the function simpler; it only
# shrinks $\lVert W\rVert$, and a step $\eta\nabla L$ then changes the *direction* of $W$ by roughly
# $\eta\lVert\nabla L(\hat W)\rVert/\lVert W\rVert^2$ — an effective learning rate
# $\eta / \lVert W\rVert^2$. Without decay the gradient steps, being orthogonal to $W$, only make
# $\lVert W\rVert$ grow, and learning slows down by itself. We train a small BN network with SGD
# with and without decay on the first convolution and watch that weight's norm and the
# effective learning rate.

# %%
class WeightNorm(training.Callback):
    """Record the norm of one weight tensor after every epoch."""

    def __init__(self, tensor):
        self.tensor, self.norms = tensor, []

    def on_epoch_end(self, epoch, model, history):
        self.norms.append(self.tensor.detach().norm().item())


def make_bn_cnn():
    return models.small_cnn(norm="batch")  # each convolution followed by BatchNorm2d


bn_runs = {}
for wd in (0.0, 5e-3):
    torch.manual_seed(SEED)
    model = make_bn_cnn().to(device)
    opt = torch.optim.SGD(param_groups(model, wd), lr=0.1, momentum=0.9)
    tracker = WeightNorm(model[0].weight)
    hist = training.fit(model, train_loader_for(SEED), val_loader, opt, EPOCHS, callbacks=[tracker],
                        desc=f"BN CNN, weight decay {wd}")
    bn_runs[wd] = (np.array(tracker.norms), hist)

# %%
epochs_axis = np.arange(1, EPOCHS + 1)
effective_lr = {f"weight decay {wd}": 0.1 / norms**2 for wd, (norms, _) in bn_runs.items()}
plotting.plot_lines(epochs_axis, effective_lr,
                    xlabel="epoch", ylabel="effective learning rate  η / ‖W‖²", logy=True,
                    title="Decay before batch norm raises the effective learning rate")

# %% [markdown]
# The claim, checked: with decay the first layer's weight norm ends at least 30% smaller than
# without, so its effective learning rate is about twice as large or more; the validation accuracy
# stays in the same range either way (printed, not asserted).

# %%
(norm_free, hist_free), (norm_decay, hist_decay) = bn_runs[0.0], bn_runs[5e-3]
print(f"final ‖W‖: no decay {norm_free[-1]:.2f}, decay {norm_decay[-1]:.2f}")
print(f"final val accuracy: no decay {hist_free.val_acc[-1]:.1%}, decay {hist_decay.val_acc[-1]:.1%}")
assert norm_decay[-1] < 0.7 * norm_free[-1], "decay should shrink the weights in front of BN"

# %% [markdown]
# ## 4. Early stopping
#
# The validation loss of §1 has a minimum early on. **Early stopping** watches a validation
# metric, remembers the weights at its best epoch, and stops once it has not improved for
# `patience` epochs in a row (an improvement must beat the best by more than `min_delta`); at the
# end it restores the best weights. A patience of a few epochs keeps a noisy curve from stopping
# training at its first wobble.
#
# `helpers.callbacks.EarlyStopping` is such a callback for `training.fit`: `fit` calls its
# `on_epoch_end` after every epoch, and stops when it returns True.

# %%
torch.manual_seed(SEED)
stopped = make_cnn().to(device)
stopper = EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
history_stopped = training.fit(stopped, train_loader_for(SEED), val_loader,
                               torch.optim.Adam(stopped.parameters(), lr=LEARNING_RATE), EPOCHS,
                               callbacks=[stopper], desc="early stopping")
print(f"best epoch {stopper.best_epoch}, stopped after epoch {stopper.stopped_epoch}")

# %%
fig, ax = plotting.subplots()
ax.plot(history_plain.epoch, history_plain.val_loss, label="validation loss, full run")
ax.axvline(stopper.best_epoch, color="C2", linestyle="--", label="best epoch (restored)")
ax.axvline(len(history_stopped), color="C3", linestyle=":", label="stopped (patience 5)")
ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Early stopping on the validation loss")
ax.legend()
fig

# %% [markdown]
# The same seed and data give the same curve as §1 until the stop. Checked: training stopped
# `patience` epochs after the best one, before the epoch budget, and the model we hold now is the
# one from the best epoch — its validation loss is the minimum of the curve.

# %%
restored_loss = training.evaluate(stopped, val_loader).loss
assert stopper.stopped_epoch == stopper.best_epoch + 5 < EPOCHS
assert abs(restored_loss - min(history_stopped.val_loss)) < 1e-4, "best weights were not restored"
print(f"restored validation loss {restored_loss:.4f}, "
      f"minimum of the curve {min(history_stopped.val_loss):.4f}")

# %% [markdown]
# ## 5. Dropout
#
# **Dropout** (Srivastava et al.) multiplies each unit by an independent Bernoulli mask during
# training: a unit is *dropped* (set to 0) with probability $p$ and kept with probability
# $1 - p$. This book uses PyTorch's meaning, $p$ = the **drop** probability (`nn.Dropout(p)`);
# several lecture notes and the original paper use $p$ for the *keep* probability, so read the
# definition before the formula.
#
# A dropped-out layer computes a different "thinned" network at every step, so no unit can rely
# on a particular other unit being present. At test time we want the average of all those thinned
# networks. Two conventions make the test-time network match the training-time expectation
# $\mathbb{E}[m \odot x] = (1 - p)\,x$:
#
# - **scale at test time** (the original paper): train with $y = m \odot x$; at test time use
#   $y = (1 - p)\,x$;
# - **inverted dropout** (PyTorch and every modern library): train with
#   $y = m \odot x / (1 - p)$; at test time use $y = x$, unchanged.
#
# (Some notes say inverted dropout "scales the weights after each update"; it scales the
# *activations* during training.) `reg.dropout(x, p, training, rng)` is inverted dropout; it
# returns the output and the mask. Both conventions agree in expectation — measured over 20,000
# masks:

# %% tags=["nbval-check-output"]
p = 0.3
x_units = rng.uniform(0.5, 2.0, 5)
masks = (rng.random((20_000, 5)) >= p).astype(float)
scale_at_test = {"train mean": (masks * x_units).mean(0), "test output": (1 - p) * x_units}
inverted = {"train mean": (masks * x_units / (1 - p)).mean(0), "test output": x_units}
for name, conv in [("scale at test time", scale_at_test), ("inverted", inverted)]:
    gap = np.max(np.abs(conv["train mean"] - conv["test output"]) / conv["test output"])
    print(f"{name:18s}: training mean matches test output within 2%: {gap < 0.02}")

# %% [markdown]
# `reg.dropout` behaves like `torch.nn.functional.dropout`: kept values are $x/(1-p)$, the drop
# fraction is $p$, and the identity when not training (different random streams, so we compare
# statistics, not masks):

# %% tags=["nbval-check-output"]
x_big = np.ones((500, 400))
ours, mask = reg.dropout(x_big, p, True, rng)
theirs = F.dropout(torch.from_numpy(x_big), p, training=True).numpy()
print("kept values:", np.unique(ours).round(4).tolist(), "==", np.unique(theirs).round(4).tolist())
print("drop fraction within 0.01 of p, NumPy and torch:",
      abs((ours == 0).mean() - p) < 0.01, abs((theirs == 0).mean() - p) < 0.01)
print("identity when not training:", np.array_equal(reg.dropout(x_big, p, False)[0], x_big))

# %% [markdown]
# ### Dropout as an ensemble
#
# With $n$ droppable units there are $2^n$ thinned networks sharing one set of weights. The test-time
# network with the weights as they are (inverted dropout) approximates their average prediction.
# We train the CNN with dropout (`p = DROPOUT` before each linear layer) and compare its eval-mode
# prediction with a Monte-Carlo average of `MC_SAMPLES` thinned networks (dropout left on at test
# time, softmax averaged).

# %%
torch.manual_seed(SEED)
dropout_cnn = make_cnn(DROPOUT).to(device)
history_dropout = training.fit(dropout_cnn, train_loader_for(SEED), val_loader,
                               torch.optim.Adam(dropout_cnn.parameters(), lr=LEARNING_RATE),
                               EPOCHS, desc="dropout")
x_test = torch.from_numpy(digits.test.x).to(device)
y_test = torch.from_numpy(digits.test.y).to(device)
dropout_cnn.eval()
with torch.no_grad():
    scaled_probs = dropout_cnn(x_test).softmax(1)
    dropout_cnn.train()  # dropout on: each forward pass is one thinned network
    thinned = torch.stack([dropout_cnn(x_test).softmax(1) for _ in range(MC_SAMPLES)])
dropout_cnn.eval()
mc_probs = thinned.mean(0)
acc = {
    "one thinned network (mean)": (thinned.argmax(2) == y_test).float().mean().item(),
    f"average of {MC_SAMPLES} thinned": (mc_probs.argmax(1) == y_test).float().mean().item(),
    "weight-scaled network": (scaled_probs.argmax(1) == y_test).float().mean().item(),
}
agreement = (mc_probs.argmax(1) == scaled_probs.argmax(1)).float().mean().item()
for name, a in acc.items():
    print(f"{name:28s} test accuracy {a:.1%}")
print(f"Monte-Carlo average and scaled network predict the same class on {agreement:.1%} of test digits")

# %% [markdown]
# Checked: the scaled network and the Monte-Carlo average agree on at least 95% of test digits
# and their accuracies are within two points — one deterministic pass buys what 50 sampled passes
# do. A single thinned network is weaker than either (printed above).

# %%
assert agreement >= 0.95
assert abs(acc["weight-scaled network"] - acc[f"average of {MC_SAMPLES} thinned"]) <= 0.02

# %% [markdown]
# **Not on the output layer.** Dropout goes on hidden activations (here, the inputs of the two
# linear layers). Dropping *logits* would zero random class scores at training time — a class's
# evidence would vanish at random, which is noise in the labels, not a regularizer.
#
# ### Dropout before batch norm shifts the variance
#
# Inverted dropout keeps the **mean** of a unit but not its **variance**. For a unit $x$ with mean
# $\mu$ and variance $\sigma^2$, in training $y = m x/(1-p)$ has
#
# $$\operatorname{Var}_{train}(y) = \frac{\sigma^2 + \mu^2}{1 - p} - \mu^2 > \sigma^2 = \operatorname{Var}_{test}(y).$$
#
# A batch-norm layer placed *after* dropout learns running statistics from the training-time
# variance, then at test time receives inputs with the smaller one, so its outputs shrink by
# $\sqrt{\sigma^2 / \operatorname{Var}_{train}}$ — a train/test mismatch (Li et al., 2019). Measured
# with `nn.Dropout(0.5)` followed by `nn.BatchNorm1d` on units with $\mu = 1$, $\sigma = 1$:

# %%
torch.manual_seed(SEED)
drop_bn = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(256, momentum=None))  # exact running average
drop_bn.train()
with torch.no_grad():
    for _ in range(100):
        drop_bn(1.0 + torch.randn(512, 256))
    drop_bn.eval()
    test_out = drop_bn(1.0 + torch.randn(4096, 256))
measured = test_out.var(0).mean().item()
var_train = (1 + 1) / 0.5 - 1
print(f"BN output variance at test time: measured {measured:.3f}, predicted {1 / var_train:.3f}, "
      "ideal 1.0")
assert abs(measured - 1 / var_train) < 0.03

# %% [markdown]
# The usual fixes: put dropout after the last batch-norm layer (as our CNN does: dropout only
# before the linear layers), or re-estimate the batch-norm statistics with dropout off.
#
# ## 6. Variants of dropout
#
# **Spatial dropout** (`nn.Dropout2d`). Neighbouring pixels of a feature map are strongly
# correlated, so dropping single pixels removes little information: the next convolution sees the
# neighbours. Spatial dropout drops whole channels: one Bernoulli draw per (example, channel), mask
# shape $(N, C, 1, 1)$. `reg.dropout2d` behaves as `F.dropout2d` does — every channel is either all
# zeros or all $x/(1-p)$:

# %% tags=["nbval-check-output"]
x_maps = rng.uniform(0.5, 1.5, (64, 32, 6, 6))


def whole_channels(out, x, p):
    zero = np.all(out == 0, axis=(2, 3))
    scaled = np.all(np.isclose(out, x / (1 - p)), axis=(2, 3))
    return bool(np.all(zero | scaled)), zero.mean()


ours_2d, mask_2d = reg.dropout2d(x_maps, 0.25, True, rng)
theirs_2d = F.dropout2d(torch.from_numpy(x_maps), 0.25, training=True).numpy()
for name, out in [("reg.dropout2d", ours_2d), ("F.dropout2d", theirs_2d)]:
    whole, frac = whole_channels(out, x_maps, 0.25)
    print(f"{name:13s}: whole channels only: {whole}, "
          f"dropped fraction near 0.25: {abs(frac - 0.25) < 0.04}")
print("mask shape:", mask_2d.shape)

# %% [markdown]
# **DropConnect** (Wan et al.) drops *weights* instead of activations: each example sees the layer
# $y = (W \odot M) x / (1-p) + b$ with its own mask $M$. Its mean over masks is the plain layer, as
# for dropout:

# %%
x_dc, w_dc, b_dc = rng.standard_normal((4, 12)), rng.standard_normal((5, 12)), rng.standard_normal(5)
mean_network, _ = reg.dropconnect_linear(x_dc, w_dc, b_dc, 0.5, training=False)
samples = np.mean([reg.dropconnect_linear(x_dc, w_dc, b_dc, 0.5, True, rng)[0] for _ in range(2000)], 0)
err = np.abs(samples - mean_network).max() / np.abs(mean_network).max()
print(f"average of 2,000 DropConnect passes vs the mean network: relative error {err:.3f}")
assert err < 0.1

# %% [markdown]
# **DropBlock** (Ghiasi et al.) drops contiguous $b \times b$ squares of a feature map, which a
# convolution cannot fill in from neighbours. Block "seeds" are drawn with some rate $\gamma$ at the
# $(H - b + 1)(W - b + 1)$ positions where a block fits, and each seed drops its block. The kept
# units are rescaled by the fraction actually kept, $\#\text{units}/\#\text{kept}$.
#
# What should $\gamma$ be so that a fraction `drop_rate` is dropped? A unit covered by $k$ possible
# seeds survives with probability $(1-\gamma)^k$, so the expected dropped fraction is
#
# $$f(\gamma) = 1 - \frac{1}{HW}\sum_{\text{units}} (1 - \gamma)^{k(\text{unit})}.$$
#
# The paper's formula $\gamma = \frac{\text{drop\_rate}}{b^2}\frac{HW}{(H-b+1)(W-b+1)}$ counts every
# seed's $b^2$ units as if blocks never overlapped, so it drops a little too little.
# `reg.dropblock_gamma` solves $f(\gamma) = \text{drop\_rate}$ exactly (by bisection).
#
# A sketch that circulates in lecture notes does something else: it draws seeds with the full
# `drop_rate` at *every* unit and grows each into a block by max-pooling, then rescales by
# $1/(1 - \text{drop\_rate})$. We measure all three on $12 \times 12$ maps, target 20%, $b = 3$:

# %%
def naive_sketch_mask(shape, drop_rate, block_size, gen):
    """The lecture-note sketch: seeds at the full rate everywhere, max-pooled into blocks."""
    seeds = (torch.rand(shape, generator=gen) < drop_rate).float()
    return 1 - F.max_pool2d(seeds, block_size, stride=1, padding=block_size // 2)


target, block, side = 0.20, 3, 12
shape = (500, 16, side, side)
gamma_paper = reg.dropblock_gamma(target, block, side, side, exact=False)
gamma_exact = reg.dropblock_gamma(target, block, side, side)
naive = naive_sketch_mask(shape, target, block, torch.Generator().manual_seed(SEED)).numpy()
dropped = {
    "naive sketch": 1 - naive.mean(),
    f"paper's gamma = {gamma_paper:.4f}":
        1 - reg.dropblock_mask(shape, target, block, rng, gamma_paper).mean(),
    f"exact gamma   = {gamma_exact:.4f}": 1 - reg.dropblock_mask(shape, target, block, rng).mean(),
}
for name, frac in dropped.items():
    print(f"{name:24s} drops {frac:.1%} (target {target:.0%})")
naive_scale_error = (1 / (1 - target)) / (1 / naive.mean()) - 1
print("naive sketch's rescaling 1/(1 - drop_rate) vs the kept fraction: "
      f"off by {naive_scale_error:+.0%}")

# %% [markdown]
# The sketch drops over 80% of the units instead of 20% (away from the borders a unit survives
# only if none of the 9 seeds around it fires: $1 - 0.8^9 \approx 87\%$ dropped), and its
# rescaling, chosen for 20%, then leaves the activations' mean more than 70% too small. The
# paper's rate drops about two points too little; the exact rate is on target. Checked with
# margins:

# %%
values = list(dropped.values())
assert values[0] > 0.75, "the naive sketch drops far more than the target"
assert values[1] < target - 0.01, "the paper's gamma undershoots (overlapping blocks)"
assert abs(values[2] - target) < 0.003, "the exact gamma hits the target"

# %%
example = reg.dropblock_mask((1, 6, 16, 16), 0.2, 4, rng)[0]
plotting.image_grid(example, ncols=6, vmin=0, vmax=1,
                    title="DropBlock masks (16x16, 4x4 blocks, 20%; black = dropped)")

# %% [markdown]
# In PyTorch, the same DropBlock is a small module: draw seeds on the valid positions, grow them
# with one max-pool (padding $b - 1$ on each side turns a top-left seed into its block), rescale
# by the kept fraction. Given the same uniform numbers it builds exactly the NumPy mask:

# %% tags=["nbval-check-output"]
class DropBlock2d(nn.Module):
    """DropBlock on (N, C, H, W) with the exact seed rate; identity in eval mode."""

    def __init__(self, drop_rate, block_size):
        super().__init__()
        self.drop_rate, self.block_size = drop_rate, block_size

    def mask_from_uniform(self, u, height, width):
        """Keep-mask (N, C, H, W) from uniform numbers u of shape (N, C, H - b + 1, W - b + 1)."""
        gamma = reg.dropblock_gamma(self.drop_rate, self.block_size, height, width)
        seeds = (u < gamma).to(u.dtype)
        grown = F.max_pool2d(F.pad(seeds, [self.block_size - 1] * 4), self.block_size, stride=1)
        return 1 - grown

    def forward(self, x):
        if not self.training or self.drop_rate == 0:
            return x
        n, c, h, w = x.shape
        b = self.block_size
        u = torch.rand(n, c, h - b + 1, w - b + 1, device=x.device, dtype=x.dtype)
        mask = self.mask_from_uniform(u, h, w)
        return x * mask * (mask.numel() / mask.sum().clamp_min(1.0))


block_layer = DropBlock2d(0.15, 3)
u_np = np.random.default_rng(SEED).random((4, 8, 10 - 2, 10 - 2))
torch_mask = block_layer.mask_from_uniform(torch.from_numpy(u_np), 10, 10).numpy()
numpy_mask = reg.dropblock_mask((4, 8, 10, 10), 0.15, 3, np.random.default_rng(SEED))
print("torch DropBlock2d mask == NumPy dropblock_mask:", np.array_equal(torch_mask, numpy_mask))
y_block = block_layer(torch.ones(256, 16, 10, 10))
print("output mean is 1 (rescaled by the kept fraction):", abs(y_block.mean().item() - 1) < 1e-5)

# %% [markdown]
# **Scheduled dropout.** Dropping units is most useful late in training, when the network starts
# to memorize, and slows learning early on. A schedule raises $p$ from 0 to its final value over
# training (DropBlock's authors ramp `drop_rate` linearly; chapter 7 ramps DropPath the same way).
# As a callback it sets `p` on every dropout layer at the end of each epoch:

# %% tags=["nbval-check-output"]
class LinearDropoutSchedule(training.Callback):
    """Raise p of every nn.Dropout from 0 to final_p linearly over `epochs` epochs."""

    def __init__(self, final_p, epochs):
        self.final_p, self.epochs, self.values = final_p, epochs, []

    def set_p(self, model, p):
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = p
        self.values.append(round(p, 3))

    def on_train_begin(self, model, history):
        self.values = []
        self.set_p(model, 0.0)

    def on_epoch_end(self, epoch, model, history):
        self.set_p(model, self.final_p * min(1.0, epoch / (self.epochs - 1)))


torch.manual_seed(SEED)
scheduled = make_cnn(DROPOUT).to(device)
schedule = LinearDropoutSchedule(DROPOUT, 6)
training.fit(scheduled, train_loader_for(SEED), None,
             torch.optim.Adam(scheduled.parameters(), lr=LEARNING_RATE), 6,
             callbacks=[schedule], progress=False)
print("p used in epochs 1..6:", schedule.values[:6])

# %% [markdown]
# **DropPath** (stochastic depth) drops whole residual branches instead of units; it needs residual
# networks and is built in chapter 7.
#
# ## 7. Label smoothing and over-confidence
#
# Cross-entropy with one-hot targets is minimized only as the true class's logit runs away from the
# others, so a network that fits its training set keeps growing its logits and becomes
# **over-confident**: it reports 99% on test digits it gets right 90% of the time. **Label
# smoothing** (Szegedy et al.) trains toward the softened target
#
# $$q = (1 - \varepsilon)\,\text{one\_hot}(y) + \varepsilon / K ,$$
#
# spreading $\varepsilon$ over all $K$ classes (the true one included, as PyTorch's
# `label_smoothing` does); the loss is $-\sum_k q_k \log \operatorname{softmax}(z)_k$, minimized at
# finite logits. In NumPy, with the gradient $(\operatorname{softmax}(z) - q)/N$, against PyTorch:

# %% tags=["nbval-check-output"]
logits_np, labels_np = rng.standard_normal((8, 10)) * 3, rng.integers(0, 10, 8)
loss_np, grad_np = reg.cross_entropy_soft(logits_np, reg.smooth_labels(labels_np, 10, 0.1))
logits_t = torch.tensor(logits_np, requires_grad=True)
loss_t = F.cross_entropy(logits_t, torch.from_numpy(labels_np), label_smoothing=0.1)
loss_t.backward()
print("loss matches F.cross_entropy(label_smoothing=0.1):", abs(loss_np - loss_t.item()) < 1e-12)
print("gradient matches autograd:", np.allclose(grad_np, logits_t.grad.numpy(), rtol=0, atol=1e-12))

# %% [markdown]
# **Calibration** is measured by the **expected calibration error**: bin the test predictions by
# confidence (the largest softmax probability), and average $|\text{accuracy} - \text{confidence}|$
# over the bins, weighted by how many predictions fall in each. A reliability diagram plots
# accuracy against confidence per bin (here only bins holding at least five predictions); a
# calibrated model lies on the diagonal. We train the same CNN with $\varepsilon = 0$ and
# $\varepsilon = 0.1$:

# %%
calibration = {}
for eps in (0.0, 0.1):
    torch.manual_seed(SEED)
    model = make_cnn().to(device)
    training.fit(model, train_loader_for(SEED), None,
                 torch.optim.Adam(model.parameters(), lr=LEARNING_RATE), EPOCHS,
                 loss_fn=lambda out, y, eps=eps: F.cross_entropy(out, y, label_smoothing=eps),
                 desc=f"label smoothing {eps}")
    probs = training.predict(model, x_test).softmax(1).numpy()
    ece, table = reg.expected_calibration_error(probs, digits.test.y, n_bins=10)
    calibration[eps] = dict(ece=ece, table=table, confidence=probs.max(1).mean(),
                            accuracy=(probs.argmax(1) == digits.test.y).mean())
    print(f"eps={eps}: test accuracy {calibration[eps]['accuracy']:.1%}, mean confidence "
          f"{calibration[eps]['confidence']:.1%}, ECE {ece:.3f}")

# %%
fig, ax = plotting.subplots()
ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
for eps, result in calibration.items():
    table = result["table"]
    filled = table["count"] >= 5  # bins with too few predictions say little
    ax.plot(table["confidence"][filled], table["accuracy"][filled], marker="o",
            label=f"ε = {eps} (ECE {result['ece']:.3f})")
ax.set(xlabel="confidence (mean of the bin)", ylabel="accuracy in the bin",
       title="Reliability diagram on the test digits", xlim=(0, 1), ylim=(0, 1))
ax.legend()
fig

# %% [markdown]
# The claims checked with margins: without smoothing, the model's mean confidence exceeds its
# accuracy (over-confidence); with $\varepsilon = 0.1$ the mean confidence drops by at least five
# points. Whether the ECE falls depends on how far the smoothing overshoots: on this run
# $\varepsilon = 0.1$ pushes the confidence *below* the accuracy (the curve above the diagonal), so
# the ECE, which counts under- and over-confidence alike, does not improve. A smaller
# $\varepsilon$, or temperature scaling after training, lands closer to the diagonal.

# %%
plain_cal, smooth_cal = calibration[0.0], calibration[0.1]
assert plain_cal["confidence"] > plain_cal["accuracy"], "expected over-confidence without smoothing"
assert smooth_cal["confidence"] < plain_cal["confidence"] - 0.05

# %% [markdown]
# ## 8. Ablation: which regularizer helps with 200 digits?
#
# Five configurations of the same CNN, each trained on `ABLATION_SEEDS` different 200-image subsets
# with different initializations: no regularization; AdamW weight decay (`WEIGHT_DECAY`, biases
# excluded); dropout (`DROPOUT` before both linear layers); both; early stopping (patience 5 on the
# validation loss, best weights restored). The table reports training accuracy (in eval mode, on
# the 200 images) and test accuracy, mean ± standard deviation over seeds — the format of the
# ablation tables in the literature, on a much smaller problem.

# %%
CONFIGS = {
    "none": dict(wd=0.0, p=0.0, early=False),
    "weight decay": dict(wd=WEIGHT_DECAY, p=0.0, early=False),
    "dropout": dict(wd=0.0, p=DROPOUT, early=False),
    "weight decay + dropout": dict(wd=WEIGHT_DECAY, p=DROPOUT, early=False),
    "early stopping": dict(wd=0.0, p=0.0, early=True),
}


def run_config(wd, p, early, seed):
    torch.manual_seed(seed)
    model = make_cnn(p).to(device)
    train = train_loader_for(seed)
    callbacks = [EarlyStopping(patience=5)] if early else []
    training.fit(model, train, val_loader if early else None,
                 torch.optim.AdamW(param_groups(model, wd), lr=LEARNING_RATE), EPOCHS,
                 callbacks=callbacks, progress=False)
    train_eval = data.DeviceLoader(train.x, train.y, 512, device=device)
    return training.evaluate(model, train_eval).accuracy, training.evaluate(model, test_loader).accuracy


ablation = {name: np.array([run_config(**cfg, seed=SEED + s) for s in range(ABLATION_SEEDS)])
            for name, cfg in CONFIGS.items()}
print(f"{'configuration':24s} {'train acc':>14s} {'test acc':>14s}")
for name, res in ablation.items():
    (tr_m, te_m), (tr_s, te_s) = res.mean(0), res.std(0)
    print(f"{name:24s} {100 * tr_m:7.1f} ± {100 * tr_s:3.1f} {100 * te_m:8.1f} ± {100 * te_s:3.1f}")

# %%
names = list(ablation)
fig, ax = plotting.subplots()
positions = np.arange(len(names))
for offset, (col, label) in zip((-0.2, 0.2), [(0, "train"), (1, "test")], strict=True):
    means = [100 * ablation[n][:, col].mean() for n in names]
    errs = [100 * ablation[n][:, col].std() for n in names]
    ax.bar(positions + offset, means, width=0.4, yerr=errs, label=label)
ax.set_xticks(positions, names, rotation=20)
ax.set(ylim=(80, 101), ylabel="accuracy (%)",
       title=f"200 training digits, mean of {ABLATION_SEEDS} seeds")
ax.legend(loc="lower right")
fig

# %% [markdown]
# Only what holds across seeds is asserted: without regularization the network fits the training
# images perfectly and its test accuracy is at least three points lower on average. Everything
# else in the table is an observation for this run: here dropout (alone or with decay) gave the
# best test accuracy, weight decay alone changed little, and early stopping gave about the same
# test accuracy as no regularization while training for fewer epochs; with three seeds the
# differences between regularizers are of the order of their standard deviations.

# %%
none_train, none_test = ablation["none"].mean(0)
assert none_train >= 0.99 and none_train - none_test >= 0.03, "expected an overfitting gap"
print(f"no regularization: train {none_train:.1%}, test {none_test:.1%}")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — inverted dropout.** Write `my_dropout(x, p, rng)` for training mode: drop each
# entry of the NumPy array `x` with probability `p` (use `rng.random(x.shape)`), scale the kept
# entries so that the expectation is unchanged, and return the result. `p = 0` must return `x`.

# %%
def my_dropout(x, p, rng):
    ### BEGIN SOLUTION
    if p == 0:
        return x.copy()
    keep = rng.random(x.shape) >= p
    return x * keep / (1 - p)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_dropout(my_dropout)

# %% [markdown]
# **Exercise 2 — one AdamW step.** Write
# `adamw_step(p, g, m, v, t, lr, betas, eps, weight_decay)`, with the arguments of chapter 3's
# `adam_step` and `weight_decay` last, returning the new `(p, m, v)` with decoupled weight decay,
# as `torch.optim.AdamW` does (`t` counts steps from 1).

# %%
def adamw_step(p, g, m, v, t, lr, betas, eps, weight_decay):
    ### BEGIN SOLUTION
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    p = p - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * p)
    return p, m, v
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_adamw_step(adamw_step)

# %% [markdown]
# **Exercise 3 — label smoothing loss.** Write `smoothed_cross_entropy(logits, y, eps)` for NumPy
# logits $(N, K)$ and integer labels $(N,)$: the mean over examples of the cross-entropy against
# $(1-\varepsilon)\,\text{one\_hot}(y) + \varepsilon/K$. Compute the log-softmax stably.

# %%
def smoothed_cross_entropy(logits, y, eps):
    ### BEGIN SOLUTION
    k = logits.shape[1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    targets = (1 - eps) * np.eye(k)[y] + eps / k
    return -np.sum(targets * log_probs) / len(y)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_label_smoothing_loss(smoothed_cross_entropy)

# %% [markdown]
# **Exercise 4 — on paper.** (a) With SGD, learning rate $\eta = 0.1$ and an L2 penalty
# $\frac{\lambda}{2}\lVert\theta\rVert^2$ with $\lambda = 5\cdot 10^{-4}$, by what factor does a
# weight with zero data gradient shrink per step, and after 10,000 steps? (b) A layer's units have
# mean 0 and variance 1 and dropout with $p = 0.2$ precedes batch norm. By what factor does the
# batch norm's output standard deviation shrink at test time?
#
# <details><summary>Answer</summary>
#
# (a) $1 - \eta\lambda = 0.99995$ per step; $0.99995^{10^4} \approx e^{-0.5} \approx 0.61$.
# (b) $\operatorname{Var}_{train} = 1/(1 - 0.2) = 1.25$, so the output standard deviation is
# $\sqrt{1/1.25} \approx 0.89$ of its training value.
# </details>
#
# **Exercise 5 — explore.** Raise `PER_CLASS` to 60 and rerun the ablation. Does the overfitting
# gap shrink? Does the ranking of the regularizers survive? Then replace `nn.Dropout` in `make_cnn`
# by `DropBlock2d(0.1, 2)` placed after the second convolution.

# %% [markdown]
# ## Summary
#
# - With 200 training digits a 40k-parameter CNN reaches 100% training accuracy and a clearly
#   lower test accuracy; the validation loss turns upward while the training loss keeps falling.
# - Weight decay $\theta \leftarrow (1-\eta\lambda)\theta - \eta\nabla L$ equals an L2 penalty for
#   SGD; with Adam the penalty is rescaled per weight, so use AdamW. Leave biases and
#   normalization parameters out of the decay with parameter groups.
# - In front of batch norm the loss does not depend on the weights' scale; decay only shrinks
#   $\lVert W\rVert$ and so raises the effective learning rate $\eta/\lVert W\rVert^2$.
# - Early stopping with patience and restored weights returns the model of the best validation
#   epoch; `helpers.callbacks.EarlyStopping` does it for `fit`.
# - Dropout ($p$ = drop probability) trains an ensemble of thinned networks; inverted scaling by
#   $1/(1-p)$ makes the plain network at test time match their average, and it predicts like a
#   50-sample Monte-Carlo average. Dropout before batch norm inflates the variance BN learns.
# - Spatial dropout drops channels, DropConnect weights, DropBlock contiguous squares; DropBlock's
#   seed rate must account for overlapping blocks, and the common max-pool sketch drops over four
#   times its target.
# - Label smoothing lowers the confidence a network reports: on the digits by more than five
#   points, enough here to turn over-confidence into under-confidence. The expected calibration
#   error and a reliability diagram show which side of the diagonal a model is on.
