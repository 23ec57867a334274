# %% [markdown]
# # Chapter 10 — Making networks small: pruning and quantization
#
# A trained network is a few arrays of float32 weights and the arithmetic that uses them. This
# chapter makes both smaller in the two standard ways: **pruning** sets weights to zero (one at a
# time, or whole filters so that the network really shrinks), and **quantization** stores weights
# and activations as 8-, 4- or 3-bit integers. Each tool is written in NumPy (`helpers.numpy_compress`),
# checked against PyTorch (`torch.nn.utils.prune`, `torch.ao.quantization`'s observer,
# `torch.fake_quantize_per_tensor_affine`), and then applied to a small CNN trained on Fashion-MNIST.
# At the end the network becomes a real int8 model on the CPU through torchao's PT2E flow, the
# path that replaces eager-mode `torch.ao.quantization` (deprecated in torch 2.13).
#
# **Learning goals.** After this chapter you can
#
# 1. count a network's parameter and activation memory, and say what int8 saves (4x against fp32);
# 2. prune by magnitude layer by layer and globally, and recover accuracy by fine-tuning;
# 3. remove whole filters to build a smaller dense network, and explain why unstructured zeros do
#    not make dense kernels faster;
# 4. schedule pruning gradually with Zhu and Gupta's cubic schedule;
# 5. write the affine quantization map with its scale and zero point (and spot a wrong pair);
# 6. quantize a trained network after training with calibrated ranges, and recover a 3-bit model
#    with quantization-aware training and the straight-through estimator;
# 7. build a real int8 model with `torch.export`, torchao's PT2E quantizer for x86 and
#    `torch.compile`, and measure its size, accuracy and latency against float32.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch; paired comparisons use SEED, SEED + 1, ...
N_SEEDS = 2  # paired fine-tuning seeds of the gradual-vs-one-shot and QAT comparisons
TRAIN_SIZE = 3000  # stratified Fashion-MNIST training subset (images halved to 14 x 14)
VAL_FRACTION = 1 / 30  # 2,000 validation images carved from the 60,000
EPOCHS = 6  # epochs of training the dense CNN
FINETUNE_EPOCHS = 1  # epochs of each fine-tuning run after pruning or during QAT
BATCH_SIZE = 64
CALIBRATION_BATCHES = 4  # training batches used to calibrate activation ranges
TEST_SIZE = 4000  # stratified subset of the 10,000 test images used for every accuracy
TIMING_BATCH = 256  # images per forward pass in the latency measurements
TIMING_ROUNDS = 5  # interleaved timing rounds of each pair of networks

# %%
import copy
import itertools
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.quantization.observer import MinMaxObserver
from torch.nn.utils import prune

from helpers import data, models, numpy_compress, plotting, quantization, timing, training
from helpers.checks import compression as checks
from helpers.claims import claim
from helpers.device import best_device, describe
from helpers.reproducibility import seed_everything

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
SEEDS = [SEED + k for k in range(N_SEEDS)]
print("device:", describe(device), "| paired seeds:", SEEDS)

# %% [markdown]
# ## 1. The network, and why compress it
#
# We train the book's small CNN (`models.small_cnn`: conv 1→8, conv 8→16, a 2x2 max pool, a
# linear classifier) on a stratified subset of `TRAIN_SIZE` Fashion-MNIST images halved to
# $14 \times 14$ by averaging $2 \times 2$ blocks, so that the many evaluations and fine-tuning
# runs of this chapter take seconds on one CPU thread. Test accuracy is measured on a stratified
# subset of `TEST_SIZE` of the 10,000 test images (halved the same way), the same images throughout.

# %%
fashion = data.load_fashion_mnist(train_size=TRAIN_SIZE, val_fraction=VAL_FRACTION, seed=SEED)
print(fashion.summary())



x_train, y_train = data.downsample(fashion.train.x), fashion.train.y
val_loader = data.DeviceLoader(data.downsample(fashion.val.x), fashion.val.y, 1000, device=device)
test_idx = data.stratified_subset(fashion.test.y, TEST_SIZE, seed=SEED)
test_loader = data.DeviceLoader(data.downsample(fashion.test.x[test_idx]), fashion.test.y[test_idx], 1000, device=device)


def train_loader(seed):
    """Shuffled training batches; the same seed gives the same order."""
    return data.DeviceLoader(x_train, y_train, BATCH_SIZE, shuffle=True, seed=seed, device=device)


def test_accuracy(model):
    return training.evaluate(model, test_loader).accuracy


# %%
torch.manual_seed(SEED)
dense = models.small_cnn(widths=(8, 16), side=14).to(device)
training.fit(dense, train_loader(SEED), val_loader, torch.optim.Adam(dense.parameters(), lr=3e-3),
             EPOCHS, progress=False)
dense_acc = test_accuracy(dense)
print(f"dense CNN: {models.count_parameters(dense):,} parameters, test accuracy {dense_acc:.4f}")
claim("the dense CNN reaches 70% test accuracy", dense_acc, above=0.70)

# %% [markdown]
# **Memory.** Each parameter is a float32, 4 bytes; stored as int8 it takes 1 byte (plus one
# scale and zero point per tensor or per channel), so int8 storage is 4x smaller. The activations
# of one image are counted the same way; for a batch they scale with the batch size.
# **Arithmetic.** A convolution with $C_{out}$ filters of $C_{in} \times 3 \times 3$ on an
# $H \times W$ output does $H W C_{out} C_{in} 9$ multiply-adds.

# %%
def layer_table(model, side=14):
    """(name, parameters, activation values of one image, multiply-adds) per conv/linear layer."""
    rows, x = [], torch.zeros(1, 1, side, side, device=next(model.parameters()).device)
    for i, layer in enumerate(model):
        x = layer(x)
        if isinstance(layer, nn.Conv2d | nn.Linear):
            macs = layer.weight.numel() * (x.shape[2] * x.shape[3] if x.ndim == 4 else 1)
            rows.append((f"{i}: {type(layer).__name__}", sum(p.numel() for p in layer.parameters()), x.numel(), macs))
    return rows


rows = layer_table(dense)
for name, n_params, n_act, macs in rows:
    print(f"{name:10s} parameters {n_params:6,d}  activations {n_act:5,d}  multiply-adds {macs:9,d}")
