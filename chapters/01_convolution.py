# %% [markdown]
# # Chapter 1 — Convolution
#
# A convolutional layer is a small linear filter slid over an image. This chapter builds one
# from its defining sum, first as plain loops and then vectorized, checks it against PyTorch to
# the last bit of float64, derives its gradient, and trains a small convolutional network on real
# handwritten digits.
#
# **Learning goals.** After this chapter you can
#
# 1. explain why fully connected layers scale badly to images and what locality and weight
#    sharing buy;
# 2. write a 2-D convolution (strictly, a cross-correlation) with padding, stride, several input
#    channels, several filters and a bias, in loops and vectorized;
# 3. predict the output size $\lfloor (n + 2p - f)/s \rfloor + 1$ of a convolution or pooling layer;
# 4. see a convolution as a sparse, weight-shared fully connected layer, and derive its backward
#    pass from that picture;
# 5. say what pooling does to translation, and how the receptive field grows with depth;
# 6. train a CNN in PyTorch on the digits and compare it with a fully connected network.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
EPOCHS = 20  # epochs for the CNN and the MLP on the digits
BATCH_SIZE = 64
LEARNING_RATE = 3e-3  # Adam's step size for both networks
TIMING_IMAGES = 4  # images in the loops-vs-vectorized timing (the loop version is slow)

# %%
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from skimage.color import rgb2gray

from helpers import checks, data, models, numpy_nn, plotting, training
from helpers.device import best_device, describe
from helpers.gradcheck import numerical_gradient, rel_error
from helpers.reproducibility import seed_everything
from helpers.timing import benchmark, format_seconds

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
print("device:", describe(device))

# %% [markdown]
# ## 1. Why not fully connected layers?
#
# A fully connected layer gives every output unit its own weight for every input pixel. For a
# modest $100 \times 100$ grayscale image feeding $1{,}000$ hidden units that is
# $10^4 \times 10^3 = 10^7$ weights in the first layer alone, and the count grows with the image
# area. Worse, the layer begins by flattening the image into a vector of $10^4$ numbers: which
# pixels were neighbours is forgotten, and a feature learned at one place (an edge, a stroke) has
# to be learned again at every other place.
#
# A convolutional layer keeps both properties of images that matter:
#
# - **locality**: each output looks at a small window of the input, say $3 \times 3$;
# - **weight sharing**: the same window weights are used at every position.
#
# Its parameter count depends on the window and the number of channels, not on the image size.

# %% tags=["nbval-check-output"]
image_pixels, hidden_units = 100 * 100, 1_000
dense_params = image_pixels * hidden_units + hidden_units
conv_filters, kernel = 16, 3
conv_params = conv_filters * (kernel * kernel * 1) + conv_filters
print(f"fully connected, 100x100 -> 1000 units: {dense_params:,} parameters")
print(f"convolution, 16 filters of 3x3:         {conv_params:,} parameters (any image size)")

# %% [markdown]
# ## 2. The convolution sum
#
# Deep-learning libraries implement **cross-correlation** and call it convolution. For a
# single-channel input $x^0$ and a $K \times K$ filter $f$ applied with stride $S$,
#
# $$x^1[n, m] = \sum_{k=0}^{K-1} \sum_{l=0}^{K-1} f[k, l]\, x^0[nS + k,\; mS + l].$$
#
# The convolution of signal processing flips the filter, $\sum_{k,l} f[k,l]\,x[n-k, m-l]$; since
# the filter is learned, the flip only relabels its weights and nothing is lost by skipping it.
#
# With $C$ input channels, $F$ filters and a bias per filter the layer maps an input of shape
# $(N, C, H, W)$ and weights $w$ of shape $(F, C, K_H, K_W)$ to an output $(N, F, H_{out}, W_{out})$:
#
# $$y[n, f, i, j] = b[f] + \sum_{c=0}^{C-1} \sum_{k=0}^{K_H-1} \sum_{l=0}^{K_W-1}
#   w[f, c, k, l]\; x_{pad}[n, c,\; iS + k,\; jS + l].$$
#
# ### Naive first
#
# The sum as written: one Python loop per output index, a small product-and-sum inside. This is the
# only place in the book where we loop over pixels — to see every number move, and to have a
# reference that is obviously right.

