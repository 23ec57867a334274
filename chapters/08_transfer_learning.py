# %% [markdown]
# # Chapter 8 — Transfer learning and fine-tuning
#
# A network trained on one task has learned features — strokes, edges, their combinations — that
# are often useful for another. With few labels for the new task, starting from those features
# beats starting from random weights. This chapter pretrains its own source network (nothing is
# downloaded), then compares the ways of reusing it on a target task with five labelled examples
# per class, and measures what can go wrong: forgetting the source task, and batch norm
# statistics that drift although every weight is frozen.
#
# **Learning goals.** After this chapter you can
#
# 1. state feature extraction, full fine-tuning, layer-wise fine-tuning and discriminative
#    learning rates as choices of which parameters move and how fast;
# 2. save and reload a model's `state_dict`, and swap its classifier head;
# 3. train a linear head on frozen features in NumPy and check its gradient against autograd;
# 4. measure when transfer helps, and catastrophic forgetting of the source task;
# 5. explain why a "frozen" batch-norm layer still changes in train mode, and prevent it.

# %% tags=["parameters"]
SEED = 0
SOURCE_EPOCHS = 15  # pretraining epochs on the source task
SHOTS = 5  # labelled target examples per class
TARGET_EPOCHS = 40  # epochs on the target task (each epoch is one batch of SHOTS * 5 images)
SEEDS = 4  # target subsets (and initializations) averaged in the comparison
LEARNING_RATE = 3e-3  # Adam, for the head and for full fine-tuning
BATCH_SIZE = 64

# %%
import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers import checks, data, models, numpy_nn, plotting, training, transfer
from helpers.device import best_device, describe
from helpers.gradcheck import rel_error
from helpers.reproducibility import seed_everything

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
print("device:", describe(device))

# %% [markdown]
# ## 1. The idea
#
# Let $\theta_S$ be the parameters a network reached on a **source** task with plenty of labels.
# On the **target** task we minimize the target loss $L_T$, but we choose where to start and what
# may move. Split the network into parts from input to output, $\theta = (\theta_1, \dots,
# \theta_K, \phi)$, with $\phi$ a new classifier head (the source head predicts the wrong
# classes):
#
# - **training from scratch**: random $\theta$, everything trains — the baseline;
# - **feature extraction**: $\theta_{1..K} = \theta_S$ fixed, only $\phi$ trains; the body is a
#   fixed feature map $x \mapsto f_{\theta_S}(x)$ and the head is a linear classifier on it;
# - **full fine-tuning**: start at $\theta_S$, everything trains;
# - **layer-wise fine-tuning**: freeze the first $k$ parts (the most general features), train
#   the rest;
# - **discriminative learning rates**: everything trains, part $i$ with its own step size
#   $\eta_i = \eta\,\gamma^{K+1-i}$ for part $i$ and $\eta$ for the head, with $\gamma < 1$,
#   so early layers move least (section 5 uses $\gamma = 0.7$).
#
# Moving away from $\theta_S$ can erase what the source task needed: **catastrophic
# forgetting**. Small steps on the early layers limit it.

# %% [markdown]
# ## 2. A source task and a target task
#
# Both come from the scikit-learn digits: the **source** task is to tell the digits 0–4 apart,
# with every training image; the **target** task is to tell 5–9 apart from only `SHOTS`
# labelled images per class. The two tasks share the pen strokes but no class.

# %% tags=["nbval-check-output"]
digits = data.load_digits(seed=SEED)
SOURCE, TARGET = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


def task(split, classes):
    """The images of ``classes`` with labels renumbered 0..len(classes) - 1."""
    keep = np.isin(split.y, classes)
    return data.Split(split.x[keep], split.y[keep] - classes[0])


source = {name: task(getattr(digits, name), SOURCE) for name in ("train", "val", "test")}
target = {name: task(getattr(digits, name), TARGET) for name in ("train", "val", "test")}


def few_shot(seed):
    """SHOTS random target training images per class (a different subset per seed)."""
    pick = np.random.default_rng(seed)
    y = target["train"].y
    idx = np.concatenate([pick.choice(np.flatnonzero(y == c), SHOTS, replace=False) for c in range(5)])
    return data.Split(target["train"].x[idx], target["train"].y[idx])