n_params = sum(r[1] for r in rows)
print(f"weights: {4 * n_params / 1024:.1f} KiB as float32, {n_params / 1024:.1f} KiB as int8; "
      f"{sum(r[3] for r in rows):,} multiply-adds per image")

# %% tags=["nbval-check-output"]
print("parameters:", n_params, "| float32 bytes / int8 bytes:", (4 * n_params) // n_params)

# %% [markdown]
# ## 2. Magnitude pruning
#
# **Idea.** Many trained weights are small; setting the smallest ones to zero changes the
# function little. A **mask** $m$ of the weights' shape (1 = keep, 0 = pruned) is applied as
# $w \odot m$. Pruning a fraction $a$ (the *sparsity*) of a tensor with $n$ entries zeroes the
# $\mathrm{round}(a n)$ entries of smallest $|w|$. **Layer-wise** pruning does that in every layer
# separately; **global** pruning ranks all layers' weights together, so a layer with many small
# weights (often the large classifier) loses more than one whose weights all matter.
#
# The NumPy masks of `helpers.numpy_compress`, on the trained network's weights, against
# `torch.nn.utils.prune` (biases are not pruned):

# %%
def prunable(model):
    return [m for m in model if isinstance(m, nn.Conv2d | nn.Linear)]


weights = [m.weight.detach().cpu().double().numpy() for m in prunable(dense)]
ours_layer = [numpy_compress.magnitude_prune_mask(w, 0.7) for w in weights]
ours_global = numpy_compress.global_magnitude_prune_masks(weights, 0.7)
ours_filters = numpy_compress.structured_prune_mask(weights[1], 0.5, dim=0)

ref = copy.deepcopy(dense).cpu().double()
ref_layer = [prune.l1_unstructured(copy.deepcopy(m), "weight", 0.7).weight_mask for m in prunable(ref)]
prune.global_unstructured([(m, "weight") for m in prunable(ref)], prune.L1Unstructured, amount=0.7)
ref_filters = prune.ln_structured(copy.deepcopy(prunable(dense)[1]).cpu(), "weight", 0.5, n=1, dim=0).weight_mask

# %% tags=["nbval-check-output"]
print("layer-wise masks match l1_unstructured:",
      all(np.array_equal(o, r.numpy()) for o, r in zip(ours_layer, ref_layer, strict=True)))
print("global masks match global_unstructured:",
      all(np.array_equal(o, m.weight_mask.numpy()) for o, m in zip(ours_global, prunable(ref), strict=True)))
print("filter mask matches ln_structured(n=1, dim=0):", np.array_equal(ours_filters, ref_filters.numpy()))

# %%
kept = [float(o.mean()) for o in ours_global]
print("fraction kept per layer at 70% global sparsity:", [round(k, 3) for k in kept])
claim("global pruning to 70% keeps a larger fraction of the first convolution's weights than of the classifier's",
      kept[0] - kept[-1], above=0.0)

# %% [markdown]
# ### Accuracy against sparsity, without retraining
#
# Masks from NumPy are copied into a clone of the trained network, which is then evaluated as it
# is (no training after pruning).

# %%
SPARSITIES = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]


def pruned_copy(model, masks):
    """A copy of model with each conv/linear weight multiplied by its mask (kept by prune)."""
    clone = copy.deepcopy(model)
    for m, mask in zip(prunable(clone), masks, strict=True):
        prune.custom_from_mask(m, "weight", torch.as_tensor(mask, dtype=torch.float32, device=device))
    return clone


def masks_for(kind, amount, model=dense):
    ws = [m.weight.detach().cpu().numpy() for m in prunable(model)]
    if kind == "global":
        return numpy_compress.global_magnitude_prune_masks(ws, amount)
    return [numpy_compress.magnitude_prune_mask(w, amount) for w in ws]


no_retrain = {kind: [test_accuracy(pruned_copy(dense, masks_for(kind, s))) for s in SPARSITIES]
              for kind in ("layer-wise", "global")}
for kind, accs in no_retrain.items():
    print(f"{kind:10s}", " ".join(f"{s:.0%}: {a:.3f}" for s, a in zip(SPARSITIES, accs, strict=True)))

# %% [markdown]
# ### Fine-tuning after pruning
#
# The pruned network is trained for `FINETUNE_EPOCHS` epochs with its mask fixed:
# `prune.custom_from_mask` keeps the weight as `weight_orig * weight_mask`, so the pruned entries
# get zero gradient through the product and stay zero.

# %%
def fine_tune(model, seed, epochs=FINETUNE_EPOCHS, callbacks=()):
    training.fit(model, train_loader(seed), None, torch.optim.Adam(model.parameters(), lr=1e-3),
                 epochs, progress=False, callbacks=callbacks)
    return model


FT_SPARSITIES = [0.8, 0.9, 0.95]
fine_tuned = {kind: [test_accuracy(fine_tune(pruned_copy(dense, masks_for(kind, s)), SEED)) for s in FT_SPARSITIES]
              for kind in ("layer-wise", "global")}
for kind, accs in fine_tuned.items():
    print(f"{kind:10s} fine-tuned", " ".join(f"{s:.0%}: {a:.3f}" for s, a in zip(FT_SPARSITIES, accs, strict=True)))

# %%
fig, ax = plotting.subplots()
for kind, accs in no_retrain.items():
    ax.plot(SPARSITIES, accs, "o-", label=f"{kind}, no retraining")
for kind, accs in fine_tuned.items():
    ax.plot(FT_SPARSITIES, accs, "s--", label=f"{kind}, fine-tuned {FINETUNE_EPOCHS} epochs")
ax.axhline(dense_acc, color="gray", linewidth=0.8)
ax.set(xlabel="sparsity (fraction of weights pruned)", ylabel="test accuracy", title="Magnitude pruning of the CNN")
ax.legend()
fig

# %% [markdown]
# Without retraining, accuracy holds up to moderate sparsity and then collapses; global pruning
# collapses later, because it takes most of its zeros from the large linear classifier and
# spares the small first convolution, whose few weights all matter (the kept fractions per layer
# are printed above, and the claim under them says that the first convolution keeps more than
# the classifier). How much later global pruning collapses depends on the network; the curves
# above are this run's. The claims below: global pruning of 30% of the weights costs less than
# 5 points; layer-wise pruning takes 30% of the first convolution's few weights too, and its
# cost is printed beside global's, not claimed. One epoch of fine-tuning with the mask fixed
# raises accuracy at 80% and 90% sparsity, on average over the four pruned networks, and
# recovers part of the loss (the printed fraction of the drop from the dense accuracy). At 95%,
# where the layer-wise network keeps only a handful of the first convolution's weights, the
# change is printed, not claimed.

