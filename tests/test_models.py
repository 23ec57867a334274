"""helpers.models: shapes, parameter counts, shortcuts, zero init, DropPath and bad input."""

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import models


def conv_count(c_in, c_out, k=3):
    return c_in * c_out * k * k


def test_resnet_output_shapes_for_digits_and_textures():
    torch.manual_seed(0)
    assert models.resnet(8, (8, 16, 32))(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    net = models.resnet(14, (8, 16), in_channels=3, num_classes=6, preact=True)
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 6)
    assert net.features(torch.randn(3, 3, 32, 32)).shape == (3, 16)


def test_parameter_count_matches_the_layers():
    # stem, one block per stage (8 -> 8, 8 -> 16 stride 2, 16 -> 32 stride 2), classifier
    bn = 2  # scale and shift per channel
    expected = (
        conv_count(1, 8) + bn * 8
        + 2 * conv_count(8, 8) + 2 * bn * 8
        + conv_count(8, 16) + conv_count(16, 16) + 2 * bn * 16
        + conv_count(16, 32) + conv_count(32, 32) + 2 * bn * 32
        + 32 * 10 + 10
    )  # fmt: skip
    assert expected == 19074
    assert models.count_parameters(models.resnet(8, (8, 16, 32))) == expected
    assert models.count_parameters(models.plain_cnn(8, (8, 16, 32))) == expected
    projections = conv_count(8, 16, 1) + bn * 16 + conv_count(16, 32, 1) + bn * 32
    assert models.count_parameters(models.resnet(8, (8, 16, 32), shortcut="projection")) == (
        expected + projections
    )
    # without normalization the convolutions get biases instead of scale and shift
    no_norm = models.resnet(8, (8, 16, 32), norm="none")
    assert models.count_parameters(no_norm) == expected - bn * (8 * 3 + 16 * 2 + 32 * 2) + (
        8 * 3 + 16 * 2 + 32 * 2
    )


@pytest.mark.parametrize("depth,blocks", [(8, 3), (14, 6), (20, 9), (32, 15)])
def test_depth_counts_weighted_layers(depth, blocks):
    net = models.resnet(depth, (4, 8, 16))
    assert len(net.blocks) == blocks
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == depth  # identity shortcuts add no layers


def test_plain_network_has_the_same_layers_without_shortcuts():
    torch.manual_seed(0)
    res, plain = models.resnet(14, (8, 16)), models.plain_cnn(14, (8, 16))
    plain.load_state_dict(res.state_dict())  # identical parameters and buffers
    x = torch.randn(4, 1, 8, 8)
    res.eval(), plain.eval()
    assert not torch.allclose(res(x), plain(x))
    block = plain.blocks[0]
    assert torch.allclose(block(x.repeat(1, 8, 1, 1)), torch.relu(block.branch(x.repeat(1, 8, 1, 1))))