def loader(split, batch_size=BATCH_SIZE, shuffle=False, seed=0):
    return data.DeviceLoader(split.x, split.y, batch_size, shuffle=shuffle, seed=seed, device=device)


print("source train / val / test:", [len(source[s].y) for s in ("train", "val", "test")])
print("target available / used for training:", len(target["train"].y), "/", len(few_shot(0).y))
print("target val / test:", len(target["val"].y), len(target["test"].y))

# %% [markdown]
# ## 3. Pretraining, saving and reloading
#
# The source network is a small ResNet from `helpers.models`: a stem convolution, four residual
# blocks in two stages (16 and 32 channels) and a linear head on the pooled features.

# %%
def make_net(num_classes=5):
    return models.resnet(depth=10, widths=(16, 32), num_classes=num_classes).to(device)


torch.manual_seed(SEED)
source_net = make_net()
optimizer = torch.optim.Adam(source_net.parameters(), lr=LEARNING_RATE)
source_history = training.fit(source_net, loader(source["train"], shuffle=True, seed=SEED),
                              loader(source["val"]), optimizer, SOURCE_EPOCHS, desc="source")
source_test_acc = training.evaluate(source_net, loader(source["test"])).accuracy
print(f"source network: test accuracy on digits 0-4 {source_test_acc:.1%}")
assert source_test_acc > 0.9, "the source network should learn its own task"

# %% [markdown]
# What is saved is the `state_dict`: a dictionary from parameter and buffer names (including the
# batch-norm running statistics) to tensors. Loading it into a freshly built network of the same
# architecture gives back exactly the same function.

# %% tags=["nbval-check-output"]
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "source_net.pt"
    torch.save(source_net.state_dict(), path)
    reloaded = make_net()
    reloaded.load_state_dict(torch.load(path, map_location=device, weights_only=True))
probe = torch.from_numpy(source["test"].x[:32]).to(device)
with torch.no_grad():
    same = torch.equal(source_net.eval()(probe), reloaded.eval()(probe))
print("entries in the state_dict:", len(reloaded.state_dict()))
print("reloaded network gives identical outputs:", same)

# %% [markdown]
# ## 4. Feature extraction, with the head in NumPy
#
# With the body frozen, the network is a fixed feature map: every image becomes a 32-number vector
# $f(x)$, computed once. What is left is multinomial logistic regression on those vectors — a
# linear layer $z = f W^\top + b$ and the softmax cross-entropy — which we train in NumPy with
# full-batch gradient descent, using the layers of `helpers.numpy_nn`.

# %%
def features(net, split):
    """The frozen body's pooled features, (N, 32) float64 NumPy (batch norm in eval mode)."""
    net.eval()
    with torch.no_grad():
        return net.features(torch.from_numpy(split.x).to(device)).double().cpu().numpy()


def train_head_numpy(f, y, steps=300, lr=0.5, seed=0):
    """Gradient descent on softmax regression: returns W (5, 32), b (5,)."""
    w = np.random.default_rng(seed).standard_normal((5, f.shape[1])) * 0.01
    b = np.zeros(5)
    for _ in range(steps):
        _, dz = numpy_nn.softmax_cross_entropy(numpy_nn.linear(f, w, b), y)
        _, dw, db = numpy_nn.linear_backward(dz, f, w)
        w, b = w - lr * dw, b - lr * db
    return w, b


shots = few_shot(SEED)
f_train, f_test = features(source_net, shots), features(source_net, target["test"])
w_head, b_head = train_head_numpy(f_train, shots.y)
numpy_head_acc = np.mean(numpy_nn.linear(f_test, w_head, b_head).argmax(1) == target["test"].y)
print(f"NumPy head on frozen features: target test accuracy {numpy_head_acc:.1%}")

# %% [markdown]
# The NumPy gradient of the head is the one autograd computes for the same features and weights:

