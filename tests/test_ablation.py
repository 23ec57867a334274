import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import ablation, data
from helpers.models import count_parameters

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "benchmarks" / "reference" / "capstone.json"


def tiny_splits(n=60, side=14, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, side, side), dtype=np.float32)
    y = (np.arange(n) % 10).astype(np.int64)
    return data.Split(x, y), data.Split(x[:20], y[:20])


def test_rows_have_unique_names_and_the_tables_shape():
    names = [row.name for row in ablation.ROWS]
    assert len(set(names)) == len(names) == 16
    for model in ("ResNet-8", "plain-8"):  # the full 2 x 2 crop x weight-decay grid
        grid = {(r.crop, r.weight_decay) for r in ablation.ROWS if r.model == model and not r.dropout}
        assert grid == {(True, True), (True, False), (False, True), (False, False)}
    for model in ("ResNet-8 w/o BN", "MLP 3x512", "MLP 1x512"):  # no crop rows, as in the seed
        assert {r.crop for r in ablation.ROWS if r.model == model} == {False}
    assert [r.name for r in ablation.ROWS if r.dropout] == [
        "ResNet-8, crop, wd, dropout 0.3", "plain-8, crop, wd, dropout 0.3"]


@pytest.mark.parametrize("row", ablation.ROWS, ids=lambda r: r.name)
def test_build_model_maps_images_to_logits(row):
    model = ablation.build_model(row, 1, 14, 10)
    assert model(torch.zeros(3, 1, 14, 14)).shape == (3, 10)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert has_bn == (row.model in ("ResNet-8", "plain-8"))
    has_dropout = any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    assert has_dropout == bool(row.dropout)


def test_mlps_have_the_hidden_layers_of_their_name():
    mlp3 = ablation.build_model(ablation.Row("MLP 3x512", False, True), 1, 14, 10)
    mlp1 = ablation.build_model(ablation.Row("MLP 1x512", False, True), 1, 14, 10)
    assert count_parameters(mlp1) == 196 * 512 + 512 + 512 * 10 + 10
    assert count_parameters(mlp3) == count_parameters(mlp1) + 2 * (512 * 512 + 512)


def test_plain_and_residual_twins_have_the_same_parameters():
    res = ablation.build_model(ablation.Row("ResNet-8", True, True), 1, 14, 10)
    plain = ablation.build_model(ablation.Row("plain-8", True, True), 1, 14, 10)
    assert count_parameters(res) == count_parameters(plain)


def test_build_model_refuses_an_unknown_model():
    with pytest.raises(ValueError, match="model must be one of .* got 'VGG'"):
        ablation.build_model(ablation.Row("VGG", True, True), 1, 14, 10)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
    ({"pad": -1}, "pad must be an int >= 0, got -1"),
    ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
    ({"peak_lr": 0.0}, "peak_lr > 0"),
    ({"weight_decay": -1e-3}, "weight_decay >= 0"),
])
def test_settings_refuse_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ablation.Settings(**kwargs)


def test_train_row_is_reproducible_and_its_numbers_are_accuracies():
    train, test = tiny_splits()
    settings = ablation.Settings(epochs=2, batch_size=16)
    row = ablation.Row("ResNet-8", True, True)
    a = ablation.train_row(row, train, test, settings, seed=3, device="cpu")
    b = ablation.train_row(row, train, test, settings, seed=3, device="cpu")
    assert a.numbers() == b.numbers()
    assert all(0 <= v <= 1 for v in a.numbers().values())
    assert a.best_test_acc >= a.test_acc
    assert a.weight_norm == pytest.approx(ablation.weight_norm(a.model))


def test_weight_decay_shrinks_the_weights():
    train, test = tiny_splits()
    settings = ablation.Settings(epochs=3, batch_size=16, weight_decay=0.05)
    norms = [ablation.train_row(ablation.Row("MLP 1x512", False, wd), train, test, settings,
                                seed=0, device="cpu").weight_norm for wd in (True, False)]
    assert norms[0] < 0.9 * norms[1]