@pytest.mark.parametrize("norm", ["batch", "group", "layer", "instance", "none", None])
def test_every_norm_trains_a_step(norm):
    torch.manual_seed(0)
    net = models.resnet(8, (4, 8, 16), norm=norm, groups=2)
    loss = nn.functional.cross_entropy(net(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_norm_layer_kinds():
    assert isinstance(models.norm_layer("batch", 8), nn.BatchNorm2d)
    assert models.norm_layer("group", 8, groups=4).num_groups == 4
    assert models.norm_layer("group", 2, groups=4).num_groups == 2
    assert models.norm_layer("layer", 8).num_groups == 1
    assert models.norm_layer("instance", 8).num_groups == 8
    assert isinstance(models.norm_layer(None, 8), nn.Identity)


def test_identity_shortcut_subsamples_and_pads_with_zeros():
    block = models.BasicBlock(2, 4, stride=2)
    x = torch.randn(1, 2, 6, 6)
    s = block.shortcut(x)
    assert s.shape == (1, 4, 3, 3)
    assert torch.equal(s[:, :2], x[:, :, ::2, ::2]) and torch.equal(s[:, 2:], torch.zeros(1, 2, 3, 3))
    proj = models.BasicBlock(2, 4, stride=2, shortcut="projection")
    assert isinstance(proj.projection[0], nn.Conv2d) and proj.projection[0].stride == (2, 2)
    assert proj(x).shape == (1, 4, 3, 3)
    same = models.BasicBlock(4, 4, shortcut="projection")
    assert same.projection is None  # shapes agree: the shortcut is the identity


@pytest.mark.parametrize("preact", [False, True])
def test_zero_init_makes_each_block_start_as_the_identity(preact):
    torch.manual_seed(0)
    block = models.BasicBlock(4, 4, zero_init_residual=True, preact=preact)
    x = torch.randn(3, 4, 5, 5)
    expected = x if preact else torch.relu(x)
    assert torch.allclose(block(x), expected)
    net = models.resnet(8, (4, 8, 16), zero_init_residual=True, norm="none")
    assert all(float(b.conv2.weight.detach().abs().sum()) == 0 for b in net.blocks)


def test_drop_path_drops_whole_examples_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(4000, 3, 2, 2)
    y = models.drop_path(x, 0.25, training=True)
    per_example = y.flatten(1)
    assert torch.all((per_example == 0).all(1) | (per_example == 1 / 0.75).all(1))
    assert abs(float(y.mean()) - 1) < 0.05
    assert models.drop_path(x, 0.25, training=False) is x
    layer = models.DropPath(0.5).eval()
    assert layer(x) is x and "p=0.5" in repr(layer)


def test_drop_path_rate_grows_linearly_with_depth():
    net = models.resnet(14, (4, 8), drop_path=0.3)
    rates = [b.drop_path.p for b in net.blocks]
    assert rates == pytest.approx([0.3 * (i + 1) / 6 for i in range(6)])
    torch.manual_seed(0)
    net.eval()
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(net(x), net(x))  # no randomness in eval


def test_bad_input_raises_value_error():
    cases = [
        (lambda: models.resnet(9, (4, 8, 16)), r"depth must be 2 \+ 6 \* n"),
        (lambda: models.resnet(2, (4, 8, 16)), "got 2"),
        (lambda: models.resnet(8.0, (4, 8, 16)), "got 8.0"),
        (lambda: models.resnet(8, ()), "widths must be a non-empty"),
        (lambda: models.resnet(8, (4, 0, 16)), "widths must be"),
        (lambda: models.resnet(8, norm="batchnorm"), "norm must be one of"),
        (lambda: models.resnet(8, shortcut="conv"), "shortcut must be one of"),
        (lambda: models.resnet(8, drop_path=1.0), r"drop_path must be in \[0, 1\)"),
        (lambda: models.resnet(8, residual=False, drop_path=0.1), "needs residual=True"),
        (lambda: models.norm_layer("batchnorm", 4), "kind must be one of"),
        (lambda: models.norm_layer("group", 6, groups=4), "not divisible by groups=4"),
        (lambda: models.BasicBlock(4, 4, shortcut="conv"), "shortcut must be one of"),
        (lambda: models.BasicBlock(4, 4, residual=False, drop_path=0.1), "needs residual=True"),
        (lambda: models.BasicBlock(8, 4)(torch.zeros(1, 8, 4, 4)), "cannot reduce the channels"),
        (lambda: models.DropPath(1.0), r"p must be in \[0, 1\)"),
        (lambda: models.drop_path(torch.zeros(2), -0.1, True), r"p must be in \[0, 1\)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def expected_parameters(depth, widths, in_channels, num_classes, shortcut, preact):
    """Parameter count of resnet(...) with batch norm, from the layer list."""
    n = (depth - 2) // (2 * len(widths))
    count = 9 * in_channels * widths[0] + (0 if preact else 2 * widths[0])
    channels = widths[0]
    for width in widths:
        for i in range(n):
            c_in = channels if i == 0 else width
            count += 9 * c_in * width + 9 * width * width
            count += 2 * (c_in if preact else width) + 2 * width  # the two norms
            if i == 0 and c_in != width and shortcut == "projection":
                count += c_in * width + (0 if preact else 2 * width)
        channels = width
    if preact:
        count += 2 * channels
    return count + channels * num_classes + num_classes


@settings(max_examples=25, deadline=None)
@given(
    stages=st.integers(1, 3),
    n=st.integers(1, 3),
    base=st.sampled_from([2, 4, 8]),
    in_channels=st.sampled_from([1, 3]),
    num_classes=st.integers(2, 12),
    shortcut=st.sampled_from(["identity", "projection"]),
    preact=st.booleans(),
)
def test_any_configuration_has_the_expected_shape_and_parameter_count(
    stages, n, base, in_channels, num_classes, shortcut, preact
):
    widths = tuple(base * 2**s for s in range(stages))
    depth = 2 + 2 * n * stages
    net = models.resnet(depth, widths, in_channels, num_classes, shortcut=shortcut, preact=preact)
    assert models.count_parameters(net) == expected_parameters(
        depth, widths, in_channels, num_classes, shortcut, preact
    )
    side = 2 ** (stages + 1)
    assert net(torch.randn(2, in_channels, side, side)).shape == (2, num_classes)


def test_small_cnn_shapes_parameters_and_options():
    net = models.small_cnn()
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert models.count_parameters(net) == 9930
    bn = models.small_cnn(norm="batch")
    assert isinstance(bn[1], nn.BatchNorm2d) and bn[0].bias is None
    gn = models.small_cnn(norm="group", groups=8)
    assert isinstance(gn[1], nn.GroupNorm) and gn[1].num_groups == 8 and gn[0].bias is None
    assert models.small_cnn(norm="none")[0].bias is not None
    drop = models.small_cnn(hidden=64, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in drop) == 2
    assert models.small_cnn(3, 6, (8,), side=32)(torch.zeros(1, 3, 32, 32)).shape == (1, 6)


def test_small_cnn_draws_the_same_weights_as_the_layers_written_out():
    torch.manual_seed(0)
    ours = models.small_cnn()
    torch.manual_seed(0)
    written = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))
    for a, b in zip(ours.state_dict().values(), written.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"widths": ()}, "non-empty"),
    ({"norm": "batchnorm"}, "norm must be one of"),
    ({"side": 7}, "even number"),
    ({"hidden": 8, "dropout": 1.0}, "dropout must be in"),
    ({"dropout": 0.5}, "needs a hidden layer"),
])
def test_small_cnn_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.small_cnn(**kwargs)