# %% tags=["nbval-check-output"]
logits = numpy_nn.linear(f_train, w_head, b_head)
_, dz = numpy_nn.softmax_cross_entropy(logits, shots.y)
_, dw, db = numpy_nn.linear_backward(dz, f_train, w_head)
w_t, b_t = torch.tensor(w_head, requires_grad=True), torch.tensor(b_head, requires_grad=True)
F.cross_entropy(F.linear(torch.from_numpy(f_train), w_t, b_t), torch.from_numpy(shots.y)).backward()
head_errors = [rel_error(dw, w_t.grad.numpy()), rel_error(db, b_t.grad.numpy())]
assert max(head_errors) < 1e-9, f"NumPy head gradient disagrees with autograd: {head_errors}"
print("NumPy head gradient matches autograd (relative error < 1e-9):", True)

# %% [markdown]
# ## 5. Five ways to use the pretrained network
#
# Each strategy gets the same `SHOTS` images per class, the same epochs and Adam, and is repeated
# on `SEEDS` different few-shot subsets. `helpers.transfer` does the bookkeeping: `freeze`
# switches `requires_grad` off, `parameter_groups` gives each part of the network its own learning
# rate, and `freeze_batchnorm` keeps batch-norm layers on their source statistics (section 8 says
# why that matters).

# %%
def parts(net):
    """The network from input to output: stem, the four blocks, the head."""
    return [net.stem, *net.blocks, net.fc]


def prepare(strategy, seed):
    """A network and optimizer for one strategy; the head is always new."""
    torch.manual_seed(seed)
    if strategy == "from scratch":
        net = make_net()
    else:
        net = copy.deepcopy(source_net)
        net.fc = torch.nn.Linear(net.fc.in_features, 5).to(device)
    if strategy == "feature extraction":
        transfer.freeze(net)
        transfer.freeze(net.fc, frozen=False)
        transfer.freeze_batchnorm(net)
    if strategy == "freeze stem + stage 1":
        transfer.freeze_batchnorm(net.stem)
        transfer.freeze_batchnorm(net.blocks[:2])
        for part in parts(net)[:3]:
            transfer.freeze(part)
    if strategy == "discriminative LRs":
        lrs = transfer.discriminative_lrs(LEARNING_RATE, len(parts(net)), factor=0.7)
        return net, torch.optim.Adam(transfer.parameter_groups(parts(net), lrs))
    trainable = [p for p in net.parameters() if p.requires_grad]
    return net, torch.optim.Adam(trainable, lr=LEARNING_RATE)


def run(strategy, seed, val=None):
    net, opt = prepare(strategy, seed)
    shots = few_shot(seed)
    history = training.fit(net, loader(shots, len(shots.y), shuffle=True, seed=seed), val, opt,
                           TARGET_EPOCHS, progress=False)
    return net, history, training.evaluate(net, loader(target["test"])).accuracy


STRATEGIES = ["from scratch", "feature extraction", "full fine-tuning", "freeze stem + stage 1",
              "discriminative LRs"]
results = {s: [run(s, seed)[2] for seed in range(SEEDS)] for s in STRATEGIES}
print(f"target test accuracy with {SHOTS} labels per class, mean ± std over {SEEDS} subsets:")
for strategy, accs in results.items():
    print(f"  {strategy:24s} {np.mean(accs):6.1%} ± {np.std(accs):.1%}   trainable parameters "
          f"{models.count_parameters(prepare(strategy, 0)[0]):,}")

# %% [markdown]
# The claim, checked on the mean over the subsets: starting from the pretrained network and
# fine-tuning it beats training from scratch by at least four points when labels are this scarce.

# %%
mean = {s: float(np.mean(a)) for s, a in results.items()}
assert mean["full fine-tuning"] > mean["from scratch"] + 0.04, mean
assert mean["discriminative LRs"] > mean["from scratch"] + 0.04, mean

# %% [markdown]
# Learning curves for one subset show the difference from the first epochs: the pretrained
# networks start from useful features and need only to find the new classes.

# %%
curves = {s: run(s, SEED, val=loader(target["val"]))[1] for s in ["from scratch", "full fine-tuning", "feature extraction"]}
plotting.plot_history(curves, metrics=("acc",), title=f"Target task, {SHOTS} labels per class")

# %% [markdown]
# ## 6. Catastrophic forgetting
#
# After fine-tuning, does the network still do the source task? We put the *source* head back on
# the fine-tuned body and measure accuracy on the digits 0–4. Fine-tuning everything with a large
# learning rate moves the early layers far from $\theta_S$; discriminative learning rates move
# them little.

