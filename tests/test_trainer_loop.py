"""CPU smoke run of the Trainer loop on a tiny random BERT: it learns, checkpoints, logs and saves a usable model."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from mrpc_finetune import samplers, trainer_loop
from mrpc_finetune.inference import predict_logits
from mrpc_finetune.pipeline import prepare
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


def test_trainer_batches_by_length_and_predicts_in_row_order(tiny_overrides, tmp_path):
    recipe = load_recipe("mrpc_minilm", tiny_overrides)
    prepared = prepare(recipe)
    widths = []

    def collate(rows):
        batch = prepared.collator(rows)
        widths.append(batch["input_ids"].shape[1])
        return batch

    validation = prepared.splits["validation"]
    trainer = trainer_loop.LengthBatchedTrainer(
        model=prepared.model,
        args=trainer_loop.training_arguments(recipe, tmp_path / "checkpoints"),
        train_dataset=prepared.splits["train"],
        eval_dataset=validation,
        data_collator=collate,
        processing_class=prepared.tokenizer,
    )
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, samplers.LengthBucketSampler)
    assert (sampler.batch_size, sampler.seed, len(sampler)) == (8, recipe.seed, 64)

    output = trainer.predict(validation)
    assert len(widths) == 3 and widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # longest first
    one_by_one = predict_logits(prepared.model, validation, prepared.collator, batch_size=1, device="cpu")
    assert np.ptp(one_by_one, axis=0).max() > 1e-5  # rows differ by far more than the tolerance below
    np.testing.assert_allclose(output.predictions, one_by_one, rtol=0, atol=1e-7)  # back in row order
    assert output.label_ids.tolist() == list(validation["labels"])


def test_random_sampler_stays_the_trainers_own(tiny_overrides, tmp_path):
    recipe = load_recipe("mrpc_minilm", [*tiny_overrides, "train.sampler=random", "eval.strategy=no"])
    prepared = prepare(recipe, with_model=False)
    trainer = trainer_loop.LengthBatchedTrainer(
        model=torch.nn.Linear(1, 1),
        args=trainer_loop.training_arguments(recipe, tmp_path / "checkpoints"),
        train_dataset=prepared.splits["train"],
    )
    assert isinstance(trainer._get_train_sampler(), torch.utils.data.RandomSampler)
