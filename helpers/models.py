"""Convolutional networks for the book's small images: plain CNNs and ResNets of any depth.

One builder, ``resnet``, makes both kinds from the same parts, so that a plain network and a
residual network of the same depth differ only in the skip connections:

    resnet(depth=20)                        # ResNet-20: 3 stages of 3 blocks, 16/32/64 channels
    resnet(depth=20, residual=False)        # the same layers without shortcuts (a plain CNN)
    plain_cnn(depth=20)                     # the same, by name
    resnet(depth=14, widths=(8, 16), norm="group", preact=True, drop_path=0.1)

Two small networks without shortcuts or normalization sit beside them: ``small_cnn`` (the
digit CNN: convolutions, one pool, a linear classifier) and ``pooled_cnn`` (a 2x2 max pool
after every convolution, for 28x28 Fashion-MNIST).

The network is a 3x3 convolution (the stem), ``len(widths)`` stages of ``n`` two-convolution
blocks (the first block of every stage after the first halves H and W with stride 2 and
changes the width), global average pooling and a linear classifier. Counting convolutions and
the classifier, ``depth = 2 + 2 * n * len(widths)`` (ResNet-20/32/56 for three stages, as in
He et al., 2016). Inputs are (N, in_channels, H, W) float; outputs (N, num_classes) logits.
Works for 8x8 digits and 32x32 textures alike (any H, W >= 2 ** (len(widths) - 1)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BasicBlock",
    "DropPath",
    "ResNet",
    "ShakeShakeBlock",
    "count_parameters",
    "drop_block_batch",
    "drop_path",
    "norm_layer",
    "plain_cnn",
    "pooled_cnn",
    "resnet",
    "shake_shake",
    "shake_shake_resnet",
    "small_cnn",
]

NORMS = ("batch", "group", "layer", "instance", "none")
SHORTCUTS = ("identity", "projection")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def norm_layer(kind: str | None, channels: int, groups: int = 4) -> nn.Module:
    """A normalization layer over ``channels`` feature maps, chosen by name.

    kind: "batch" (``nn.BatchNorm2d``), "group" (``nn.GroupNorm(groups, C)``, groups reduced to
    C when C < groups), "layer" (``nn.GroupNorm(1, C)``: over C, H, W per example), "instance"
    (``nn.GroupNorm(C, C)``: over H, W per example and channel, with a learned affine) or
    "none"/None (``nn.Identity``). All have a per-channel scale and shift.
    """
    kind = "none" if kind is None else kind
    if kind not in NORMS:
        raise ValueError(f"norm_layer: kind must be one of {NORMS}, got {kind!r}")
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        g = min(groups, channels)
        if channels % g != 0:
            raise ValueError(f"norm_layer: {channels} channels are not divisible by groups={g}")
        return nn.GroupNorm(g, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    return nn.Identity()


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero the whole of ``x[i]`` for each example i with probability p.

    x: (N, ...) — the output of a residual branch. The kept examples are scaled by
    1 / (1 - p), so the expectation is unchanged; in eval (training=False) or with p = 0,
    x is returned as is.
    """
    if not 0 <= p < 1:
        raise ValueError(f"drop_path: p must be in [0, 1), got {p!r}")
    if not training or p == 0:
        return x
    keep = 1 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device, dtype=x.dtype)
    return x * mask.bernoulli_(keep) / keep