def test_train_row_refuses_a_name_for_a_row():
    train, test = tiny_splits()
    with pytest.raises(ValueError, match="row must be a Row, got str"):
        ablation.train_row("ResNet-8, crop, wd", train, test, ablation.Settings(), 0)


def test_interaction_is_the_difference_of_crop_gains_per_seed():
    acc = {ablation.Row("plain-8", c, w).name: np.array(v) for (c, w), v in {
        (True, True): [0.80, 0.70], (False, True): [0.75, 0.70],
        (True, False): [0.78, 0.60], (False, False): [0.76, 0.65]}.items()}
    assert ablation.interaction(acc, "plain-8") == pytest.approx([0.05 - 0.02, 0.0 + 0.05])


def test_mean_std_uses_the_sample_deviation():
    mean, std = ablation.mean_std([1.0, 2.0, 3.0])
    assert (mean, std) == pytest.approx((2.0, 1.0))
    with pytest.raises(ValueError, match="at least two values"):
        ablation.mean_std([1.0])


def reference_dict(seeds=(0, 1)):
    return {
        "device": "cpu", "torch": "2", "commit": "abc", "date": "2026-01-01", "train_images": 60000,
        "test_images": 10000, "side": 14, "epochs": 3, "seeds": list(seeds), "wall_s": 1.0,
        "settings": {}, "rows": [{"name": row.name, "train": [0.9] * len(seeds),
                                  "test": [0.8] * len(seeds), "best_test": [0.85] * len(seeds)}
                                 for row in ablation.ROWS],
    }


def test_reference_round_trip(tmp_path):
    path = tmp_path / "deep" / "capstone.json"
    ablation.write_reference(path, reference_dict())
    loaded = ablation.read_reference(path)
    assert set(loaded["table"]) == {row.name for row in ablation.ROWS}
    assert loaded["table"]["MLP 1x512, no crop, wd"]["best_test"].tolist() == [0.85, 0.85]
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("change, match", [
    (lambda r: r.pop("commit"), "expected key 'commit'"),
    (lambda r: r.update(epochs="3"), "epochs must be"),
    (lambda r: r.update(seeds=[0]), "at least two distinct seeds"),
    (lambda r: r["rows"].append({"name": "VGG"}), "name from ablation.ROWS"),
    (lambda r: r["rows"][0].update(test=[0.8]), "2 accuracies in \\[0, 1\\]"),
    (lambda r: r["rows"][0].update(train=[0.8, 80.0]), "2 accuracies in \\[0, 1\\]"),
])
def test_validate_reference_names_what_is_wrong(change, match):
    reference = copy.deepcopy(reference_dict())
    change(reference)
    with pytest.raises(ValueError, match=match):
        ablation.validate_reference(reference)


def test_the_stored_reference_is_complete_and_full_scale():
    reference = ablation.read_reference(STORED)
    assert set(reference["table"]) == {row.name for row in ablation.ROWS}
    assert reference["train_images"] == 60000 and reference["test_images"] == 10000
    assert len(reference["seeds"]) >= 3
    assert reference["settings"]["epochs"] == reference["epochs"]


@pytest.mark.usefixtures("no_network")
def test_reference_script_writes_a_valid_file(tmp_path, fake_fashion, monkeypatch):
    folder = tmp_path / "fashion"
    fake_fashion(folder)
    monkeypatch.setenv("BOOK_DATA_DIR", str(folder))
    monkeypatch.setenv("BOOK_DEVICE", "cpu")
    spec = importlib.util.spec_from_file_location("reference", ROOT / "tools" / "reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    out = tmp_path / "ref.json"
    assert reference.main(["--epochs", "1", "--seeds", "0", "1", "--rows", "MLP 1x512",
                           "--out", str(out)]) == 0
    stored = json.loads(out.read_text())
    assert [row["name"] for row in stored["rows"]] == ["MLP 1x512, no crop, wd",
                                                       "MLP 1x512, no crop, no wd"]
    assert stored["train_images"] == 200 and stored["epochs"] == 1
    assert stored["device"].startswith("cpu")
    ablation.validate_reference(stored)