# %%
at = {s: i for i, s in enumerate(SPARSITIES)}
cost = {kind: dense_acc - accs[at[0.3]] for kind, accs in no_retrain.items()}
print(f"cost of 30% sparsity: global {cost['global']:+.3f}, layer-wise {cost['layer-wise']:+.3f}")
before = {kind: np.array([no_retrain[kind][at[s]] for s in FT_SPARSITIES]) for kind in no_retrain}
ft_gain = {kind: np.array(fine_tuned[kind]) - before[kind] for kind in no_retrain}
for kind, gain in ft_gain.items():
    print(f"{kind:10s} fine-tuned minus not retrained:", " | ".join(
        f"{s:.0%}: {g:+.3f} ({g / (dense_acc - b):.0%} of the drop)"
        for s, g, b in zip(FT_SPARSITIES, gain, before[kind], strict=True)))
claim("global pruning of 30% of the weights costs less than 5 points", cost["global"], below=0.05)
claim("one epoch of fine-tuning raises accuracy at 80% and 90% sparsity, on average over both kinds",
      np.mean([gain[:2] for gain in ft_gain.values()]), above=0.0)

# %% [markdown]
# ## 3. Structured pruning: removing whole filters
#
# Zeros inside a dense weight tensor save nothing by themselves: a dense convolution or matrix
# multiply multiplies every entry, zero or not, and its speed comes from regular memory access
# and vector instructions that a scattered pattern of zeros cannot use. Sparse formats need very
# high sparsity (and special kernels) before they win. **Structured** pruning removes whole
# filters instead: filter $o$ of a convolution is the slice `w[o]` of shape $(C_{in}, 3, 3)$;
# pruning it removes output channel $o$, and with it input channel $o$ of the next layer. The
# result is an ordinary, smaller dense network. We keep the half of the filters of each
# convolution with the largest L1 norm (`structured_prune_mask(w, 0.5, dim=0)`) and copy the
# kept slices into a network of widths (4, 8).

# %%
def shrink(model, amount):
    """A smaller small_cnn keeping the filters of largest L1 norm in each conv (NumPy masks)."""
    convs, head = [m for m in model if isinstance(m, nn.Conv2d)], model[-1]
    keep, ins = [], torch.arange(1)
    for conv in convs:
        mask = numpy_compress.structured_prune_mask(conv.weight.detach().cpu().numpy(), amount, dim=0)
        keep.append(torch.as_tensor(np.flatnonzero(mask[:, 0, 0, 0])))
    small = models.small_cnn(widths=tuple(len(k) for k in keep), side=14).to(device)
    with torch.no_grad():
        for conv, new, k in zip(convs, [m for m in small if isinstance(m, nn.Conv2d)], keep, strict=True):
            new.weight.copy_(conv.weight[k][:, ins])
            new.bias.copy_(conv.bias[k])
            ins = k
        features = head.weight.reshape(10, len(convs[-1].weight), -1)[:, ins].reshape(10, -1)
        small[-1].weight.copy_(features)
        small[-1].bias.copy_(head.bias)
    return small


small = shrink(dense, 0.5)
small_no_retrain = test_accuracy(small)
small_acc = test_accuracy(fine_tune(small, SEED))
print(f"filters pruned by half: {models.count_parameters(small):,} parameters "
      f"(dense {models.count_parameters(dense):,}); accuracy {small_no_retrain:.3f} as cut, "
      f"{small_acc:.3f} after {FINETUNE_EPOCHS} epoch of fine-tuning (dense {dense_acc:.3f})")

# %% [markdown]
# A check that the copy is right: the small network must compute exactly what the dense one
# computes with the same filters zeroed by `numpy_compress.structured_prune_mask` masks (the
# masks `prune.ln_structured` computes, as §2 checked; pruning a conv's output channel zeroes
# its bias too, so we zero those by hand).

# %% tags=["nbval-check-output"]
masked = copy.deepcopy(dense)
cut = shrink(dense, 0.5)
with torch.no_grad():
    for conv in [m for m in masked if isinstance(m, nn.Conv2d)]:
        mask = torch.as_tensor(numpy_compress.structured_prune_mask(conv.weight.cpu().numpy(), 0.5), device=device)
        conv.weight.mul_(mask)
        conv.bias.mul_(mask[:, 0, 0, 0])
x_probe = torch.as_tensor(x_train[:64], device=device)
print("smaller dense net equals the filter-masked net:",
      torch.allclose(training.predict(cut, x_probe), training.predict(masked, x_probe), atol=1e-5))

# %% [markdown]
# Latency on the CPU, one forward pass of `TIMING_BATCH` images, with `helpers.timing.benchmark`,
# on one thread (restored afterwards), so that the ratio measures arithmetic rather than how
# well a small network spreads over cores.
# We time three networks: the dense one, the same network with 90% of its weights zeroed
# (unstructured, same shapes), and the half-width network. The three are timed in interleaved
# rounds so that a busy machine slows them alike, and we report the ratios to the dense time
# with their spread over the rounds.

# %%
cpu_models = {"dense": copy.deepcopy(dense).cpu(), "90% unstructured zeros": pruned_copy(dense, masks_for("global", 0.9)).cpu(),
              "half the filters": copy.deepcopy(small).cpu()}
x_bench = torch.as_tensor(x_train[:TIMING_BATCH])
ratios = {name: [] for name in cpu_models}
threads = torch.get_num_threads()
torch.set_num_threads(1)  # one core for every network: the arithmetic decides, not threading overhead
with torch.no_grad():
    for _ in range(TIMING_ROUNDS):
        times = {name: timing.benchmark(lambda m=m: m(x_bench), repeats=5, warmup=1).median for name, m in cpu_models.items()}
        for name in cpu_models:
            ratios[name].append(times[name] / times["dense"])