# %%
def source_accuracy_after(strategy_net):
    net = copy.deepcopy(strategy_net)
    net.fc = copy.deepcopy(source_net.fc)
    return training.evaluate(net, loader(source["test"])).accuracy


forgetting = {}
for name, top_lr, factor in [("all layers, lr 1e-2", 1e-2, 1.0), ("lr 3e-3 x 0.3 per part down", 3e-3, 0.3)]:
    net, _ = prepare("full fine-tuning", SEED)
    lrs = transfer.discriminative_lrs(top_lr, len(parts(net)), factor=factor)
    opt = torch.optim.Adam(transfer.parameter_groups(parts(net), lrs))
    stem_before = net.stem[0].weight.detach().clone()
    training.fit(net, loader(few_shot(SEED), 5 * SHOTS, shuffle=True), None, opt, TARGET_EPOCHS, progress=False)
    forgetting[name] = (
        training.evaluate(net, loader(target["test"])).accuracy,
        source_accuracy_after(net),
        transfer.first_layer_change(stem_before, net.stem[0].weight.detach()),
    )
print(f"source network before fine-tuning: source accuracy {source_test_acc:.1%}")
for name, (tgt, src, change) in forgetting.items():
    print(f"{name:28s} target {tgt:.1%}  source {src:.1%}  stem weights moved {change:.0%}")

# %% [markdown]
# The claim, checked: the large learning rate forgets more of the source task than the small,
# discriminative one, and moves the first layer further.

# %%
(_, src_big, move_big), (_, src_small, move_small) = forgetting.values()
assert src_big < src_small - 0.05, forgetting
assert move_big > 2 * move_small, forgetting

# %% [markdown]
# ## 7. Which layers transfer?
#
# Freeze the first $k$ parts of the pretrained network (stem, then blocks) and fine-tune the rest.
# Early layers hold generic stroke detectors, so freezing them costs little; freezing the late,
# source-specific blocks costs more.

# %%
frozen_counts = list(range(len(parts(source_net))))  # 0 .. 5: up to every part but the head


def run_frozen(k, seed):
    net, _ = prepare("full fine-tuning", seed)
    for part in parts(net)[:k]:
        transfer.freeze(part)
        transfer.freeze_batchnorm(part)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=LEARNING_RATE)
    training.fit(net, loader(few_shot(seed), 5 * SHOTS, shuffle=True, seed=seed), None, opt,
                 TARGET_EPOCHS, progress=False)
    return training.evaluate(net, loader(target["test"])).accuracy


by_frozen = np.array([[run_frozen(k, seed) for seed in range(2)] for k in frozen_counts])
plotting.plot_lines(frozen_counts, {"target test accuracy": by_frozen.mean(1) * 100},
                    xlabel="parts frozen (stem, block 1, ..., block 4)", ylabel="accuracy (%)",
                    title="Freezing more of the pretrained network")

# %%
print("mean accuracy by parts frozen:", np.round(by_frozen.mean(1), 3).tolist())
assert by_frozen[1].mean() > by_frozen[-1].mean(), "freezing only the stem should beat freezing everything"

# %% [markdown]
# The first layer's filters before and after full fine-tuning: they barely change — the strokes of
# 0–4 are the strokes of 5–9.

# %%
tuned, _, _ = run("full fine-tuning", SEED)
stem_filters = torch.cat([source_net.stem[0].weight[:8], tuned.stem[0].weight[:8]]).detach()
plotting.filter_grid(stem_filters, ncols=8, title="Stem filters: source (top) and fine-tuned (bottom)")

# %% [markdown]
# ## 8. Batch norm in transfer
#
# `requires_grad=False` stops the gradient, but not batch norm's *running statistics*: in train
# mode every forward pass normalizes with the batch's own mean and variance and moves the running
# estimates toward them. So a body whose every weight is "frozen", trained in train mode, is no
# longer the source network afterwards: its normalization now follows the target data. Keeping
# batch norm in eval mode — in a way `fit`'s `model.train()` cannot undo — keeps it exact.
#
# We train only a new head on the frozen body, once with batch norm left in train mode and once
# with `transfer.freeze_batchnorm`, then put the *source* head back and compare with the source
# network.

