# %% [markdown]
# # Chapter 5 — Data augmentation
#
# When labelled images are few, we can make more: a photograph of a cat shifted by three pixels,
# mirrored or slightly darker is still a photograph of a cat. This chapter builds the standard
# image transformations in NumPy on real photographs, turns each into a batched PyTorch operation
# that runs on the device inside the training loop, and measures what augmentation buys on
# textures and on Fashion-MNIST with only a handful of labels.
#
# **Learning goals.** After this chapter you can
#
# 1. say when a transformation preserves the label, and recognise ones that do not (6 and 9);
# 2. write flips, crops, translations, affine and perspective warps with bilinear sampling,
#    random resized crops, colour and hue jitter, colour drop, histogram equalization, Gaussian
#    and salt-and-pepper noise, blur, Sobel edges, cutout and random erasing, first for one image
#    in NumPy and then for a whole batch in PyTorch with no Python loop over images;
# 3. implement MixUp and CutMix, with CutMix's label weight equal to the area actually kept, and
#    the detection-style mosaic of four images;
# 4. combine operations into a RandAugment-style policy with two knobs, $N$ and $M$;
# 5. average predictions over transformed copies at test time;
# 6. measure the gain of augmentation with few labels on paired seeds, and report the arms that
#    lose as measured; measure the throughput of batched augmentation.

# %% tags=["parameters"]
SEED = 0  # one seed for NumPy and torch
TEX_PER_CLASS = 10  # labelled texture patches per class (6 classes)
TEX_EPOCHS = 80
FASHION_TRAIN = 200  # labelled Fashion-MNIST images (20 per class), downsampled to 14x14
FASHION_EPOCHS = 60
FASHION_TEST = 2000  # test images scored (the first of the 10,000)
EXPERIMENT_SEEDS = 3  # seeds averaged in the experiment table
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
THROUGHPUT_IMAGES = 256  # batch size of the throughput comparison
THROUGHPUT_ROUNDS = 5  # paired timing rounds (NumPy, then torch) for the speed-up's spread

# %%
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import augment, checks, data, plotting, training
from helpers.claims import claim
from helpers.device import best_device, describe
from helpers.reproducibility import seed_everything
from helpers.timing import benchmark

plotting.use_book_style()
rng = seed_everything(SEED)
device = best_device()
gen = torch.Generator().manual_seed(SEED)  # draws for the augmentations, on the CPU
print("device:", describe(device))

# %% [markdown]
# ## 1. Transformations that keep the label
#
# A transformation $T$ is **label-preserving** for a task when $y(T(x)) = y(x)$: the object in the
# image does not change class. Training on randomly transformed copies minimizes the *expected*
# loss over a distribution $p(T)$ of such transformations,
#
# $$\min_\theta \; \frac{1}{n}\sum_{i=1}^{n} \mathbb{E}_{T \sim p(T)}\, \ell\big(f_\theta(T(x_i)),\, y_i\big),$$
#
# estimated by drawing a fresh $T$ for every image in every mini-batch. It adds knowledge we have
# about the task (that these changes do not matter) without collecting a single new label.
#
# Whether $T$ keeps the label depends on the task. Mirroring a photograph of a cat is fine;
# mirroring a digit is not (a mirrored 2, 3 or 7 is not a digit at all), and rotating a 6 by 180°
# makes a 9. On the real digits: a nearest-class-mean classifier, built from the training digits,
# classifies the test 6s and 9s, then the same digits rotated by 180°.

# %% tags=["nbval-check-output"]
digits = data.load_digits(seed=SEED)
means = np.stack([digits.train.x[digits.train.y == c].mean(0) for c in range(10)])  # (10, 1, 8, 8)


def nearest_mean(x):
    return np.argmin(((x[:, None] - means[None]) ** 2).sum((2, 3, 4)), axis=1)


for digit, other in [(6, 9), (9, 6)]:
    x = digits.test.x[digits.test.y == digit]
    rotated = x[..., ::-1, ::-1]
    print(f"test {digit}s: {np.mean(nearest_mean(x) == digit):.0%} classified as {digit}; "
          f"rotated by 180 degrees, {np.mean(nearest_mean(rotated) == other):.0%} classified as {other}")

# %%
sixes, nines = digits.test.x[digits.test.y == 6][:4], digits.test.x[digits.test.y == 9][:4]
twos = digits.test.x[digits.test.y == 2][:4]
plotting.image_grid(np.concatenate([sixes, sixes[..., ::-1, ::-1], nines, twos[..., ::-1]]),
                    labels=["6"] * 4 + ["6 rotated"] * 4 + ["9"] * 4 + ["2 mirrored"] * 4, ncols=8,
                    title="Transformations that change the label")

# %% [markdown]
# Most rotated 6s are read as 9s. The swap is not symmetric: fewer rotated 9s are read as 6s
# (the two percentages printed above). Handwritten 6s and 9s are not exact rotations of each
# other, so the rotated class mean of one is not the class mean of the other, and some rotated
# 9s lie nearer to another digit's mean. Either way the rotation does not keep the label. The
# claims: almost no rotated 6 or 9 (fewer than one in twenty) is still classified as itself,
# and a rotated 6 is read as a 9 more often than as any other digit.

# %%
rotated = {d: nearest_mean(digits.test.x[digits.test.y == d][..., ::-1, ::-1]) for d in (6, 9)}
kept_label = np.mean(np.concatenate([rotated[6] == 6, rotated[9] == 9]))
readings = np.bincount(rotated[6], minlength=10) / len(rotated[6])  # what the rotated 6s are read as
claim("rotated by 180 degrees, almost no test 6 or 9 is classified as itself (fraction that is)",
      kept_label, below=0.05)
claim("a rotated 6 is read as a 9 more often than as any other digit (lead of 9 over the next reading)",
      readings[9] - np.delete(readings, 9).max(), above=0.0)

# %% [markdown]
# ## 2. Geometric transformations, one image in NumPy
#
# We work on real photographs from scikit-image, as arrays of shape $(C, H, W)$ with values in
# $[0, 1]$ — the layout PyTorch uses.

# %% tags=["nbval-check-output"]
cat = data.load_photo("chelsea", size=(96, 128)).transpose(2, 0, 1).astype(np.float64)  # (3, 96, 128)
print("photo:", cat.shape, cat.dtype, f"values in [{cat.min():.2f}, {cat.max():.2f}]")

# %% [markdown]
# **Horizontal flip**: reverse the column axis. **Translation** by $(d_y, d_x)$ whole pixels: pad
# and slice, so that output pixel $(i, j)$ is input pixel $(i - d_y, j - d_x)$, zero where that falls
# outside. **Random crop with padding** (the classic CIFAR augmentation) pads by $p$ pixels and
# cuts a window of the original size at a random offset — the same as a random translation by up
# to $p$ pixels each way.

# %%
def np_hflip(img):
    return img[:, :, ::-1]


def np_translate(img, dy, dx):
    """Move the content dy pixels down and dx right; zeros come in at the border."""
    _, h, w = img.shape
    pad = max(abs(dy), abs(dx))
    padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


# %% [markdown]
# **Affine warps.** Rotation, scaling and shear are linear maps of the pixel coordinates. Put the
# origin at the image centre, $u = (x, y)$ with $x$ to the right and $y$ down; a warp moves the
# content by $u' = A u + t$ with, for a counterclockwise rotation by $\varphi$, an x-shear by
# $\psi$ and a scale $s$,
#
# $$A = s \begin{pmatrix} \cos\varphi & \sin\varphi \\ -\sin\varphi & \cos\varphi \end{pmatrix}
#          \begin{pmatrix} 1 & \tan\psi \\ 0 & 1 \end{pmatrix}.$$
#
# To fill output pixel $u'$ we need the input at $u = A^{-1}(u' - t)$ — **inverse mapping**, so that
# every output pixel gets exactly one value. That point falls between pixels; **bilinear
# sampling** mixes the four neighbours, weighted by how close each is, and treats pixels outside
# the image as 0.

