"""CPU smoke run of the Trainer loop on a tiny random BERT: it learns, checkpoints, logs and saves a usable model."""

from __future__ import annotations

import json
import math

import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from mrpc_finetune import trainer_loop
from mrpc_finetune.recipe import load_recipe


def test_trainer_smoke(tiny_overrides, tiny_model_dir, tmp_path):
    recipe = load_recipe("mrpc_minilm", tiny_overrides)
    metrics = trainer_loop.main(recipe)
    run = recipe.run_dir

    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["eval_loss"])
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and 0.0 <= metrics["eval_f1"] <= 1.0
    assert json.loads((run / "metrics.json").read_text())["eval_accuracy"] == metrics["eval_accuracy"]
    assert load_recipe(str(run / "recipe.json")) == recipe  # the run can be repeated from its recipe
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-16", "checkpoint-8"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))

    trained = AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert trained.config.id2label == {0: "not_equivalent", 1: "equivalent"}
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    key = next(k for k in initial if k.endswith("encoder.layer.0.attention.self.query.weight"))
    assert not torch.equal(initial[key], trained.bert.encoder.layer[0].attention.self.query.weight)