class DropPath(nn.Module):
    """Module form of ``drop_path``: drops a residual branch per example with probability p."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"DropPath: p must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with normalization and ReLU, with or without a shortcut.

    Post-activation (He et al., 2016a): y = relu(F(x) + s(x)) with F = conv-norm-relu-conv-norm.
    Pre-activation (He et al., 2016b): y = F(x) + s(x) with F = norm-relu-conv-norm-relu-conv.
    ``residual=False`` drops the shortcut (a plain block: y = relu(F(x)) or y = F(x)).

    When stride > 1 or the width changes, the shortcut s must change the shape of x too:
    "identity" takes every stride-th pixel and pads the new channels with zeros (no
    parameters, option A of the ResNet paper); "projection" is a strided 1x1 convolution
    followed by normalization (option B). Same shape: s(x) = x.
    ``zero_init_residual`` zeroes the branch's last scale (the last norm's weight, or the last
    convolution when the branch ends in one), so each block starts as the identity.
    ``drop_path`` > 0 applies stochastic depth to the branch (residual blocks only).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *,
                 residual: bool = True, norm: str | None = "batch", shortcut: str = "identity",
                 preact: bool = False, zero_init_residual: bool = False, drop_path: float = 0.0,
                 groups: int = 4):
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ValueError(f"BasicBlock: shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        if drop_path and not residual:
            raise ValueError(f"BasicBlock: drop_path={drop_path} needs residual=True")
        self.residual, self.preact, self.stride = residual, preact, stride
        self.in_channels, self.out_channels = in_channels, out_channels
        bias = norm in (None, "none")  # a norm layer's shift makes a conv bias redundant
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=bias)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=bias)
        self.norm1 = norm_layer(norm, in_channels if preact else out_channels, groups)
        self.norm2 = norm_layer(norm, out_channels, groups)
        self.drop_path = DropPath(drop_path)
        self.shortcut_kind = shortcut
        self.projection = None
        reshapes = stride != 1 or in_channels != out_channels
        if residual and reshapes and shortcut == "projection":
            layers = [nn.Conv2d(in_channels, out_channels, 1, stride, bias=bias)]
            if not preact:
                layers.append(norm_layer(norm, out_channels, groups))
            self.projection = nn.Sequential(*layers)
        if zero_init_residual:
            last = self.conv2 if preact or isinstance(self.norm2, nn.Identity) else self.norm2
            nn.init.zeros_(last.weight)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """F(x), the residual branch (the whole block when residual=False)."""
        if self.preact:
            out = self.conv1(F.relu(self.norm1(x)))
            return self.conv2(F.relu(self.norm2(out)))
        out = F.relu(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(out))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """s(x): x, a strided 1x1 projection, or strided x padded with zero channels."""
        if self.projection is not None:
            return self.projection(x)
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        elif extra < 0:
            raise ValueError(
                "BasicBlock: an identity shortcut cannot reduce the channels; use "
                f"shortcut='projection' ({self.in_channels} -> {self.out_channels})"
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.residual:
            out = self.drop_path(out) + self.shortcut(x)
        return out if self.preact else F.relu(out)


class ResNet(nn.Module):
    """stem -> stages of ``BasicBlock`` -> global average pool -> linear. See ``resnet``.

    Attributes: ``stem`` (conv, norm, ReLU; conv only for pre-activation), ``blocks``
    (an ``nn.Sequential`` of all blocks, in order), ``head_norm`` (the final norm before the
    pooling of pre-activation networks; identity otherwise), ``fc`` (the classifier).
    """

    def __init__(self, blocks_per_stage: int, widths: Sequence[int], in_channels: int,
                 num_classes: int, *, residual: bool, norm: str | None, shortcut: str,
                 preact: bool, zero_init_residual: bool, drop_path: float, groups: int):
        super().__init__()
        bias = norm in (None, "none")
        stem = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=bias)]
        if not preact:
            stem += [norm_layer(norm, widths[0], groups), nn.ReLU()]
        self.stem = nn.Sequential(*stem)
        total = blocks_per_stage * len(widths)
        blocks, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(blocks_per_stage):
                index = len(blocks)
                blocks.append(BasicBlock(
                    channels, width, stride=2 if stage > 0 and i == 0 else 1,
                    residual=residual, norm=norm, shortcut=shortcut, preact=preact,
                    zero_init_residual=zero_init_residual, groups=groups,
                    drop_path=drop_path * (index + 1) / total,  # linear rule (Huang et al.)
                ))  # fmt: skip
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head_norm = norm_layer(norm, channels, groups) if preact else nn.Identity()
        self.preact = preact
        self.fc = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, widths[-1]) pooled features."""
        out = self.blocks(self.stem(x))
        if self.preact:
            out = F.relu(self.head_norm(out))
        return out.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def resnet(depth: int = 20, widths: Sequence[int] = (16, 32, 64), in_channels: int = 1,
           num_classes: int = 10, *, residual: bool = True, norm: str | None = "batch",
           shortcut: str = "identity", preact: bool = False, zero_init_residual: bool = False,
           drop_path: float = 0.0, groups: int = 4) -> ResNet:
    """A ResNet (or, with residual=False, the plain CNN with the same layers) for small images.

    depth: weighted layers, 2 + 2 * n * len(widths) for n blocks per stage (8, 14, 20, 26,
    32, ... for three stages; 6, 10, 14, ... for two). widths: channels of each stage; stage
    s > 0 starts with a stride-2 block. norm: "batch", "group", "layer", "instance" or
    "none" (see ``norm_layer``; ``groups`` for "group"). shortcut: "identity" (zero-padded,
    no parameters) or "projection" (1x1 convolution) where a block changes the shape.
    preact: pre-activation blocks. zero_init_residual: every block starts as the identity
    (its last scale is zero). drop_path: stochastic-depth rate of the last block; block l of
    L drops its branch with probability drop_path * l / L.
    Returns a ``ResNet`` mapping (N, in_channels, H, W) to (N, num_classes) logits.
    """
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"resnet: widths must be a non-empty sequence of ints >= 1, got {widths}")
    per_block = 2 * len(widths)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2 + per_block \
            or (depth - 2) % per_block:
        raise ValueError(
            f"resnet: with {len(widths)} stages depth must be 2 + {per_block} * n for n >= 1 "
            f"({2 + per_block}, {2 + 2 * per_block}, ...), got {depth!r}"
        )
    if norm not in (*NORMS, None):
        raise ValueError(f"resnet: norm must be one of {NORMS}, got {norm!r}")
    if shortcut not in SHORTCUTS:
        raise ValueError(f"resnet: shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
    if not 0 <= drop_path < 1:
        raise ValueError(f"resnet: drop_path must be in [0, 1), got {drop_path!r}")
    if drop_path and not residual:
        raise ValueError(f"resnet: drop_path={drop_path} needs residual=True")
    return ResNet((depth - 2) // per_block, widths, in_channels, num_classes, residual=residual,
                  norm=norm, shortcut=shortcut, preact=preact,
                  zero_init_residual=zero_init_residual, drop_path=drop_path, groups=groups)


def plain_cnn(depth: int = 20, widths: Sequence[int] = (16, 32, 64), in_channels: int = 1,
              num_classes: int = 10, *, norm: str | None = "batch", preact: bool = False,
              groups: int = 4) -> ResNet:
    """``resnet(..., residual=False)``: the same convolutions, norms and pooling, no shortcuts."""
    return resnet(depth, widths, in_channels, num_classes, residual=False, norm=norm,
                  preact=preact, groups=groups)


def small_cnn(in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32),
              side: int = 8, *, hidden: int | None = None, dropout: float = 0.0,
              norm: str | None = None, groups: int = 4) -> nn.Sequential:
    """The book's small CNN: 3x3 convolutions (same padding) with ReLU, one 2x2 max pool, a
    linear classifier. For the 8x8 digits with the defaults: conv 1->16, conv 16->32, pool,
    flatten 32*4*4, linear -> 10 (9,930 parameters).

    hidden: a hidden linear layer of that many ReLU units before the classifier, with
    ``nn.Dropout(dropout)`` in front of each linear layer. norm: None (the default) or a
    normalization after each convolution, as in ``resnet(norm=...)``: "batch", "group"
    (``groups`` groups), "layer" or "instance" (see ``norm_layer``); the convolution's bias is
    then dropped, the norm's shift replacing it. Input (N, in_channels, side, side),
    output (N, num_classes) logits. An ``nn.Sequential``, so ``model[0]`` is the first conv.
    """
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"small_cnn: widths must be non-empty ints >= 1, got {widths}")
    if side < 2 or side % 2:
        raise ValueError(f"small_cnn: side must be an even number >= 2 (one 2x2 pool), got {side}")
    if not 0 <= dropout < 1:
        raise ValueError(f"small_cnn: dropout must be in [0, 1), got {dropout!r}")
    if dropout and hidden is None:
        raise ValueError("small_cnn: dropout needs a hidden layer (hidden=...)")
    if norm not in (*NORMS, None):
        raise ValueError(f"small_cnn: norm must be one of {NORMS} or None, got {norm!r}")
    normed = norm not in (None, "none")
    layers, channels = [], in_channels
    for width in widths:
        layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not normed))
        if normed:
            layers.append(norm_layer(norm, width, groups))
        layers.append(nn.ReLU())
        channels = width
    layers += [nn.MaxPool2d(2), nn.Flatten()]
    features = channels * (side // 2) ** 2
    if hidden is None:
        layers.append(nn.Linear(features, num_classes))
    else:
        layers += [nn.Dropout(dropout), nn.Linear(features, hidden), nn.ReLU(),
                   nn.Dropout(dropout), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def pooled_cnn(widths: Sequence[int] = (16, 32, 64), in_channels: int = 1,
               num_classes: int = 10, side: int = 28) -> nn.Sequential:
    """Stages of 3x3 convolution (same padding), ReLU and 2x2 max pool, then a linear classifier.

    Each stage halves H and W (rounding down), so the classifier sees
    ``widths[-1] * (side // 2 ** len(widths)) ** 2`` features. For 28x28 Fashion-MNIST with
    the defaults: conv 1->16, pool to 14x14, conv 16->32, pool to 7x7, conv 32->64, pool to
    3x3, flatten 576, linear -> 10 (29,066 parameters). Input (N, in_channels, side, side),
    output (N, num_classes) logits. An ``nn.Sequential``, so ``model[0]`` is the first conv.
    """
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"pooled_cnn: widths must be non-empty ints >= 1, got {widths}")
    if side < 2 ** len(widths):
        raise ValueError(f"pooled_cnn: side must be >= 2 ** len(widths) = {2 ** len(widths)} "
                         f"({len(widths)} 2x2 pools), got {side}")
    layers, channels = [], in_channels
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    features = channels * (side // 2 ** len(widths)) ** 2
    layers += [nn.Flatten(), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)


def drop_block_batch(block: BasicBlock, x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth as Huang et al. (2016) run it: skip a whole block for the whole batch.

    block: a residual ``BasicBlock``; x: (N, C, H, W). In training, with probability p the
    branch is not computed at all and the block returns its shortcut (relu(s(x)) for a
    post-activation block, s(x) for pre-activation); otherwise the branch is computed and
    scaled by 1 / (1 - p) (inverted convention; Huang et al. instead scale by the survival
    probability 1 - p at test time; the two agree in expectation). In eval the block is run
    as is. Unlike ``drop_path`` (one coin per example, every branch still computed) this
    saves the skipped branch's compute.
    """
    if not block.residual:
        raise ValueError("drop_block_batch: block must be residual (residual=True), got plain")
    if not 0 <= p < 1:
        raise ValueError(f"drop_block_batch: p must be in [0, 1), got {p!r}")
    if not training or p == 0:
        return block(x)
    if torch.rand(()).item() < p:
        out = block.shortcut(x)
    else:
        out = block.branch(x) / (1 - p) + block.shortcut(x)
    return out if block.preact else F.relu(out)


class _ShakeShake(torch.autograd.Function):
    """alpha * b1 + (1 - alpha) * b2 forward; the gradient is split with beta, not alpha."""

    @staticmethod
    def forward(ctx, b1, b2, alpha, beta):
        ctx.save_for_backward(beta)
        return alpha * b1 + (1 - alpha) * b2

    @staticmethod
    def backward(ctx, grad):
        (beta,) = ctx.saved_tensors
        return beta * grad, (1 - beta) * grad, None, None


def shake_shake(b1: torch.Tensor, b2: torch.Tensor, training: bool) -> torch.Tensor:
    """Shake-shake combination of two residual branches (Gastaldi, 2017), per example.

    b1, b2: (N, ...) of the same shape. In training, alpha and beta ~ U[0, 1] are drawn
    independently for each example: the forward pass returns alpha * b1 + (1 - alpha) * b2,
    the backward pass sends beta * grad to b1 and (1 - beta) * grad to b2. In eval the
    result is 0.5 * (b1 + b2).
    """
    if b1.shape != b2.shape:
        raise ValueError(f"shake_shake: branches must have the same shape, got "
                         f"{tuple(b1.shape)} and {tuple(b2.shape)}")
    if not training:
        return 0.5 * (b1 + b2)
    shape = (b1.shape[0],) + (1,) * (b1.ndim - 1)
    alpha = torch.rand(shape, dtype=b1.dtype, device=b1.device)
    beta = torch.rand(shape, dtype=b1.dtype, device=b1.device)
    return _ShakeShake.apply(b1, b2, alpha, beta)


class ShakeShakeBlock(BasicBlock):
    """A post-activation residual block with two branches: y = relu(combine(F1(x), F2(x)) + s(x)).

    F1 is ``BasicBlock.branch`` (conv-norm-relu-conv-norm), F2 a second branch of the same
    shape; s the identity (zero-padded when the shape changes). ``shake=True`` combines them
    with ``shake_shake`` (random in training, 0.5 in eval); ``shake=False`` always with 0.5
    (the same two-branch network without the noise).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *,
                 shake: bool = True, norm: str | None = "batch"):
        super().__init__(in_channels, out_channels, stride, norm=norm)
        bias = norm in (None, "none")
        self.shake = shake
        self.conv3 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=bias)
        self.conv4 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=bias)
        self.norm3 = norm_layer(norm, out_channels)
        self.norm4 = norm_layer(norm, out_channels)

    def branch2(self, x: torch.Tensor) -> torch.Tensor:
        """F2(x), the second branch."""
        return self.norm4(self.conv4(F.relu(self.norm3(self.conv3(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b2 = self.branch(x), self.branch2(x)
        mixed = shake_shake(b1, b2, self.training) if self.shake else 0.5 * (b1 + b2)
        return F.relu(mixed + self.shortcut(x))


def shake_shake_resnet(depth: int = 8, widths: Sequence[int] = (16, 32, 64), in_channels: int = 1,
                       num_classes: int = 10, *, shake: bool = True) -> ResNet:
    """``resnet(depth, widths)`` with every block a two-branch ``ShakeShakeBlock``.

    depth counts one branch's layers, as for ``resnet``. Returns a ``ResNet`` mapping
    (N, in_channels, H, W) to (N, num_classes) logits.
    """
    net = resnet(depth, widths, in_channels, num_classes)
    blocks = [ShakeShakeBlock(b.in_channels, b.out_channels, b.stride, shake=shake)
              for b in net.blocks]
    net.blocks = nn.Sequential(*blocks)
    return net