# %%
def head_on_frozen_body(keep_bn_eval):
    net = copy.deepcopy(source_net)
    transfer.freeze(net)
    if keep_bn_eval:
        transfer.freeze_batchnorm(net)
    net.fc = torch.nn.Linear(net.fc.in_features, 5).to(device)  # only the new head trains
    opt = torch.optim.Adam(net.fc.parameters(), lr=LEARNING_RATE)
    training.fit(net, loader(few_shot(SEED), 5, shuffle=True), None, opt, 10, progress=False)
    return net


with torch.no_grad():
    source_logits = source_net.eval()(probe)
bn_results = {}
for name, keep in [("BN left in train mode", False), ("BN frozen (eval mode)", True)]:
    net = head_on_frozen_body(keep)
    net.fc = copy.deepcopy(source_net.fc)
    with torch.no_grad():
        change = (net.eval()(probe) - source_logits).abs().max().item()
    moved = not torch.equal(net.stem[1].running_mean, source_net.stem[1].running_mean)
    bn_results[name] = (moved, change, training.evaluate(net, loader(source["test"])).accuracy)
    print(f"{name:22s} running statistics changed: {moved!s:5s}  largest logit change "
          f"{change:.3f}  source accuracy {bn_results[name][2]:.1%}")

# %% tags=["nbval-check-output"]
(moved_train, change_train, _), (moved_eval, change_eval, _) = bn_results.values()
assert moved_train and change_train > 1e-3, "train-mode BN should have changed the network"
assert not moved_eval and change_eval == 0.0, "frozen BN must leave the source network exact"
print("frozen weights + BN in train mode: the source network changed:", True)
print("frozen weights + frozen BN: the source network is unchanged:", True)

# %% [markdown]
# How much the drift hurts depends on how far the target statistics are from the source's and on
# the batch size: here the source accuracy printed above barely moved, because 5–9 are drawn with
# the same pen as 0–4; with a real domain shift (photographs to sketches, say) it is the classic
# cause of a fine-tuned model that "works in training and fails in evaluation". Either way the
# network is silently no longer the one that was saved, which is reason enough to freeze batch norm
# whenever the body is frozen.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — freezing a prefix.** Write `freeze_first(model, k)` for a `helpers.models.resnet`
# network: parameters of the stem and of the first `k - 1` blocks stop training (so `k = 0`
# freezes nothing, `k = 1` the stem only); everything else trains. Return the model.

# %%
def freeze_first(model, k):
    ### BEGIN SOLUTION
    for i, part in enumerate([model.stem, *model.blocks, model.fc]):
        for p in part.parameters():
            p.requires_grad_(i >= k)
    return model
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_freeze_first(freeze_first)

# %% [markdown]
# **Exercise 2 — the head's gradient, derived.** Section 4 trained the head with
# `numpy_nn.softmax_cross_entropy` and `numpy_nn.linear_backward`; here you derive what they
# compute. The features are $f$ (N, D), the head $z = f W^\top + b$ with $W$ (K, D) and $b$ (K,),
# and the loss the mean softmax cross-entropy
#
# $$L = -\frac{1}{N} \sum_{n=1}^{N} \log p_{n, y_n}, \qquad
#   p_{nk} = \frac{e^{z_{nk}}}{\sum_{j} e^{z_{nj}}} .$$
#
# (a) Derive $\partial L / \partial z_{nk}$ (start from $\log p_{n,y_n} = z_{n,y_n} - \log
# \sum_j e^{z_{nj}}$), then $\partial L / \partial W$ and $\partial L / \partial b$ by the chain
# rule through $z$, as matrix products with their shapes. What do the entries of each row of
# $\partial L / \partial z$ add up to, and what does that say about $\partial L / \partial b$?
# (b) Write `head_gradients(f, w, b, y)` returning `(dw, db)` in NumPy, with no loop over the
# examples. The check compares with autograd; while your function runs, the two `numpy_nn`
# functions above raise and autograd is switched off.
#
# <details><summary>Answer</summary>
#
# (a) $\partial \log p_{n,y_n} / \partial z_{nk} = [k = y_n] - e^{z_{nk}} / \sum_j e^{z_{nj}} =
# [k = y_n] - p_{nk}$, and only example $n$'s term of $L$ depends on $z_{nk}$, so
#
# $$\frac{\partial L}{\partial z} = \frac{1}{N}\,(P - Y) \quad (N, K),$$
#
# with $P$ the softmax probabilities and $Y$ the one-hot labels. Since $z_{nk} = \sum_d f_{nd}
# W_{kd} + b_k$, $\partial z_{nk} / \partial W_{kd} = f_{nd}$ and $\partial z_{nk} / \partial b_k
# = 1$; summing over the examples,
#
# $$\frac{\partial L}{\partial W} = \Big(\frac{\partial L}{\partial z}\Big)^{\!\top} f \quad (K, D),
#   \qquad \frac{\partial L}{\partial b} = \sum_{n} \frac{\partial L}{\partial z_{n\cdot}}
#   \quad (K,).$$
#
# Each row of $P - Y$ sums to $1 - 1 = 0$, so the entries of $\partial L / \partial b$ sum to 0:
# gradient descent never moves all the biases up or down together, which would not change the
# softmax anyway. Computing $P$ stably: subtract each row's maximum from $z$ before
# exponentiating, which leaves $P$ unchanged. (b) Below.
# </details>