# %%
def conv2d_naive(x, w, b, stride=1, padding=0):
    """x (N, C, H, W), w (F, C, KH, KW), b (F,) -> (N, F, H_out, W_out), by the definition."""
    n_images, _, height, width = x.shape
    n_filters, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    y = np.zeros((n_images, n_filters, h_out, w_out), dtype=x.dtype)
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(h_out):
                for j in range(w_out):
                    window = xp[n, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    y[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return y


# %% [markdown]
# It agrees with `torch.nn.functional.conv2d` in float64, with padding and a stride that does not
# divide the input evenly:

# %% tags=["nbval-check-output"]
x = rng.standard_normal((2, 3, 9, 10))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
ours = conv2d_naive(x, w, b, stride=2, padding=1)
theirs = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=2, padding=1)
assert rel_error(ours, theirs.numpy()) < 1e-12, "naive conv2d disagrees with torch"
print("output shape:", ours.shape)
print("naive conv2d matches torch.nn.functional.conv2d:", True)

# %% [markdown]
# And flipping the filter turns it into the textbook convolution, which SciPy implements:

# %% tags=["nbval-check-output"]
from scipy.signal import convolve2d

image = rng.standard_normal((7, 7))
filt = rng.standard_normal((3, 3))
true_convolution = convolve2d(image, filt, mode="valid")
flipped = conv2d_naive(image[None, None], filt[None, None, ::-1, ::-1], np.zeros(1))[0, 0]
print("cross-correlation with the flipped filter = convolution:", np.allclose(flipped, true_convolution))

# %% [markdown]
# ### Vectorized
#
# The loops do the same small product for every output position. Vectorizing means giving NumPy
# all the windows at once. `numpy_nn.sliding_windows` returns them as a *view* of the padded input
# (stride tricks: no pixel is copied) with shape $(N, C, H_{out}, W_{out}, K_H, K_W)$; one
# `einsum` then contracts the channel and kernel axes against $w$.

# %%
xp = numpy_nn.pad2d(x, 1)
windows = numpy_nn.sliding_windows(xp, kernel_size=(3, 3), stride=2)
print("padded input:", xp.shape, "-> windows:", windows.shape, "| a view:", np.shares_memory(windows, xp))
y_einsum = np.einsum("nchwkl,fckl->nfhw", windows, w) + b[:, None, None]
assert np.allclose(y_einsum, ours)

# %% [markdown]
# `helpers.numpy_nn.conv2d` is this computation with input checks; instead of the `einsum` it
# lays the windows out as the columns of a matrix and hands the contraction to one batched BLAS
# matrix multiply (you will write that version in Exercise 2). From here on the book uses it. It
# validates its input and says what it expected:

# %% tags=["raises-exception", "nbval-check-output"]
numpy_nn.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((5, 4, 3, 3)))

# %% [markdown]
# How much do loops cost? The table times the loops, the vectorized NumPy version and PyTorch on the
# CPU (and on the GPU when there is one; GPU timings synchronize the device). The shape is a small
# batch of CIFAR-sized images.

# %%
xt = rng.standard_normal((TIMING_IMAGES, 3, 32, 32)).astype(np.float32)
wt = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
bt = np.zeros(16, np.float32)
timings = {
    "naive loops (NumPy)": benchmark(lambda: conv2d_naive(xt, wt, bt, padding=1), repeats=1, warmup=0),
    "vectorized NumPy": benchmark(lambda: numpy_nn.conv2d(xt, wt, bt, padding=1), min_time=0.02),
}
x_cpu, w_cpu = torch.from_numpy(xt), torch.from_numpy(wt)
timings["torch, cpu"] = benchmark(lambda: F.conv2d(x_cpu, w_cpu, padding=1), min_time=0.02)
if device.type != "cpu":
    x_dev, w_dev = x_cpu.to(device), w_cpu.to(device)
    timings[f"torch, {device.type}"] = benchmark(
        lambda: F.conv2d(x_dev, w_dev, padding=1), device=device, min_time=0.02
    )
naive = timings["naive loops (NumPy)"].median
for name, t in timings.items():
    print(f"{name:22s} {format_seconds(t.median):>10s}   {naive / t.median:8.0f}x")

# %% [markdown]
# The vectorized version is orders of magnitude faster than the loops — the exact factor depends on
# the machine, so we check only a generous lower bound:

# %%
speedup = naive / timings["vectorized NumPy"].median
assert speedup > 10, f"vectorized conv2d only {speedup:.1f}x faster than the loops"

# %% [markdown]
# ## 3. Padding, stride and the output size
#
# Without padding ("valid"), a $K \times K$ filter fits $n - K + 1$ times along an axis of length
# $n$, so every layer shrinks the image and the border pixels are used by fewer windows than the
# centre. **Zero padding** adds $p$ rows and columns of zeros on each side; with $p = (K-1)/2$ for
# odd $K$ and stride 1 the output keeps the input size ("same" padding). A **stride** $s$ moves
# the window $s$ pixels at a time. Together:
#
# $$n_{out} = \left\lfloor \frac{n + 2p - f}{s} \right\rfloor + 1 .$$
#
# The floor matters: when $s$ does not divide $n + 2p - f$, the last rows and columns that cannot
# fill a whole window are simply not used. We check the formula, `numpy_nn.conv_output_size`,
# against the shapes PyTorch produces over a sweep of sizes, kernels, paddings and strides:

# %% tags=["nbval-check-output"]
cases, agree, not_divisible = 0, 0, 0
for n in range(1, 17):
    for f in range(1, 6):
        for p in range(3):
            for s in range(1, 4):
                if f > n + 2 * p:
                    continue
                out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f), stride=s, padding=p)
                cases += 1
                agree += out.shape[-1] == numpy_nn.conv_output_size(n, f, p, s)
                not_divisible += (n + 2 * p - f) % s != 0
print(f"{cases} cases, {not_divisible} with a stride that does not divide n + 2p - f")
print("formula agrees with torch in every case:", agree == cases)

# %% [markdown]
# For example an 8-pixel row, a 3-pixel filter and stride 2 gives
# $\lfloor (8 - 3)/2 \rfloor + 1 = 3$ windows, starting at pixels 0, 2 and 4; pixel 7 is never
# read:

# %% tags=["nbval-check-output"]
starts = np.arange(numpy_nn.conv_output_size(8, 3, 0, 2)) * 2
used = np.zeros(8, bool)
for start in starts:
    used[start : start + 3] = True
print("window starts:", starts.tolist(), "| pixels never read:", np.flatnonzero(~used).tolist())

# %% [markdown]
# ## 4. Channels, filters, bias — and the 1×1 convolution
#
# A colour image has $C = 3$ channels, and each filter spans all of them: a filter is a
# $C \times K_H \times K_W$ block, and $F$ filters give $F$ output channels. A layer has
# $F(C K_H K_W + 1)$ parameters.
#
# With $K_H = K_W = 1$ the sum over the window disappears and what is left,
# $y[n,f,i,j] = \sum_c w[f,c]\,x[n,c,i,j]$, is a matrix multiply applied to every pixel's channel
# vector. The RGB-to-gray conversion is such a layer with one filter — here it reproduces
# scikit-image's `rgb2gray` on the astronaut photograph:

# %% tags=["nbval-check-output"]
astronaut = data.load_photo("astronaut")  # (H, W, 3) in [0, 1]
x_rgb = astronaut.transpose(2, 0, 1)[None].astype(np.float64)  # (1, 3, H, W)
luma = np.array([0.2125, 0.7154, 0.0721]).reshape(1, 3, 1, 1)  # one 1x1 filter over 3 channels
gray = numpy_nn.conv2d(x_rgb, luma)
as_matmul = (luma.reshape(1, 3) @ x_rgb.reshape(1, 3, -1)).reshape(gray.shape)
print("1x1 conv = matrix multiply:", np.allclose(gray, as_matmul))
print("1x1 conv = skimage rgb2gray:", np.allclose(gray[0, 0], rgb2gray(astronaut), atol=1e-6))

# %% [markdown]
# ## 5. A convolution is a sparse, weight-shared fully connected layer
#
# A convolution is linear in its input, so it *is* a matrix $M$ acting on the flattened image:
# $\operatorname{vec}(y) = M \operatorname{vec}(x)$. Column $k$ of $M$ is the layer's response to
# the image that is 1 at pixel $k$ and 0 elsewhere, so feeding the whole identity basis through
# the layer builds $M$ in one vectorized call:

# %% tags=["nbval-check-output"]
H = W = 6
w_small = rng.standard_normal((1, 1, 3, 3))
basis = np.eye(H * W).reshape(H * W, 1, H, W)  # one image per pixel
M = numpy_nn.conv2d(basis, w_small).reshape(H * W, -1).T  # (H_out * W_out, H * W)
x_small = rng.standard_normal((1, 1, H, W))
print("M:", M.shape)
print("M @ vec(x) equals conv2d(x):", np.allclose(M @ x_small.ravel(), numpy_nn.conv2d(x_small, w_small).ravel()))
print(f"entries {M.size}, nonzero {np.count_nonzero(M)}, distinct weights {w_small.size}")

# %% [markdown]
# The picture shows the structure: each row (one output pixel) holds the same nine weights, shifted
# along; everything else is zero. A fully connected layer would learn all 576 entries freely; the
# convolution ties them to 9.

# %%
fig, ax = plotting.subplots(figsize=(7, 2.4))
limit = np.abs(M).max()
ax.imshow(M, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="equal")
ax.set(title="A 3x3 convolution on a 6x6 image as a 16x36 matrix",
       xlabel="input pixel (row-major)", ylabel="output pixel")
fig