# %%
def affine_matrix(angle=0.0, scale=1.0, shear=0.0):
    a, s = np.deg2rad(angle), np.tan(np.deg2rad(shear))
    rotation = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return scale * rotation @ np.array([[1.0, s], [0.0, 1.0]])


def np_affine(img, A, t=(0.0, 0.0)):
    """Warp img (C, H, W) so that content moves by u' = A u + t (pixels, origin at the centre)."""
    _, h, w = img.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    out_u = np.stack([xs - cx - t[0], ys - cy - t[1]])  # (2, H, W)
    src = np.einsum("ij,jhw->ihw", np.linalg.inv(A), out_u)
    col, row = src[0] + cx, src[1] + cy  # where to read, in pixel indices
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    out = np.zeros_like(img)
    for dr in (0, 1):  # the four neighbours
        for dc in (0, 1):
            r, c = r0 + dr, c0 + dc
            weight = (1 - np.abs(row - r)) * (1 - np.abs(col - c))
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            out += np.where(inside, weight * img[:, r.clip(0, h - 1), c.clip(0, w - 1)], 0.0)
    return out


# %% [markdown]
# A sanity check of the sampler: a 90° rotation of a square image lands every output pixel
# exactly on an input pixel, so it must equal `np.rot90`:

# %% tags=["nbval-check-output"]
square = cat[:, :, 16:112]  # (3, 96, 96)
print("np_affine(90 degrees) == np.rot90:", np.allclose(np_affine(square, affine_matrix(90)),
                                                         np.rot90(square, 1, axes=(1, 2))))

# %% [markdown]
# ## 3. The same transformations, batched in PyTorch
#
# A training loop sees a batch $(N, C, H, W)$ already on the device. Looping over its images in
# Python would leave a GPU idle, so `helpers.augment` draws every image's random parameters at
# once and applies them in a few tensor operations:
#
# - flips with `torch.where(flip_mask, x.flip(-1), x)`;
# - translations and crops with one `gather` of precomputed source indices;
# - affine warps with `F.affine_grid` (one $2 \times 3$ matrix per image, in coordinates normalized
#   to $[-1, 1]$, mapping output to input) and `F.grid_sample` (bilinear sampling, zeros outside).
#
# Each agrees with the NumPy version on the photograph:

# %% tags=["nbval-check-output"]
cat_t = torch.from_numpy(cat.copy())[None]  # (1, 3, 96, 128) float64
checks_geometry = {
    "hflip": (augment.hflip(cat_t)[0], np_hflip(cat)),
    "translate by (5, -9)": (augment.translate(cat_t, torch.tensor([[5, -9]]))[0],
                             np_translate(cat, 5, -9)),
}
for angle, scale, shear, t in [(25, 1.0, 0, (0, 0)), (-10, 1.3, 20, (4.5, -3))]:
    theta = augment.affine_theta(96, 128, angle=angle, scale=scale, shear_x=shear, tx=t[0], ty=t[1])
    name = f"affine: rotate {angle}, scale {scale}, shear {shear}, shift {t}"
    checks_geometry[name] = (augment.affine(cat_t, theta)[0],
                             np_affine(cat, affine_matrix(angle, scale, shear), t))
for name, (ours, ref) in checks_geometry.items():
    print(f"{name:45s} torch == NumPy: {np.allclose(ours.numpy(), ref, atol=1e-6)}")

# %% [markdown]
# ## 4. Photometric transformations
#
# Photometric transformations change the values, not the positions. Each is a blend
# $(1 - f)\,\text{base} + f\,x$ with a factor $f \ge 0$ ($f = 1$ is the identity), clipped to
# $[0, 1]$:
#
# - **brightness**: base = black, so $f\,x$;
# - **contrast**: base = the image's mean gray level;
# - **saturation**: base = the gray image $0.299R + 0.587G + 0.114B$;
#
# plus **Gaussian noise** $x + \sigma\varepsilon$ and **Gaussian blur**, a convolution with the
# separable kernel $g(k) \propto e^{-k^2/2\sigma^2}$ (rows, then columns; borders reflected).

# %%
LUMA = np.array([0.299, 0.587, 0.114])[:, None, None]


def np_blend(img, base, f):
    return np.clip(f * img + (1 - f) * base, 0, 1)


def np_brightness(img, f):
    return np_blend(img, 0.0, f)


def np_contrast(img, f):
    return np_blend(img, (LUMA * img).sum(0).mean(), f)


def np_saturation(img, f):
    return np_blend(img, (LUMA * img).sum(0, keepdims=True), f)


# %%
def np_gaussian_noise(img, sigma, rng):
    return np.clip(img + sigma * rng.standard_normal(img.shape), 0, 1)


def np_gaussian_blur(img, sigma, radius):
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(img, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")
    rows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=2) @ k
    return np.lib.stride_tricks.sliding_window_view(rows, 2 * radius + 1, axis=1) @ k


# %% tags=["nbval-check-output"]
checks_photo = {
    "brightness 1.4": (augment.adjust_brightness(cat_t, 1.4), np_brightness(cat, 1.4)),
    "contrast 0.5": (augment.adjust_contrast(cat_t, 0.5), np_contrast(cat, 0.5)),
    "saturation 0.2": (augment.adjust_saturation(cat_t, 0.2), np_saturation(cat, 0.2)),
    "Gaussian blur sigma 1.5": (augment.gaussian_blur(cat_t, 1.5, kernel_size=11),
                                np_gaussian_blur(cat, 1.5, 5)),
}
for name, (ours, ref) in checks_photo.items():
    print(f"{name:24s} torch == NumPy: {np.allclose(ours[0].numpy(), ref, atol=1e-10)}")
gray_card = np.full((3, 64, 64), 0.5)  # noise is random: compare its statistics instead
noise_np = np_gaussian_noise(gray_card, 0.1, rng) - 0.5
noise_t = augment.gaussian_noise(torch.from_numpy(gray_card)[None], 0.1, generator=gen)[0].numpy() - 0.5
print("Gaussian noise sigma 0.1: standard deviation within 0.005 of 0.1, NumPy and torch:",
      abs(noise_np.std() - 0.1) < 0.005, abs(noise_t.std() - 0.1) < 0.005)

# %% [markdown]
# ## 4b. More transformations: hue, gray, equalization, impulse noise, edges, perspective
#
# Eight more operations from the source notes (the last three in the cells further down), each
# as a short NumPy function for one image and a batched function in `helpers.augment`, checked
# against each other below.
#
# - **Hue jitter** turns the colours around the colour wheel and keeps the brightness. In the
#   YIQ colour space, $Y$ is the luma of §4 and $(I, Q)$ the chroma plane; a hue shift by
#   $\delta$ turns is a rotation of that plane by $2\pi\delta$, so the whole operation is one
#   $3 \times 3$ matrix $M = T^{-1} R(2\pi\delta)\, T$ applied to every RGB pixel ($T$ the RGB to
#   YIQ matrix), then clipped. Gray pixels have no chroma and stay as they are.
# - **Grayscale / colour drop** replaces the three channels by the luma, repeated three times.
# - **Histogram equalization** (the formula of the notes): quantize to $L$ levels
#   $v = \mathrm{round}(x(L-1))$ and map each level through the cumulative histogram of its
#   channel,
#
#   $$v' = \mathrm{round}\!\left(\frac{\mathrm{cdf}(v) - \mathrm{cdf}_{\min}}{HW - \mathrm{cdf}_{\min}}\,(L - 1)\right),$$
#
#   with $\mathrm{cdf}_{\min}$ the cumulative count of the darkest level present, so the
#   darkest pixel becomes 0, the brightest $L - 1$, and the levels in between spread out.
# - **Salt-and-pepper noise** sets a pixel to **white** (salt, the value 1 here, 255 in bytes)
#   with probability $p_s$ and to **black** (pepper, 0) with probability $p_p$. The source notes
#   swap the two; salt is white.
# - **Sobel filtering** (listed with blur among the generated corruptions): the edge strength
#   $\sqrt{g_x^2 + g_y^2}$ with $g_x$ the cross-correlation with
#   $\begin{psmallmatrix} -1 & 0 & 1 \\ -2 & 0 & 2 \\ -1 & 0 & 1 \end{psmallmatrix}$ and $g_y$
#   with its transpose, divided by its largest possible value $4\sqrt 2$.