torch.set_num_threads(threads)
print(f"dense: {timing.format_seconds(times['dense'])} per batch of {TIMING_BATCH} (last round)")
for name, r in ratios.items():
    print(f"{name:24s} time / dense: median {np.median(r):.2f} (min {min(r):.2f}, max {max(r):.2f})")
size_ratio = models.count_parameters(small) / models.count_parameters(dense)
print(f"parameters, half the filters / dense: {size_ratio:.3f}")

# %%
assert size_ratio < 0.55  # a count: half the filters leave under 55% of the parameters
claim("removing half the filters makes the CPU forward pass faster (median time ratio below 0.95)",
      np.median(ratios["half the filters"]), below=0.95)
claim("one epoch of fine-tuning brings the half-width network within 10 points of the dense one",
      dense_acc - small_acc, below=0.10)

# %% [markdown]
# The network with half its filters is smaller (the printed parameter ratio) and faster (its
# median time ratio is claimed below 0.95): the second convolution, where most multiply-adds
# are, has half its input and half its output channels, a quarter of its arithmetic. The
# unstructured network with 90% zeros runs at about the dense speed (its ratio printed above):
# the dense kernel multiplies the zeros as well. Cutting the filters costs accuracy at first
# (how much depends on the network: the "as cut" accuracy printed in the cell that built it);
# one epoch of fine-tuning brings the smaller network within 10 points of the dense one
# (claimed), and the printed accuracies show how close it came here.
#
# ## 4. Gradual pruning with the cubic schedule
#
# Zhu and Gupta (2017) raise the sparsity from $s_i$ to $s_f$ in $n$ steps $\Delta t$ apart,
# starting at step $t_0$, fast at first and slowly at the end:
#
# $$s_t = s_f + (s_i - s_f)\Big(1 - \frac{t - t_0}{n\,\Delta t}\Big)^3, \qquad t \in \{t_0, t_0 + \Delta t, \dots, t_0 + n\Delta t\},$$
#
# held constant between updates. At every update the mask is recomputed by global magnitude
# pruning of the current weights; between updates it is held, and the pruned weights are set
# back to zero after every optimizer step.
# We compare, from the same trained dense network and with the same fine-tuning budget of
# `FINETUNE_EPOCHS` epochs and the same batch order, one-shot pruning to 95% followed by
# fine-tuning against gradual pruning to 95% during those epochs, on the paired seeds.