# %% [markdown]
# At realistic sizes the difference is dramatic. For a $32 \times 32$ RGB input and 64 filters of
# $3 \times 3$ with "same" padding:

# %% tags=["nbval-check-output"]
c_in, c_out, side = 3, 64, 32
conv_count = c_out * (c_in * 3 * 3 + 1)
dense_count = (c_in * side * side) * (c_out * side * side) + c_out * side * side
print(f"convolution: {conv_count:,} parameters; the equivalent dense layer: {dense_count:,}")

# %% [markdown]
# ## 6. Backpropagation with shared weights
#
# Let $L$ be the loss and $\delta = \partial L / \partial y$ the upstream gradient, shape
# $(N, F, H_{out}, W_{out})$. Every weight is used at every output position, so by the chain
# rule its gradient is the **sum over all positions that use it**:
#
# $$\frac{\partial L}{\partial w[f,c,k,l]} = \sum_{n,i,j} \delta[n,f,i,j]\; x_{pad}[n,c,iS+k,jS+l],
# \qquad \frac{\partial L}{\partial b[f]} = \sum_{n,i,j} \delta[n,f,i,j].$$
#
# Each input pixel in turn receives, from every window that covers it, the weight that multiplied
# it times that window's $\delta$:
#
# $$\frac{\partial L}{\partial x_{pad}[n,c,h,v]} = \sum_{f} \sum_{(i,k):\,iS+k=h} \; \sum_{(j,l):\,jS+l=v}
#   \delta[n,f,i,j]\; w[f,c,k,l].$$
#
# With stride 1 that is a "full" convolution of $\delta$ with the flipped filter. In code,
# `numpy_nn.conv2d_backward` computes $\partial L/\partial w$ with one `tensordot` over the same
# windows as the forward pass, and $\partial L/\partial x$ by scattering each window's share back,
# looping only over the $K_H K_W$ kernel offsets.
#
# The matrix picture of §5 makes weight sharing concrete. If the 36 × 16 = 576 entries of $M$
# were free, their gradient would be the outer product $\delta\, x^\top$. Summing that gradient
# over the entries that hold the same shared weight gives exactly the convolution's
# $\partial L/\partial w$:

# %% tags=["nbval-check-output"]
delta = rng.standard_normal((1, 1, H - 2, W - 2))
dM = np.outer(delta.ravel(), x_small.ravel())  # gradient if every entry of M were free
one_hot_kernels = np.eye(9).reshape(9, 1, 3, 3)
where = numpy_nn.conv2d(basis, one_hot_kernels).reshape(H * W, 9, -1).transpose(1, 2, 0)  # (9, 16, 36)
dw_from_dense = np.einsum("oi,koi->k", dM, where).reshape(1, 1, 3, 3)
_, dw, _ = numpy_nn.conv2d_backward(delta, x_small, w_small)
print("sum of the tied entries' gradients = conv2d_backward's dw:", np.allclose(dw_from_dense, dw))

# %% [markdown]
# Two independent checks of `conv2d_backward`: centered differences on a small problem
# (`numerical_gradient`, $h = 10^{-5}$), and PyTorch's autograd. The loss is
# $L = \sum y \odot \delta$, so that $\partial L/\partial y = \delta$.

# %%
xg = rng.standard_normal((2, 2, 5, 6))
wg = rng.standard_normal((3, 2, 3, 2))
bg = rng.standard_normal(3)
conv_args = dict(stride=(2, 1), padding=1)
dy = rng.standard_normal(numpy_nn.conv2d(xg, wg, bg, **conv_args).shape)


def loss():
    return float(np.sum(numpy_nn.conv2d(xg, wg, bg, **conv_args) * dy))


dx, dw, db = numpy_nn.conv2d_backward(dy, xg, wg, **conv_args)
numeric_errors = {
    "dx": rel_error(dx, numerical_gradient(loss, xg)),
    "dw": rel_error(dw, numerical_gradient(loss, wg)),
    "db": rel_error(db, numerical_gradient(loss, bg)),
}
print({name: f"{err:.1e}" for name, err in numeric_errors.items()})
assert max(numeric_errors.values()) < 1e-7, "conv2d_backward disagrees with numerical gradients"

# %% tags=["nbval-check-output"]
x_t, w_t, b_t = (torch.tensor(a, requires_grad=True) for a in (xg, wg, bg))
F.conv2d(x_t, w_t, b_t, **conv_args).backward(torch.from_numpy(dy))
autograd_errors = [rel_error(ours, t.grad.numpy()) for ours, t in [(dx, x_t), (dw, w_t), (db, b_t)]]
assert max(autograd_errors) < 1e-9, f"conv2d_backward disagrees with autograd: {autograd_errors}"
print("conv2d_backward matches torch autograd (relative error < 1e-9):", True)