def test_pooled_cnn_shapes_and_parameters():
    net = models.pooled_cnn()
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    expected = conv_count(1, 16) + 16 + conv_count(16, 32) + 32 + conv_count(32, 64) + 64
    assert models.count_parameters(net) == expected + 64 * 3 * 3 * 10 + 10 == 29066
    assert sum(isinstance(m, nn.MaxPool2d) for m in net) == 3
    small = models.pooled_cnn((4, 8), in_channels=3, num_classes=6, side=9)  # 9 -> 4 -> 2
    assert small(torch.zeros(1, 3, 9, 9)).shape == (1, 6)
    assert small[-1].in_features == 8 * 2 * 2


def test_pooled_cnn_draws_the_same_weights_as_the_layers_written_out():
    torch.manual_seed(0)
    ours = models.pooled_cnn()
    torch.manual_seed(0)
    written = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 3 * 3, 10),
    )
    for a, b in zip(ours.state_dict().values(), written.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"widths": ()}, "non-empty"),
    ({"widths": (8, 0)}, "non-empty ints >= 1"),
    ({"side": 4}, "side must be >= 2 \\*\\* len"),
])
def test_pooled_cnn_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.pooled_cnn(**kwargs)


def test_shake_shake_forward_mixes_and_backward_splits_with_an_independent_beta():
    torch.manual_seed(0)
    b1 = torch.randn(64, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    b2 = torch.randn(64, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    out = models.shake_shake(b1, b2, training=True)
    alpha = ((out - b2) / (b1 - b2)).detach().flatten(1)
    assert torch.allclose(alpha, alpha[:, :1].expand_as(alpha))  # one alpha per example
    assert ((alpha >= 0) & (alpha <= 1)).all()
    out.sum().backward()
    beta = b1.grad.flatten(1)[:, 0]
    assert torch.allclose(b1.grad + b2.grad, torch.ones_like(b1))
    assert not torch.allclose(beta, alpha[:, 0])  # backward does not reuse alpha
    assert torch.equal(models.shake_shake(b1, b2, training=False), 0.5 * (b1 + b2))
    with pytest.raises(ValueError, match="same shape"):
        models.shake_shake(b1, b2[:1], training=True)


def test_shake_shake_resnet_shapes_and_eval_is_deterministic():
    net = models.shake_shake_resnet(6, (4, 8), shake=True)
    assert all(isinstance(b, models.ShakeShakeBlock) for b in net.blocks)
    x = torch.randn(3, 1, 8, 8)
    assert net(x).shape == (3, 10)
    net.eval()
    assert torch.equal(net(x), net(x))
    even = models.shake_shake_resnet(6, (4, 8), shake=False).train()
    torch.manual_seed(1)
    a = even(x)
    torch.manual_seed(2)
    assert torch.allclose(a, even(x))  # no noise without shake


def test_drop_block_batch_skips_the_branch_or_keeps_it_scaled():
    torch.manual_seed(0)
    block = models.BasicBlock(4, 4).train()
    x = torch.randn(2, 4, 3, 3)
    skipped = torch.relu(block.shortcut(x))
    calls = []
    block.conv1.register_forward_hook(lambda *args: calls.append(1))
    outs = [models.drop_block_batch(block, x, 0.5, training=True) for _ in range(40)]
    n_skipped = sum(torch.equal(o, skipped) for o in outs)
    assert 5 < n_skipped < 35 and len(calls) == 40 - n_skipped  # skipped blocks cost nothing
    block.eval()
    assert torch.equal(models.drop_block_batch(block, x, 0.5, training=False), block(x))
    with pytest.raises(ValueError, match="p must be in"):
        models.drop_block_batch(block, x, 1.0, training=True)
    with pytest.raises(ValueError, match="must be residual"):
        models.drop_block_batch(models.BasicBlock(4, 4, residual=False), x, 0.1, training=True)