# %%
YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263],
                [0.211456, -0.522591, 0.311135]])  # rows: Y (luma), I, Q


def np_hue(img, shift):
    a = 2 * np.pi * shift
    rotation = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    m = np.linalg.inv(YIQ) @ rotation @ YIQ
    return np.clip(np.einsum("ij,jhw->ihw", m, img), 0, 1)


def np_grayscale(img):
    return np.repeat((LUMA * img).sum(0, keepdims=True), 3, axis=0)


# %%
def np_equalize(img, levels=256):
    out = img.copy()
    for c, channel in enumerate(img):  # a loop over the three channels only
        v = np.round(channel * (levels - 1)).astype(int)
        cdf = np.cumsum(np.bincount(v.ravel(), minlength=levels))
        cdf_min = cdf[v.min()]
        if cdf_min < v.size:  # a constant channel stays as it is
            out[c] = np.round((cdf[v] - cdf_min) / (v.size - cdf_min) * (levels - 1)) / (levels - 1)
    return out


def np_salt_and_pepper(img, u, salt, pepper):
    """u: (H, W) uniform draws, one per pixel; salt is white, pepper is black."""
    img = np.where(u < salt, 1.0, img)
    return np.where((u >= salt) & (u < salt + pepper), 0.0, img)


def np_sobel(img):
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(img, ((0, 0), (1, 1), (1, 1)),
                                                              mode="edge"), (3, 3), axis=(1, 2))
    gx, gy = (windows * kx).sum((-2, -1)), (windows * kx.T).sum((-2, -1))
    return np.sqrt(gx**2 + gy**2) / (4 * np.sqrt(2))


# %% [markdown]
# - **Perspective transform** (the notes' $3 \times 3$ matrix): a pixel $u = (x, y)$, origin at
#   the centre as for the affine warps, goes to $(x'/z', y'/z')$ with
#
#   $$\begin{pmatrix} x' \\ y' \\ z' \end{pmatrix} = \begin{pmatrix} a & b & c \\ d & e & f \\ g & h & 1 \end{pmatrix}
#     \begin{pmatrix} x \\ y \\ 1 \end{pmatrix}.$$
#
#   With $g = h = 0$ it is the affine warp; $g$ and $h$ make far parts of the image shrink, as
#   a plane seen at an angle. Eight numbers, fixed by where four corners go
#   (`augment.homography` solves the $8 \times 8$ linear system for every image at once).
#   Inverse mapping again: output pixel $u'$ reads the input at $M^{-1}(u', 1)$, divided by its
#   third coordinate, with the bilinear sampler.
# - **Random resized crop** (the Inception / ImageNet crop): a box of random area (8% to 100%
#   of the image) and aspect ratio ($3/4$ to $4/3$), resized to a fixed output size. Output pixel
#   $(i, j)$ of an $S \times S$ output reads the input at row $t + (i + \frac12)\,b_h/S - \frac12$
#   and column $l + (j + \frac12)\,b_w/S - \frac12$ for a box at $(t, l)$ of size $b_h \times b_w$.

# %%
def np_bilinear(img, row, col):
    """Sample img (C, H, W) at fractional (row, col) (each (H', W')); zeros outside."""
    _, h, w = img.shape
    r0, c0 = np.floor(row).astype(int), np.floor(col).astype(int)
    out = np.zeros((img.shape[0],) + row.shape)
    for r, c in [(r0, c0), (r0 + 1, c0), (r0, c0 + 1), (r0 + 1, c0 + 1)]:  # four neighbours
        weight = (1 - np.abs(row - r)) * (1 - np.abs(col - c))
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        out += np.where(inside, weight * img[:, r.clip(0, h - 1), c.clip(0, w - 1)], 0.0)
    return out


# %%
def np_perspective(img, m):
    _, h, w = img.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    out_u = np.stack([xs - (w - 1) / 2, ys - (h - 1) / 2, np.ones_like(xs)])  # (3, H, W)
    src = np.einsum("ij,jhw->ihw", np.linalg.inv(m), out_u)
    return np_bilinear(img, src[1] / src[2] + (h - 1) / 2, src[0] / src[2] + (w - 1) / 2)


def np_resized_crop(img, top, left, bh, bw, size):
    _, h, w = img.shape
    rows = top + (np.arange(size) + 0.5) * bh / size - 0.5
    cols = left + (np.arange(size) + 0.5) * bw / size - 0.5
    row, col = np.meshgrid(rows.clip(0, h - 1), cols.clip(0, w - 1), indexing="ij")
    return np_bilinear(img, row, col)  # edges repeated: coordinates clipped into the image


# %% [markdown]
# Batched on the device, the resized crop is the `affine_grid` path that `augment.affine` and
# `augment.resized_crop` use, written out here: one $2 \times 3$ matrix $\theta$ per image maps
# the output's normalized coordinates ($[-1, 1]$ across the output) to the input's, here a scale
# by the box's size and a shift to its centre; `F.affine_grid` turns all $N$ matrices into
# sampling grids $(N, S, S, 2)$ in one call, and `F.grid_sample` reads every image at its grid.

# %%
boxes = torch.tensor([[10.0, 20.0, 60.0, 50.0], [0.0, 0.0, 96.0, 128.0]])  # (top, left, bh, bw)
two_cats = cat_t.expand(2, -1, -1, -1)
top, left, bh, bw = boxes.double().unbind(1)
theta = torch.zeros(2, 2, 3, dtype=torch.float64)
theta[:, 0, 0], theta[:, 0, 2] = bw / 128, (2 * left + bw) / 128 - 1  # x: scale, shift
theta[:, 1, 1], theta[:, 1, 2] = bh / 96, (2 * top + bh) / 96 - 1  # y
grid_xy = F.affine_grid(theta, [2, 3, 64, 64], align_corners=False)  # (2, 64, 64, 2)
crops = F.grid_sample(two_cats, grid_xy, padding_mode="border", align_corners=False)
print("sampling grids:", tuple(grid_xy.shape), "crops:", tuple(crops.shape))

# %% [markdown]
# - **Mosaic** (from YOLOv4, in the notes' list): four images, each shrunk to half size,
#   tiled $2 \times 2$. It is a **detection** augmentation: every quadrant keeps its objects'
#   boxes (halved and shifted), and objects appear at new scales and in new contexts. For
#   classification a mosaic has no single label, so it is shown here and not trained with.