# %% [markdown]
# ## 7. Pooling, equivariance and invariance
#
# A **pooling** layer summarizes each window of each channel by one number — its maximum
# (max pooling) or its mean (average pooling). It has no parameters, keeps the channel count, and
# with the usual $2 \times 2$ window and stride 2 halves the height and width.

# %% tags=["nbval-check-output"]
xq = rng.standard_normal((2, 3, 9, 8))
for name, ours_fn, torch_fn in [("max", numpy_nn.max_pool2d, F.max_pool2d), ("avg", numpy_nn.avg_pool2d, F.avg_pool2d)]:
    ours = ours_fn(xq, 3, 2)
    same = rel_error(ours, torch_fn(torch.from_numpy(xq), 3, 2).numpy()) < 1e-12
    print(f"{name}_pool2d, kernel 3 stride 2: {xq.shape} -> {ours.shape}, matches torch: {same}")

# %% [markdown]
# Convolution is **translation equivariant**: shifting the input shifts the output by the same
# amount, $\operatorname{conv}(T x) = T \operatorname{conv}(x)$, because the same weights are used
# everywhere. Only the borders break it, where the zero padding enters. We check it on the
# cameraman photograph with a shift of (3, 5) pixels, comparing away from the borders:

# %% tags=["nbval-check-output"]
camera = data.load_photo("camera", size=(128, 128))[None, None].astype(np.float64)  # (1, 1, 128, 128)
edges = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]], [[[1, 2, 1], [0, 0, 0], [-1, -2, -1]]]], float)


def shift(a, dy, dx):
    return np.roll(a, (dy, dx), axis=(-2, -1))


conv_then_shift = shift(numpy_nn.conv2d(camera, edges, padding=1), 3, 5)
shift_then_conv = numpy_nn.conv2d(shift(camera, 3, 5), edges, padding=1)
inside = (slice(None), slice(None), slice(8, -8), slice(8, -8))
print("conv(shift(x)) == shift(conv(x)) away from the borders:",
      np.allclose(conv_then_shift[inside], shift_then_conv[inside]))

# %% [markdown]
# Max pooling adds approximate **invariance**: a feature that moves by a pixel or two usually
# stays inside the same pooling window, so the pooled map barely changes. We measure the relative
# change $\lVert f(Tx) - f(x)\rVert / \lVert f(x)\rVert$ of the edge features
# $f(x) = \operatorname{ReLU}(\operatorname{conv}(x))$, before and after $4 \times 4$ max pooling,
# for shifts of 1 to 8 pixels.

# %%
def features(img, pool):
    maps = numpy_nn.relu(numpy_nn.conv2d(img, edges, padding=1))
    return numpy_nn.max_pool2d(maps, pool) if pool > 1 else maps


def relative_change(img, pool, s):
    base = features(img, pool)
    return np.linalg.norm(features(shift(img, s, s), pool) - base) / np.linalg.norm(base)


shifts = np.arange(1, 9)
change = {
    "conv + ReLU": [relative_change(camera, 1, s) for s in shifts],
    "conv + ReLU + 4x4 max pool": [relative_change(camera, 4, s) for s in shifts],
}
plotting.plot_lines(shifts, change, xlabel="shift (pixels, both axes)",
                    ylabel="relative change of the features",
                    title="Max pooling makes small shifts matter less")

# %% [markdown]
# The claim, checked: for shifts of one to three pixels the pooled features change much less than
# the raw feature maps; for shifts as large as the pooling window the advantage is gone.

# %%
raw, pooled = np.array(change["conv + ReLU"]), np.array(change["conv + ReLU + 4x4 max pool"])
assert np.all(pooled[:3] < 0.75 * raw[:3]), f"pooling did not damp small shifts: {pooled[:3]} vs {raw[:3]}"
print("pooled / raw change for shifts 1, 2, 3:", np.round(pooled[:3] / raw[:3], 2))

# %% [markdown]
# ## 8. The receptive field
#
# The **receptive field** of a unit is the set of input pixels that can influence it. One
# $3 \times 3$ convolution sees $3 \times 3$ pixels; a second one on top sees $3 \times 3$ windows
# of those, $5 \times 5$ pixels. A layer of kernel $k$ adds $k - 1$ *steps of its input grid*,
# and one step of that grid is the product of the strides below it:
#
# $$r_\ell = r_{\ell-1} + (k_\ell - 1) \prod_{i < \ell} s_i, \qquad r_0 = 1.$$
#
# Striding and pooling therefore make the receptive field grow geometrically rather than linearly.
# We measure it instead of trusting the formula: the gradient of one output unit with respect to
# the input is nonzero exactly on its receptive field.

