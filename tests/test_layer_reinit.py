"""model.reinit_layers: the top encoder layers start from fresh random weights, everything else as pretrained."""

from __future__ import annotations

import pytest
import torch

from mrpc_finetune.cli import main
from mrpc_finetune.errors import UserError
from mrpc_finetune.layer_reinit import reinit_top_layers
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.train.preparation import prepare


def prepared_model(overrides: list[str]):
    return prepare(load_recipe("mrpc_minilm", overrides)).model


def test_the_top_layer_is_drawn_afresh_and_every_other_weight_is_as_without(minilm_path, tmp_path):
    """On the real MiniLM, whose trained top layer is far from BERT's initializer: after reinit_layers=1 its linear
    weights have the initializer's spread, biases 0, LayerNorms 1 and 0; the other layers, the embeddings, the
    pooler and the head (drawn before, under the same seed) are exactly those of a run without the key."""
    overrides = [f"model.name={minilm_path}", "data.dir=" + str(tmp_path)]
    (tmp_path / "train.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "label": 1, "idx": 0}\n' * 4)
    (tmp_path / "validation.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "label": 0, "idx": 0}\n' * 2)
    plain = dict(prepared_model(overrides).named_parameters())
    fresh = dict(prepared_model([*overrides, "model.reinit_layers=1"]).named_parameters())
    top = "bert.encoder.layer.5."
    assert plain.keys() == fresh.keys() and any(name.startswith(top) for name in fresh)
    std = 0.02  # the MiniLM config's initializer_range
    for name, value in fresh.items():
        if not name.startswith(top):
            assert torch.equal(value, plain[name]), name
        elif "LayerNorm" in name:
            assert torch.equal(value, torch.ones_like(value) if name.endswith("weight") else torch.zeros_like(value))
        elif name.endswith("bias"):
            assert not value.any(), name
        else:
            assert not torch.equal(value, plain[name]) and abs(value.std().item() - std) < 0.1 * std, name
            assert abs(plain[name].std().item() - std) > 0.5 * std, name  # the pretrained weights were not like that


def test_the_same_seed_draws_the_same_weights(tiny_overrides):
    first, second = (prepared_model([*tiny_overrides, "model.reinit_layers=2"]) for _ in range(2))
    other = prepared_model([*tiny_overrides, "model.reinit_layers=2", "seed=7"])
    top = first.bert.encoder.layer[0].attention.self.query.weight
    assert torch.equal(top, second.bert.encoder.layer[0].attention.self.query.weight)
    assert not torch.equal(top, other.bert.encoder.layer[0].attention.self.query.weight)


def test_more_layers_than_the_model_has_stop_before_a_run_folder(tiny_overrides, tmp_path, capsys):
    code = main(["train", "mrpc_minilm", *tiny_overrides, "model.reinit_layers=3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        code == 2
        and err[-1] == f"error: model.reinit_layers=3: model.name={tiny_overrides[0][11:]} has only 2 encoder layers"
    )
    assert not (tmp_path / "run").exists()


def test_a_negative_count_is_refused_by_the_recipe():
    with pytest.raises(UserError, match=r"^model.reinit_layers: must be >= 0, got -1$"):
        load_recipe("mrpc_minilm", ["model.reinit_layers=-1"])


def test_a_model_without_an_encoder_layer_list_is_refused():
    class NoLayers(torch.nn.Module):
        base_model = torch.nn.Linear(2, 2)

    with pytest.raises(UserError, match=r"model.reinit_layers=1: NoLayers has no encoder.layer list to reset"):
        reinit_top_layers(NoLayers(), 1, "x")