# %%
def np_mosaic(four):
    """four: (4, C, H, W) -> (C, H, W), each shrunk by 2x2 averaging, tiled 2 x 2."""
    n, c, h, w = four.shape
    small = four.reshape(n, c, h // 2, 2, w // 2, 2).mean((3, 5))
    return np.concatenate([np.concatenate(small[:2], axis=2), np.concatenate(small[2:], axis=2)],
                          axis=1)


# %% [markdown]
# Each NumPy version against its batched counterpart, on the photographs (the noise with the
# same uniform draws; the perspective with a matrix in the notes' form):

# %%
coffee = data.load_photo("coffee", size=(96, 128)).transpose(2, 0, 1).astype(np.float64)
photos4 = np.stack([cat, coffee] + [data.load_photo(name, size=(96, 128)).transpose(2, 0, 1)
                                    for name in ("astronaut", "rocket")]).astype(np.float64)
m_persp = np.array([[1.0, 0.1, 5.0], [0.05, 0.95, -3.0], [0.001, -0.0008, 1.0]])
u = torch.rand((1, 1, 96, 128), generator=torch.Generator().manual_seed(SEED)).double()

# %% tags=["nbval-check-output"]
checks_more = {
    "hue shift 0.25 turns": (augment.adjust_hue(cat_t, 0.25)[0], np_hue(cat, 0.25)),
    "grayscale": (augment.grayscale(cat_t)[0], np_grayscale(cat)),
    "histogram equalization": (augment.equalize(cat_t)[0], np_equalize(cat)),
    "salt and pepper 5% each": (
        augment.salt_and_pepper(cat_t, 0.05, 0.05,
                                generator=torch.Generator().manual_seed(SEED))[0],
        np_salt_and_pepper(cat, u[0, 0].numpy(), 0.05, 0.05)),
    "Sobel edges": (augment.sobel(cat_t)[0], np_sobel(cat)),
    "perspective": (augment.perspective(cat_t, torch.from_numpy(m_persp))[0],
                    np_perspective(cat, m_persp)),
    "resized crop, affine_grid by hand": (crops[0], np_resized_crop(cat, 10, 20, 60, 50, 64)),
    "resized crop, augment.resized_crop": (augment.resized_crop(two_cats, boxes, 64)[1],
                                           np_resized_crop(cat, 0, 0, 96, 128, 64)),
    "mosaic of four": (augment.mosaic(torch.from_numpy(photos4),
                                      partners=torch.tensor([[1, 2, 3]] * 4))[0][0],
                       np_mosaic(photos4)),
}
for name, (ours, ref) in checks_more.items():
    print(f"{name:36s} torch == NumPy: {np.allclose(ours.numpy(), ref, atol=1e-6)}")

# %% tags=["nbval-check-output"]
equalized = augment.equalize(cat_t)
print("equalized: darkest level 0 and brightest 1 in every channel:",
      bool((equalized.amin((2, 3)) == 0).all() and (equalized.amax((2, 3)) == 1).all()))
noisy = augment.salt_and_pepper(cat_t, 0.05, 0.05, generator=torch.Generator().manual_seed(SEED))
white = (noisy == 1).all(1).float().mean().item()
print("salt turns pixels white, about 5% of them:", abs(white - 0.05) < 0.01)

# %% [markdown]
# ## 5. Occlusion and label mixing
#
# **Cutout** (DeVries and Taylor) sets a square of fixed size at a random centre to zero, clipped
# at the border; **random erasing** (Zhong et al.) erases a rectangle of random area and aspect
# ratio inside the image, with probability $p$. Both teach the network not to rely on one
# region. In the batched version every image's box becomes a mask from two comparisons with
# `torch.arange`, one for rows and one for columns.
#
# **MixUp** (Zhang et al.) trains on convex combinations of two examples *and* their labels:
#
# $$\tilde x = \lambda x_i + (1 - \lambda) x_j, \qquad \tilde y = \lambda\, e_{y_i} + (1 - \lambda)\, e_{y_j},
#   \qquad \lambda \sim \mathrm{Beta}(\alpha, \alpha),$$
#
# with $e_y$ the one-hot vector; the partner $j$ is the image at a random permutation of the batch.
# The targets are now probability vectors, which `F.cross_entropy` accepts directly.
#
# **CutMix** (Yun et al.) pastes a box from the partner instead of blending. A box of area
# $(1 - \lambda_0) HW$ is drawn with a uniformly random centre and **clipped at the border**, so the
# pasted area is often smaller than planned; the label weight must be recomputed from the clipped
# box, $\lambda = 1 - \frac{\text{box area}}{HW}$, the fraction of the image actually kept. In
# NumPy, for one pair:

# %% tags=["nbval-check-output"]
def np_cutmix_pair(x_i, x_j, top, left, bottom, right):
    """Paste x_j's box (clipped to the image) into x_i; return the image and the kept fraction."""
    _, h, w = x_i.shape
    top, bottom = np.clip([top, bottom], 0, h)
    left, right = np.clip([left, right], 0, w)
    mixed = x_i.copy()
    mixed[:, top:bottom, left:right] = x_j[:, top:bottom, left:right]
    return mixed, 1 - (bottom - top) * (right - left) / (h * w)


planned = 1 - 60 * 60 / (96 * 128)  # a 60x60 box
mixed, lam = np_cutmix_pair(cat, coffee, 70 - 30, 110 - 30, 70 + 30, 110 + 30)  # centre (70, 110)
print(f"planned lambda {planned:.3f}, kept fraction after clipping {lam:.3f}")
still_cat = np.mean(np.all(mixed == cat, axis=0))
print("lambda equals the fraction of pixels still from the cat:", np.isclose(lam, still_cat))

# %% [markdown]
# Cutout and MixUp for one image are as short. Given the same box, and the same $\lambda$ and
# partners, the batched versions agree with them:

# %% tags=["nbval-check-output"]
def np_cutout(img, cy, cx, size):
    """Zero a size x size square centred at (cy, cx), clipped at the border."""
    out = img.copy()
    top, left = max(cy - size // 2, 0), max(cx - size // 2, 0)
    out[:, top : cy - size // 2 + size, left : cx - size // 2 + size] = 0.0
    return out


def np_mixup_pair(x_i, x_j, y_i, y_j, lam, num_classes):
    eye = np.eye(num_classes)
    return lam * x_i + (1 - lam) * x_j, lam * eye[y_i] + (1 - lam) * eye[y_j]


two = torch.from_numpy(np.stack([cat, coffee]))  # (2, 3, 96, 128) float64
box = torch.tensor([[80 - 20, 120 - 20, 80 + 20, 120 + 20]])  # centre (80, 120), side 40
cut_torch = torch.where(augment.box_mask(box, 96, 128), 0.0, two[:1])[0].numpy()
print("cutout, box clipped at the border: torch == NumPy:", np.array_equal(cut_torch, np_cutout(cat, 80, 120, 40)))
perm = torch.randperm(2, generator=torch.Generator().manual_seed(1))  # the partners mixup draws
mix_t, target_t, _ = augment.mixup(two, torch.tensor([0, 1]), 2, lam=0.3, generator=torch.Generator().manual_seed(1))
mix_np, target_np = np_mixup_pair(cat, two[perm[0]].numpy(), 0, int(perm[0]), 0.3, 2)
print("MixUp of image 0 with its partner: torch == NumPy:",
      np.allclose(mix_t[0].numpy(), mix_np) and np.allclose(target_t[0].numpy(), target_np))

# %% [markdown]
# Random erasing for one image: draw the area fraction $s \sim U(s_{lo}, s_{hi})$ and the aspect
# $r = h/w$ log-uniform, so that $h = \mathrm{round}(\sqrt{s\,HW\,r})$ and
# $w = \mathrm{round}(\sqrt{s\,HW/r})$ (clipped to the image), then a position where the box
# fits, and fill the box. The batched `augment.random_erasing` computes the same formulas for
# all images at once and fills the boxes through `augment.box_mask`; given the same box, the two
# agree:

# %% tags=["nbval-check-output"]
def np_erasing_box(height, width, area_fraction, aspect, u_top, u_left):
    """The (top, left, bottom, right) of random erasing's box from its draws (u_* in [0, 1))."""
    bh = int(np.clip(np.round(np.sqrt(area_fraction * height * width * aspect)), 1, height))
    bw = int(np.clip(np.round(np.sqrt(area_fraction * height * width / aspect)), 1, width))
    top, left = int(u_top * (height - bh + 1)), int(u_left * (width - bw + 1))
    return top, left, top + bh, left + bw


def np_random_erasing(img, box, value):
    out = img.copy()
    top, left, bottom, right = box
    out[:, top:bottom, left:right] = value
    return out


box = np_erasing_box(96, 128, 0.2, 0.5, 0.3, 0.8)
erased_torch = torch.where(augment.box_mask(torch.tensor([box]), 96, 128), 0.5, two[:1])[0].numpy()
print("erasing box", box, "| torch == NumPy:", np.array_equal(erased_torch, np_random_erasing(cat, box, 0.5)))

# %% [markdown]
# `augment.cutmix` does this for a whole batch, one box per image, and returns the exact $\lambda$
# per image; `augment.mixup` likewise. Their targets sum to one:

# %% tags=["nbval-check-output"]
photos = torch.from_numpy(np.stack([cat, coffee] * 4)).float()  # (8, 3, 96, 128)
labels = torch.tensor([0, 1] * 4)
torch.manual_seed(SEED)
mixed_up, targets_mix, lam_mix = augment.mixup(photos, labels, 2, alpha=0.4, generator=gen)
cut, targets_cut, lam_cut = augment.cutmix(photos, labels, 2, alpha=1.0, generator=gen)
print("MixUp targets sum to 1:", torch.allclose(targets_mix.sum(1), torch.ones(8)))
print("CutMix targets sum to 1:", torch.allclose(targets_cut.sum(1), torch.ones(8)))

# %% [markdown]
# ## 6. A RandAugment-style policy
#
# AutoAugment searched for the best sequence of operations with reinforcement learning, at great
# cost. **RandAugment** (Cubuk et al.) showed that a much simpler policy does as well: apply $N$
# operations, each chosen uniformly from a fixed list, all at one shared magnitude $M$. Two
# integers to tune instead of a search. `augment.rand_augment` uses rotations (up to 30° at
# $M = 10$), x- and y-shears, x- and y-translations and brightness, contrast, saturation and
# sharpness factors, each with a random sign; magnitude 0 is the identity. The loop runs over the
# ten entries of `augment.RAND_AUGMENT_OPS` (the nine operations just listed and the identity),
# and each is applied at once to the images that drew it.
#
# Every random transformation of this chapter, six draws each, on the astronaut photograph
# (the flag on the left makes a flip visible); the MixUp, CutMix and mosaic partners are the
# three other photographs, the cat, the coffee and the rocket:

# %%
def grid_rows(image, transforms, draws=6):
    batch = torch.from_numpy(image).float()[None].expand(draws, -1, -1, -1).contiguous()
    rows, labels = [], []
    for name, fn in transforms.items():
        rows.append(fn(batch))
        labels += [name] + [""] * (draws - 1)
    return torch.cat(rows), labels


# %%
k = 5  # class count for the MixUp / CutMix demos; labels do not matter for the picture
pool = torch.from_numpy(np.concatenate([photos4[[0, 1, 3]]] * 2)).float()  # cat, coffee, rocket
labels12 = torch.zeros(12, dtype=torch.long)
partners12 = torch.cat([6 + torch.arange(6), torch.arange(6)])  # draw n mixed with pool n

# %%
transforms = {
    "random flip": lambda x: augment.random_hflip(x, generator=gen),
    "crop, pad 16": lambda x: augment.random_crop(x, 16, generator=gen),
    "rotate/scale/shear": lambda x: augment.random_affine(x, 30, (0.8, 1.2), 15, 0.1, generator=gen),
    "colour jitter": lambda x: augment.color_jitter(x, 0.4, 0.4, 0.8, generator=gen),
    "noise 0.1": lambda x: augment.gaussian_noise(x, 0.1, generator=gen),
    "blur": lambda x: augment.random_blur(x, (0.5, 3.0), generator=gen),
    "cutout 40": lambda x: augment.cutout(x, 40, generator=gen),
    "random erasing": lambda x: augment.random_erasing(x, 1.0, value="random", generator=gen),
    "hue jitter 0.3": lambda x: augment.random_hue(x, 0.3, generator=gen),
    "gray, p = 0.5": lambda x: augment.random_grayscale(x, 0.5, generator=gen),
    "salt, pepper 5%": lambda x: augment.salt_and_pepper(x, 0.05, 0.05, generator=gen),
    "perspective 0.3": lambda x: augment.random_perspective(x, 0.3, generator=gen),
    "resized crop": lambda x: augment.random_resized_crop(x, (96, 128), generator=gen),
    "MixUp": lambda x: augment.mixup(torch.cat([x, pool]), labels12, k, alpha=1.0,
                                     partners=partners12, generator=gen)[0][:6],
    "CutMix": lambda x: augment.cutmix(torch.cat([x, pool]), labels12, k,
                                       partners=partners12, generator=gen)[0][:6],
    "mosaic": lambda x: augment.mosaic(
        torch.cat([x, pool]), partners=6 + torch.randint(6, (12, 3), generator=gen))[0][:6],
    "RandAugment N=2 M=9": lambda x: augment.rand_augment(x, 2, 9, generator=gen),
}

# %%
torch.manual_seed(SEED)
grid, grid_labels = grid_rows(photos4[2], transforms)
plotting.image_grid(grid, labels=grid_labels, ncols=6, size=1.2,
                    title="Each augmentation, six random draws on one photograph")

# %% [markdown]
# Checked on the whole batch: every transformation keeps the shape, the dtype and the $[0, 1]$
# range; flipping twice and RandAugment at magnitude 0 are identities.

# %% tags=["nbval-check-output"]
batch = torch.from_numpy(np.stack([cat, coffee] * 3)).float()
ok = all(t(batch).shape == batch.shape and t(batch).dtype == batch.dtype
         and 0 <= t(batch).min() and t(batch).max() <= 1 for t in transforms.values())
print("shape, dtype and range kept by all", len(transforms), "transformations:", ok)
print("flip twice is the identity:", torch.equal(augment.hflip(augment.hflip(batch)), batch))
unchanged = augment.rand_augment(batch, 2, 0, generator=gen)
print("RandAugment at M = 0 is the identity:", torch.equal(unchanged, batch))

# %% [markdown]
# ## 7. Experiment: augmentation with few labels
#
# Two real tasks with very few labels, every arm trained on the same seeds (same labelled
# images, same initialization, same batch order), so each comparison is paired:
#
# - **textures**: six texture photographs from scikit-image, `TEX_PER_CLASS` labelled
#   $32 \times 32$ patches per class; the test patches come from a separate band of each
#   photograph. The network sees $16 \times 16$ inputs: without augmentation the centre of each
#   patch, with augmentation a random $16 \times 16$ window of it (random cropping from a larger
#   image, as ImageNet training does), randomly flipped horizontally and vertically. Test images
#   are the centre windows. Four arms: none, standard, standard + MixUp ($\alpha = 0.2$),
#   standard + CutMix ($\alpha = 1$).
# - **Fashion-MNIST**: `FASHION_TRAIN` labelled images (a stratified subset chosen by the seed),
#   downsampled to $14 \times 14$ so that all arms fit the chapter's time budget, scored on the
#   first `FASHION_TEST` test images. Arms: none, horizontal flip (clothes are left-right
#   symmetric enough), a random crop with 1 pixel of padding, and flip + crop + random erasing
#   ($p = 0.5$).
#
# All augmentation runs on the device inside the training loop: `augment.Augmented` wraps the
# `DeviceLoader` and transforms each batch where it lies.

# %% tags=["nbval-check-output"]
textures = data.load_textures(patch_size=32, patches_per_class=200, seed=SEED)
print(textures.summary())


# %%
def subset(split, per_class, seed):
    pick = np.random.default_rng(seed)
    classes = np.unique(split.y)
    idx = np.concatenate([pick.choice(np.flatnonzero(split.y == c), per_class, replace=False)
                          for c in classes])
    return data.Split(split.x[idx], split.y[idx])


def make_cnn(classes, side):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * (side // 4) ** 2, classes),
    )  # fmt: skip


def flips(x):
    x = augment.random_hflip(x, generator=gen)
    return augment.random_hflip(x.transpose(-1, -2), generator=gen).transpose(-1, -2)  # vertical


# %%
def train(train_split, test_x, test_y, classes, side, epochs, seed, images=None, batch=None):
    """Train make_cnn on train_split with the given augmentations; return (test accuracy, model)."""
    torch.manual_seed(seed)
    gen.manual_seed(seed)
    model = make_cnn(classes, side).to(device)
    loader = data.DeviceLoader(*train_split, BATCH_SIZE, shuffle=True, seed=seed, device=device)
    if images is not None or batch is not None:
        loader = augment.Augmented(loader, images=images, batch=batch)
    training.fit(model, loader, None, torch.optim.Adam(model.parameters(), lr=LEARNING_RATE),
                 epochs, progress=False)
    test = data.DeviceLoader(test_x, test_y, 512, device=device)
    return training.evaluate(model, test).accuracy, model


def spread(values, scale=100):
    v = scale * np.asarray(values)
    return f"{v.mean():6.1f} ± {v.std(ddof=1):4.1f} (min {v.min():6.1f}, max {v.max():6.1f})"


# %%
TEX_CONFIGS = {
    "none": dict(images=lambda x: augment.center_crop(x, 16)),
    "standard": dict(images=lambda x: flips(augment.random_window(x, 16, generator=gen))),
    "+ MixUp": dict(images=lambda x: flips(augment.random_window(x, 16, generator=gen)),
                    batch=lambda x, y: augment.mixup(x, y, 6, alpha=0.2, generator=gen)[:2]),
    "+ CutMix": dict(images=lambda x: flips(augment.random_window(x, 16, generator=gen)),
                     batch=lambda x, y: augment.cutmix(x, y, 6, alpha=1.0, generator=gen)[:2]),
}
tex_test_x = augment.center_crop(torch.from_numpy(textures.test.x), 16)
results, texture_models = {}, []
for config, arms in TEX_CONFIGS.items():
    accs = []
    for s in range(EXPERIMENT_SEEDS):
        acc, model = train(subset(textures.train, TEX_PER_CLASS, SEED + s), tex_test_x,
                           textures.test.y, 6, 16, TEX_EPOCHS, SEED + s, **arms)
        accs.append(acc)
        if config == "standard":
            texture_models.append(model)
    results[config] = np.array(accs)
print("textures, test accuracy (%), mean ± std over seeds:")
for config, accs in results.items():
    print(f"  {config:10s} {spread(accs)}")

# %%
fig, ax = plotting.subplots()
ax.bar(list(results), [100 * a.mean() for a in results.values()],
       yerr=[100 * a.std(ddof=1) for a in results.values()])
ax.set(ylabel="test accuracy (%)", ylim=(0, 100),
       title=f"Textures, {TEX_PER_CLASS} patches per class: mean of {EXPERIMENT_SEEDS} seeds")
fig

# %% [markdown]
# The claims: standard augmentation raises the test accuracy on the textures by more than five
# points on average over the seeds, and on most of them (the median gain is positive). Without it
# the network sees the same sixty centre windows in every epoch; with it, every epoch shows new
# windows and orientations of those patches. How much it gains depends strongly on the seed
# (which patches are drawn, and the initialization): the cell below prints the gain per seed,
# and the appendix "How robust is each claim?" shows each claim over ten seeds.
#
# **MixUp and CutMix lost.** Added on top of the standard pipeline, both lowered the accuracy on
# average over the seeds, by amounts that vary widely from seed to seed (the cell below prints
# the change per seed). With sixty patches and a few hundred steps the network is still learning
# the clean task, and mixed targets make that task harder; the methods were designed against
# memorization on large data sets with long training, not for this regime. Claimed: on average
# over the seeds, each loses against standard augmentation.

# %%
tex_gain = results["standard"] - results["none"]
mixup_change = results["+ MixUp"] - results["standard"]
cutmix_change = results["+ CutMix"] - results["standard"]
print("texture gain of standard augmentation per seed (points):", np.round(100 * tex_gain, 1).tolist())
print("MixUp minus standard per seed (points):", np.round(100 * mixup_change, 1).tolist())
print("CutMix minus standard per seed (points):", np.round(100 * cutmix_change, 1).tolist())
claim("standard augmentation raises texture test accuracy by more than five points on average over the seeds",
      tex_gain.mean(), above=0.05)
claim("standard augmentation raises texture test accuracy on most seeds (median gain)",
      np.median(tex_gain), above=0.0)
claim("MixUp on top of standard augmentation loses on average over the seeds", mixup_change.mean(), below=0.0)
claim("CutMix on top of standard augmentation loses on average over the seeds", cutmix_change.mean(), below=0.0)

# %% [markdown]
# Now Fashion-MNIST, with the arms run on the same seeds:

# %%
def fashion_split(seed):
    fm = data.load_fashion_mnist(train_size=FASHION_TRAIN, seed=seed)
    test = data.downsample(fm.test.x[:FASHION_TEST])
    return data.Split(data.downsample(fm.train.x), fm.train.y), test, fm.test.y[:FASHION_TEST]


# %%
FASHION_ARMS = {
    "none": None,
    "flip": lambda x: augment.random_hflip(x, generator=gen),
    "crop, pad 1": lambda x: augment.random_crop(x, 1, generator=gen),
    "flip + crop + erasing": lambda x: augment.random_erasing(
        augment.random_crop(augment.random_hflip(x, generator=gen), 1, generator=gen), 0.5,
        generator=gen),
}
fashion = {arm: [] for arm in FASHION_ARMS}
for s in range(EXPERIMENT_SEEDS):
    train_split, fx, fy = fashion_split(SEED + s)
    for arm, images in FASHION_ARMS.items():
        fashion[arm].append(train(train_split, fx, fy, 10, 14, FASHION_EPOCHS, SEED + s,
                                  images=images)[0])
fashion = {arm: np.array(accs) for arm, accs in fashion.items()}
fashion_gain = {arm: fashion[arm] - fashion["none"] for arm in FASHION_ARMS if arm != "none"}
print(f"Fashion-MNIST, {FASHION_TRAIN} labels at 14x14: test accuracy (%) and gain over none")
print(f"  {'none':22s} {spread(fashion['none'])}")
for arm, gain in fashion_gain.items():
    print(f"  {arm:22s} {spread(fashion[arm])}   gain {spread(gain)}")

# %%
fig, ax = plotting.subplots()
for i, gain in enumerate(fashion_gain.values()):
    ax.scatter(np.full(len(gain), i), 100 * gain, color="C0")
ax.axhline(0, color="0.5", lw=1)
ax.set_xticks(range(len(fashion_gain)), list(fashion_gain))
ax.set(ylabel="gain over no augmentation (points)", xlim=(-0.5, len(fashion_gain) - 0.5),
       title=f"Fashion-MNIST, {FASHION_TRAIN} labels: one dot per seed")
fig

# %% [markdown]
# **On Fashion-MNIST augmentation did not help.** In the run printed above no arm gained much on
# average, and the gains per seed (the dots of the figure) stay close to zero, on both sides.
# With twenty images per class at $14 \times 14$, the garments are centred and upright, so
# shifted and mirrored copies add little that the test set contains, while erasing hides much of
# a small image; the augmented networks may also need more steps to fit the same images. The
# claim is the negative one: no arm gains more than three points on average over the seeds.

# %%
claim("no augmentation arm gains more than three points on Fashion-MNIST on average over the seeds (largest mean gain)",
      max(gain.mean() for gain in fashion_gain.values()), below=0.03)

# %% [markdown]
# ## 8. Test-time augmentation
#
# Augmentation can also be used at test time: predict on several transformed copies of a test
# image and average the softmax probabilities,
# $\hat y = \frac{1}{V} \sum_{v=1}^{V} \mathrm{softmax}\, f(T_v(x))$. The copies must be
# transformations the network was trained to be invariant to. Three families, for the texture
# networks trained with standard augmentation:
#
# - **flips**: the centre window and its two flips (3 views);
# - **multi-crop**: the centre window and four windows shifted by 6 pixels diagonally (5 views);
# - **multi-scale**: the centre window and central windows of 12, 20 and 24 pixels resized to 16
#   with `augment.resized_crop` (4 views) — the network was not trained on rescaled windows;
# - and all ten views together.

# %%
def centre(x):
    return augment.center_crop(x, 16)


def central_resized(side):
    def view(x):
        box = torch.tensor([[16 - side / 2, 16 - side / 2, side, side]] * len(x), dtype=x.dtype)
        return augment.resized_crop(x, box.to(x.device), 16)
    return view


TTA = {
    "flips": [centre, lambda x: augment.hflip(centre(x)), lambda x: centre(x).flip(-2)],
    "multi-crop": [centre] + [lambda x, dy=dy, dx=dx: x[..., 8 + dy : 24 + dy, 8 + dx : 24 + dx]
                              for dy, dx in [(-6, -6), (-6, 6), (6, -6), (6, 6)]],
    "multi-scale": [centre] + [central_resized(side) for side in (12, 20, 24)],
}
TTA["all"] = TTA["flips"] + TTA["multi-crop"][1:] + TTA["multi-scale"][1:]

# %%
test_x = torch.from_numpy(textures.test.x).to(device)
test_y = torch.from_numpy(textures.test.y).to(device)


def tta_accuracy(model, views):
    return (augment.tta_probs(model, test_x, views).argmax(1) == test_y).float().mean().item()


single = np.array([tta_accuracy(model, [centre]) for model in texture_models])
tta_gain = {name: np.array([tta_accuracy(m, views) for m in texture_models]) - single
            for name, views in TTA.items()}
print("centre window alone, per seed (%):", np.round(100 * single, 1).tolist())
for name, gain in tta_gain.items():
    print(f"  {name:12s} ({len(TTA[name]):2d} views) gain per seed (points):",
          np.round(100 * gain, 1).tolist(), f"  mean {100 * gain.mean():.1f}")

# %% [markdown]
# Multi-crop averaging gains on every seed (claimed; the gains per seed are printed above):
# each shifted window sees a different part of the test patch, exactly the kind of view the
# network was trained on, and the errors are partly independent. The flips and the rescaled
# windows are not reliable: their gains per seed, printed above, change sign from seed to seed.
# The flips add little new, and the network never saw rescaled textures. All ten views together
# gained less than the five crops alone in this run: averaging in weaker views dilutes the good
# ones. Claimed: multi-crop gains on every seed, and all ten views gain on average over the
# seeds. The price is one forward pass per view.

# %%
claim("multi-crop test-time augmentation gains on every seed (smallest gain)", tta_gain["multi-crop"].min(), above=0.0)
claim("averaging all ten views gains on average over the seeds", tta_gain["all"].mean(), above=0.0)

# %% [markdown]
# ## 9. Throughput: batched on the device vs per image in NumPy
#
# A typical pipeline — random flip, random crop with padding, a random rotation and scaling, colour
# jitter — applied to `THROUGHPUT_IMAGES` colour images of $32 \times 32$, once with the NumPy
# functions above in a Python loop over the images, once batched with `helpers.augment` on the
# device (`helpers.timing.benchmark` warms up, repeats and synchronizes the device). The NumPy
# loop runs on one core, so on a CPU the batched version is timed on one torch thread too: like is
# compared with like. The two are timed in `THROUGHPUT_ROUNDS` alternating rounds, so a slow
# moment of the machine hits both, and the speed-up is given per round.

# %%
names = ("chelsea", "coffee", "astronaut", "rocket")
small_photos = np.stack([data.load_photo(name, size=(32, 32)) for name in names])  # (4, 32, 32, 3)
images_np = np.tile(small_photos.transpose(0, 3, 1, 2), (THROUGHPUT_IMAGES // 4, 1, 1, 1))


def numpy_pipeline(images, rng):
    out = np.empty_like(images)
    for i, img in enumerate(images):  # one image at a time, as a per-image data loader does
        img = np_hflip(img) if rng.random() < 0.5 else img
        img = np_translate(img, *rng.integers(-4, 5, 2))
        img = np_affine(img, affine_matrix(rng.uniform(-15, 15), rng.uniform(0.9, 1.1)))
        out[i] = np_saturation(np_contrast(np_brightness(img, rng.uniform(0.6, 1.4)),
                                           rng.uniform(0.6, 1.4)), rng.uniform(0.6, 1.4))
    return out


def torch_pipeline(x):
    x = augment.random_hflip(x)
    x = augment.random_crop(x, 4)
    x = augment.random_affine(x, 15, (0.9, 1.1))
    return augment.color_jitter(x, 0.4, 0.4, 0.4)


# %%
images_dev = torch.from_numpy(images_np).to(device)
threads = torch.get_num_threads()
speedups = []
for _ in range(THROUGHPUT_ROUNDS):
    t_numpy = benchmark(lambda: numpy_pipeline(images_np, rng), repeats=1, warmup=0)
    torch.set_num_threads(1)
    try:
        t_torch = benchmark(lambda: torch_pipeline(images_dev), repeats=3, warmup=1, device=device)
    finally:
        torch.set_num_threads(threads)
    speedups.append(t_numpy.median / t_torch.median)
print(f"per-image NumPy, last round: {THROUGHPUT_IMAGES / t_numpy.median:10,.0f} images/s")
print(f"batched torch on {device.type}, last round: {THROUGHPUT_IMAGES / t_torch.median:10,.0f} images/s")
print(f"speed-up over {THROUGHPUT_ROUNDS} rounds: median {np.median(speedups):.1f}x, "
      f"min {min(speedups):.1f}x, max {max(speedups):.1f}x")

# %% [markdown]
# Batched augmentation is several times faster even on one CPU core, because the per-image Python
# overhead disappears. On a GPU the same code transforms the batch where it already lives,
# without a trip to the CPU; this run timed the device printed at the top of the chapter. The
# claim, with a margin that holds on a loaded machine: more than twice as fast in every round.

# %%
claim("batched augmentation is more than twice as fast as the per-image NumPy loop (slowest round)",
      min(speedups), above=2.0)

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — batched translation.** Write `my_translate(x, shifts)` for a tensor $x$ of shape
# $(N, C, H, W)$ and integer shifts $(N, 2)$ = $(d_y, d_x)$ per image: image $n$'s content moves
# $d_y$ down and $d_x$ right, zeros come in (no wrap-around), and there is no Python loop over
# the images. Hint: build the source row and column of every output pixel, `(N, H)` and `(N, W)`,
# and read them with advanced indexing or `gather`.

# %%
def my_translate(x, shifts):
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    rows = torch.arange(h)[None, :] - shifts[:, :1]  # (N, H): source row of each output row
    cols = torch.arange(w)[None, :] - shifts[:, 1:]  # (N, W)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(n)[:, None, None]
    out = x[batch, :, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    return torch.where(inside[:, None], out.permute(0, 3, 1, 2), 0.0)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_translate(my_translate)

# %% [markdown]
# **Exercise 2 — the backward pass of a translation, derived.** Augmentation usually runs before
# the network, where no gradient is needed; but inside a model (a learned shift, a spatial
# transformer, an adversarial search over shifts) the gradient has to flow back through it. A
# translation with zero fill is linear in $x$: for image $n$ and every channel,
#
# $$y_{i,j} = \begin{cases} x_{i - d_y,\, j - d_x} & \text{if } 0 \le i - d_y < H \text{ and }
#   0 \le j - d_x < W, \\ 0 & \text{otherwise.} \end{cases}$$
#
# (a) Given the upstream gradient $g = \partial L / \partial y$, shape $(N, C, H, W)$, derive
# $\partial L / \partial x_{a,b}$ with the chain rule: which output pixels depend on input pixel
# $(a, b)$, and with what derivative? What do the input pixels pushed out of the image get, and
# where does the gradient of the zero-filled border go? (b) Write
# `translate_backward(grad_out, shifts)` returning $\partial L / \partial x$ for the shifts
# $(N, 2)$ of Exercise 1, with no Python loop over the images and without `augment.translate`
# (the check blocks it while your function runs, and compares with torch autograd). A random
# crop with padding is the same translation (§2), so this is its backward pass too.
#
# <details><summary>Answer</summary>
#
# (a) $\partial L / \partial x_{a,b} = \sum_{i,j} g_{i,j}\, \partial y_{i,j} / \partial x_{a,b}$.
# Output pixel $(i, j)$ reads input pixel $(i - d_y, j - d_x)$, so $y_{i,j}$ depends on
# $x_{a,b}$ only for $(i, j) = (a + d_y, b + d_x)$, with derivative 1, and only when that output
# pixel lies inside the image. Hence
#
# $$\frac{\partial L}{\partial x_{a,b}} = \begin{cases} g_{a + d_y,\, b + d_x} & \text{if }
#   0 \le a + d_y < H \text{ and } 0 \le b + d_x < W, \\ 0 & \text{otherwise:} \end{cases}$$
#
# the upstream gradient translated by $(-d_y, -d_x)$, with zeros coming in. As matrices, the
# transpose of a translation is the opposite translation. Input pixels pushed out of the image
# influence nothing and get gradient 0; the zero-filled border of $y$ depends on no input, so
# its gradient is dropped. The adjoint is not the inverse: translating back does not restore
# the pixels that were pushed out. (b) The same gather as in Exercise 1 with the sign of the
# shifts flipped, so `my_translate(grad_out, -shifts)` is a correct answer too.
# </details>

# %%
def translate_backward(grad_out, shifts):
    ### BEGIN SOLUTION
    n, c, h, w = grad_out.shape
    rows = torch.arange(h)[None, :] + shifts[:, :1]  # (N, H): input row a moved to row a + dy
    cols = torch.arange(w)[None, :] + shifts[:, 1:]  # (N, W)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(n)[:, None, None]
    g = grad_out[batch, :, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    return torch.where(inside[:, None], g.permute(0, 3, 1, 2), 0.0)  # pushed out: no gradient
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_translate_backward(translate_backward)

# %% [markdown]
# **Exercise 3 — MixUp with given partners.** Write `my_mixup(x, y, lam, perm, num_classes)`
# returning `(x_mix, targets)`: image $i$ is mixed with image `perm[i]` with weight `lam[i]`
# (shape $(N,)$), and the targets are the same mix of one-hot labels, shape $(N, K)$.

# %%
def my_mixup(x, y, lam, perm, num_classes):
    ### BEGIN SOLUTION
    one_hot = F.one_hot(y, num_classes).to(x.dtype)
    l4 = lam[:, None, None, None]
    x_mix = l4 * x + (1 - l4) * x[perm]
    targets = lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm]
    return x_mix, targets
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_mixup(my_mixup)

# %% [markdown]
# **Exercise 4 — CutMix's $\lambda$.** Write `cutmix_lambda(boxes, height, width)` for a tensor of
# boxes $(N, 4)$ = (top, left, bottom, right), bottom and right exclusive, that may stick out of the
# image. Return the kept fraction $\lambda$ of each image, shape $(N,)$, after clipping the box.

# %%
def cutmix_lambda(boxes, height, width):
    ### BEGIN SOLUTION
    top, bottom = boxes[:, 0].clamp(0, height), boxes[:, 2].clamp(0, height)
    left, right = boxes[:, 1].clamp(0, width), boxes[:, 3].clamp(0, width)
    area = (bottom - top).clamp_min(0) * (right - left).clamp_min(0)
    return 1 - area / (height * width)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
checks.check_cutmix_lambda(cutmix_lambda)

# %% [markdown]
# **Exercise 5 — think.** (a) Which of these are label-preserving for the digits, for the textures
# of §7, and for photographs of street scenes: horizontal flip, vertical flip, rotation by 90°,
# conversion to gray, a random crop of half the image? (b) Why must a CutMix box be clipped
# *before* $\lambda$ is computed, and what would an unclipped $\lambda$ teach the network?
#
# <details><summary>Answer</summary>
#
# (a) Digits: none of the flips or the 90° rotation (3, 6, 9 change meaning), gray is a no-op, half
# crops can cut away the strokes that decide the class. Textures: flips yes; 90° rotation only for
# isotropic textures (brick is not); gray is a no-op (gray patches); half crops yes if the texture
# repeats. Street scenes: horizontal flip and gray yes (unless traffic signs or lights matter);
# vertical flip and 90° rotation no; half crops mostly yes. (b) Near a border a box loses part of
# its area; an unclipped $\lambda$ would give the partner's label more weight than its visible
# pixels, so the targets would systematically lie about the image.
# </details>
#
# **Exercise 6 — explore.** Rerun §7 with `TEX_PER_CLASS = 50`. Does the gain of augmentation
# shrink? Then add `augment.rand_augment(x, 2, 5, generator=gen)` to the texture pipeline.
#
# <details><summary>Answer</summary>
#
# Expect it to shrink, and measure by how much against the spread between seeds: with five times
# as many patches the network without augmentation has far more real variety to learn from, and
# random windows of fifty patches add less that is new than random windows of ten. Adding
# RandAugment with $N = 2$, $M = 5$ on top of windows and flips can *lower* the test accuracy:
# rotations and shears change the orientation and spacing of the texture's pattern, brightness
# and contrast change the gray
# levels, and for these textures those are part of what tells the classes apart — the
# transformations are not all label-preserving here, and the harder training task is not
# learned within the same number of epochs. A policy must be chosen for the task (try fewer
# operations, a smaller $M$, or only the operations that keep these textures' class).
# </details>

# %% [markdown]
# ## Summary
#
# - Augmentation trains on the expected loss over label-preserving transformations; which ones
#   preserve the label depends on the task (a rotated 6 is a 9).
# - Geometric transformations are index maps: flips, crops and translations move whole pixels;
#   rotation, scaling, shear, perspective warps and resized crops need inverse mapping and
#   bilinear sampling. Photometric ones blend with black, the mean gray or the gray image, rotate
#   the chroma plane (hue), equalize the histogram, or add Gaussian or salt-and-pepper noise
#   (salt is white), blur or edges.
# - Batched on the device, one random draw per image and a few tensor operations per
#   transformation replace the per-image loop: `affine_grid` + `grid_sample` for warps and resized
#   crops, `gather` for crops, masks built from `arange` for boxes.
# - MixUp blends images and one-hot labels with $\lambda \sim \mathrm{Beta}(\alpha, \alpha)$; CutMix
#   pastes a box and weighs the labels by the area actually kept after clipping. The mosaic of
#   four images belongs to detection, where every quadrant keeps its boxes.
# - RandAugment reduces a policy to two numbers: $N$ operations at magnitude $M$.
# - With ten labelled texture patches per class, random windows and flips raised test accuracy by
#   more than five points on average; MixUp and CutMix on top *lost* accuracy on average. On
#   Fashion-MNIST with twenty labels per class, flips, crops and random erasing did not help (no
#   arm gained more than three points on average). At test time, averaging five shifted crops
#   gained on every seed; flips and rescaled views did not gain reliably.
# - Batched augmentation is several times faster than a per-image NumPy loop even on one CPU core.