# %%
def measured_receptive_field(layers, size=96):
    """Width of the input region that the centre output unit of a conv/pool stack depends on."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = x
    for kind, k, s in layers:
        if kind == "conv":
            y = F.conv2d(y, torch.ones(1, 1, k, k), stride=s)
        else:
            y = F.max_pool2d(y, k, s) if kind == "max" else F.avg_pool2d(y, k, s)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    return int(cols.max() - cols.min() + 1)


plain = [("conv", 3, 1)] * 8
with_pooling = [("conv", 3, 1), ("conv", 3, 1), ("avg", 2, 2)] * 3
depths = np.arange(1, 9)
fields = {
    "3x3 convs, stride 1": [measured_receptive_field(plain[:d]) for d in depths],
    "(conv, conv, 2x2 pool) blocks": [measured_receptive_field(with_pooling[:d]) for d in depths],
}
print({name: values for name, values in fields.items()})

# %% tags=["nbval-check-output"]
assert fields["3x3 convs, stride 1"] == [1 + 2 * d for d in depths], "linear growth expected"
print("3x3 convs, stride 1: receptive field = 1 + 2 * depth:", True)
print("with pooling after every two convs, depth 8 sees", fields["(conv, conv, 2x2 pool) blocks"][-1], "pixels")

# %%
plotting.plot_lines(depths, fields, xlabel="layers", ylabel="receptive field (pixels)",
                    title="Receptive field against depth")

# %% [markdown]
# ## 9. Hand-set filters on real photographs
#
# Before any learning, a filter is just a pattern of weights, and classic image processing chose
# them by hand: a box or Gaussian filter **blurs** (weights positive, summing to 1); **sharpening**
# adds the difference between the image and its blur; **Sobel** filters respond to horizontal and
# vertical intensity changes; the **Laplacian** responds to curvature in every direction. Six such
# filters, zero-padded to $5 \times 5$, make one $(6, 1, 5, 5)$ weight tensor, and one call to
# `conv2d` applies them all.

# %%
def embed(k):
    """Place a small kernel in the middle of a 5x5 one."""
    out = np.zeros((5, 5))
    off = (5 - k.shape[0]) // 2
    out[off : off + k.shape[0], off : off + k.shape[1]] = k
    return out


g = np.exp(-0.5 * (np.arange(-2, 3) / 1.0) ** 2)
hand_filters = {
    "box blur": embed(np.full((3, 3), 1 / 9)),
    "Gaussian blur": np.outer(g, g) / np.outer(g, g).sum(),
    "sharpen": embed(np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])),
    "Sobel x": embed(edges[0, 0]),
    "Sobel y": embed(edges[1, 0]),
    "Laplacian": embed(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])),
}
bank = np.stack(list(hand_filters.values()))[:, None]  # (6, 1, 5, 5)
photo = data.load_photo("camera", size=(256, 256))[None, None].astype(np.float64)
filtered = numpy_nn.conv2d(photo, bank, padding=2)[0]  # (6, 256, 256), same size as the input
print("filter bank:", bank.shape, "-> responses:", filtered.shape)

# %%
smoothing = filtered[:3].clip(0, 1)  # blurs and sharpen: images again
edge_strength = np.abs(filtered[3:])  # edge responses: magnitudes
plotting.image_grid(
    np.concatenate([photo[0], smoothing, edge_strength]),
    labels=["original", *hand_filters],
    ncols=4,
    title="Hand-set 5x5 filters on the cameraman photograph",
    size=2.2,
)

# %% [markdown]
# The blurs and the sharpen filter keep the overall brightness (their weights sum to 1), the three
# edge filters sum to 0 and respond only where the intensity changes:

# %% tags=["nbval-check-output"]
for name, k in hand_filters.items():
    print(f"{name:14s} weights sum to {k.sum():+.2f}")

# %% [markdown]
# ## 10. PyTorch on the device
#
# `torch.nn.functional.conv2d` and `torch.nn.Conv2d` compute the same thing on the CPU, a CUDA GPU or
# Apple's MPS. On the device we work in float32 (MPS has no float64); NVIDIA GPUs may also use
# TF32 for convolutions, so the comparison with float64 NumPy allows a relative error of
# $5 \cdot 10^{-3}$.

# %% tags=["nbval-check-output"]
conv = nn.Conv2d(3, 8, kernel_size=3, padding=1).to(device)
x_dev = torch.from_numpy(x_rgb[:, :, :64, :64]).float().to(device)
with torch.no_grad():
    y_dev = conv(x_dev)
reference = numpy_nn.conv2d(
    x_rgb[:, :, :64, :64], conv.weight.detach().cpu().double().numpy(),
    conv.bias.detach().cpu().double().numpy(), padding=1,
)
err = np.abs(y_dev.cpu().double().numpy() - reference).max() / np.abs(reference).max()
assert err < 5e-3, f"nn.Conv2d on {device} disagrees with NumPy: {err:.1e}"
print("nn.Conv2d output:", tuple(y_dev.shape), "| matches NumPy float64:", True)

# %% [markdown]
# ### A small CNN on the digits
#
# scikit-learn's handwritten digits are 1,797 real $8 \times 8$ grayscale images of the digits 0–9.
# `data.load_digits` splits them, stratified by class, into train, validation and test sets;
# `DeviceLoader` moves each split to the device once and serves shuffled mini-batches from there.

# %% tags=["nbval-check-output"]
digits = data.load_digits(seed=SEED)
train_loader, val_loader, test_loader = digits.loaders(BATCH_SIZE, device=device, seed=SEED)
print(digits.summary())

# %%
plotting.image_grid(digits.train.x[:16], labels=[digits.classes[c] for c in digits.train.y[:16]],
                    ncols=8, title="Handwritten digits (8x8 pixels)")

# %% [markdown]
# Two networks with about the same number of parameters (~10k):
#
# - a **CNN**: two $3 \times 3$ convolutions (16 and 32 filters, "same" padding) with ReLU, a
#   $2 \times 2$ max pool, and a linear classifier on the $32 \times 4 \times 4$ features;
# - an **MLP**: the flattened 64 pixels, one hidden layer of 150 ReLU units, the classifier.

# %% tags=["nbval-check-output"]
make_cnn = models.small_cnn  # conv 1->16, conv 16->32, max pool, linear 512 -> 10


def make_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 150), nn.ReLU(), nn.Linear(150, 10))


print("CNN parameters:", models.count_parameters(make_cnn()),
      "| MLP parameters:", models.count_parameters(make_mlp()))

# %% [markdown]
# Both are trained identically with `training.fit` (Adam, the same epochs, batches and seed).

# %%
histories, models = {}, {}
for name, make in [("CNN", make_cnn), ("MLP", make_mlp)]:
    torch.manual_seed(SEED)
    model = make().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    histories[name] = training.fit(model, train_loader, val_loader, optimizer, EPOCHS, desc=name)
    models[name] = model

# %%
plotting.plot_history(histories, title="CNN and MLP on the digits")

# %% [markdown]
# On the centred test digits both do well. The difference shows when the test digits are moved by
# a single pixel (up, down, left or right — a shift no training image had): the MLP's weights are
# tied to pixel positions, the CNN's filters are not, and its max pool absorbs part of the shift.

# %%
def shifted(split, dy, dx):
    """The split's images moved by (dy, dx) pixels, zeros shifted in."""
    x = np.zeros_like(split.x)
    h, w = x.shape[-2:]
    x[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = split.x[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return x


moves = [(1, 0), (-1, 0), (0, 1), (0, -1)]
shifted_loaders = [data.DeviceLoader(shifted(digits.test, *m), digits.test.y, 256, device=device) for m in moves]
results = {}
for name, model in models.items():
    test_acc = training.evaluate(model, test_loader).accuracy
    shifted_acc = np.mean([training.evaluate(model, loader).accuracy for loader in shifted_loaders])
    results[name] = (test_acc, shifted_acc)
    print(f"{name}: test accuracy {test_acc:.1%}, on digits shifted by one pixel {shifted_acc:.1%}")

# %% [markdown]
# The claims, checked with margins that hold across seeds and machines: the CNN reaches at least
# 95% test accuracy; on centred digits it is at least as good as the MLP (within two points); on
# shifted digits it is better by at least eight points.

# %%
(cnn_test, cnn_shifted), (mlp_test, mlp_shifted) = results["CNN"], results["MLP"]
assert cnn_test >= 0.95, f"CNN test accuracy {cnn_test:.3f} < 0.95"
assert cnn_test >= mlp_test - 0.02, f"CNN {cnn_test:.3f} clearly worse than MLP {mlp_test:.3f}"
assert cnn_shifted >= mlp_shifted + 0.08, f"shifted: CNN {cnn_shifted:.3f} vs MLP {mlp_shifted:.3f}"

# %% [markdown]
# ### What the CNN learned
#
# The first layer's sixteen $3 \times 3$ filters (red positive, blue negative) and the sixteen
# feature maps they produce on one test digit. On $8 \times 8$ images the filters are small
# stroke and edge detectors; each map lights up where its pattern occurs.

# %%
cnn = models["CNN"]
plotting.filter_grid(cnn[0].weight, ncols=8, title="First-layer filters of the digit CNN")

# %%
with torch.no_grad():
    first_maps = torch.relu(cnn[0](torch.from_numpy(digits.test.x[:1]).to(device)))[0]
plotting.feature_map_grid(first_maps, ncols=8, title=f"First-layer feature maps of a test '{digits.classes[digits.test.y[0]]}'")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — max pooling.** Write `my_max_pool2d(x, kernel_size, stride)` for $x$ of shape
# $(N, C, H, W)$ and square windows, without Python loops over pixels. Hint:
# `np.lib.stride_tricks.sliding_window_view` gives every window; keep every `stride`-th.

# %%
def my_max_pool2d(x, kernel_size, stride):
    ### BEGIN SOLUTION
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel_size, kernel_size), axis=(2, 3))
    return windows[:, :, ::stride, ::stride].max(axis=(-2, -1))
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_max_pool2d(my_max_pool2d)