# %%
def head_gradients(f, w, b, y):
    ### BEGIN SOLUTION
    z = f @ w.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    dz = p / len(y)
    return dz.T @ f, dz.sum(axis=0)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_head_gradients(head_gradients)

# %% [markdown]
# **Exercise 3 — batch norm in eval mode.** Write `bn_eval(model)` that puts every batch-norm
# layer of `model` in eval mode and leaves all other modules as they are (call it after
# `model.train()`). Why is this not enough with `helpers.training.fit`? (Hint: what does `fit` do
# at the start of every epoch?)

# %%
def bn_eval(model):
    ### BEGIN SOLUTION
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_bn_eval(bn_eval)

# %% [markdown]
# **Exercise 4 — choosing a strategy (discussion).** Rerun section 5 with `SHOTS = 25` (in the
# parameters cell). How does the gap between fine-tuning and training from scratch change? When
# would you expect feature extraction to beat fine-tuning? Consider the size of the target set
# and how similar the two tasks are.
#
# <details><summary>Answer</summary>
#
# With five times as many labels the network trained from scratch has much more to learn from,
# so expect the gap to fine-tuning to shrink: pretraining is a prior, and a prior matters less
# as data grows. Measure it over the `SEEDS` subsets and compare the gap with the printed
# spreads before calling a change real. Feature extraction trains only the head (165
# parameters here against 42,197), so it cannot overfit the body and costs one pass to compute
# the features; it wins when the target set is so small that fine-tuning the whole network
# overfits it, *and* the source features already separate the target classes linearly — the
# tasks are close (the same kind of images and a source task at least as broad, like ImageNet
# features for another set of photographs). Here the second condition fails: features that
# tell 0–4 apart are not sufficient for 5–9, so the later blocks must adapt and fine-tuning
# wins. With more target data, or a target far from the source, fine-tuning (with small
# learning rates on the early layers) is the safer choice.
# </details>

# %% [markdown]
# ## Summary
#
# - Transfer learning starts the target task from a source network's parameters. Feature
#   extraction trains only a new head on frozen features; fine-tuning lets some or all layers move,
#   possibly each at its own learning rate.
# - A `state_dict` (parameters and batch-norm buffers) saves and restores a network exactly; a new
#   head replaces the old classifier.
# - With five labels per class, fine-tuning the pretrained network beat training from scratch by a
#   wide margin on average; here plain feature extraction was worse than both, because features
#   tuned to tell 0–4 apart are not linearly sufficient for 5–9 — the later blocks must adapt.
# - Large learning rates on every layer make the network forget its source task and move the
#   first layer far; small learning rates on early layers keep both.
# - Freezing parameters does not freeze batch norm: in train mode its running statistics follow
#   the new data and the saved network silently changes. Keep it in eval mode
#   (`transfer.freeze_batchnorm`) when the body is frozen.