# %%
steps = FINETUNE_EPOCHS * len(train_loader(SEED))
schedule = dict(s_initial=0.0, s_final=0.95, t0=0, n=8, delta_t=max(1, steps // 12))
print("cubic schedule:", [round(numpy_compress.gradual_sparsity(t, **schedule), 3) for t in range(0, steps, schedule["delta_t"])])


def prune_gradually(model, seed):
    """Fine-tune model while a step hook applies the cubic schedule's global masks."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = {"step": 0, "sparsity": -1.0, "masks": None}

    def after_step(opt, args, kwargs):
        state["step"] += 1
        target = numpy_compress.gradual_sparsity(state["step"], **schedule)
        if target != state["sparsity"]:  # an update step: recompute the masks
            state["sparsity"] = target
            state["masks"] = [torch.as_tensor(m, dtype=torch.float32, device=device) for m in masks_for("global", target, model)]
        with torch.no_grad():  # between updates the mask is held: pruned weights stay zero
            for layer, mask in zip(prunable(model), state["masks"], strict=True):
                layer.weight.mul_(mask)

    optimizer.register_step_post_hook(after_step)
    training.fit(model, train_loader(seed), None, optimizer, FINETUNE_EPOCHS, progress=False)
    return model, state["sparsity"]


# %%
def sparsity_of(model):
    ws = [m.weight for m in prunable(model)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


one_shot, gradual = [], []
for seed in SEEDS:
    one_shot.append(test_accuracy(fine_tune(pruned_copy(dense, masks_for("global", 0.95)), seed)))
    model, final = prune_gradually(copy.deepcopy(dense), seed)
    assert final == 0.95 and abs(sparsity_of(model) - 0.95) < 1e-3, "gradual pruning did not reach 95%"  # the schedule's end
    gradual.append(test_accuracy(model))
gaps = np.array(gradual) - np.array(one_shot)
print("one-shot 95% + fine-tuning:", np.round(one_shot, 3), "| gradual to 95%:", np.round(gradual, 3))
print(f"gradual minus one-shot: {gaps.mean():+.3f} (min {gaps.min():+.3f}, max {gaps.max():+.3f})")

# %% [markdown]
# Both arms end at exactly 95% sparsity. The gap between them is reported as measured over the
# paired seeds above; with one epoch of fine-tuning it is not claimed either way, and neither is
# how far either arm lands above the un-retrained 95% network (printed in §2). What is claimed
# is that with one weight in twenty left, both still classify better than chance (10%
# on ten balanced classes) at every paired seed.

# %%
print(f"un-retrained global 95%: {no_retrain['global'][at[0.95]]:.3f} | fine-tuned arms, lowest: "
      f"{min(one_shot + gradual):.3f}")
claim("one-shot and gradual pruning to 95% both end above chance (10%) at every paired seed",
      min(one_shot + gradual), above=0.10)

# %% [markdown]
# ## 5. Quantization: the affine map
#
# An integer $q \in [q_{min}, q_{max}]$ stands for the real number $\hat x = s\,(q - z)$, with a
# float **scale** $s > 0$ and an integer **zero point** $z$ (so that $x = 0$ is represented
# exactly). The matching quantizer is
#
# $$q = \mathrm{clip}\big(\mathrm{round}(x / s) + z,\; q_{min},\; q_{max}\big), \qquad \hat x = s\,(q - z),$$
#
# and inside the range $|\hat x - x| \le s/2$. Seed 003 writes $q = \mathrm{round}((x - z)/s)$
# with $x = s(q - z)$: those two are **not** inverses (the first subtracts $z$ before dividing,
# the second after), so its round trip is off by about $z(1 + s)$ (before clipping) instead of
# at most half a step. The scale and
# zero point come from an observed range $[x_{min}, x_{max}]$ widened to include 0:
# $s = (x_{max} - x_{min})/(q_{max} - q_{min})$, $z = q_{min} - \mathrm{round}(x_{min}/s)$
# (affine), or $s = \max(|x_{min}|, |x_{max}|)/((q_{max} - q_{min})/2)$, $z = 0$ (symmetric).

# %%
x = np.linspace(-1.0, 3.0, 9, dtype=np.float32)
scale, zp = numpy_compress.choose_qparams(float(x.min()), float(x.max()), "uint8")
q = numpy_compress.quantize(x, scale, zp, "uint8")
right = numpy_compress.dequantize(q, scale, zp)
q_seed = np.clip(np.rint((x - zp) / scale), 0, 255)
wrong = scale * (q_seed - zp)
print(f"scale {scale:.5f}, zero point {zp}; q = {q.tolist()}")
print(f"largest round-trip error: correct pair {np.abs(right - x).max():.4f} (half a step {scale / 2:.4f}), "
      f"seed 003's pair {np.abs(wrong - x).max():.2f}")

# %% tags=["nbval-check-output"]
print("correct pair within half a step:", bool(np.abs(right - x).max() <= scale / 2 + 1e-6),
      "| seed 003's pair within half a step:", bool(np.abs(wrong - x).max() <= scale / 2 + 1e-6))

# %% [markdown]
# Parity with PyTorch: `choose_qparams` against `MinMaxObserver`, `quantize` against
# `torch.quantize_per_tensor(...).int_repr()` (in torch 2.13 the quantized tensor types warn that
# they are deprecated; we use them only as a reference here), and `fake_quantize` with its
# straight-through backward against `torch.fake_quantize_per_tensor_affine` and autograd.

# %%
w = torch.randn(64, 3, 3, generator=torch.Generator().manual_seed(SEED)) * 0.3
observer = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
observer(w)
t_scale, t_zp = observer.calculate_qparams()
scale, zp = numpy_compress.choose_qparams(float(w.min()), float(w.max()), "uint8")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # the deprecation warning of quantized tensors
    t_q = torch.quantize_per_tensor(w, scale, zp, torch.quint8).int_repr().numpy()
w_np = w.numpy()
dy = torch.randn(w.shape, generator=torch.Generator().manual_seed(SEED + 1))
w_req = (w * 2).requires_grad_(True)  # twice the range, so that some values clip
y = torch.fake_quantize_per_tensor_affine(w_req, scale, zp, 0, 255)
y.backward(dy)

# %% tags=["nbval-check-output"]
print("choose_qparams equals MinMaxObserver:", np.isclose(scale, float(t_scale), rtol=1e-6) and zp == int(t_zp))
print("quantize equals quantize_per_tensor().int_repr():", np.array_equal(numpy_compress.quantize(w_np, scale, zp), t_q))
print("fake_quantize equals torch:", np.allclose(numpy_compress.fake_quantize(2 * w_np, scale, zp, 0, 255), y.detach().numpy(), atol=1e-6))
print("STE backward equals autograd:", np.array_equal(
    numpy_compress.fake_quantize_backward(dy.numpy(), 2 * w_np, scale, zp, 0, 255), w_req.grad.numpy()))
print("some gradients were cut by clipping:", bool((w_req.grad == 0).any()))

# %% [markdown]
# ### Per-tensor against per-channel weight scales
#
# One scale for a whole weight tensor is set by its largest entry; filters with small weights
# then use only a few of the integer levels. **Per-channel** quantization gives every output
# channel its own symmetric scale, never larger than the per-tensor one. The mean squared error
# of the quantized weights, per layer, at 8 and 4 bits, and the squared error summed over all the
# network's weights:

# %%
def weight_error(w, bits, per_channel):
    """Mean squared error of symmetric fake quantization of w (C_out, ...)."""
    qmin, qmax = numpy_compress.qrange(f"int{bits}")
    rows = w.reshape(len(w), -1) if per_channel else w.reshape(1, -1)
    out = [numpy_compress.fake_quantize(r, numpy_compress.choose_qparams(float(r.min()), float(r.max()), f"int{bits}", True)[0], 0, qmin, qmax) for r in rows]
    return float(np.mean((np.concatenate(out) - rows.ravel()) ** 2))


errors = {}
for i, layer in enumerate(prunable(dense)):
    w_np = layer.weight.detach().cpu().numpy()
    errors[i] = {(b, pc): weight_error(w_np, b, pc) for b in (8, 4) for pc in (False, True)}
    print(f"layer {i}: " + ", ".join(f"{b}-bit {'per-channel' if pc else 'per-tensor'} {e:.2e}" for (b, pc), e in errors[i].items()))
sizes = [layer.weight.numel() for layer in prunable(dense)]
total = {key: sum(n * errors[i][key] for i, n in enumerate(sizes)) for key in errors[0]}
for b in (8, 4):
    print(f"{b}-bit squared error over all weights: per-tensor {total[(b, False)]:.2e}, "
          f"per-channel {total[(b, True)]:.2e} (ratio {total[(b, True)] / total[(b, False)]:.2f})")

# %% [markdown]
# A ratio below 1 means that per-channel scales lowered the network's squared weight error.
# Rounding error grows with the square of the step, and no channel's step is larger than the
# per-tensor one, so the ratio is expected below 1; how far below depends on how unequal the
# filters' ranges are, which varies from network to network, so the printed ratios are this
# network's and no bound on them is claimed. A layer with few weights, such as the first
# convolution, has few rounding errors to average, and its own ratio (the per-layer lines) is
# the least predictable.

# %% [markdown]
# ## 6. Post-training quantization, fewer bits, and quantization-aware training
#
# We simulate an integer network with **fake quantization**: every conv and linear layer
# quantizes its input activations (per tensor, affine, unsigned) and its weights (per channel,
# symmetric) and dequantizes them right away, so the float computation sees exactly the values
# an integer kernel would. The activation ranges are **calibrated**: a `MinMaxObserver` records
# the inputs of each layer over `CALIBRATION_BATCHES` training batches. The simulation lets us
# vary the bit width freely and train through it; §7 builds the real int8 model and checks that
# it computes what the simulation predicts.

# %%
class FakeQuant(nn.Module):
    """layer(fake_quant(x)) with fake-quantized weights; bits from 2 to 8."""

    def __init__(self, layer, bits):
        super().__init__()
        self.layer, self.bits = layer, bits
        self.observer = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine, quant_min=0, quant_max=2**bits - 1)
        self.calibrating = True

    def forward(self, x):
        if self.calibrating:
            self.observer(x.detach())
            return self.layer(x)
        scale, zp = self.observer.calculate_qparams()
        x = torch.fake_quantize_per_tensor_affine(x, float(scale), int(zp), 0, 2**self.bits - 1)
        w, half = self.layer.weight, 2 ** (self.bits - 1)
        w_scale = (w.detach().abs().amax(dim=tuple(range(1, w.ndim))) / ((2 * half - 1) / 2)).clamp_min(1e-8)
        w_q = torch.fake_quantize_per_channel_affine(w, w_scale, torch.zeros_like(w_scale, dtype=torch.int32), 0, -half, half - 1)
        if isinstance(self.layer, nn.Conv2d):
            return F.conv2d(x, w_q, self.layer.bias, padding=self.layer.padding)
        return F.linear(x, w_q, self.layer.bias)


# %%
def quantized(model, bits):
    """A calibrated fake-quantized copy of model."""
    q = nn.Sequential(*[FakeQuant(m, bits) if isinstance(m, nn.Conv2d | nn.Linear) else m for m in copy.deepcopy(model)])
    with training.eval_mode(q), torch.no_grad():
        for i, (xb, _) in enumerate(train_loader(SEED)):
            if i == CALIBRATION_BATCHES:
                break
            q(xb)
    for m in q:
        if isinstance(m, FakeQuant):
            m.calibrating = False
    return q


ptq = {bits: test_accuracy(quantized(dense, bits)) for bits in (8, 4, 3)}
print(f"fp32 {dense_acc:.4f} | " + " | ".join(
    f"{bits}-bit PTQ {acc:.4f} (drop {dense_acc - acc:+.4f})" for bits, acc in ptq.items()))
claim("int8 post-training quantization changes accuracy by less than a point", abs(dense_acc - ptq[8]), below=0.01)
claim("4-bit PTQ with per-channel weights stays within 3 points of fp32", abs(dense_acc - ptq[4]), below=0.03)

# %% [markdown]
# At 8 bits the simulated network is as accurate as the float one. At 4 bits, with a scale per
# output channel for the weights and calibrated activation ranges, this small network loses
# little: the claim is that its accuracy stays within 3 points of fp32, in either direction
# (a difference of a few tenths of a point is within the noise of `TEST_SIZE` test images).
# Sixteen levels are enough here. At **3 bits**, eight levels, the printed drop is this
# network's: how much eight levels cost depends on the trained weights and activation ranges,
# so it differs from network to network, and no bound on it is claimed. It is where
# quantization-aware training may have something to recover.

# %% [markdown]
# **Quantization-aware training.** The 3-bit network is fine-tuned *through* its fake
# quantizers. Rounding has zero gradient almost everywhere, so the backward pass uses the
# straight-through estimator: the quantizer is treated as the identity where its input lies in
# range and blocks the gradient where it clipped (`torch.fake_quantize_*` implement exactly
# this, as the parity cell of §5 checked). The activation ranges stay at their calibrated values;
# the weight scales follow the weights. As a control with the same budget we also fine-tune the
# float network and quantize it afterwards, on the same paired seeds.

# %%
qat, control = [], []
for seed in SEEDS:
    q3 = quantized(dense, 3)
    qat.append(test_accuracy(fine_tune(q3, seed)))
    control.append(test_accuracy(quantized(fine_tune(copy.deepcopy(dense), seed), 3)))
print("3-bit QAT accuracy:", np.round(qat, 4), "| fine-tune in float then 3-bit PTQ:", np.round(control, 4))
print(f"mean over the paired seeds: QAT minus 3-bit PTQ {np.mean(qat) - ptq[3]:+.4f}, "
      f"QAT minus fp32 {np.mean(qat) - dense_acc:+.4f}, QAT minus the control {np.mean(np.subtract(qat, control)):+.4f}")

# %% [markdown]
# What is claimed: fine-tuning through the 3-bit quantizers gives a 3-bit network of at least
# 75% test accuracy on average over the paired seeds. The three printed differences say how it
# compares in this run. Against 3-bit PTQ it can only gain what PTQ lost, and that loss varies
# from network to network (above). Against fp32, remember that the dense network was trained for
# only a few epochs, so part of any gain is simply more training. The control (fine-tuning in
# float with the same budget, then 3-bit PTQ) separates the two: it gains from the extra epoch
# too, but then pays the 3-bit drop again, so QAT's lead over it grows with that drop.
# None of the three differences is claimed, since each depends on how much 3 bits cost this
# particular network.

# %%
claim("3-bit QAT reaches 75% test accuracy on average over the paired seeds", np.mean(qat), above=0.75)
fig = plotting.plot_lines(np.arange(len(SEEDS)), {"3-bit QAT": qat, "float fine-tune + 3-bit PTQ": control,
                          "3-bit PTQ": [ptq[3]] * len(SEEDS), "fp32": [dense_acc] * len(SEEDS)},
                          xlabel="paired seed index", ylabel="test accuracy", title="3-bit quantization")
fig

# %% [markdown]
# ## 7. A real int8 model on the CPU
#
# Everything so far *simulated* int8 in float32. A real int8 model stores int8 weights and runs
# integer kernels. What PyTorch offers for that has changed: in torch 2.13 the quantized tensor
# types (`torch.quint8`, `torch.qint8`) that eager-mode `torch.ao.quantization` is built on are
# deprecated (pytorch issue 184982), and its migration note points to **torchao** (pinned here
# at 0.18.0). torchao's eager API, `quantize_`, swaps the weights of `nn.Linear` layers by
# default (its filter skips convolutions), and most of its int8 configs target matrix
# multiplies; for a convolutional network with calibrated int8 activations on an x86 CPU the
# documented route is its **PT2E** flow (PyTorch 2 export quantization):
#
# 1. `torch.export` captures the network as a graph (with a dynamic batch size);
# 2. `prepare_pt2e` with the `X86InductorQuantizer` inserts observers: uint8 activations per
#    tensor (affine, histogram-calibrated), int8 weights per output channel (symmetric), the
#    scheme of our simulation in §6;
# 3. the calibration batches run through it, and `convert_pt2e` folds the weights to int8 and
#    puts quantize/dequantize ops around each float convolution and linear layer;
# 4. `torch.compile` with inductor's *freezing* replaces each dequantize → conv → quantize
#    pattern by one oneDNN int8 kernel. (Inductor on the CPU writes C++, so this step needs a
#    C++ compiler and takes seconds per input shape.)
#
# `helpers.quantization` wraps these steps (`quantize_pt2e_x86`, `compile_cpu`). For
# comparison it also runs the deprecated eager flow (`quantize_eager_x86`: QuantStub,
# conv+ReLU fused, x86 backend), which torch 2.13 still ships and which runs int8 kernels
# without compiling. All of this is CPU-only, so the networks are copied to the CPU, and the
# same `CALIBRATION_BATCHES` training batches as in §6 calibrate both.

# %%
dense_cpu = copy.deepcopy(dense).cpu().eval()
calibration = [xb.cpu() for xb, _ in itertools.islice(train_loader(SEED), CALIBRATION_BATCHES)]
int8_pt2e = quantization.quantize_pt2e_x86(dense_cpu, calibration)
int8_eager = quantization.quantize_eager_x86(dense_cpu, calibration)
BATCHES = (1, 1000)  # one request, and the test loader's batches of 1000 (timed as throughput)
shapes = [torch.zeros(n, 1, 14, 14) for n in BATCHES]
threads = torch.get_num_threads()
torch.set_num_threads(1)  # inductor fixes a kernel's thread count when it compiles it
start = time.perf_counter()
compiled = {"fp32": quantization.compile_cpu(copy.deepcopy(dense_cpu), shapes),
            "int8 PT2E": quantization.compile_cpu(int8_pt2e, shapes)}
torch.set_num_threads(threads)
print(f"compiling both networks for {len(shapes)} batch shapes took {time.perf_counter() - start:.1f} s")

# %% [markdown]
# **Accuracy.** The compiled int8 network on the same test images, against float32 and against
# the int8 simulation of §6. The claims: the PT2E model, whose scheme is the simulation's, is
# within a point of float32 and of the simulation; the deprecated eager model, calibrated with
# its own observers, within two points of both.

# %%
acc_int8 = {"int8 PT2E (compiled)": test_accuracy(compiled["int8 PT2E"]),
            "int8 eager torch.ao": test_accuracy(int8_eager)}
print(f"fp32 {dense_acc:.4f} | int8 simulated (§6) {ptq[8]:.4f} | "
      + " | ".join(f"{name} {acc:.4f}" for name, acc in acc_int8.items()))
pt2e, eager = acc_int8.values()
claim("the PT2E int8 model is within a point of fp32", abs(pt2e - dense_acc), below=0.01)
claim("the PT2E int8 model agrees with the int8 simulation within a point", abs(pt2e - ptq[8]), below=0.01)
claim("the eager torch.ao int8 model is within two points of both fp32 and the simulation",
      max(abs(eager - dense_acc), abs(eager - ptq[8])), below=0.02)

# %% [markdown]
# **Size.** We count the bytes two ways: the tensor data alone (what the arithmetic reads), and
# the file `torch.save` writes of the state dict, which adds the zip archive's overhead per
# tensor. For the PT2E model only the tensors its graph reads are counted: `convert_pt2e`
# leaves the unused float32 originals behind next to their int8 copies.

# %%
states = {"fp32": dense_cpu.state_dict(), "int8 PT2E": quantization.used_state_dict(int8_pt2e),
          "int8 eager torch.ao": quantization.used_state_dict(int8_eager)}
sizes = {name: (quantization.tensor_bytes(s), quantization.saved_bytes(s)) for name, s in states.items()}
for name, (data_bytes, file_bytes) in sizes.items():
    print(f"{name:20s} tensor data {data_bytes:6,d} B ({sizes['fp32'][0] / data_bytes:.2f}x smaller) | "
          f"torch.save file {file_bytes:6,d} B ({sizes['fp32'][1] / file_bytes:.2f}x smaller)")
assert all(sizes["fp32"][0] / sizes[name][0] > 3.5 for name in sizes if name != "fp32"), "int8 data should be ~4x smaller"  # byte counts: the same at every seed

# %% [markdown]
# The tensor data shrinks almost 4x (the int8 weights, plus float32 biases and a scale and zero
# point per output channel). The file shrinks less: this network has only 9,098 parameters, so
# the fixed overhead of a few hundred bytes per saved tensor is a large part of it.
#
# **Latency.** One thread, as in §3; interleaved rounds of `helpers.timing.benchmark`, for one
# image (the latency of a single request) and for a batch of 1,000 (throughput; the shape the
# test accuracy above was computed with, so no further compiling is needed). The ratios
# are to the float32 network run eagerly, and, for the compiled int8 network, to the float32
# network compiled the same way: that ratio isolates what int8 buys from what compiling buys.

# %%
cpu_nets = {"fp32 eager": dense_cpu, "fp32 compiled": compiled["fp32"],
            "int8 PT2E compiled": compiled["int8 PT2E"], "int8 eager torch.ao": int8_eager}
batches = {n: torch.as_tensor(x_train[:n]) for n in BATCHES}
latency = {(name, n): [] for name in cpu_nets for n in batches}
torch.set_num_threads(1)
with torch.no_grad():
    for _ in range(TIMING_ROUNDS):
        for n, xb in batches.items():
            for name, net in cpu_nets.items():
                latency[name, n].append(timing.benchmark(lambda net=net, xb=xb: net(xb), repeats=5, warmup=1,
                                                         min_time=0.01).median)
torch.set_num_threads(threads)


# %%
def ratio(a, b, n):
    """Median, min and max over the rounds of time(a) / time(b) at batch size n."""
    r = np.array(latency[a, n]) / np.array(latency[b, n])
    return np.median(r), r.min(), r.max()


def show(a, b, n):
    median, low, high = ratio(a, b, n)
    print(f"  {a:20s} time / {b}: {median:.2f} (min {low:.2f}, max {high:.2f})")


for n in batches:
    print(f"batch {n}: fp32 eager {timing.format_seconds(np.median(latency['fp32 eager', n]))} per call")
    for name in list(cpu_nets)[1:]:
        show(name, "fp32 eager", n)
    show("int8 PT2E compiled", "fp32 compiled", n)
_, low, high = ratio("int8 PT2E compiled", "fp32 compiled", 1000)
verdict = ("faster in every round" if high < 1 else "slower in every round" if low > 1
           else "faster in some rounds and slower in others")
print(f"batch 1000: compiled int8 against compiled fp32 in this run: {verdict}")

# %% [markdown]
# What int8 reliably buys here is size. For one image the compiled int8 network is slower
# than plain eager float32 (claimed below: its speed-up, the eager time over its time, is below
# 1): a network of 9,098 parameters does about a quarter of a million multiply-adds per image
# (the layer table of §1 printed the count), less work than the per-call overhead of the
# compiled graph (checking its guards, quantizing the input, starting each oneDNN kernel). For
# 1,000 images, compiling float32 alone (fused elementwise work, prepacked weights) makes it
# faster than eager float32 (claimed). Against that compiled float32 network, int8 is less than
# twice as fast (claimed); whether it is faster at all is this run's measurement, printed
# above, and not claimed. An int8 multiply-add instruction (VNNI on x86) does four times the
# work of a float32 one and moves a quarter of the bytes, so int8 pays where convolutions are
# wide enough for the arithmetic to dominate; this network's convolutions have 1 and 8 input
# channels. The deprecated eager int8 path is printed for comparison; its speed is not claimed.

# %%
claim("for one image the compiled int8 network is slower than eager fp32 (speed-up below 1)",
      ratio("fp32 eager", "int8 PT2E compiled", 1)[0], below=1.0)
claim("for 1,000 images compiling fp32 makes it faster than running it eagerly",
      ratio("fp32 eager", "fp32 compiled", 1000)[0], above=1.0)
claim("for 1,000 images compiled int8 is less than twice as fast as compiled fp32",
      ratio("fp32 compiled", "int8 PT2E compiled", 1000)[0], below=2.0)

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — the quantizer.** Write `my_quantize(x, scale, zero_point, qmin, qmax)`
# returning the integer array $\mathrm{clip}(\mathrm{round}(x/s) + z, q_{min}, q_{max})$, rounding
# half to even.

# %%
def my_quantize(x, scale, zero_point, qmin, qmax):
    ### BEGIN SOLUTION
    return np.clip(np.rint(x / scale) + zero_point, qmin, qmax).astype(np.int64)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_quantize(my_quantize)

# %% [markdown]
# **Exercise 2 — the straight-through estimator.** Write `my_ste_backward(dy, x, scale,
# zero_point, qmin, qmax)`: the gradient of fake quantization under the STE.

# %%
def my_ste_backward(dy, x, scale, zero_point, qmin, qmax):
    ### BEGIN SOLUTION
    q = np.rint(x / scale) + zero_point
    return np.where((q >= qmin) & (q <= qmax), dy, 0.0)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_ste_backward(my_ste_backward)

# %% [markdown]
# **Exercise 3 — a magnitude-pruning mask.** Write `my_prune_mask(w, amount)`: 0 at the
# $\mathrm{round}(a \cdot n)$ entries of smallest $|w|$, 1 elsewhere.

# %%
def my_prune_mask(w, amount):
    ### BEGIN SOLUTION
    mask = np.ones(w.size)
    mask[np.argsort(np.abs(w), axis=None)[: round(amount * w.size)]] = 0
    return mask.reshape(w.shape)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_magnitude_prune_mask(my_prune_mask)

# %% [markdown]
# **Exercise 4 — the cubic schedule.** Write `my_gradual_sparsity(t, s_i, s_f, t0, n, delta_t)`.

# %%
def my_gradual_sparsity(t, s_i, s_f, t0, n, delta_t):
    ### BEGIN SOLUTION
    if t < t0:
        return s_i
    j = min((t - t0) // delta_t, n)
    return s_f + (s_i - s_f) * (1 - j / n) ** 3
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_gradual_sparsity(my_gradual_sparsity)

# %% [markdown]
# **Exercise 5 — written.** (a) Why does a dense convolution with 90% of its weights zero run
# no faster, and what would have to change for the zeros to pay off? (b) A layer's weights lie in
# $[-0.1, 0.1]$ except one at $2.0$: what happens to per-tensor int8 quantization, and how do
# per-channel scales or clipping the range help?
#
# <details><summary>Answer</summary>
#
# (a) The kernel multiplies every entry in a regular pattern; skipping scattered zeros costs
# index lookups and breaks vectorization. A sparse format with a kernel for it, very high
# sparsity, or structured patterns (whole filters, or hardware-supported 2:4 blocks) are needed.
# (b) The scale is set by 2.0: a step of about 0.016, so the others use only about 13 levels.
# Per-channel scales confine the damage to that weight's channel; clipping the range trades a
# large error on one weight for small errors on all others.
# </details>
#
# ## Summary
#
# - Int8 storage is 4x smaller than float32; the chapter's CNN has its weights in three layers,
#   most of them in the classifier and most arithmetic in the second convolution.
# - Magnitude pruning keeps accuracy at moderate sparsity without retraining; global ranking
#   spares the small first layer and takes its zeros from the large classifier, which in this
#   run let it collapse later than layer-wise pruning; one epoch of fine-tuning with a fixed
#   mask raised accuracy at 80% and 90% sparsity on average and recovered part of the loss.
# - Only structured pruning makes a dense network faster: half the filters gave a smaller net
#   whose CPU forward pass is claimed below 0.95 of the dense time, while 90% scattered zeros
#   ran at dense speed. Gradual (cubic) against one-shot pruning is reported as measured.
# - The affine map is $q = \mathrm{clip}(\mathrm{round}(x/s) + z)$, $\hat x = s(q - z)$; seed
#   003's pair is not an inverse. Per-channel scales lowered this network's squared weight
#   error (the printed ratios). Int8 PTQ with calibrated ranges cost under a point and 4 bits
#   (per-channel weights) at most 3; what 3 bits cost depends on the network, and QAT with the
#   straight-through estimator gave a 3-bit network of at least 75% accuracy on average.
# - A real int8 model (torchao PT2E, `X86InductorQuantizer`, `torch.compile` with freezing)
#   matched the int8 simulation's accuracy within a point and stored its tensors in over 3.5x
#   fewer bytes. Its speed is no reliable gain: slower than eager float32 for one image, and
#   less than twice as fast as compiled float32 for 1,000 (whether faster at all is printed,
#   not claimed), because this network's convolutions are too narrow for int8 arithmetic to
#   dominate; compiling gave most of the speed.