# %% [markdown]
# **Exercise 2 — convolution as one matrix multiply ("im2col").** Libraries often compute a
# convolution by copying every window into a row of a matrix of shape
# $(N H_{out} W_{out},\; C K_H K_W)$ and multiplying it by the filters reshaped to
# $(F,\; C K_H K_W)$. Write `conv2d_im2col(x, w, b)` for stride 1 and no padding this way.

# %%
def conv2d_im2col(x, w, b):
    ### BEGIN SOLUTION
    n, c, h, width = x.shape
    f, _, kh, kw = w.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    h_out, w_out = windows.shape[2:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c * kh * kw)
    y = cols @ w.reshape(f, -1).T + b
    return y.reshape(n, h_out, w_out, f).transpose(0, 3, 1, 2)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_conv2d(conv2d_im2col)

# %% [markdown]
# **Exercise 3 — receptive field by formula.** Write `receptive_field(layers)` that returns the
# receptive field (in pixels, along one axis) of a stack of layers given as a list of
# `(kernel_size, stride)` pairs, bottom layer first. Convolutions and pooling layers count alike.

# %%
def receptive_field(layers):
    ### BEGIN SOLUTION
    size, jump = 1, 1
    for kernel_size, stride in layers:
        size += (kernel_size - 1) * jump
        jump *= stride
    return size
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_receptive_field(receptive_field)

# %% [markdown]
# **Exercise 4 — counting (on paper).** A layer maps a $56 \times 56 \times 64$ input to
# $56 \times 56 \times 128$ with $3 \times 3$ filters, stride 1 and "same" padding.
# (a) How many parameters does it have? (b) How many multiply-adds does one forward pass of one
# image take? (c) How many weights would a fully connected layer between the same input and
# output need? (d) Two stacked $3 \times 3$ layers see as far as one $5 \times 5$ layer: compare
# their parameter counts for 64 channels in and out.
#
# <details><summary>Answer</summary>
#
# (a) $128 \cdot (64 \cdot 9 + 1) = 73{,}856$. (b) $56 \cdot 56 \cdot 128 \cdot 64 \cdot 9
# \approx 2.3 \cdot 10^8$. (c) $(56 \cdot 56 \cdot 64)(56 \cdot 56 \cdot 128) \approx 8.1 \cdot 10^{10}$.
# (d) $2 \cdot 64 \cdot 64 \cdot 9 = 73{,}728$ against $64 \cdot 64 \cdot 25 = 102{,}400$ weights
# (biases aside), with an extra nonlinearity in between.
# </details>
#
# **Exercise 5 — explore.** Shift the test digits by two pixels instead of one and rerun the
# comparison. Then replace the CNN's max pool by average pooling. Which change hurts the CNN
# more, and why?

# %% [markdown]
# ## Summary
#
# - A convolutional layer applies the same small filter at every position: local connections and
#   shared weights, $F(CK_HK_W + 1)$ parameters whatever the image size. Libraries compute
#   cross-correlation; flipping the filter gives the textbook convolution.
# - The output size is $\lfloor (n + 2p - f)/s \rfloor + 1$; padding $(K-1)/2$ keeps the size at
#   stride 1, and the floor drops pixels that do not fill a window.
# - Vectorized with a view of all windows and one tensor contraction, NumPy matches PyTorch to
#   float64 precision and is orders of magnitude faster than loops; a $1 \times 1$ convolution is
#   a matrix multiply over channels.
# - A convolution is a sparse fully connected layer with tied weights, so a shared weight's
#   gradient is the sum over every position that uses it; `conv2d_backward` passes numerical and
#   autograd checks.
# - Convolution is translation equivariant; max pooling makes features approximately invariant to
#   small shifts; striding and pooling grow the receptive field geometrically.
# - On the digits, a ~10k-parameter CNN reaches over 95% test accuracy like an MLP of the same
#   size, and is far more robust to one-pixel shifts.
